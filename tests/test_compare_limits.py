"""compare(): arguments that used to mislead (models=[], a string) and a cap on columns."""

from __future__ import annotations

import openai
import pytest

import nbstream
from nbstream.server import serve


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"prompt": "p", "models": []}, ValueError, "models=[]: give at least one model"),
        ({"prompt": "p", "models": "demo"}, TypeError, "models=['demo']"),
        ({"sources": [["x"]] * 17}, ValueError, "at most 16 columns"),
    ],
)
def test_bad_arguments_say_what_to_pass(kwargs: dict, error: type, fragment: str) -> None:
    with pytest.raises(error) as info:
        nbstream.compare(display=False, **kwargs)
    assert fragment in str(info.value)


def test_many_models_are_refused_before_any_request() -> None:
    with serve() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
        with pytest.raises(ValueError, match="at most 16 columns") as info:
            nbstream.compare("p", models=["demo"] * 500, client=client, display=False)
        assert "500" in str(info.value)
        with pytest.raises(ValueError, match="at most 16"):
            nbstream.compare("p", models=["demo", "echo"], n=9, client=client, display=False)
        assert server.requests == []
        board = nbstream.compare("p", models=["demo?tokens=2"] * 16, client=client, display=False)
        assert len(board.views) == 16 and board.texts[0]
