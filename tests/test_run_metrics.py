"""Metrics with an injected clock: TTFT, duration, tokens/s from usage or an estimate (labelled),
usage absent is None; hooks see every chunk and every attempt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nbstream.run.log import ChunkLog
from nbstream.run.stream_run import StreamRun
from nbstream.sources.replay import ReplaySource

STREAMS = Path(__file__).resolve().parents[1].parent / "shared" / "streams"


class FakeClock:
    """Advances 0.5 s on every reading: timings become exact."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.5
        return self.now


def _log_of(name: str) -> ChunkLog:
    """A ChunkLog holding a recorded file's data lines verbatim (no server involved)."""
    if not STREAMS.is_dir():
        pytest.skip(f"recorded streams not found at {STREAMS}")
    log = ChunkLog()
    log.begin(1, "chat")
    index = 0
    for line in (STREAMS / name).read_text(encoding="utf-8").splitlines():
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            log.chunk(1, index, 0.0, line[5:].strip())
            index += 1
    return log


def test_text_source_estimates_tokens() -> None:
    clock = FakeClock()
    run = StreamRun(["ab", "cd", "efgh"], clock=clock).run()
    m = run.metrics
    # readings: start 100.5, attempt 101.0, chunks 101.5 / 102.0 / 102.5, end 103.0
    assert m.ttft_s == pytest.approx(1.0) and m.duration_s == pytest.approx(2.5)
    assert m.chunks == 3 and m.chars == 8
    assert m.usage is None and m.tokens == 2 and m.tokens_estimated is True
    assert m.tokens_per_s == pytest.approx(2 / 1.5)
    assert m.finish_reasons == {0: None} and m.request_id is None


def test_usage_reported_wins_and_zero_is_not_none() -> None:
    data = (
        [
            json.loads(line[5:])
            for line in (STREAMS / "01-openai-chat-text-include-usage.sse").read_text().splitlines()
            if line.startswith("data: {")
        ]
        if STREAMS.is_dir()
        else []
    )
    run = StreamRun(
        ReplaySource(_log_of("01-openai-chat-text-include-usage.sse"), speed=0), clock=FakeClock()
    ).run()
    usage = data[-1]["usage"]
    m = run.metrics
    assert m.tokens == usage["completion_tokens"] and m.tokens_estimated is False
    assert m.usage.prompt_tokens == usage["prompt_tokens"]
    assert m.usage.reasoning_tokens == 0  # reported as 0: stays 0, not None
    assert m.usage.cached_tokens == usage["prompt_tokens_details"]["cached_tokens"]
    assert m.model == data[0]["model"] and m.finish_reasons == {0: "stop"}
    assert m.tokens_per_s == pytest.approx(m.tokens / (m.duration_s - m.ttft_s))


def test_no_usage_chunk_means_none() -> None:
    run = StreamRun(ReplaySource(_log_of("19-azure-chat-legacy-per-chunk-filter.sse"), speed=0))
    run.run()
    assert run.status == "done" and run.state.usage is None and run.metrics.usage is None
    assert run.metrics.tokens_estimated is True
    assert run.state.prompt_filter and run.state.choices[0].content_filter  # Azure filter results


def test_hooks_see_every_chunk_and_attempt() -> None:
    seen: list[int] = []
    attempts: list[int] = []

    class Hook:
        def __call__(self, run: StreamRun, events: list) -> None:
            seen.append(len(events))

        def on_attempt(self, run: StreamRun, attempt: int) -> None:
            attempts.append(attempt)

    run = StreamRun(["a", "", "b"], hooks=[Hook()]).run()
    assert seen == [1, 0, 1] and attempts == [1] and run.text == "ab"


def test_a_run_runs_once() -> None:
    run = StreamRun(["x"]).run()
    with pytest.raises(RuntimeError, match="runs once"):
        run.run()
