"""AnswerState: long answers are kept as a few joined blocks, and read back exactly."""

from __future__ import annotations

import sys
import threading

from nbstream.events import ReasoningDelta, TextDelta
from nbstream.run.state import COMPACT_EVERY, AnswerState


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


def test_reading_text_on_another_thread_while_appending_loses_nothing() -> None:
    """``view.text`` read from the notebook while a background stream appends: the reader's join
    must not overwrite a piece appended between its join and its store, nor race the consumer's
    compaction. A stress test: before the fix, 2 of 5 such trials lost text (up to half of it)."""
    pieces = [f"{i}," for i in range(200_000)]
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: widen any race window
    try:
        for _ in range(4):
            state = AnswerState()
            done = threading.Event()
            reads = [0]

            def read(
                state: AnswerState = state, done: threading.Event = done, reads: list = reads
            ) -> None:
                while not done.is_set():
                    if state.choices:
                        state.choices[0].text  # noqa: B018 - the read is the point
                        reads[0] += 1

            reader = threading.Thread(target=read)
            reader.start()
            try:
                for piece in pieces:
                    state.apply([TextDelta(piece, 0)])
            finally:
                done.set()
                reader.join()
            assert reads[0] > 1000  # the reader really ran alongside
            assert state.text == "".join(pieces)
            assert state.choices[0].chars == len(state.text)
    finally:
        sys.setswitchinterval(old)
