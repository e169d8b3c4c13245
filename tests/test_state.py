"""AnswerState: long answers are kept as a few joined blocks, and read back exactly."""

from __future__ import annotations

from nbstream.events import ReasoningDelta, TextDelta
from nbstream.state import COMPACT_EVERY, AnswerState


def test_long_text_is_joined_in_blocks_and_read_back_exactly() -> None:
    state = AnswerState()
    pieces = [f"w{i} é🚨 " if i % 7 == 0 else f"w{i} " for i in range(3 * COMPACT_EVERY + 17)]
    for i, piece in enumerate(pieces):
        state.apply([TextDelta(piece), ReasoningDelta(piece)])
        if i == COMPACT_EVERY + 100:  # read mid-stream: everything so far, then keep going
            assert state.text == "".join(pieces[: i + 1])
    choice = state.choices[0]
    # a few joined blocks plus the recent pieces, never one str per chunk
    after_read = len(pieces) - (COMPACT_EVERY + 101)  # pieces applied after the mid-stream read
    assert choice._text_blocks == 2
    assert len(choice._text) == 2 + after_read - COMPACT_EVERY
    assert len(choice._reasoning) < COMPACT_EVERY + 3
    assert state.text == "".join(pieces)
    assert choice.reasoning == "".join(pieces)
    assert choice.chars == sum(len(p) for p in pieces)
    assert len(choice._text) == 1  # reading joins it once
    state.apply([TextDelta("end")])
    assert state.text == "".join(pieces) + "end"
