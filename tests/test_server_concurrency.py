"""Many streams at once: the server keeps them all going, and its rate limit answers 429s."""

from __future__ import annotations

import asyncio

import openai

from nbstream.server import RateLimit, serve
from nbstream.server.demo import demo_tokens

USER = [{"role": "user", "content": "hello"}]


async def _run_streams(base_url: str, count: int, model: str, retries: int) -> list:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="local", max_retries=retries)

    async def one(i: int) -> str | BaseException:
        try:
            stream = await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": f"q{i}"}], stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream])
        except openai.APIError as exc:
            return exc

    try:
        return await asyncio.gather(*(one(i) for i in range(count)))
    finally:
        await client.close()


def test_fifty_paced_streams_at_once() -> None:
    with serve() as server:
        results = asyncio.run(
            _run_streams(server.base_url, 50, "demo?tokens=40&tokens_per_s=100", retries=0)
        )
        records = server.wait_idle(timeout=30)
    assert results == ["".join(demo_tokens(40))] * 50
    assert len(records) == 50
    assert all(r.end_reason == "complete" and r.chunks_sent == 42 for r in records)
    # they overlapped: each takes ~0.4 s, all 50 together far less than 50 x 0.4 s
    span = max(r.ended for r in records) - min(r.started for r in records)
    assert span < 10


def test_rate_limit_mode_answers_429_to_a_burst() -> None:
    with serve(rate_limit=RateLimit(requests=10, window_s=30)) as server:
        results = asyncio.run(_run_streams(server.base_url, 30, "demo?tokens=5", retries=0))
        statuses = sorted(r.status for r in server.requests)
    ok = [r for r in results if isinstance(r, str)]
    limited = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(ok) == 10 and len(limited) == 20
    assert statuses == [200] * 10 + [429] * 20
    headers = limited[0].response.headers
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert int(headers["retry-after-ms"]) > 0
