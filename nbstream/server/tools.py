"""Demo tool calls: the demo model calls the request's functions with deterministic arguments.

Used when a request asks for it: option ``tool_calls=N``, or ``tool_choice="required"`` or a named
function, with ``tools`` given. Arguments are built from each function's JSON schema and streamed
in fragments split at JSON punctuation, the way api.openai.com splits them (``{"``, ``city``,
``":"``, ``example``, ``"}``), so consumers exercise their argument accumulation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from nbstream.server import wire

DEFAULT_TOOL = {
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
MAX_TOOL_CALLS = 8
_FRAGMENT = re.compile(r'[{}\[\],:"]+|[^{}\[\],:"]+')


@dataclass(frozen=True)
class ToolCall:
    """One planned call: ids, function name, the full arguments and their streamed fragments."""

    index: int
    call_id: str
    item_id: str
    name: str
    arguments: str

    @property
    def fragments(self) -> list[str]:
        return _FRAGMENT.findall(self.arguments)


def _functions(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's function tools as ``{"name", "parameters"}`` (chat or Responses shape)."""
    out = []
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            continue
        spec: dict[str, Any] = tool["function"] if isinstance(tool.get("function"), dict) else tool
        if isinstance(spec.get("name"), str):
            out.append({"name": spec["name"], "parameters": spec.get("parameters") or {}})
    return out


def _example(schema: Any, name: str) -> Any:
    """A deterministic value for a JSON-schema property."""
    if not isinstance(schema, dict):
        return None
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "string":
        return "Paris" if name in ("city", "location", "capital") else f"example {name}"
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "array":
        return [_example(schema.get("items"), name)] if schema.get("items") else []
    if kind == "object":
        props = schema.get("properties") or {}
        return {key: _example(value, key) for key, value in props.items()}
    return None


def requested_calls(body: dict[str, Any], option: int) -> int:
    """How many tool calls to make: the option, else 1 when ``tool_choice`` forces a call."""
    if option:
        return option
    choice = body.get("tool_choice")
    forced = choice == "required" or (isinstance(choice, dict) and choice.get("type") == "function")
    return 1 if forced and _functions(body) else 0


def plan_calls(body: dict[str, Any], count: int, ident: str) -> list[ToolCall]:
    """``count`` calls cycling through the request's functions (a named ``tool_choice`` first)."""
    functions = _functions(body) or [DEFAULT_TOOL]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name") or choice.get("name")
        functions = [f for f in functions if f["name"] == wanted] or functions
    calls = []
    for index in range(count):
        function = functions[index % len(functions)]
        arguments = _example(function["parameters"], function["name"])
        calls.append(
            ToolCall(
                index=index,
                call_id=f"call_{ident[:16]}{index}",
                item_id=f"fc_{ident}{index}",
                name=function["name"],
                arguments=json.dumps(arguments if arguments is not None else {}),
            )
        )
    return calls


def argument_tokens(calls: list[ToolCall]) -> int:
    """Usage: one token per streamed fragment."""
    return sum(len(call.fragments) for call in calls)


def chat_tool_stream(
    calls: list[ToolCall],
    *,
    chunk_id: str,
    model: str,
    created: int,
    include_usage: bool,
    prompt_tokens: int,
) -> wire.Stream:
    """Chat chunks of parallel tool calls, shaped like the recorded OpenAI streams 02 and 03."""
    base = {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": wire.FINGERPRINT,
    }
    usage_field = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> tuple[bytes, bool]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return wire.sse_data({**base, "choices": [choice], **usage_field}), True

    yield chunk({"role": "assistant", "content": None, "refusal": None})
    for call in calls:
        head = {
            "index": call.index,
            "id": call.call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        yield chunk({"tool_calls": [head]})
        for fragment in call.fragments:
            yield chunk(
                {"tool_calls": [{"index": call.index, "function": {"arguments": fragment}}]}
            )
    yield chunk({}, "tool_calls")
    if include_usage:
        usage = wire.chat_usage(prompt_tokens, argument_tokens(calls))
        yield wire.sse_data({**base, "choices": [], "usage": usage}), True
    yield wire.DONE, False


def chat_tool_message(calls: list[ToolCall]) -> dict[str, Any]:
    """The ``message`` of a non-streamed completion that calls tools."""
    return {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {
                "id": call.call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in calls
        ],
    }


def _function_item(call: ToolCall, done: bool) -> dict[str, Any]:
    return {
        "id": call.item_id,
        "type": "function_call",
        "status": "completed" if done else "in_progress",
        "arguments": call.arguments if done else "",
        "call_id": call.call_id,
        "name": call.name,
    }


def responses_tool_stream(
    calls: list[ToolCall],
    *,
    response_id: str,
    model: str,
    created: int,
    input_tokens: int,
    instructions: Any = None,
) -> wire.Stream:
    """Responses events of function calls (item added, argument deltas, done), as in file 09."""
    seq = 0

    def event(kind: str, **fields: Any) -> tuple[bytes, bool]:
        nonlocal seq
        payload = {"type": kind, **fields, "sequence_number": seq}
        seq += 1
        return wire.sse_data(payload, event=kind), True

    def response(
        status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None
    ) -> dict[str, Any]:
        return wire.response_object(
            response_id=response_id,
            model=model,
            created=created,
            status=status,
            output=output,
            usage=usage,
            instructions=instructions,
        )

    yield event("response.created", response=response("in_progress", [], None))
    yield event("response.in_progress", response=response("in_progress", [], None))
    for call in calls:
        where = {"item_id": call.item_id, "output_index": call.index}
        yield event(
            "response.output_item.added", item=_function_item(call, False), output_index=call.index
        )
        for fragment in call.fragments:
            yield event("response.function_call_arguments.delta", **where, delta=fragment)
        yield event("response.function_call_arguments.done", **where, arguments=call.arguments)
        yield event(
            "response.output_item.done", item=_function_item(call, True), output_index=call.index
        )
    output = [_function_item(call, True) for call in calls]
    usage = wire.responses_usage(input_tokens, argument_tokens(calls))
    yield event("response.completed", response=response("completed", output, usage))


def responses_tool_full(
    calls: list[ToolCall],
    *,
    response_id: str,
    model: str,
    created: int,
    input_tokens: int,
    instructions: Any = None,
) -> dict[str, Any]:
    """A non-streamed ``response`` whose output is the function calls."""
    return wire.response_object(
        response_id=response_id,
        model=model,
        created=created,
        status="completed",
        output=[_function_item(call, True) for call in calls],
        usage=wire.responses_usage(input_tokens, argument_tokens(calls)),
        instructions=instructions,
    )
