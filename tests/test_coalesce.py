"""The coalescer: first delta at once, then at most ~60 frames/s, final flush; fake clock."""

from __future__ import annotations

import pytest

from nbstream.events import ReasoningDelta, RefusalDelta, TextDelta, ToolCallDelta, Usage
from nbstream.frontend.coalesce import Coalescer, utf16_len
from nbstream.frontend.protocol import Frame, PartKey


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
    last_add = clock.now
    while len(frames) == 1 and sched.calls:  # the timer re-arms until the stream is quiet
        clock.now = min(c[0] for c in sched.calls)
        sched.run_due()
    assert len(frames) == 2
    assert frames[1].parts[0].text == "bc"
    assert frames[1].parts[0].offset == 1
    assert clock.now <= last_add + co.interval + 1e-9  # the tail within one interval


def test_tail_timer_never_flushes_while_deltas_keep_arriving():
    clock = FakeClock()
    sched = FakeScheduler(clock)
    frames: list[Frame] = []
    polled: list[int] = []

    def emit(frame: Frame) -> None:
        frames.append(frame)
        polled.append(in_poll[0])

    in_poll = [0]
    co = Coalescer(emit, clock=clock, schedule=sched, budget=None)
    real_poll = co.poll

    def poll() -> None:
        in_poll[0] = 1
        real_poll()
        in_poll[0] = 0

    co.poll = poll  # the scheduler is handed the bound method at arming time
    fired = 0
    for _ in range(1_000):  # 1,000 tokens/s for 1 s
        clock.now += 0.001
        fired += sum(1 for c in sched.calls if c[0] <= clock.now)
        sched.run_due()
        co.add([TextDelta("x")])
    assert 45 <= len(frames) <= 52  # first token at once, then <= 50 frames/s
    assert sum(polled) == 0  # every frame while streaming was flushed by add itself
    assert fired <= 52  # at most one timer wake-up per interval
    # the stream pauses: the tail comes from the timer, within one interval of the last delta
    last_add, before = clock.now, len(frames)
    while sched.calls and len(frames) == before:
        clock.now = min(c[0] for c in sched.calls)
        sched.run_due()
    assert len(frames) == before + 1 and polled[-1] == 1
    assert clock.now <= last_add + co.interval + 1e-9
    assert text_of(frames) == "x" * 1_000


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


def test_kernel_budget_bounds_the_total_of_many_streams_and_spares_a_single_one():
    from nbstream.frontend.coalesce import FrameBudget

    clock = FakeClock()
    budget = FrameBudget(300)
    frames: list[Frame] = []
    views = [Coalescer(frames.append, clock=clock, budget=budget) for _ in range(200)]
    for step in range(2_000):  # 2 s; each of the 200 streams gets a token every 10 ms
        clock.now += 0.001
        for view in views[step % 10 :: 10]:
            view.add([TextDelta("y")])
    assert budget.active == 200
    # 200 first tokens at once, then the shared budget: <= 300 frames/s for all views together
    assert len(frames) <= 200 + 300 * 2 + 10
    for view in views:
        view.close("done")
    assert budget.active == 0
    assert sum(len(p.text) for f in frames for p in f.parts) == 2_000 * 20
    # the 200 first and 200 final frames went beyond the budget: paid back by later frames
    assert budget.backlog() > 0.5

    clock.now += 2.0  # the bucket drains
    single = Coalescer(frames.append, clock=clock, budget=budget)
    before = len(frames)
    single.add([TextDelta("z")])
    assert len(frames) == before + 1  # alone, its first token goes at once
    assert single.interval == pytest.approx(1 / 50)  # alone: its own 50 frames/s
    before = len(frames)
    for _ in range(1_000):
        clock.now += 0.001
        single.add([TextDelta("z")])
    assert 45 <= len(frames) - before <= 52


def test_start_status_rides_with_the_first_token_or_goes_alone_an_interval_later():
    clock = FakeClock()
    sched = FakeScheduler(clock)
    frames: list[Frame] = []
    co = Coalescer(frames.append, clock=clock, schedule=sched, budget=None)
    co.update("streaming")
    assert frames == []
    clock.now += 0.001
    co.add([TextDelta("a")])  # the first token at once, with the status
    assert [(f.status, text_of([f])) for f in frames] == [("streaming", "a")]

    frames2: list[Frame] = []
    slow = Coalescer(frames2.append, clock=clock, schedule=sched, budget=None)
    slow.update("streaming")  # no token for a while: the status goes out by itself
    clock.now += slow.interval
    sched.run_due()
    assert [f.status for f in frames2] == ["streaming"]
    slow.update("stopped")  # other statuses: at once
    assert [f.status for f in frames2] == ["streaming", "stopped"]
