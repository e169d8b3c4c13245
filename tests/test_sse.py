"""nbstream's SSE decoder (sources/sse.py) against the openai SDK's own decoder, and ``loads``
against ``json.loads``: the same events from the same bytes however the body is split into
reads (CRLF and lone CR line ends, comments, multi-line data, ``event``/``id``/``retry``)."""

from __future__ import annotations

import json
import random

import pytest
from openai._streaming import SSEDecoder as SDKDecoder
from recorded_oracle import MORE, STREAMS

from nbstream.sources.sse import SSEDecoder, loads

BODIES = [
    b'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n',
    b'data: {"a":1}\r\n\r\ndata: {"b":2}\r\n\r\n',
    b'data: {"a":1}\r\rdata: {"b":2}\r\r',
    b": keep-alive\n\n: OPENROUTER PROCESSING\n\ndata: x\n\n",
    b"event: response.created\ndata: one\n\n",
    b"data: first\ndata: second\n\n",
    b"data:no-space\n\ndata:  two spaces\n\n",
    b"data\n\ndata: after-empty\n\n",
    b"id: 7\nretry: 1500\ndata: with id\n\n",
    b"data: \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80\n\n",
    b"data: unfinished at the end",
    b'data: {"x":1}\n\nevent: e\ndata: y\nunknown: field\n\n',
]


def _sdk(body: bytes, cuts: list[int]) -> list[tuple[str | None, str]]:
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    return [(e.event, e.data) for e in SDKDecoder().iter_bytes(iter(pieces))]


def _ours(body: bytes, cuts: list[int]) -> list[tuple[str | None, str]]:
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    decoder = SSEDecoder()
    return [ev for piece in pieces for ev in decoder.feed(piece)]


def _recorded() -> list[bytes]:
    return [p.read_bytes() for folder in (STREAMS, MORE) for p in sorted(folder.glob("*.sse"))]


@pytest.mark.parametrize("body", BODIES + _recorded()[:8])
def test_same_events_as_the_sdk_decoder_for_any_split(body: bytes) -> None:
    rng = random.Random(len(body))
    whole = _sdk(body, [])
    assert _ours(body, []) == whole
    for _ in range(40):
        cuts = sorted(rng.sample(range(1, len(body)), min(len(body) - 1, rng.randint(1, 12))))
        assert _ours(body, cuts) == whole, cuts
    assert _ours(body, list(range(1, len(body)))) == whole  # one byte per read


def test_every_recorded_body_decodes_as_the_sdk_decodes_it() -> None:
    bodies = _recorded()
    if not bodies:
        pytest.skip(f"recorded streams not found at {STREAMS}")
    for body in bodies:
        assert _ours(body, []) == _sdk(body, [])


def test_an_event_without_data_is_not_dispatched() -> None:
    """The spec's rule (the SDK's decoder dispatches it, and its ``json.loads("")`` fails)."""
    assert _ours(b"event: ping\n\nid: 3\n\ndata: x\n\n", []) == [(None, "x")]


def test_crlf_split_between_reads_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n\r") == [(None, "a")]
    assert decoder.feed(b"\ndata: b\r\n\r\n") == [(None, "b")]


def test_a_byte_order_mark_opening_the_stream_is_skipped() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"\xef\xbb") == []
    assert decoder.feed(b"\xbfdata: x\n\n") == [(None, "x")]


def test_id_and_retry_are_kept() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id: 42\nretry: 3000\nretry: soon\ndata: x\n\n")
    assert decoder.last_event_id == "42" and decoder.retry == 3000


@pytest.mark.parametrize(
    "text",
    [
        '{"a": [1, 2.5, "\\u00e9", null, true]}',
        '"\\ud83d"',  # half an emoji: orjson refuses it, json takes it
        "[NaN, Infinity]",
        '{"a":1,"a":2}',
        '{"n": 12345678901234567890}',
    ],
)
def test_loads_gives_what_json_gives(text: str) -> None:
    assert loads(text) == json.loads(text) or text.startswith("[NaN")


@pytest.mark.parametrize("text", ["", "{", "data", '{"a":1}x'])
def test_loads_raises_json_s_error(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as err:
        loads(text)
    with pytest.raises(json.JSONDecodeError) as want:
        json.loads(text)
    assert str(err.value) == str(want.value)
