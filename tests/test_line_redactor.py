"""LineRedactor (what the chunk log's spill uses) gives exactly redact_text's result, line by line,
whatever changes between lines: the delta, the head, keys split across the known prefix, secrets
registered mid-way."""

from __future__ import annotations

import json
import random

import pytest

from nbstream import redact
from nbstream.redact import REDACTED, LineRedactor, redact_text
from nbstream.run.log import ChunkLog

KEYS = ["sk-proj-abcdefgh1234", "Bearer abcdefgh.ijk", "hf_ABCDEFGH123", "gsk_abcdefgh99", "rk-"]


@pytest.fixture
def restore_secrets():
    saved = set(redact._extra_secrets), list(redact._secrets_seen)
    yield
    redact._extra_secrets.clear()
    redact._extra_secrets.update(saved[0])
    redact._secrets_seen[:] = saved[1]


def test_same_result_as_redact_text_on_similar_lines(restore_secrets) -> None:
    rng = random.Random(11)
    heads = ['{"id":"chatcmpl-1","model":"m","choices":[{"delta":{"content":', '{"id":"x-sk"}']
    words = ["a", " b", "sk", "-", "abcdefghij", "k", "_", "f", "earer", "EARER", "Bear", "er "]
    redactor = LineRedactor()
    suspicious = 0
    for i in range(5_000):
        head = heads[0] if rng.random() < 0.9 else rng.choice(heads) + rng.choice(words)
        if rng.random() < 0.02:  # a key that straddles the end of the known prefix
            head = head[: rng.randrange(len(head))] + rng.choice(KEYS) + head[-5:]
        delta = "".join(rng.choice(words) for _ in range(rng.randrange(4)))
        if rng.random() < 0.05:
            delta += rng.choice(KEYS)
        line = head + json.dumps(delta) + "}}]}"
        if i == 3_000:  # a secret with no key shape, already inside the known prefix
            redact.register_secret("chatcmpl-1")
        expected = redact_text(line)
        assert redactor(line) == expected, line
        suspicious += expected != line
    assert suspicious > 100  # the lines did hold keys to scrub


def test_a_key_that_starts_inside_the_known_prefix(restore_secrets) -> None:
    """Two clean lines share a prefix ending in "sk"; the next line continues it into a key: the
    fragment ("k-") starts inside the prefix that is not scanned again."""
    redactor = LineRedactor()
    head = '{"choices":[{"delta":{"content":"'
    for line in (head + 'ska"}}]}', head + 'skb"}}]}'):
        assert redactor(line) == line
    line = head + 'sk-proj-abcdefgh1234"}}]}'
    assert redactor(line) == redact_text(line) == head + REDACTED + '"}}]}'
    # the same with a registered secret that starts inside the prefix
    redact.register_secret("opaque-secret-value")
    redactor = LineRedactor()
    for line in (head + 'opaque-secret-a"}}]}', head + 'opaque-secret-b"}}]}'):
        assert redactor(line) == line
    line = head + 'opaque-secret-value"}}]}'
    assert redactor(line) == head + REDACTED + '"}}]}'


def test_the_spill_file_is_redacted(restore_secrets, tmp_path) -> None:
    log = ChunkLog(max_memory=10, spill_path=tmp_path / "spill.jsonl")
    log.begin(1, "chat")
    for i in range(300):
        text = "sk-proj-ABCDEFGH12345678" if i % 50 == 7 else f"w{i}"
        log.chunk(1, i, i / 100, json.dumps({"choices": [{"delta": {"content": text}}]}))
    spilled = (tmp_path / "spill.jsonl").read_text()
    assert "sk-proj" not in spilled and spilled.count(REDACTED) == 6
    assert [r["data"]["choices"][0]["delta"]["content"] for r in log.chunks()][:8] == [
        *(f"w{i}" for i in range(7)),
        REDACTED,
    ]
