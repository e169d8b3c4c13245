"""The final snapshot shares the finished answer with the run's state (no second copy), and only
when the frames sent exactly that text."""

from __future__ import annotations

import random

import nbstream
from nbstream.coalesce import PartKey
from nbstream.widget import _same_text


def test_final_snapshot_shares_the_answer_with_the_run() -> None:
    pieces = [f"tok{i} é🚨 " for i in range(20_000)]
    view = nbstream.stream(pieces, display=False)
    assert view.status == "done"
    text = view.text
    assert text == "".join(pieces)
    [part] = [p for p in view.snapshot["versions"][0]["parts"] if p["kind"] == "text"]
    assert part["text"] == text
    assert part["text"] is text  # one string, held by the state and the snapshot
    assert view._versions[0].sent[PartKey(0, "text")] == [text]


def test_same_text_compares_without_joining() -> None:
    rng = random.Random(7)

    def split(t: str) -> list[str]:
        out, i = [], 0
        while i < len(t):
            j = i + rng.randrange(0, 6)
            out.append(t[i:j])
            i = j
        out.insert(rng.randrange(len(out) + 1), "")
        return out

    for _ in range(500):
        t = "".join(rng.choice("ab") for _ in range(rng.randrange(0, 40)))
        u = t if rng.random() < 0.5 else "".join(rng.choice("ab") for _ in t)
        assert _same_text(split(t), split(u)) == (t == u), (t, u)
    assert not _same_text(["ab"], ["a"])
    assert _same_text(["x" * 70_000, "y"], ["x" * 65_536, "x" * 4_464 + "y"])
