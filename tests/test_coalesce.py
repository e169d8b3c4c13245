"""The coalescer: first delta at once, then at most ~60 frames/s, final flush; fake clock."""

from __future__ import annotations

import pytest

from nbstream.coalesce import Coalescer, Frame, PartKey, utf16_len
from nbstream.events import ReasoningDelta, RefusalDelta, TextDelta, ToolCallDelta, Usage


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeScheduler:
    """Records requested callbacks; the test fires them when the fake clock reaches them."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[tuple[float, object]] = []

    def __call__(self, delay: float, callback) -> None:
        self.calls.append((self.clock.now + delay, callback))

    def run_due(self) -> None:
        due = [c for c in self.calls if c[0] <= self.clock.now]
        self.calls = [c for c in self.calls if c[0] > self.clock.now]
        for _, callback in due:
            callback()


def make(**kw):
    clock = FakeClock()
    frames: list[Frame] = []
    co = Coalescer(frames.append, clock=clock, **kw)
    return co, clock, frames


TEXT0 = PartKey()


def text_of(frames: list[Frame], key: PartKey = TEXT0) -> str:
    return "".join(p.text for f in frames for p in f.parts if p.key == key)


def test_first_delta_is_sent_at_once():
    co, clock, frames = make()
    co.add([TextDelta("Hel")])
    assert len(frames) == 1
    assert frames[0].parts[0].text == "Hel"
    assert frames[0].parts[0].offset == 0


def test_first_delta_at_once_even_after_a_status_frame():
    co, clock, frames = make()
    co.update("streaming")
    clock.now += 0.001
    co.add([TextDelta("a")])
    assert [p.text for f in frames for p in f.parts] == ["a"]
    assert frames[0].status == "streaming"


def test_frames_are_rate_limited_whatever_the_token_rate():
    co, clock, frames = make(max_fps=60)
    # 20,000 tokens/s for 2 s of fake time
    for _ in range(40_000):
        clock.now += 1 / 20_000
        co.add([TextDelta("x")])
    co.close("done")
    duration = 2.0
    assert len(frames) <= 60 * duration + 2  # + first frame + final flush
    assert len(frames) >= 60 * duration * 0.9
    assert text_of(frames) == "x" * 40_000


def test_offsets_are_contiguous_and_in_utf16_units():
    co, clock, frames = make()
    pieces = ["é", "😀", "ab", "日本", "\U0001f680z"]
    for p in pieces:
        clock.now += 0.02
        co.add([TextDelta(p)])
    co.close("done")
    expected = 0
    for f in frames:
        for part in f.parts:
            assert part.offset == expected
            expected += utf16_len(part.text)
    assert expected == len("".join(pieces).encode("utf-16-le")) // 2
    assert co.offsets[PartKey()] == expected


def test_pending_tail_is_flushed_by_the_scheduled_poll():
    clock = FakeClock()
    sched = FakeScheduler(clock)
    frames: list[Frame] = []
    co = Coalescer(frames.append, clock=clock, schedule=sched)
    co.add([TextDelta("a")])  # sent at once
    clock.now += 0.001
    co.add([TextDelta("b")])  # pending: too early
    assert len(frames) == 1
    assert len(sched.calls) == 1
    clock.now += 0.001
    co.add([TextDelta("c")])  # still pending, no second timer
    assert len(sched.calls) == 1
    clock.now = sched.calls[0][0]
    sched.run_due()
    assert len(frames) == 2
    assert frames[1].parts[0].text == "bc"
    assert frames[1].parts[0].offset == 1


def test_without_scheduler_poll_flushes_once_due():
    co, clock, frames = make()
    co.add([TextDelta("a")])
    co.add([TextDelta("b")])
    co.poll()
    assert len(frames) == 1
    clock.now += co.interval
    co.poll()
    assert text_of(frames) == "ab"


def test_close_flushes_everything_with_final_status_and_metrics():
    metrics = {"chars": 0}
    co, clock, frames = make(metrics=lambda: dict(metrics))
    co.add([TextDelta("a")])
    co.add([TextDelta("b")])
    metrics["chars"] = 2
    co.close("done")
    last = frames[-1]
    assert last.final is True
    assert last.status == "done"
    assert last.metrics == {"chars": 2}
    assert text_of(frames) == "ab"
    co.add([TextDelta("late")])
    co.close("error")
    assert frames[-1] is last  # closed: nothing more


def test_status_change_is_flushed_at_once_and_only_when_changed():
    co, clock, frames = make()
    co.add([TextDelta("a")])
    co.add([TextDelta("b")])
    co.update("stopping")
    assert frames[-1].status == "stopping"
    assert frames[-1].parts[0].text == "b"
    n = len(frames)
    co.update("stopping")
    assert len(frames) == n


def test_metrics_are_sent_only_when_changed():
    metrics = {"chunks": 1}
    co, clock, frames = make(metrics=lambda: dict(metrics))
    co.add([TextDelta("a")])
    assert frames[0].metrics == {"chunks": 1}
    clock.now += 1
    co.add([TextDelta("b")])
    assert frames[1].metrics is None
    metrics["chunks"] = 2
    clock.now += 1
    co.add([TextDelta("c")])
    assert frames[2].metrics == {"chunks": 2}


def test_parts_per_choice_and_kind():
    co, clock, frames = make()
    co.add(
        [
            ReasoningDelta("think"),
            TextDelta("x", choice=1),
            RefusalDelta("no"),
            ToolCallDelta(0, '{"a"', id="call_1", name="f"),
            Usage(prompt_tokens=3),  # no text: ignored
        ]
    )
    clock.now += 1
    co.add([ToolCallDelta(0, ": 1}"), TextDelta("y", choice=1)])
    keys = {p.key for f in frames for p in f.parts}
    assert keys == {
        PartKey(0, "reasoning"),
        PartKey(1, "text"),
        PartKey(0, "refusal"),
        PartKey(0, "tool", 0),
    }
    tool = [p for f in frames for p in f.parts if p.key.kind == "tool"]
    assert tool[0].meta == {"id": "call_1", "name": "f"}
    assert tool[1].offset == 4 and tool[1].meta == {}
    assert text_of(frames, PartKey(1, "text")) == "xy"


def test_invalid_max_fps():
    with pytest.raises(ValueError, match="max_fps"):
        Coalescer(lambda f: None, max_fps=0)
