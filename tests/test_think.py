"""ThinkSplitter: <think>…</think> inline reasoning split out of content, however chunks fall."""

from __future__ import annotations

import pytest

from nbstream.sources.think import ThinkSplitter

SOURCE = "  <think>\nI ponder </thin k> and <think> ok\n</think>\n\nThe answer mentions <think> x"
REASONING = "I ponder </thin k> and <think> ok\n"
ANSWER = "The answer mentions <think> x"


def split(chunks: list[str]) -> tuple[str, str]:
    sp = ThinkSplitter()
    out = [piece for c in chunks for piece in sp.feed(c)] + sp.flush()
    return (
        "".join(t for k, t in out if k == "reasoning"),
        "".join(t for k, t in out if k == "text"),
    )


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 9, 13, len(SOURCE)])
def test_tags_split_across_chunks_of_any_size(size: int) -> None:
    chunks = [SOURCE[i : i + size] for i in range(0, len(SOURCE), size)]
    assert split(chunks) == (REASONING, ANSWER)


@pytest.mark.parametrize("cut", range(1, len("<think>x</think>y")))
def test_every_cut_of_a_short_answer(cut: int) -> None:
    text = "<think>x</think>y"
    assert split([text[:cut], text[cut:]]) == ("x", "y")


def test_plain_answers_pass_through_unchanged_and_fast() -> None:
    sp = ThinkSplitter()
    assert sp.feed(" Hello <think>") == [("text", " Hello <think>")]
    assert sp.done  # the hot path: no more splitting for this choice
    assert sp.feed("more") == [("text", "more")]


def test_what_is_held_back_comes_out_at_the_end() -> None:
    assert split(["<th"]) == ("", "<th")  # never a tag: it was text
    assert split(["<think>almost </thi"]) == ("almost </thi", "")  # unclosed: reasoning
    assert split(["\n"]) == ("", "\n")
