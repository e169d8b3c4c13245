"""Serving an nbstream ChunkLog ``.jsonl`` as a stream again (``model="replay:<name>.jsonl"``).

The log format is the one documented in ``log`` (one JSON object a line: ``request``,
``response``, ``chunk``, ``error``, ``end`` records). The server reads the file itself rather than
importing the log module, so it depends only on that documented format. A chunk's JSON is sent as
written in the log when the line holds it verbatim, so a replayed chat log gives the same bytes per
chunk as the original server sent (modulo redaction).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from nbstream.server import wire
from nbstream.server.replay import ReplayError

_CHUNK_HEAD = '{"type":"chunk",'


@dataclass
class LogAttempt:
    """The records of one attempt of a logged run, ready to serve."""

    attempt: int
    source: str  # "chat", "responses", or a text-source kind
    chunks: list[tuple[str | None, Any]]  # (verbatim JSON text or None, parsed data or text)
    error: Any = None  # a mid-stream error payload, if the attempt had one
    end_status: str | None = None


def _raw_data(line: str, data: Any) -> str | None:
    """The chunk JSON exactly as written in the line, when it can be cut out safely."""
    if not line.startswith(_CHUNK_HEAD) or not line.endswith("}"):
        return None
    start = line.find('"data":')
    if start < 0:
        return None
    raw = line[start + len('"data":') : -1]
    try:
        return raw if json.loads(raw) == data else None
    except json.JSONDecodeError:
        return None


def parse_log(data: bytes, attempt: int | None = None) -> LogAttempt:
    """The chosen attempt (default: the last one with chunks) of a ChunkLog JSONL body."""
    attempts: dict[int, LogAttempt] = {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReplayError(
            f"Not an nbstream chunk log (not UTF-8): {exc}", 400, "invalid_log"
        ) from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ReplayError(
                f"Not an nbstream chunk log: line {number} is not JSON ({exc}).", 400, "invalid_log"
            ) from None
        if not isinstance(rec, dict) or "type" not in rec:
            raise ReplayError(
                f"Not an nbstream chunk log: line {number} has no record type.", 400, "invalid_log"
            )
        key = int(rec.get("attempt") or 1)
        entry = attempts.setdefault(key, LogAttempt(key, "chat", []))
        kind = rec["type"]
        if kind == "request":
            entry.source = str(rec.get("source") or "chat")
        elif kind == "chunk":
            if "data" in rec:
                entry.chunks.append((_raw_data(line, rec["data"]), rec["data"]))
            else:
                entry.chunks.append((None, str(rec.get("text", ""))))
                if entry.source in wire_kinds():
                    entry.source = "text"
        elif kind == "error" and rec.get("data") is not None:
            entry.error = rec["data"]
        elif kind == "end":
            entry.end_status = rec.get("status")
    if not attempts:
        raise ReplayError("The chunk log is empty: nothing to replay.", 400, "invalid_log")
    if attempt is not None:
        if attempt not in attempts:
            raise ReplayError(
                f"The chunk log has no attempt {attempt} (it has {sorted(attempts)}).",
                400,
                "invalid_log",
            )
        return attempts[attempt]
    with_chunks = [a for a in attempts.values() if a.chunks]
    return with_chunks[-1] if with_chunks else attempts[max(attempts)]


def wire_kinds() -> frozenset[str]:
    return frozenset({"chat", "responses"})


def chunklog_stream(data: bytes, attempt: int | None = None) -> tuple[str, wire.Stream]:
    """(api, SSE blocks) replaying one attempt of a ChunkLog as the server once sent it."""
    entry = parse_log(data, attempt)
    if entry.source not in wire_kinds():
        texts = [str(value) for _, value in entry.chunks]
        ident = hashlib.sha256(data).hexdigest()[:24]
        return "chat", wire.chat_stream(
            texts,
            chunk_id="chatcmpl-" + ident,
            model="replay",
            created=0,
            finish_reason="stop",
            include_usage=False,
            prompt_tokens=0,
        )
    return entry.source, _json_blocks(entry)


def _json_blocks(entry: LogAttempt) -> wire.Stream:
    responses = entry.source == "responses"
    for raw, value in entry.chunks:
        body = raw if raw is not None else json.dumps(value, ensure_ascii=False)
        if responses and isinstance(value, dict) and isinstance(value.get("type"), str):
            yield f"event: {value['type']}\ndata: {body}\n\n".encode(), True
        else:
            yield f"data: {body}\n\n".encode(), True
    if entry.error is not None:
        event = "error" if responses else None
        yield wire.sse_data(entry.error, event=event), False
    elif not responses and entry.end_status == "done":
        yield wire.DONE, False
