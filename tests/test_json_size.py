"""protocol.json_size: the bytes json.dumps would give, counted without building long strings."""

from __future__ import annotations

import json

import pytest

from nbstream.frontend import protocol


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        {"versions": []},
        {"text": "a" * (3 * 65536 + 5)},
        {"parts": [{"text": 'é🚨"\\\n\x01\u2028 ' * 40_000, "meta": {"lang": "py"}}, 1, 2.5, None]},
        ["x" * 65537, ("t", True)],
    ],
    ids=["str", "empty", "long-ascii", "long-escapes", "list"],
)
def test_json_size_matches_json_dumps(value: object) -> None:
    expected = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    assert protocol.json_size(value) == expected
