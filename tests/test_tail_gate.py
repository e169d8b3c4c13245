"""The tail of a sync SDK stream: the view's tail timer is held while data keeps coming and armed
when the consumer is about to wait for the network, so a paused stream still shows its tail and a
fast one never wakes the timer thread. Real server, real SDK, real socket."""

from __future__ import annotations

import threading
import time

import openai
import pytest

import nbstream.timers as timers_module
from nbstream.frontend import protocol
from nbstream.frontend.widget import StreamView
from nbstream.timers import TailGate


class RecordingTimers:
    def __init__(self) -> None:
        self.calls: list[tuple[float, object]] = []

    def schedule(self, delay: float, callback) -> None:
        self.calls.append((delay, callback))


def test_gate_holds_the_timer_until_the_consumer_waits(monkeypatch) -> None:
    timers = RecordingTimers()
    monkeypatch.setattr(timers_module, "TIMERS", timers)
    gate = TailGate()

    def poll() -> None:
        pass

    assert gate.hold(0.02, poll)  # data keeps coming: held, no thread woken
    assert timers.calls == []
    gate.waiting()  # the consumer is about to wait for the network: armed now
    [(delay, callback)] = timers.calls
    assert callback is poll and 0.0 <= delay <= 0.02
    assert not gate.hold(0.02, poll)  # while it waits, a re-arm goes to the timer at once
    gate.done()
    gate.waiting()
    assert len(timers.calls) == 1  # nothing was held: nothing more to arm
    gate.done()
    assert gate.hold(0.02, poll)


def _demo_stream(server, **options) -> openai.Stream:
    """The local server's demo answer as a sync SDK stream; ``options``: its ``nbstream`` knobs."""
    client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
    return client.chat.completions.create(
        model="demo",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        extra_body={"nbstream": options},
    )


def _framed_text(messages: list[dict]) -> str:
    """The answer text the frames among ``messages`` carried, in order."""
    frames = [protocol.read_frame(m) for m in messages if protocol.is_frame(m)]
    return "".join(p["text"] for f in frames for p in f["parts"] if p["kind"] == "text")


def _paused_stream(server) -> tuple[bool, str]:
    """3,000 tokens at full speed (the consumer busy with data: its tail timer held), then the
    server pauses for 20 s. Returns whether the frames held all the text received during the
    pause, and the thread that sent the last frame."""
    view = StreamView(_demo_stream(server, tokens=5_000, stall_after=3_000, stall=20))
    sent: list[tuple[str, dict]] = []
    view.send = lambda msg: sent.append((threading.current_thread().name, msg))
    view.start(background=True)
    try:
        deadline = time.monotonic() + 15
        complete = False
        while time.monotonic() < deadline and not complete:
            time.sleep(0.01)
            framed = _framed_text([m for _, m in list(sent)])
            complete = view.run.metrics.chunks >= 3_000 and framed == view.text
        assert view.run.reads_watched  # the gated path, not the plain timer
        assert view.status == "streaming"  # still paused
        return complete, sent[-1][0]
    finally:
        view.stop()
        view.wait(timeout=10)


def test_a_paused_stream_shows_its_tail(local_server) -> None:
    """The tail pending when the server pauses reaches the frames, sent by the timer thread
    (the deadline is generous, not a speed check: without the gate arming the timer when the
    consumer waits, the tail would only come when the pause ends). A run whose last token
    happened to flush the frame itself proves nothing, so it is repeated."""
    senders = []
    for _ in range(5):
        complete, sender = _paused_stream(local_server)
        assert complete, "the tail of the paused stream never reached the frames"
        senders.append(sender)
        if sender == "nbstream-timers":
            break
    assert senders[-1] == "nbstream-timers", senders


@pytest.mark.parametrize("background", [False, True])
def test_complete_text_with_watched_reads(local_server, background) -> None:
    view = StreamView(_demo_stream(local_server, tokens=3_000))
    sent: list[dict] = []
    view.send = sent.append
    view.start(background=background)
    view.wait(timeout=60)
    assert view.status == "done" and view.run.reads_watched
    assert _framed_text(sent) == view.text and len(view.text) > 3_000


def test_a_queued_final_frame_is_not_held(local_server) -> None:
    """A background view's final frame waits for its slot in the kernel-wide budget when the
    budget is over its burst; the run is over then (no more reads): its timer must not be held
    for a read that never comes."""
    from nbstream.frontend.coalesce import KERNEL_BUDGET

    view = StreamView(_demo_stream(local_server, tokens=200))
    sent: list[dict] = []
    view.send = sent.append
    KERNEL_BUDGET.spend(time.monotonic(), 120)  # 0.4 s of messages: the end must queue
    view.start(background=True)
    view.wait(timeout=20)
    assert view.status == "done" and view.run.reads_watched
    frames = [protocol.read_frame(m) for m in sent if protocol.is_frame(m)]
    assert frames and frames[-1].get("final")
    assert _framed_text(sent) == view.text
