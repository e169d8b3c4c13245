"""Demo tool calls through the real openai client: chat and Responses, streamed and not."""

from __future__ import annotations

import asyncio
import json

import openai

from nbstream.server import LocalServer

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_capital",
            "parameters": {
                "type": "object",
                "properties": {
                    "country": {"type": "string"},
                    "units": {"type": "string", "enum": ["metric", "imperial"]},
                    "days": {"type": "integer"},
                },
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    },
]
USER = [{"role": "user", "content": "capital of France?"}]
CAPITAL_ARGS = {"country": "example country", "units": "metric", "days": 1}


def _client(server: LocalServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)


def test_parallel_tool_calls_streamed(local_server: LocalServer) -> None:
    stream = _client(local_server).chat.completions.create(
        model="demo?tool_calls=2",
        messages=USER,
        tools=TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )
    calls: dict[int, dict] = {}
    fragments = 0
    finish = usage = None
    with stream:
        for chunk in stream:
            if not chunk.choices:
                usage = chunk.usage
                continue
            choice = chunk.choices[0]
            finish = choice.finish_reason or finish
            assert choice.delta.content is None
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": None, "name": None, "args": ""})
                if delta.id:
                    call["id"], call["name"] = delta.id, delta.function.name
                if delta.function and delta.function.arguments:
                    call["args"] += delta.function.arguments
                    fragments += 1
    assert finish == "tool_calls"
    assert [c["name"] for c in calls.values()] == ["get_capital", "get_weather"]
    assert json.loads(calls[0]["args"]) == CAPITAL_ARGS
    assert json.loads(calls[1]["args"]) == {"city": "Paris"}
    assert calls[0]["id"] != calls[1]["id"]
    assert fragments > 6 and usage is not None and usage.completion_tokens == fragments


def test_tool_choice_named_function_non_streamed(local_server: LocalServer) -> None:
    completion = _client(local_server).chat.completions.create(
        model="demo",
        messages=USER,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}


def test_tools_without_forcing_answer_with_text(local_server: LocalServer) -> None:
    completion = _client(local_server).chat.completions.create(
        model="demo?tokens=3", messages=USER, tools=TOOLS
    )
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason == "stop"


def test_responses_function_call_events(local_server: LocalServer) -> None:
    tools = [{"type": "function", **TOOLS[0]["function"]}]

    async def main() -> list:
        client = openai.AsyncOpenAI(base_url=local_server.base_url, api_key="x", max_retries=0)
        stream = await client.responses.create(
            model="demo", input="x", tools=tools, tool_choice="required", stream=True
        )
        events = [event async for event in stream]
        await client.close()
        return events

    events = asyncio.run(main())
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert "".join(deltas) == done.arguments and json.loads(done.arguments) == CAPITAL_ARGS
    assert len(deltas) > 3
    final = events[-1].response
    assert final.output[0].type == "function_call" and final.output[0].name == "get_capital"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    full = _client(local_server).responses.create(model="demo?tool_calls=1", input="x")
    assert full.output[0].name == "get_weather"  # no tools given: the default function
