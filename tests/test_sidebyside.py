"""nbstream.compare(): columns, labels, waiting for all, and the static rendering of the result."""

from __future__ import annotations

import pytest

import nbstream
from nbstream.frontend.output import OUTPUT_MIME
from nbstream.notebook.compare import Comparison, labels_for


def test_labels_number_repeated_models_only() -> None:
    assert labels_for(["a", "b", "a", None]) == ["a #1", "b", "a #2", "default model"]


def test_sources_stream_concurrently_and_are_waited_for() -> None:
    board = nbstream.compare(
        sources=[iter(["one ", "two"]), iter(["three"])],
        labels=["first", "second"],
        display=False,
    )
    assert isinstance(board, Comparison)
    assert board.texts == ["one two", "three"]
    assert board.statuses == ["done", "done"]
    assert len(board) == 2 and board[1].text == "three"
    assert repr(board) == ("<Comparison of 2 streams: first: done, 7 chars, second: done, 5 chars>")
    data, metadata = board._answer_output()
    assert data["text/plain"] == "== first ==\none two\n\n== second ==\nthree"
    html = data["text/html"]
    assert html.index("<h4>first</h4>") < html.index("one two") < html.index("<h4>second</h4>")
    answers = metadata[OUTPUT_MIME]["answers"]
    assert [(a["label"], a["uid"]) for a in answers] == [
        ("first", board[0].uid),
        ("second", board[1].uid),
    ]
    assert [a["snapshot"]["versions"][0]["status"] for a in answers] == ["done", "done"]


def test_models_against_the_local_server_each_get_a_column() -> None:
    import openai

    from nbstream.server import serve
    from nbstream.server.demo import demo_tokens

    with serve() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local")
        board = nbstream.compare(
            "Same prompt", models=["demo?tokens=15", "echo"], n=2, client=client, display=False
        )
        assert board.labels == ["demo?tokens=15 #1", "demo?tokens=15 #2", "echo #1", "echo #2"]
        demo = "".join(demo_tokens(15))
        assert board.texts == [demo, demo, "Same prompt", "Same prompt"]
        assert len(server.requests) == 4
        assert all(log.attempts == 1 for log in board.logs)


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"sources": [iter(["x"])], "prompt": "p"}, TypeError, "not both"),
        ({}, TypeError, "needs a prompt"),
        ({"prompt": "p", "n": 0}, ValueError, "at least 1"),
        ({"sources": []}, ValueError, "at least one source"),
        ({"sources": [iter(["x"])], "n": 2}, ValueError, "one source per column"),
        ({"sources": [iter(["x"])], "labels": ["a", "b"]}, ValueError, "labels"),
    ],
)
def test_bad_arguments_say_what_to_pass(kwargs: dict, error: type, fragment: str) -> None:
    with pytest.raises(error) as info:
        nbstream.compare(display=False, **kwargs)
    assert fragment in str(info.value)


def test_static_copy_follows_the_format() -> None:
    from nbstream.frontend.static_copy import markdown_html

    assert markdown_html("# hi") == "<h1>hi</h1>\n"
    code = markdown_html("print(1)", "code", "python")
    assert 'class="language-python"' in code and "print" in code
    assert markdown_html("a\n<b>", "text") == '<pre class="nbstream-plain">a\n&lt;b&gt;</pre>'
