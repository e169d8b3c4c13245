"""The publisher (nbstream.frontend.publisher) without a widget or a comm: frames go to a list,
state updates to another; what it records of the frames is what its snapshots hold."""

from __future__ import annotations

from typing import Any

from nbstream.frontend import protocol
from nbstream.frontend.protocol import PartKey
from nbstream.frontend.publisher import Publisher
from nbstream.run.stream_run import StreamRun


class Frontend:
    """Records what a publisher sends: custom messages and state updates."""

    def __init__(self, mode: str = "idle") -> None:
        self.messages: list[dict[str, Any]] = []
        self.states: list[tuple[dict[str, Any], bool, bool]] = []
        self.ended: list[int] = []
        self.mode = mode

    def publisher(self, **kwargs: Any) -> Publisher:
        return Publisher(
            self.messages.append,
            set_state=self.set_state,
            mode=lambda: self.mode,
            on_end=lambda v: self.ended.append(v.index),
            **kwargs,
        )

    def set_state(self, values: dict[str, Any], *, sync: bool, force: bool = False) -> None:
        self.states.append((values, sync, force))

    def frames(self) -> list[dict[str, Any]]:
        return [protocol.read_frame(m) for m in self.messages if protocol.is_frame(m)]

    def text(self) -> str:
        return "".join(p["text"] for f in self.frames() for p in f["parts"] if p["kind"] == "text")


def _run(publisher: Publisher, pieces: list[str]) -> StreamRun:
    run = StreamRun(pieces)
    publisher.open(run)
    run.run()
    return run


def test_frames_carry_the_text_once_and_the_end_sends_the_final_state() -> None:
    front = Frontend()
    publisher = front.publisher()
    pieces = [f"w{i} " for i in range(500)]
    run = _run(publisher, pieces)
    assert run.status == "done" and front.text() == "".join(pieces)
    frames = front.frames()
    assert frames[-1]["final"] and frames[-1]["status"] == "done"
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    # headless (no frontend said ready): the final snapshot goes out as a state update
    values, sync, _force = front.states[-1]
    assert sync and values["snapshot"] == publisher.snapshot()
    [part] = values["snapshot"]["versions"][0]["parts"]
    assert part["text"] == run.text and values["snapshot"]["versions"][0]["seq"] == len(frames)
    assert front.ended == [0]
    assert publisher.frames_sent == len(frames) and publisher.bytes_sent > len(run.text)
    assert publisher.snapshot_bytes > 0


def test_a_ready_frontend_gets_the_end_in_the_final_frame_and_the_state_is_only_stored() -> None:
    front = Frontend(mode="blocking")
    publisher = front.publisher()
    publisher.frontend_ready = True
    _run(publisher, ["Hello", " world"])
    final = front.frames()[-1]
    assert final["final"] and final["mode"] == "idle"
    values, sync, _force = front.states[-1]
    assert not sync and values["mode"] == "idle" and "snapshot" in values


def test_close_is_idempotent_and_the_ledger_is_the_frames() -> None:
    front = Frontend()
    publisher = front.publisher()
    run = _run(publisher, ["a", "b", "c"])
    v = publisher.versions[0]
    sent_before = list(front.messages)
    publisher.close(v)  # a late close (the runner's finish after the run's own end)
    assert front.messages == sent_before and front.ended == [0]
    assert v.sent_len[PartKey(0, "text")] == len(run.text) == 3
    assert v.seq == front.frames()[-1]["seq"]


def test_a_resync_forces_the_snapshot_out() -> None:
    front = Frontend()
    publisher = front.publisher()
    _run(publisher, ["x"])
    publisher.push_snapshot(force=True)
    values, sync, force = front.states[-1]
    assert sync and force and values == {"snapshot": publisher.snapshot()}


def test_a_resumed_version_starts_with_its_prefix() -> None:
    """The run of a resumed version streams only the continuation (its ResumeSource drops the
    overlap); the published version is the partial answer + that."""
    front = Frontend()
    publisher = front.publisher()
    run = StreamRun([" jumps", " over"])
    publisher.open(run, prefix="The quick brown fox")
    run.run()
    assert publisher.versions[0].text == front.text() == "The quick brown fox jumps over"


def test_the_default_state_sink_and_lone_surrogates() -> None:
    sent: list[dict[str, Any]] = []
    publisher = Publisher(sent.append)
    _run(publisher, ["plain"])
    assert publisher.state["snapshot"]["versions"][0]["status"] == "done"
    publisher.send({"type": "log_page", "rows": [{"raw": "half \ud83d"}]})
    assert sent[-1]["rows"][0]["raw"] != "half \ud83d"  # mended: Jupyter messages are UTF-8
