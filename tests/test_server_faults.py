"""Every injected fault, seen through the real openai client (sync and async) over real HTTP."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import openai
import pytest

from nbstream.server import LocalServer
from nbstream.server.demo import demo_tokens

USER = [{"role": "user", "content": "hello"}]


def _client(server: LocalServer, **kwargs) -> openai.OpenAI:
    kwargs.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=server.base_url, api_key="local", **kwargs)


def _consume(stream) -> tuple[list, BaseException | None]:
    chunks: list = []
    try:
        with stream:
            for chunk in stream:
                chunks.append(chunk)
    except Exception as exc:  # the fault under test
        return chunks, exc
    return chunks, None


def _text(chunks) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_disconnect_after_n_chunks(local_server: LocalServer) -> None:
    stream = _client(local_server).chat.completions.create(
        model="demo?disconnect_after=5", messages=USER, stream=True
    )
    chunks, error = _consume(stream)
    assert isinstance(error, openai.APIConnectionError)
    assert len(chunks) == 5
    assert _text(chunks) == "".join(demo_tokens(4))  # role chunk + 4 content chunks
    record = local_server.wait_idle()[-1]
    assert record.end_reason == "injected_disconnect" and record.chunks_sent == 5


def test_disconnect_on_replay_counts_data_events(local_server: LocalServer, shared_streams):
    # file 10 starts with 17 SSE comments; they are not chunks
    stream = _client(local_server).chat.completions.create(
        model="replay:10-openrouter-chat-error-midstream.sse",
        messages=USER,
        stream=True,
        extra_body={"nbstream": {"disconnect_after": 2}},
    )
    chunks, error = _consume(stream)
    assert isinstance(error, openai.APIConnectionError)
    assert len(chunks) == 2
    assert local_server.wait_idle()[-1].chunks_sent == 2


def test_429_with_retry_after_then_success(local_server: LocalServer) -> None:
    client = _client(local_server, max_retries=2)
    options = {"fail": 429, "fail_times": 1, "retry_after": 0.05}
    stream = client.chat.completions.create(
        model="demo", messages=USER, stream=True, extra_body={"nbstream": options}
    )
    chunks, error = _consume(stream)
    assert error is None and _text(chunks) == "".join(demo_tokens())
    first, second = local_server.wait_idle()
    assert (first.status, first.attempt) == (429, 1)
    assert (second.status, second.attempt) == (200, 2)
    assert second.headers["x-stainless-retry-count"] == "1"


def test_429_headers_and_body(local_server: LocalServer) -> None:
    client = _client(local_server)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="demo?fail=429&retry_after=2.5", messages=USER)
    headers = info.value.response.headers
    assert headers["retry-after"] == "3" and headers["retry-after-ms"] == "2500"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    for name in ("limit-requests", "limit-tokens", "remaining-tokens", "reset-requests"):
        assert headers[f"x-ratelimit-{name}"]
    error = info.value.body
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
    assert "param" in error


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_for_first_k_attempts(local_server: LocalServer, status: int) -> None:
    options = {"fail": status, "fail_times": 2, "retry_after": 0.01}
    # two retries (3 attempts): the third succeeds
    ok = _client(local_server, max_retries=2).chat.completions.create(
        model="demo", messages=USER, extra_body={"nbstream": {**options, "key": "ok"}}
    )
    assert ok.choices[0].message.content == "".join(demo_tokens())
    assert [r.status for r in local_server.requests] == [status, status, 200]
    # one retry (2 attempts): both fail, the error reaches the caller
    with pytest.raises(openai.InternalServerError) as info:
        _client(local_server, max_retries=1).chat.completions.create(
            model="demo", messages=USER, extra_body={"nbstream": {**options, "key": "ko"}}
        )
    assert info.value.status_code == status
    assert "Attempt 2 of 2" in info.value.message
    assert [r.attempt for r in local_server.requests[3:]] == [1, 2]


def test_attempts_counted_per_body_without_key(local_server: LocalServer) -> None:
    body = {"model": "demo?fail=503&fail_times=1", "messages": USER}
    assert _raw_post(local_server, body)[0] == 503
    assert _raw_post(local_server, body)[0] == 200
    other = {**body, "messages": [{"role": "user", "content": "other"}]}
    assert _raw_post(local_server, other)[0] == 503


def test_malformed_chunk(local_server: LocalServer) -> None:
    stream = _client(local_server).chat.completions.create(
        model="demo?malformed_after=3", messages=USER, stream=True
    )
    chunks, error = _consume(stream)
    assert isinstance(error, json.JSONDecodeError)
    assert len(chunks) == 3


def test_midstream_error_payload_chat(local_server: LocalServer) -> None:
    stream = _client(local_server).chat.completions.create(
        model="demo",
        messages=USER,
        stream=True,
        extra_body={"nbstream": {"error_after": 4, "error_message": "boom at 4"}},
    )
    chunks, error = _consume(stream)
    assert isinstance(error, openai.APIError) and "boom at 4" in str(error)
    assert len(chunks) == 4
    assert local_server.wait_idle()[-1].end_reason == "injected_error"


def test_midstream_error_event_responses(local_server: LocalServer) -> None:
    stream = _client(local_server).responses.create(
        model="demo?error_after=6", input="hi", stream=True
    )
    events, error = _consume(stream)
    assert error is None
    assert [e.type for e in events[:4]][0] == "response.created"
    assert events[-1].type == "error" and events[-1].sequence_number == 6
    assert len(events) == 7


def test_stall_after_n_chunks(local_server: LocalServer) -> None:
    stream = _client(local_server).chat.completions.create(
        model="demo?stall_after=3&stall=0.4&tokens=6", messages=USER, stream=True
    )
    arrivals = []
    with stream:
        for _ in stream:
            arrivals.append(time.monotonic())
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert len(arrivals) == 8
    assert gaps[2] >= 0.35  # between chunk 3 and chunk 4
    assert max(gaps[:2] + gaps[3:]) < gaps[2] - 0.2


def test_stall_with_client_read_timeout_is_seen_as_disconnect(local_server: LocalServer) -> None:
    client = _client(local_server, timeout=0.3)
    stream = client.chat.completions.create(
        model="demo?stall_after=2&stall=5", messages=USER, stream=True
    )
    chunks, error = _consume(stream)
    assert isinstance(error, openai.APITimeoutError | openai.APIConnectionError)
    assert len(chunks) == 2
    record = local_server.wait_for_disconnect(timeout=3)
    assert record.chunks_sent == 2 and record.end_reason == "client_disconnected"
    assert record.ended is not None and record.ended - record.started < 2


def test_slow_trickle_and_ttft(local_server: LocalServer) -> None:
    started = time.monotonic()
    stream = _client(local_server).chat.completions.create(
        model="demo?ttft=0.3&delay=0.05&tokens=4", messages=USER, stream=True
    )
    headers_at = time.monotonic()
    arrivals = []
    with stream:
        for _ in stream:
            arrivals.append(time.monotonic())
    assert arrivals[0] - started >= 0.28
    assert headers_at < arrivals[0] - 0.05  # headers come at once, like a real server
    assert len(arrivals) == 6
    # paced on a schedule: judged on the server's clock (a loaded client may read late chunks in
    # one burst, so gaps seen by the client prove nothing)
    (record,) = local_server.wait_idle(timeout=10)[-1:]
    assert record.duration is not None and record.duration >= 0.3 + 5 * 0.05 - 0.01


def test_client_close_is_detected_while_paced(local_server: LocalServer) -> None:
    stream = _client(local_server).chat.completions.create(
        model="demo?tokens_per_s=50", messages=USER, stream=True
    )
    for index, _ in enumerate(stream):
        if index == 3:
            break
    stream.close()
    record = local_server.wait_for_disconnect(timeout=3)
    assert record.disconnected and record.end_reason == "client_disconnected"
    assert 4 <= record.chunks_sent < 10
    assert record.ended - record.started < 1.0


def test_client_close_is_detected_unpaced(local_server: LocalServer) -> None:
    stream = _client(local_server).chat.completions.create(
        model="demo?tokens=200000", messages=USER, stream=True
    )
    for index, _ in enumerate(stream):
        if index == 10:
            break
    stream.close()
    record = local_server.wait_for_disconnect(timeout=10)
    assert record.disconnected and record.chunks_sent < 200000


def test_async_client_close_is_detected(local_server: LocalServer) -> None:
    async def main() -> int:
        client = openai.AsyncOpenAI(base_url=local_server.base_url, api_key="x", max_retries=0)
        stream = await client.chat.completions.create(
            model="demo?tokens_per_s=100", messages=USER, stream=True
        )
        count = 0
        async for _ in stream:
            count += 1
            if count == 5:
                break
        await stream.close()
        await client.close()
        return count

    assert asyncio.run(main()) == 5
    record = local_server.wait_for_disconnect(timeout=3)
    assert record.disconnected and record.chunks_sent >= 5


def test_async_faults(local_server: LocalServer) -> None:
    async def main() -> tuple[int, BaseException | None]:
        client = openai.AsyncOpenAI(base_url=local_server.base_url, api_key="x", max_retries=0)
        stream = await client.chat.completions.create(
            model="demo?disconnect_after=7", messages=USER, stream=True
        )
        count, error = 0, None
        try:
            async for _ in stream:
                count += 1
        except Exception as exc:
            error = exc
        await client.close()
        return count, error

    count, error = asyncio.run(main())
    assert count == 7 and isinstance(error, openai.APIConnectionError)


def _raw_post(server: LocalServer, body: dict | bytes, path: str = "/chat/completions"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        server.base_url + path, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()
