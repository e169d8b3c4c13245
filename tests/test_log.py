"""ChunkLog: bounded memory with a JSONL spill, order kept across the spill, pages, export/read."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

from nbstream.run import log as log_module
from nbstream.run.log import ChunkLog
from nbstream.run.stream_run import StreamRun
from nbstream.server import LocalServer
from nbstream.server.demo import demo_tokens
from nbstream.sources.request import ChatRequest


def _filled(n: int, max_memory: int) -> ChunkLog:
    log = ChunkLog(max_memory=max_memory)
    log.begin(1, "chat", {"model": "m"})
    log.response(1, 0.01, 200, "req_1", {"x-request-id": "req_1"})
    for i in range(n):
        log.chunk(1, i, 0.1 + i / 1000, json.dumps({"choices": [{"index": 0, "n": i}]}))
    log.end(1, 1.0, "done", None)
    return log


def test_memory_is_bounded_and_spills_in_order() -> None:
    log = _filled(1000, max_memory=50)
    assert len(log._mem) <= 50  # the cap holds
    assert log.spill_path and Path(log.spill_path).is_file()
    assert len(log) == 1003
    records = list(log)
    assert [r["type"] for r in records[:2]] == ["request", "response"]
    assert [r["data"]["choices"][0]["n"] for r in records[2:-1]] == list(range(1000))
    assert records[-1]["type"] == "end"
    spilled = log._spilled
    assert spilled >= 1003 - 50
    assert repr(log) == f"ChunkLog(records=1003, attempts=1, spilled={spilled})"


def test_pages_cross_the_spill_boundary() -> None:
    log = _filled(120, max_memory=50)
    spilled = log._spilled
    everything = list(log)
    for start in (0, spilled - 3, spilled, len(log) - 5):
        assert log.page(start, 7) == everything[start : start + 7]
    assert log.page(len(log), 10) == []


def test_sparse_index_reads_every_record_across_spill_batches() -> None:
    """Only every INDEX_EVERY-th line offset is kept: every page start (on and between indexed
    lines, across several spill batches and into memory) must still read the same records."""
    n = 3 * log_module.SPILL_BATCH + 2 * log_module.INDEX_EVERY + 7
    log = _filled(n, max_memory=log_module.INDEX_EVERY + 5)
    assert log._spilled > 2 * log_module.SPILL_BATCH  # several batches on disk
    assert len(log._index) == -(-log._spilled // log_module.INDEX_EVERY)  # one per INDEX_EVERY
    assert len(log._mem) <= log_module.SPILL_BATCH  # once spilling, batches stay small
    everything = list(log)
    assert len(everything) == len(log) == n + 3
    assert [r["data"]["choices"][0]["n"] for r in everything[2:-1]] == list(range(n))
    for start in range(0, len(log), 13):
        for count in (1, log_module.INDEX_EVERY + 3):
            assert log.page(start, count) == everything[start : start + count], (start, count)
    for k in range(1, 4):  # both sides of indexed lines and of the disk/memory boundary
        for start in (k * log_module.INDEX_EVERY - 1, k * log_module.INDEX_EVERY, log._spilled - k):
            assert log.page(start, 3) == everything[start : start + 3]


def test_to_jsonl_and_read_round_trip(tmp_path: Path) -> None:
    log = _filled(200, max_memory=30)
    path = log.to_jsonl(tmp_path / "run.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(log)
    assert all(line.startswith('{"type":"chunk",') for line in lines[2:-1])
    again = ChunkLog.read(path)
    assert list(again) == list(log)
    assert again.attempts == 1 and again.source_kind(1) == "chat"
    assert again.request_id(1) == "req_1"


def test_read_rejects_what_is_not_a_log(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "chunk"}\nnot json\n')
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        ChunkLog.read(bad)
    with pytest.raises(FileNotFoundError, match="no chunk log"):
        ChunkLog.read(tmp_path / "missing.jsonl")


def test_live_run_log_records(local_server: LocalServer) -> None:
    client = openai.OpenAI(base_url=local_server.base_url, api_key="local", max_retries=0)
    params = {"model": "demo?tokens=30", "messages": [{"role": "user", "content": "hi"}]}
    run = StreamRun(ChatRequest(params, client), log=ChunkLog(max_memory=8)).run()
    assert run.text == "".join(demo_tokens(30))
    records = list(run.log)
    request, response = records[0], records[1]
    sent = {**params, "stream_options": {"include_usage": True}}  # ChatRequest asks for usage
    assert request["type"] == "request" and request["params"] == sent
    assert request["source"] == "chat" and request["attempt"] == 1
    server_record = local_server.requests[-1]
    assert response["status"] == 200 and response["request_id"] == server_record.request_id
    assert response["headers"]["x-ratelimit-limit-requests"]
    chunks = [r for r in records if r["type"] == "chunk"]
    assert len(chunks) == server_record.chunks_sent == run.metrics.chunks
    text = "".join(
        (c["data"]["choices"][0]["delta"].get("content") or "")
        for c in chunks
        if c["data"]["choices"]
    )
    assert text == run.text  # the log alone rebuilds the answer
    assert records[-1]["type"] == "end" and records[-1]["status"] == "done"
