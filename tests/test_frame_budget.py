"""The kernel-wide FrameBudget: many views starting or ending together stay near the budget,
a single stream keeps its first token at once. Simulated with a fake clock and scheduler."""

from __future__ import annotations

import heapq
import itertools

import pytest

from nbstream.events import TextDelta
from nbstream.frontend.coalesce import Coalescer, FrameBudget
from nbstream.frontend.protocol import Frame


class Sim:
    """A fake clock and scheduler: callbacks run in time order as the test advances time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.queue: list[tuple[float, int, object]] = []
        self.order = itertools.count()

    def __call__(self) -> float:
        return self.now

    def schedule(self, delay: float, callback) -> None:
        heapq.heappush(self.queue, (self.now + delay, next(self.order), callback))

    def advance(self, until: float) -> None:
        while self.queue and self.queue[0][0] <= until:
            when, _, callback = heapq.heappop(self.queue)
            self.now = max(self.now, when)
            callback()
        self.now = until


def busiest(times: list[float]) -> int:
    times = sorted(times)
    top = lo = 0
    for hi, t in enumerate(times):
        while t - times[lo] > 1.0:
            lo += 1
        top = max(top, hi - lo + 1)
    return top


def run_views(
    n: int,
    budget: FrameBudget,
    *,
    seconds: float = 4.0,
    step: float = 0.033,
    spread: float = 0.02,
    queue: bool = True,
):
    """``n`` streams start within ``spread`` s, take a token every ``step`` s each, and end
    ``seconds`` after their start (final frames queued on the budget with ``queue``).
    Returns (frame times, first-frame time of each view)."""
    sim = Sim()
    t0 = sim.now
    times: list[float] = []
    firsts: dict[int, float] = {}
    texts: dict[int, list[str]] = {i: [] for i in range(n)}

    def emitter(i: int):
        def emit(frame: Frame) -> None:
            times.append(sim.now)
            if frame.parts and i not in firsts:
                firsts[i] = sim.now - t0
            texts[i].extend(p.text for p in frame.parts)

        return emit

    views = [
        Coalescer(emitter(i), clock=sim, schedule=sim.schedule, budget=budget) for i in range(n)
    ]
    events = []  # (time, view index, "token" | "end")
    for i in range(n):
        start = t0 + spread * i / n
        k = 0
        while k * step < seconds:
            events.append((start + k * step, i, "token"))
            k += 1
        events.append((start + seconds, i, "end"))
    events.sort()
    sent = {i: 0 for i in range(n)}
    for when, i, what in events:
        sim.advance(when)
        if what == "token":
            views[i].add([TextDelta("x")])
            sent[i] += 1
        else:
            views[i].close("done", queue=queue)
    sim.advance(sim.now + 5.0)
    for i in range(n):
        assert "".join(texts[i]) == "x" * sent[i]  # nothing lost, nothing repeated
    return times, firsts


@pytest.mark.parametrize("spread", [0.02, 1.0])
def test_two_hundred_views_starting_and_ending_together_stay_near_the_budget(spread):
    budget = FrameBudget(300)
    times, firsts = run_views(200, budget, spread=spread)
    assert len(firsts) == 200
    # every frame counted, first and final ones included: the busiest second stays near 300
    assert budget.spent == len(times)
    assert busiest(times) <= 345
    # the first frames queue on the budget: the last one out within ~200/300 s of its start
    assert max(firsts.values()) < spread + 0.7
    assert budget.active == 0
    assert budget.backlog() == 0.0 or budget.backlog() < 1.0

    # the same run when nothing waits (first and final frames sent at once, as before the
    # queue): the starts and the ends go beyond the budget
    unqueued = FrameBudget(300, burst_s=1e9)
    times, _ = run_views(200, unqueued, spread=spread, queue=False)
    assert busiest(times) > 345


def test_a_single_stream_sends_its_first_token_at_once_and_keeps_its_rate():
    budget = FrameBudget(300)
    times, firsts = run_views(1, budget, seconds=2.0, step=0.001)
    assert firsts[0] == 0.0  # no wait for the first token
    assert 95 <= len(times) <= 104  # its own 50 frames/s for 2 s (+ the final frame)


def test_a_handful_starting_together_is_within_the_burst():
    budget = FrameBudget(300)
    _times, firsts = run_views(10, budget, seconds=1.0)
    assert all(t < 0.021 for t in firsts.values())  # at once, as each one's token comes


def test_queued_slots_follow_each_other_by_the_messages_they_stand_for():
    budget = FrameBudget(100, burst_s=0.0)
    a, b, c = object.__new__(Sim), object.__new__(Sim), object.__new__(Sim)  # any weakref-able
    budget.spend(10.0)  # one message: 10 ms of backlog
    assert budget.join(a, 10.0, cost=2) == pytest.approx(0.01)  # after the message sent
    assert budget.join(b, 10.0) == pytest.approx(0.03)  # after a's two
    assert budget.join(c, 10.0) == pytest.approx(0.04)
    assert budget.join(a, 10.01) == 0.0  # its slot: go (and it leaves the queue)
    budget.leave(b)  # a member that leaves gives its slot back
    assert budget.backlog() == pytest.approx(0.01)  # the message has drained: c still queued
