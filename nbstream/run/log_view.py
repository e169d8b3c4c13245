"""The chunk log as the widget's log panel reads it: pages of rows, the chunk times, the JSONL.

Next to :mod:`nbstream.run.log` because it reads the log's record format (documented there); it
knows nothing of widgets: the view wraps :func:`page`'s reply in its ``log_page`` message
(``js/logpanel.js`` renders it). The log is fetched on demand, never pushed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from nbstream.run.log import ChunkLog

LOG_PAGE_MAX = 1000  # rows in one reply, at most
JSONL_MAX_BYTES = 20_000_000  # a larger log is saved from a cell, not through the widget


def page(logs: Sequence[ChunkLog], msg: dict[str, Any]) -> dict[str, Any]:
    """The reply to a ``log_page`` request ``{id, version, start, count, raw?, times?, jsonl?}``
    about one of ``logs`` (a view's versions, oldest first; the newest when no version is given):
    ``{id, version, total, rows, times?, requests?, jsonl?}``, or ``{id, error}``."""
    reply: dict[str, Any] = {"id": msg.get("id")}
    try:
        index = int(msg.get("version", len(logs) - 1))
        log = logs[index]
    except (IndexError, TypeError, ValueError):
        reply["error"] = f"no version {msg.get('version')!r}"
        return reply
    reply["version"] = index
    reply["total"] = len(log)
    if msg.get("jsonl"):
        text = "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in log)
        if len(text) > JSONL_MAX_BYTES:
            reply["error"] = (
                "the log is too large to download through the widget: use "
                "view.log.to_jsonl('run.jsonl') in a cell"
            )
        else:
            reply["jsonl"] = text
        return reply
    start = max(0, int(msg.get("start", 0)))
    count = max(0, min(LOG_PAGE_MAX, int(msg.get("count", 100))))
    raw = bool(msg.get("raw"))
    reply["rows"] = [
        log_row(start + i, rec, raw=raw) for i, rec in enumerate(log.page(start, count))
    ]
    if msg.get("times"):
        times: list[float] = []
        requests: list[dict[str, Any]] = []
        for rec in log:
            if rec.get("type") == "chunk":
                times.append(rec.get("t", 0.0))
            else:
                requests.append({k: v for k, v in rec.items() if k not in ("data", "params")})
        reply["times"] = times
        reply["requests"] = requests
    return reply


def log_row(index: int, rec: dict[str, Any], *, raw: bool = False) -> dict[str, Any]:
    """One chunk-log record as a row of the log panel: index, time, the delta it carried."""
    kind = rec.get("type", "?")
    row: dict[str, Any] = {
        "index": index,
        "type": kind,
        "t": rec.get("t"),
        "attempt": rec.get("attempt"),
    }
    if kind == "chunk":
        row["chunk"] = rec.get("index")
        row["delta"], row["note"] = delta_text(rec.get("data", rec.get("text")))
    else:
        row["delta"] = " ".join(
            f"{k}={v}"
            for k, v in rec.items()
            if k not in ("type", "t", "attempt", "data", "params") and v not in (None, "", {})
        )
    if raw:
        row["raw"] = rec
    return row


def delta_text(data: Any) -> tuple[str, str]:
    """The human part of a raw chunk: (the text it adds, a note such as a finish reason).

    Reads the shapes the log holds as plain JSON (Chat Completions chunks, Responses events,
    text): no SDK import."""
    if isinstance(data, str):
        return data, ""
    if not isinstance(data, dict):
        return ("" if data is None else str(data)), ""
    out: list[str] = []
    notes: list[str] = []
    for choice in data.get("choices") or []:
        delta = (choice or {}).get("delta") or {}
        for key in ("reasoning_content", "reasoning", "content", "refusal"):
            if isinstance(delta.get(key), str):
                out.append(delta[key])
        for call in delta.get("tool_calls") or []:
            fn = (call or {}).get("function") or {}
            out.append(f"{fn.get('name') or ''}{fn.get('arguments') or ''}")
        if choice.get("finish_reason"):
            notes.append(f"finish: {choice['finish_reason']}")
    if isinstance(data.get("delta"), str):
        out.append(data["delta"])
    elif data.get("type"):
        notes.append(str(data["type"]))
    if data.get("usage"):
        notes.append("usage")
    if data.get("error"):
        notes.append("error")
    return "".join(out), ", ".join(notes)
