"""The local server's moderation endpoint and demo continuation, through the real openai client."""

from __future__ import annotations

import time

import openai
import pytest

from nbstream.resilience.resume import continuation_messages, join_overlap
from nbstream.server import serve
from nbstream.server.demo import demo_tokens


@pytest.fixture(scope="module")
def client():
    with serve() as server:
        yield openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)


def test_moderation_flags_trigger_words_only(client: openai.OpenAI) -> None:
    result = client.moderations.create(input=["a calm answer", "I will bomb it"])
    calm, bad = result.results
    assert not calm.flagged
    assert bad.flagged and bad.categories.violence and not bad.categories.hate
    assert bad.category_scores.violence > 0.9


def test_moderation_delay_option(client: openai.OpenAI) -> None:
    start = time.monotonic()
    client.moderations.create(input="x", model="omni-moderation-latest?ttft=0.2")
    assert time.monotonic() - start >= 0.2


@pytest.mark.parametrize("cut", [4, 5, 37, 120])
@pytest.mark.parametrize("style", ["prompt", "prefix"])
def test_demo_continues_a_partial_answer_with_a_small_repeat(
    client: openai.OpenAI, cut: int, style: str
) -> None:
    tokens = demo_tokens()
    full, partial = "".join(tokens), "".join(tokens[:cut])
    messages = continuation_messages([{"role": "user", "content": "hi"}], partial, style=style)
    stream = client.chat.completions.create(model="demo", messages=messages, stream=True)
    continuation = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert not continuation.startswith(full[:50])  # not a restart
    assert len(continuation) < len(full)
    assert join_overlap(partial, continuation) == full
