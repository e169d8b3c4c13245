"""The view keeps no second copy of the answer: for text and reasoning it counts what its frames
sent and reads the text back from the run. The final snapshot shares the finished answer with the
run's state; a mid-stream snapshot holds exactly what the frames sent, no more."""

from __future__ import annotations

import nbstream
from nbstream.events import ReasoningDelta, TextDelta
from nbstream.frontend import protocol
from nbstream.frontend.protocol import PartKey
from nbstream.frontend.publisher import Version, sent_text
from nbstream.frontend.widget import StreamView
from nbstream.run.stream_run import StreamRun


def test_final_snapshot_shares_the_answer_with_the_run() -> None:
    pieces = [f"tok{i} é🚨 " for i in range(20_000)]
    view = nbstream.stream(pieces, display=False)
    assert view.status == "done"
    text = view.text
    assert text == "".join(pieces)
    [part] = [p for p in view.snapshot["versions"][0]["parts"] if p["kind"] == "text"]
    assert part["text"] == text
    assert part["text"] is text  # one string, held by the state and the snapshot
    v = view._versions[0]
    assert v.sent[PartKey(0, "text")] == []  # the frames' pieces are not kept
    assert v.sent_len[PartKey(0, "text")] == len(text)


def test_mid_stream_snapshot_holds_exactly_what_the_frames_sent() -> None:
    """A resync while text is still pending in the coalescer: the snapshot has the frames' text
    (cut from the longer text the run holds) and the last frame's seq."""
    now = [0.0]
    pieces = [f"w{i}é " for i in range(6_000)]
    seen: dict[str, object] = {}

    def source():
        for i, piece in enumerate(pieces):
            if i % 100 == 0:
                now[0] += 0.03  # an interval passes every 100 pieces: a frame goes out
            yield piece
            if i == 5_050:  # 50 pieces after the last frame: they are still pending
                v = view._versions[0]
                seen["held"] = "".join(v.run.state.choices[0]._text)
                view._on_frontend_msg(view, {"type": "resync", "version": 0}, [])
                seen["snapshot"] = view.snapshot["versions"][0]
                seen["sent"] = list(sent)

    view = StreamView(source, clock=lambda: now[0])
    sent: list[dict] = []
    view.send = sent.append
    view.start()
    assert view.status == "done" and view.text == "".join(pieces)

    frames = [protocol.read_frame(m) for m in seen["sent"] if protocol.is_frame(m)]
    framed = "".join(p["text"] for f in frames for p in f["parts"] if p["kind"] == "text")
    snap = seen["snapshot"]
    [part] = [p for p in snap["parts"] if p["kind"] == "text"]
    assert seen["held"] == "".join(pieces[:5_051])
    assert part["text"] == framed
    assert 0 < len(framed) < len(seen["held"])  # the pending pieces are not in the snapshot
    assert snap["seq"] == frames[-1]["seq"]


def test_reasoning_and_other_choices_are_read_back_from_the_state() -> None:
    """Mid-stream: cut to the sent length without joining the state's pieces in place; at the
    end: the state's own strings."""
    run = StreamRun(["unused"])
    v = Version(0, run)
    state = run.state
    for i in range(5_000):
        state.apply([TextDelta(f"a{i} "), ReasoningDelta(f"r{i} "), TextDelta(f"b{i} ", 1)])
    keys = {PartKey(0, "text"): "a", PartKey(0, "reasoning"): "r", PartKey(1, "text"): "b"}
    for key in keys:
        v.sent[key] = []
        v.sent_len[key] = 1_000
    run.status = "streaming"
    pieces_before = len(state.choices[0]._text)
    for key, letter in keys.items():
        assert sent_text(v, key) == "".join(f"{letter}{i} " for i in range(5_000))[:1_000]
    assert len(state.choices[0]._text) == pieces_before  # read without joining in place
    run.status = "done"
    for key in keys:
        v.sent_len[key] = len(_full(state, key))
    assert sent_text(v, PartKey(0, "text")) is state.choices[0].text
    assert sent_text(v, PartKey(0, "reasoning")) is state.choices[0].reasoning
    assert sent_text(v, PartKey(1, "text")) is state.choices[1].text


def _full(state, key: PartKey) -> str:
    c = state.choices[key.choice]
    return "".join(c._text if key.kind == "text" else c._reasoning)
