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
