"""Resume: continuation messages and joining without duplicated or lost text."""

from __future__ import annotations

import pytest

from nbstream.resilience.resume import (
    CONTINUE_PROMPT,
    OverlapJoiner,
    continuation_messages,
    join_overlap,
    overlap_length,
)

PARTIAL = "The quick brown fox jumps over the la"


def test_prompt_style_sends_partial_as_assistant_then_asks_to_continue() -> None:
    messages = [{"role": "user", "content": "Tell me"}]
    out = continuation_messages(messages, PARTIAL)
    assert out == [
        {"role": "user", "content": "Tell me"},
        {"role": "assistant", "content": PARTIAL},
        {"role": "user", "content": CONTINUE_PROMPT},
    ]
    assert messages == [{"role": "user", "content": "Tell me"}]  # not mutated


def test_prefix_style() -> None:
    out = continuation_messages([{"role": "user", "content": "x"}], PARTIAL, style="prefix")
    assert out[-1] == {"role": "assistant", "content": PARTIAL, "prefix": True}
    with pytest.raises(ValueError):
        continuation_messages([], PARTIAL, style="other")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("continuation", "joined"),
    [
        ("zy dog.", PARTIAL + "zy dog."),  # clean continuation
        ("over the lazy dog.", PARTIAL + "zy dog."),  # repeats the last words
        (PARTIAL + "zy dog.", PARTIAL + "zy dog."),  # restarts the whole answer
        ("azy dog.", PARTIAL + "azy dog."),  # 1-char coincidence "a" is not an overlap
    ],
)
def test_join_overlap(continuation: str, joined: str) -> None:
    assert join_overlap(PARTIAL, continuation) == joined


def test_overlap_length_respects_bounds() -> None:
    assert overlap_length("abcdef", "cdefgh") == 4
    assert overlap_length("abcdef", "cdefgh", max_overlap=3) == 0
    assert overlap_length("abc ", " x") == 1  # whitespace repeats are dropped


def chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100])
@pytest.mark.parametrize(
    "continuation", ["zy dog.", "over the lazy dog.", PARTIAL + "zy dog.", "azy dog."]
)
def test_streaming_joiner_matches_join_overlap(continuation: str, size: int) -> None:
    joiner = OverlapJoiner(PARTIAL)
    out = "".join(joiner.feed(piece) for piece in chunks(continuation, size)) + joiner.finish()
    assert PARTIAL + out == join_overlap(PARTIAL, continuation)
    assert joiner.joined == join_overlap(PARTIAL, continuation)


def test_streaming_joiner_releases_text_early_when_it_cannot_be_a_repeat() -> None:
    joiner = OverlapJoiner(PARTIAL)
    assert joiner.feed("zy") == "zy"  # "zy" appears nowhere in the partial: released at once
    assert joiner.feed(" dog.") == " dog."


def test_joiner_keeps_pieces_and_reads_them_back_whole() -> None:
    joiner = OverlapJoiner("The answer so far. ")
    expected = "The answer so far. "
    for i in range(5_000):
        delta = f"word{i} "
        expected += joiner.feed(delta)
        if i % 997 == 0:  # reads in between join the pieces seen so far, never lose later ones
            assert joiner.joined == expected
    expected += joiner.finish()
    assert joiner.joined == expected
    assert joiner.appended == expected[len("The answer so far. ") :]


# ---- one Resume for both APIs, from the run layer and from the widget ---------------------------

from collections.abc import Iterator  # noqa: E402
from typing import Any, ClassVar  # noqa: E402

from nbstream.events import Event, TextDelta  # noqa: E402
from nbstream.sources.base import Opened  # noqa: E402
from nbstream.sources.request import ResponsesRequest  # noqa: E402


class _Holding:
    """An adapter that still holds text when the attempt ends (as a ``<think>`` splitter does)."""

    kind = "responses"

    def __init__(self, held: str) -> None:
        self.held = held

    def end(self) -> list[Event]:
        return [TextDelta(self.held)] if self.held else []


class Scripted(ResponsesRequest):
    """A Responses request answered from ``script`` (one ``(deltas, held)`` per open), no HTTP;
    no finish reason comes, so each attempt ends cut off and its adapter's end events count."""

    script: ClassVar[list[tuple[list[str], str]]] = []
    sent: ClassVar[list[dict[str, Any]]] = []
    watched: ClassVar[list[bool]] = []

    def open(self) -> Opened:
        deltas, held = type(self).script.pop(0)
        type(self).sent.append(self.params)

        def items() -> Iterator[tuple[Any, list[Event]]]:
            for d in deltas:
                yield {"type": "response.output_text.delta", "delta": d}, [TextDelta(d)]

        def watch(before: Any, after: Any) -> bool:
            type(self).watched.append(True)
            return False

        return Opened(items(), kind="responses", adapter=_Holding(held), watch_reads=watch)


def scripted(script: list[tuple[list[str], str]]) -> Scripted:
    Scripted.script = list(script)
    Scripted.sent = []
    Scripted.watched = []
    return Scripted({"model": "m", "input": "Tell me"}, client=object())


def test_widget_resumes_a_responses_stream_and_keeps_the_end_events() -> None:
    from nbstream.frontend.widget import StreamView

    first = (["The quick ", "brown fox "], "jumps")
    second = (["brown fox ", "jumps", " over"], " the lazy dog.")
    source = scripted([first, second])
    view = StreamView(source)
    assert view.resumable  # a Responses request: Continue is offered
    view.start()
    assert (view.status, view.text) == ("incomplete", "The quick brown fox jumps")
    view.resume()
    # the repeated "brown fox jumps" dropped, the adapter's held text (end events) kept
    assert view.text == "The quick brown fox jumps over the lazy dog."
    assert view.run is not None and view.run.text == " over the lazy dog."
    assert Scripted.sent[-1]["input"] == [
        {"role": "user", "content": "Tell me"},
        {"role": "assistant", "content": "The quick brown fox jumps"},
        {"role": "user", "content": CONTINUE_PROMPT},
    ]
    assert Scripted.watched == [True, True]  # watch_reads reached the resumed attempt too
    last = view.snapshot["versions"][-1]
    assert last["parts"][0]["text"] == view.text


def test_resume_releases_what_the_joiner_held_when_cut_off() -> None:
    """Bug: Resilience.resume lost the text its joiner held back when the continuation ended
    without a finish reason ("jum" could still have been a repetition of "jumps")."""
    from nbstream.resilience.layer import Resilience

    res = Resilience(retry=None, stall=None, session=None, rate_limit=False)
    run = res.build(scripted([(["The quick brown fox jumps"], ""), (["jum"], "")]))
    run.run()
    more = res.resume(run)
    more.run()
    assert (more.status, more.text) == ("incomplete", "jum")


def test_resume_of_a_resumed_run_continues_the_whole_answer_from_the_original_request() -> None:
    """Bug: Resilience.resume(resumed) sent only the last part as the partial answer, on top of
    the first continuation's messages."""
    from nbstream.resilience.layer import Resilience

    res = Resilience(retry=None, stall=None, session=None, rate_limit=False)
    run = res.build(scripted([(["One, "], ""), (["two, "], ""), (["three."], "")]))
    run.run()
    second = res.resume(run)
    second.run()
    third = res.resume(second)
    third.run()
    assert third.resilience.resumed_from == "One, two, "
    assert Scripted.sent[-1]["input"] == [
        {"role": "user", "content": "Tell me"},
        {"role": "assistant", "content": "One, two, "},
        {"role": "user", "content": CONTINUE_PROMPT},
    ]
    assert third.resilience.resumed_from + third.text == "One, two, three."
