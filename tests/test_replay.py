"""Replay: a live run's log, exported and read back, reproduces the same text per choice, tool
calls, usage and errors; ``speed`` follows the recorded timing."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import openai
import pytest

import nbstream
from nbstream.run.log import ChunkLog
from nbstream.run.stream_run import StreamRun
from nbstream.server import LocalServer
from nbstream.sources import to_source
from nbstream.sources.replay import ReplaySource
from nbstream.sources.request import ChatRequest, ResponsesRequest

USER = [{"role": "user", "content": "hello"}]
STREAMS = Path(__file__).resolve().parents[1].parent / "shared" / "streams"
needs_streams = pytest.mark.skipif(
    not STREAMS.is_dir(), reason=f"recorded streams not found at {STREAMS}"
)


def _live(server: LocalServer, model: str, responses: bool = False) -> StreamRun:
    client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
    if responses:
        return StreamRun(ResponsesRequest({"model": model, "input": "hi"}, client)).run()
    return StreamRun(ChatRequest({"model": model, "messages": USER}, client)).run()


def _same_answer(a: StreamRun, b: StreamRun) -> None:
    assert b.status == a.status and b.reason == a.reason
    assert len(a.state.choices) == len(b.state.choices)
    for ca, cb in zip(a.state.choices, b.state.choices, strict=True):
        assert (cb.text, cb.refusal, cb.reasoning, cb.finish_reason) == (
            ca.text,
            ca.refusal,
            ca.reasoning,
            ca.finish_reason,
        )
        assert [t.to_dict() for t in cb.tool_calls] == [t.to_dict() for t in ca.tool_calls]
    assert b.state.usage == a.state.usage
    assert b.metrics.chunks == a.metrics.chunks
    assert b.metrics.request_id == a.metrics.request_id  # from the logged response record


@needs_streams
@pytest.mark.parametrize(
    "name",
    [
        "02-openai-chat-single-tool-call-args.sse",
        "03-openai-chat-parallel-tool-calls.sse",
        "08-openai-responses-reasoning-summary-long.sse",
        "10-openrouter-chat-error-midstream.sse",
        "13-openai-chat-refusal-deltas.sse",
        "14-openai-chat-n3-interleaved-choices.sse",
        "17-together-via-hf-router-long-emoji-split.sse",
    ],
)
def test_round_trip_through_jsonl(name: str, module_server: LocalServer, tmp_path: Path) -> None:
    live = _live(module_server, f"replay:{name}", responses="responses" in name)
    path = live.log.to_jsonl(tmp_path / "run.jsonl")
    replayed = StreamRun(nbstream.replay(path, speed=0)).run()
    _same_answer(live, replayed)
    # the replay's own log holds the same chunk data: a replay of a replay is the same again
    assert [c["data"] for c in replayed.log.chunks()] == [c["data"] for c in live.log.chunks()]
    again = StreamRun(ReplaySource(replayed.log, speed=0)).run()
    _same_answer(live, again)


def test_async_replay_and_to_source_of_a_path(local_server: LocalServer, tmp_path: Path) -> None:
    live = _live(local_server, "demo?tokens=40")
    path = live.log.to_jsonl(tmp_path / "demo.jsonl")
    source = to_source(str(path))
    assert isinstance(source, ReplaySource) and source.rerunnable

    async def main() -> StreamRun:
        return await StreamRun(source).arun()

    _same_answer(live, asyncio.run(main()))
    _same_answer(live, StreamRun(source).run())  # re-runnable: Regenerate replays again


def test_replay_keeps_the_original_timing(local_server: LocalServer) -> None:
    live = _live(local_server, "demo?tokens=12&delay=0.05")
    recorded = [c["t"] for c in live.log.chunks()]
    span = recorded[-1] - recorded[0]
    assert span > 0.4
    started = time.monotonic()
    replayed = StreamRun(ReplaySource(live.log, speed=1.0)).run()
    elapsed = time.monotonic() - started
    assert replayed.text == live.text
    # timing facts that load cannot break: no chunk is replayed before its recorded time (load
    # only delays), and a faster replay is faster than the slower one on the same clock
    assert elapsed >= span * 0.9
    original = [c["t"] for c in live.log.chunks()]
    at_1 = [c["t"] for c in replayed.log.chunks()]
    assert all(b - at_1[0] >= a - original[0] - 0.01 for a, b in zip(original, at_1, strict=True))
    fast = StreamRun(ReplaySource(live.log, speed=4.0)).run()
    at_4 = [c["t"] for c in fast.log.chunks()]
    assert all(
        b - at_4[0] >= (a - original[0]) / 4 - 0.01 for a, b in zip(original, at_4, strict=True)
    )
    assert at_4[-1] - at_4[0] < at_1[-1] - at_1[0]


def test_stop_interrupts_a_replay_wait(local_server: LocalServer) -> None:
    live = _live(local_server, "demo?tokens=5&delay=0.01")
    log = ChunkLog()
    for rec in live.log:  # stretch the timing: one chunk, then a 30 s gap
        if rec["type"] == "chunk" and rec["index"] > 1:
            rec = {**rec, "t": 30.0}
        log._append(rec)
        if rec["type"] == "request":
            log._kinds[1] = rec["source"]
    run = StreamRun(ReplaySource(log, speed=1.0))
    timer = threading.Timer(0.5, run.stop, ("enough",))  # from another thread, mid-wait
    timer.start()
    started = time.monotonic()
    run.run()
    timer.join()
    assert time.monotonic() - started < 30  # causal: the next chunk was due only at 30 s
    assert run.status == "stopped" and run.reason == "enough"
    assert run.metrics.chunks == 2


def test_replay_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no chunk log"):
        nbstream.replay(tmp_path / "nope.jsonl")
    with pytest.raises(ValueError, match="speed"):
        ReplaySource(ChunkLog(), speed=-1)
    with pytest.raises(ValueError, match="0 attempt"):
        ReplaySource(ChunkLog())


def test_text_source_log_replays(tmp_path: Path) -> None:
    live = StreamRun(["Hello", ", ", "", "world"]).run()
    path = live.log.to_jsonl(tmp_path / "text.jsonl")
    replayed = StreamRun(nbstream.replay(path, speed=0)).run()
    assert replayed.status == "done" and replayed.text == "Hello, world"
    assert [c["text"] for c in replayed.log.chunks()] == ["Hello", ", ", "", "world"]


@needs_streams
def test_a_stream_already_started_is_logged_from_its_models(module_server: LocalServer) -> None:
    """If the SDK's SSE events cannot be observed (iteration had begun), chunks are dumped from
    their models: the log still holds every remaining chunk's JSON."""
    name = "01-openai-chat-text-include-usage.sse"
    client = openai.OpenAI(base_url=module_server.base_url, api_key="local", max_retries=0)
    stream = client.chat.completions.create(model=f"replay:{name}", messages=USER, stream=True)
    first = next(stream)
    run = StreamRun(stream).run()
    datas = [
        json.loads(line[5:])
        for line in (STREAMS / name).read_text().splitlines()
        if line.startswith("data: {")
    ]
    assert first.id == datas[0]["id"]
    assert [c["data"] for c in run.log.chunks()] == datas[1:]
    assert run.text == "".join(
        d["choices"][0]["delta"].get("content") or "" for d in datas[1:] if d["choices"]
    )
    client.close()


def _corrupt(tmp_path: Path, lines: list[str], lineno: int, new: str | bytes) -> Path:
    """The log's lines with line ``lineno`` (1-based) replaced."""
    out = [line.encode() for line in lines]
    out[lineno - 1] = new if isinstance(new, bytes) else new.encode()
    path = tmp_path / "corrupt.jsonl"
    path.write_bytes(b"\n".join(out) + b"\n")
    return path


def _chunk_line(lines: list[str]) -> int:
    return next(i for i, line in enumerate(lines, 1) if '"type":"chunk"' in line.replace(" ", ""))


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda rec: b"\xff\xfe not text", "not UTF-8"),
        (lambda rec: json.dumps(rec)[:-20], "not JSON"),
        (lambda rec: json.dumps({**rec, "t": "soon"}), "'t'"),
        (lambda rec: json.dumps({k: v for k, v in rec.items() if k != "t"}), "'t'"),
        (lambda rec: json.dumps({**rec, "attempt": [1]}), "'attempt'"),
        (lambda rec: json.dumps({**rec, "data": 5}), "'data'"),
        (lambda rec: json.dumps([rec]), "not a chunk-log record"),
    ],
    ids=["bytes", "cut", "t-text", "t-missing", "attempt-list", "data-int", "list"],
)
def test_corrupt_log_is_a_value_error_naming_file_and_line(
    module_server: LocalServer, tmp_path: Path, change, says: str
) -> None:
    lines = _live(module_server, "demo?tokens=3").log.to_jsonl(tmp_path / "ok.jsonl")
    lines = lines.read_text().splitlines()
    at = _chunk_line(lines)
    path = _corrupt(tmp_path, lines, at, change(json.loads(lines[at - 1])))
    with pytest.raises(ValueError) as info:
        nbstream.replay(path, speed=0)
    assert str(path) in str(info.value) and f"line {at}" in str(info.value)
    assert says in str(info.value)


def test_chunk_of_the_wrong_shape_ends_the_replay_with_file_and_line(
    module_server: LocalServer, tmp_path: Path
) -> None:
    lines = _live(module_server, "demo?tokens=3").log.to_jsonl(tmp_path / "ok.jsonl")
    lines = lines.read_text().splitlines()
    at = _chunk_line(lines) + 1
    rec = json.loads(lines[at - 1])
    rec["data"]["choices"] = "not a list of choices"
    path = _corrupt(tmp_path, lines, at, json.dumps(rec))
    run = StreamRun(nbstream.replay(path, speed=0)).run()
    assert run.status == "error"
    assert str(path) in run.reason and f"line {at}" in run.reason and "shape" in run.reason


@pytest.mark.parametrize("speed", ["fast", None, float("nan"), -1, True])
def test_bad_replay_speed_is_a_clear_error(tmp_path: Path, speed) -> None:
    path = StreamRun(["Hello"]).run().log.to_jsonl(tmp_path / "t.jsonl")
    with pytest.raises(ValueError, match="speed must be a number >= 0"):
        nbstream.replay(path, speed=speed)


def test_bad_resilience_is_refused_before_a_widget_is_shown(monkeypatch, tmp_path: Path) -> None:
    from nbstream.frontend import hosts as frontends
    from nbstream.frontend.output import CellOutputs

    shown = []
    monkeypatch.setattr(frontends, "frontend", lambda: "ipython")  # as in a notebook
    monkeypatch.setattr(CellOutputs, "show", lambda self, **kw: shown.append(self))
    with pytest.raises(TypeError, match="resilience must be a nbstream.Resilience"):
        nbstream.stream(["Hello"], resilience="strong")
    assert shown == []
    view = nbstream.stream(["Hello"], resilience=None)  # what is valid still shows
    assert shown == [view._outputs] and view.text == "Hello"
