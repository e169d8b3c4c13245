"""The log panel's backend (nbstream.run.log_view): pages of rows, chunk times, the JSONL
download, and the human part of raw chunks (Chat Completions, Responses, text)."""

from __future__ import annotations

import json

from nbstream.run import log_view
from nbstream.run.log import ChunkLog


def _log(chunks: int = 5) -> ChunkLog:
    log = ChunkLog()
    log.begin(1, "chat", {"model": "demo", "messages": []})
    for i in range(chunks):
        raw = json.dumps({"choices": [{"index": 0, "delta": {"content": f"w{i} "}}]})
        log.chunk(1, i, 0.01 * (i + 1), raw)
    log.end(1, 0.1, "done", None)
    return log


def test_a_page_of_rows_with_the_deltas() -> None:
    reply = log_view.page([_log()], {"id": 7, "start": 1, "count": 3})
    assert reply["id"] == 7 and reply["version"] == 0 and reply["total"] == 7
    rows = reply["rows"]
    assert [r["index"] for r in rows] == [1, 2, 3]
    assert [r["delta"] for r in rows] == ["w0 ", "w1 ", "w2 "]
    assert rows[0]["type"] == "chunk" and rows[0]["chunk"] == 0 and "raw" not in rows[0]


def test_times_requests_and_raw_records() -> None:
    reply = log_view.page([_log(3)], {"id": 1, "count": 1, "raw": True, "times": True})
    assert reply["times"] == [0.01, 0.02, 0.03]
    assert [r["type"] for r in reply["requests"]] == ["request", "end"]
    assert all("params" not in r for r in reply["requests"])
    assert reply["rows"][0]["raw"]["type"] == "request"
    assert "source=chat" in reply["rows"][0]["delta"]


def test_the_page_size_is_capped_and_versions_are_checked() -> None:
    logs = [_log(1), _log(1_200)]
    reply = log_view.page(logs, {"id": 2, "count": 5_000})  # the newest version by default
    assert reply["version"] == 1 and len(reply["rows"]) == log_view.LOG_PAGE_MAX
    assert log_view.page(logs, {"id": 3, "version": 0})["total"] == 3
    assert log_view.page(logs, {"id": 4, "version": 9}) == {"id": 4, "error": "no version 9"}
    assert "error" in log_view.page([], {"id": 5})


def test_jsonl_download_and_its_limit(monkeypatch) -> None:
    log = _log(2)
    reply = log_view.page([log], {"id": 1, "jsonl": True})
    assert [json.loads(line)["type"] for line in reply["jsonl"].splitlines()] == [
        "request", "chunk", "chunk", "end",
    ]  # fmt: skip
    monkeypatch.setattr(log_view, "JSONL_MAX_BYTES", 10)
    assert "to_jsonl" in log_view.page([log], {"id": 1, "jsonl": True})["error"]


def test_delta_text_of_each_shape() -> None:
    chat = {
        "choices": [
            {"delta": {"reasoning_content": "hm ", "content": "Hi"}, "finish_reason": None},
            {"delta": {"tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]},
             "finish_reason": "tool_calls"},
        ],
        "usage": {"total_tokens": 3},
    }  # fmt: skip
    assert log_view.delta_text(chat) == ("hm Hif{}", "finish: tool_calls, usage")
    assert log_view.delta_text({"type": "response.output_text.delta", "delta": "x"}) == ("x", "")
    assert log_view.delta_text({"type": "response.completed"}) == ("", "response.completed")
    assert log_view.delta_text({"error": {"message": "boom"}}) == ("", "error")
    assert log_view.delta_text("plain text") == ("plain text", "")
    assert log_view.delta_text(None) == ("", "")
    assert log_view.delta_text(3) == ("3", "")
