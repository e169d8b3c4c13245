"""Every shared SSE file is served byte for byte and parsed by the real openai client."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import openai
import pytest

from nbstream.server import LocalServer

SHARED_STREAMS = Path(__file__).resolve().parents[1].parent / "shared" / "streams"

FILES = sorted(p.name for p in SHARED_STREAMS.glob("*.sse")) if SHARED_STREAMS.is_dir() else []


def _post_raw(server: LocalServer, body: dict) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        server.base_url + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.mark.parametrize("name", FILES)
def test_sse_file_replayed_byte_for_byte(
    module_server: LocalServer, shared_streams: Path, name: str
) -> None:
    body = {"model": f"replay:{name}", "messages": [], "stream": True}
    status, headers, data = _post_raw(module_server, body)
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert data == (shared_streams / name).read_bytes()


def test_json_error_file_is_http_400_exactly(module_server: LocalServer, shared_streams: Path):
    name = "20-openai-http400-error-body.json"
    status, headers, data = _post_raw(module_server, {"model": f"replay:{name}", "messages": []})
    assert status == 400
    assert headers["Content-Type"] == "application/json"
    assert data == (shared_streams / name).read_bytes()
    assert headers["Content-Length"] == str(len(data))


@pytest.mark.parametrize("name", FILES)
def test_paced_replay_keeps_the_bytes(module_server: LocalServer, name: str) -> None:
    """Pacing splits the writes per SSE event; the bytes must still be the file's."""
    options = {"delay": 0.0005, "ttft": 0.01}
    body = {"model": f"replay:{name}", "messages": [], "stream": True, "nbstream": options}
    status, _, data = _post_raw(module_server, body)
    assert status == 200 and data == (SHARED_STREAMS / name).read_bytes()
    assert module_server.last_request.chunks_sent == len(_data_payloads(SHARED_STREAMS / name))


@pytest.mark.parametrize("name", [n for n in FILES if "responses" in n])
def test_responses_replay_through_openai_sdk(module_server: LocalServer, name: str) -> None:
    expected = _data_payloads(SHARED_STREAMS / name)
    client = openai.OpenAI(base_url=module_server.base_url, api_key="local", max_retries=0)
    with client.responses.create(model=f"replay:{name}", input="x", stream=True) as stream:
        events = list(stream)
    assert [e.type for e in events] == [p["type"] for p in expected]

    async def main() -> list:
        aclient = openai.AsyncOpenAI(base_url=module_server.base_url, api_key="x", max_retries=0)
        stream = await aclient.responses.create(model=f"replay:{name}", input="x", stream=True)
        got = [event async for event in stream]
        await aclient.close()
        return got

    assert [e.model_dump() for e in asyncio.run(main())] == [e.model_dump() for e in events]


@pytest.mark.parametrize("name", [n for n in FILES if "responses" not in n])
def test_chat_replay_through_async_openai_sdk(module_server: LocalServer, name: str) -> None:
    expected = _data_payloads(SHARED_STREAMS / name)

    async def main() -> tuple[list, BaseException | None]:
        client = openai.AsyncOpenAI(base_url=module_server.base_url, api_key="x", max_retries=0)
        chunks, error = [], None
        try:
            stream = await client.chat.completions.create(
                model=f"replay:{name}", messages=[{"role": "user", "content": "x"}], stream=True
            )
            async for chunk in stream:
                chunks.append(chunk)
        except openai.APIError as exc:
            error = exc
        await client.close()
        return chunks, error

    chunks, error = asyncio.run(main())
    if "error" in name:
        assert isinstance(error, openai.APIError) and 0 < len(chunks) < len(expected)
    else:
        assert error is None and len(chunks) == len(expected)


@pytest.mark.parametrize("name", [n for n in FILES if "responses" not in n])
def test_chat_replay_through_openai_sdk(module_server: LocalServer, name: str) -> None:
    client = openai.OpenAI(base_url=module_server.base_url, api_key="local", max_retries=0)
    chunks = []
    with pytest.raises(openai.APIError) if "error" in name else _nothing():
        stream = client.chat.completions.create(
            model=f"replay:{name}", messages=[{"role": "user", "content": "x"}], stream=True
        )
        for chunk in stream:
            chunks.append(chunk)
    expected = _data_payloads(SHARED_STREAMS / name)
    if "error" not in name:
        assert [c.model_dump(exclude_unset=True)["id"] for c in chunks] == [
            p["id"] for p in expected
        ]
    else:
        assert 0 < len(chunks) < len(expected)


def _data_payloads(path: Path) -> list[dict]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            out.append(json.loads(line[5:]))
    return out


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False
