"""OpenAI wire shapes built by the local server: chat chunks, Responses events, full bodies, errors.

Streams are iterators of ``(sse_block_bytes, is_chunk)``: one complete SSE event per item, where
``is_chunk`` says whether it counts as a chunk for pacing and fault positions (not ``[DONE]``).
Chat chunks are built from a pre-rendered template so 100k chunks cost little.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

DONE = b"data: [DONE]\n\n"
FINGERPRINT = "fp_nbstream"

Stream = Iterator[tuple[bytes, bool]]


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def sse_data(obj: Any, event: str | None = None) -> bytes:
    """One SSE event block carrying ``obj`` as JSON."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {_dumps(obj)}\n\n".encode()


def error_body(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error envelope."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def chat_usage(
    prompt_tokens: int, completion_tokens: int, reasoning_tokens: int = 0
) -> dict[str, Any]:
    """Usage as api.openai.com reports it (``completion_tokens`` includes reasoning tokens)."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_stream(
    tokens: list[str],
    *,
    chunk_id: str,
    model: str,
    created: int,
    finish_reason: str,
    include_usage: bool,
    prompt_tokens: int,
    reasoning: list[str] | None = None,
) -> Stream:
    """Chat Completions chunks as api.openai.com sends them (role chunk, deltas, finish, usage).

    ``reasoning`` tokens come first as ``delta.reasoning_content`` (as vLLM / DeepSeek send them).
    """
    usage_tail = ',"usage":null' if include_usage else ""
    head = (
        f'data: {{"id":"{chunk_id}","object":"chat.completion.chunk","created":{created},'
        f'"model":{_dumps(model)},"system_fingerprint":"{FINGERPRINT}","choices":[{{"index":0,'
    )
    yield (
        (
            head + '"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,'
            '"finish_reason":null}]' + usage_tail + "}\n\n"
        ).encode(),
        True,
    )
    tail = '},"logprobs":null,"finish_reason":null}]' + usage_tail + "}\n\n"
    mid = '"delta":{"reasoning_content":'
    for token in reasoning or ():
        yield (head + mid + _dumps(token) + tail).encode(), True
    mid = '"delta":{"content":'
    for token in tokens:
        yield (head + mid + _dumps(token) + tail).encode(), True
    yield (
        (
            head
            + f'"delta":{{}},"logprobs":null,"finish_reason":"{finish_reason}"}}]'
            + usage_tail
            + "}\n\n"
        ).encode(),
        True,
    )
    if include_usage:
        usage = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": FINGERPRINT,
            "choices": [],
            "usage": chat_usage(
                prompt_tokens, len(tokens) + len(reasoning or ()), len(reasoning or ())
            ),
        }
        yield sse_data(usage), True
    yield DONE, False


def chat_stream_choices(
    choices: list[list[str]],
    *,
    chunk_id: str,
    model: str,
    created: int,
    finish_reasons: list[str],
    include_usage: bool,
    prompt_tokens: int,
) -> Stream:
    """``n>1``: one choice per chunk, interleaved round-robin like api.openai.com (each choice has
    its own role chunk and finish chunk)."""
    base = {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": FINGERPRINT,
    }
    usage_field = {"usage": None} if include_usage else {}

    def chunk(index: int, delta: dict[str, Any], finish: str | None) -> tuple[bytes, bool]:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse_data({**base, "choices": [choice], **usage_field}), True

    for index in range(len(choices)):
        yield chunk(index, {"role": "assistant", "content": "", "refusal": None}, None)
    longest = max((len(tokens) for tokens in choices), default=0)
    for step in range(longest):
        for index, tokens in enumerate(choices):
            if step < len(tokens):
                yield chunk(index, {"content": tokens[step]}, None)
            if step == len(tokens) - 1:
                yield chunk(index, {}, finish_reasons[index])
    for index, tokens in enumerate(choices):
        if not tokens:
            yield chunk(index, {}, finish_reasons[index])
    if include_usage:
        completion = sum(len(tokens) for tokens in choices)
        usage = {**base, "choices": [], "usage": chat_usage(prompt_tokens, completion)}
        yield sse_data(usage), True
    yield DONE, False


def chat_completion(
    text: str | list[str],
    *,
    chunk_id: str,
    model: str,
    created: int,
    finish_reason: str | list[str],
    prompt_tokens: int,
    completion_tokens: int,
    reasoning: list[str] | None = None,
) -> dict[str, Any]:
    """A non-streamed ``chat.completion`` object (``text`` a list when ``n>1``)."""
    texts = [text] if isinstance(text, str) else text
    extra = {"reasoning_content": "".join(reasoning)} if reasoning else {}
    finishes = [finish_reason] * len(texts) if isinstance(finish_reason, str) else finish_reason
    return {
        "id": chunk_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": FINGERPRINT,
        "choices": [
            {
                "index": index,
                "message": {"role": "assistant", "content": content, "refusal": None, **extra},
                "logprobs": None,
                "finish_reason": finishes[index],
            }
            for index, content in enumerate(texts)
        ],
        "usage": chat_usage(
            prompt_tokens, completion_tokens + len(reasoning or ()), len(reasoning or ())
        ),
        "service_tier": "default",
    }


def responses_usage(
    input_tokens: int, text_tokens: int, reasoning_tokens: int = 0
) -> dict[str, Any]:
    output_tokens = text_tokens + reasoning_tokens
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": input_tokens + output_tokens,
    }


def response_object(
    *,
    response_id: str,
    model: str,
    created: int,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    instructions: Any = None,
    incomplete_reason: str | None = None,
) -> dict[str, Any]:
    """A ``response`` object in the shape of the recorded Responses streams."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "completed_at": created if status in ("completed", "incomplete") else None,
        "error": None,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": instructions,
        "max_output_tokens": None,
        "max_tool_calls": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}]
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "content": content if status != "in_progress" else [],
        "role": "assistant",
    }


def _reasoning_item(item_id: str, text: str | None) -> dict[str, Any]:
    summary = [] if text is None else [{"type": "summary_text", "text": text}]
    return {"id": item_id, "type": "reasoning", "summary": summary}


def responses_stream(
    tokens: list[str],
    *,
    response_id: str,
    model: str,
    created: int,
    input_tokens: int,
    instructions: Any = None,
    incomplete_reason: str | None = None,
    reasoning: list[str] | None = None,
) -> Stream:
    """Responses API events: created, in_progress, [reasoning summary item], message item with
    text deltas, done events, completed (or incomplete) with usage."""
    ident = response_id.removeprefix("resp_")
    item_id = "msg_" + ident
    seq = 0

    def event(kind: str, **fields: Any) -> tuple[bytes, bool]:
        nonlocal seq
        payload = {"type": kind, **fields, "sequence_number": seq}
        seq += 1
        return sse_data(payload, event=kind), True

    def response(
        status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None
    ) -> dict[str, Any]:
        return response_object(
            response_id=response_id,
            model=model,
            created=created,
            status=status,
            output=output,
            usage=usage,
            instructions=instructions,
            incomplete_reason=incomplete_reason if status == "incomplete" else None,
        )

    yield event("response.created", response=response("in_progress", [], None))
    yield event("response.in_progress", response=response("in_progress", [], None))
    output: list[dict[str, Any]] = []
    if reasoning:
        rs_id = "rs_" + ident
        yield event("response.output_item.added", item=_reasoning_item(rs_id, None), output_index=0)
        empty = {"type": "summary_text", "text": ""}
        where = {"item_id": rs_id, "output_index": 0, "summary_index": 0}
        yield event("response.reasoning_summary_part.added", **where, part=empty)
        for token in reasoning:
            yield event("response.reasoning_summary_text.delta", **where, delta=token)
        summary = "".join(reasoning)
        yield event("response.reasoning_summary_text.done", **where, text=summary)
        done_part = {"type": "summary_text", "text": summary}
        yield event("response.reasoning_summary_part.done", **where, part=done_part)
        output.append(_reasoning_item(rs_id, summary))
        yield event("response.output_item.done", item=output[-1], output_index=0)
    index = len(output)
    yield event(
        "response.output_item.added",
        item=_message_item(item_id, "", "in_progress"),
        output_index=index,
    )
    empty_part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
    yield event(
        "response.content_part.added",
        content_index=0,
        item_id=item_id,
        output_index=index,
        part=empty_part,
    )
    for token in tokens:
        yield event(
            "response.output_text.delta",
            content_index=0,
            delta=token,
            item_id=item_id,
            logprobs=[],
            output_index=index,
        )
    text = "".join(tokens)
    yield event(
        "response.output_text.done",
        content_index=0,
        item_id=item_id,
        logprobs=[],
        output_index=index,
        text=text,
    )
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
    yield event(
        "response.content_part.done",
        content_index=0,
        item_id=item_id,
        output_index=index,
        part=part,
    )
    item_status = "incomplete" if incomplete_reason else "completed"
    output.append(_message_item(item_id, text, item_status))
    yield event("response.output_item.done", item=output[-1], output_index=index)
    final = "response.incomplete" if incomplete_reason else "response.completed"
    usage = responses_usage(input_tokens, len(tokens), len(reasoning or ()))
    yield event(final, response=response(item_status, output, usage))


def response_full(
    tokens: list[str],
    *,
    response_id: str,
    model: str,
    created: int,
    input_tokens: int,
    instructions: Any = None,
    incomplete_reason: str | None = None,
    reasoning: list[str] | None = None,
) -> dict[str, Any]:
    """A non-streamed ``response`` object."""
    ident = response_id.removeprefix("resp_")
    status = "incomplete" if incomplete_reason else "completed"
    output = [_reasoning_item("rs_" + ident, "".join(reasoning))] if reasoning else []
    output.append(_message_item("msg_" + ident, "".join(tokens), status))
    return response_object(
        response_id=response_id,
        model=model,
        created=created,
        status=status,
        output=output,
        usage=responses_usage(input_tokens, len(tokens), len(reasoning or ())),
        instructions=instructions,
        incomplete_reason=incomplete_reason,
    )


def injected_error_block(api: str, message: str, sequence_number: int = 0) -> bytes:
    """The mid-stream error payload: chat's ``data: {"error": ...}``, Responses' ``error`` event."""
    if api == "responses":
        payload = {
            "type": "error",
            "code": "server_error",
            "message": message,
            "param": None,
            "sequence_number": sequence_number,
        }
        return sse_data(payload, event="error")
    return sse_data(error_body(message, "server_error", None, "nbstream_injected_error"))


MALFORMED_BLOCK = b'data: {"id":"nbstream-malformed","choices":[{"index":0,"delta":{"content":"\n\n'
