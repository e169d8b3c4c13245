"""Default client resolution: explicit > environment > the bundled local server (announced)."""

from __future__ import annotations

import asyncio

import openai
import pytest

import nbstream.sources.client as nbclient
from nbstream.run.stream_run import StreamRun
from nbstream.server import LocalServer, stop_background
from nbstream.server.demo import demo_tokens
from nbstream.sources.openai_http import Endpoint
from nbstream.sources.request import ChatRequest


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(nbclient, "_clients", {})
    monkeypatch.setattr(nbclient, "_announced", False)
    yield
    stop_background()


def test_no_key_starts_the_local_server_and_says_so(
    fresh, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    client = nbclient.default_client()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bundled local demo server" in err
    assert str(client.base_url).startswith("http://127.0.0.1:")
    assert "bundled local demo server at http://127.0.0.1:" in nbclient.local_notice(client)
    assert nbclient.local_notice(openai.OpenAI(api_key="sk-x", base_url=client.base_url)) is None
    assert nbclient.default_client() is client
    nbclient.default_client()
    assert capsys.readouterr().err == ""  # said once
    params = {"model": "demo?tokens=4&ttft=0", "messages": [{"role": "user", "content": "x"}]}
    run = StreamRun(ChatRequest(params)).run()
    assert run.status == "done" and run.text == "".join(demo_tokens(4))


def test_env_base_url_wins_and_async_pools_are_per_loop(
    fresh, monkeypatch: pytest.MonkeyPatch, local_server: LocalServer
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", local_server.base_url)
    endpoint = nbclient.default_client()
    # nbstream's own endpoint, not an SDK client: no openai import for requests it makes
    assert isinstance(endpoint, Endpoint) and endpoint.base_url == local_server.base_url + "/"
    assert endpoint.api_key == nbclient.LOCAL_KEY  # a key-less server still gets a value

    async def one() -> tuple[object, str]:
        assert nbclient.default_client() is endpoint
        req = ChatRequest(
            {"model": "demo?tokens=3", "messages": [{"role": "user", "content": "x"}]}
        )
        text = (await StreamRun(req).arun()).text
        return endpoint.ahttp(), text

    first, text1 = asyncio.run(one())
    second, text2 = asyncio.run(one())  # a new loop must not reuse the old loop's pool
    assert first is not second
    assert text1 == text2 == "".join(demo_tokens(3))
    assert {r.path for r in local_server.requests} == {"/v1/chat/completions"}
    # a script calling asyncio.run() in a loop: the closed loops' pools are let go (each one
    # was kept, with its sockets, until the process ended)
    for _ in range(3):
        asyncio.run(one())
    assert len(endpoint._async) == 1
    assert sum(loop.is_closed() for loop in endpoint._async) == 1  # the last run's only


def test_one_endpoint_per_server_and_key(fresh, local_server: LocalServer) -> None:
    """``%%stream --base-url``: an explicit server, the key from the environment (or the
    placeholder), one endpoint and pool per (server, key)."""
    a = nbclient.client_for(local_server.base_url, "sk-one")
    assert nbclient.client_for(local_server.base_url, "sk-one") is a
    assert nbclient.client_for(local_server.base_url, "sk-two") is not a
    assert "sk-one" not in repr(a)


def test_explicit_client_is_never_replaced(local_server: LocalServer) -> None:
    client = openai.OpenAI(base_url=local_server.base_url, api_key="explicit", max_retries=0)
    req = ChatRequest(
        {"model": "demo?tokens=2", "messages": [{"role": "user", "content": "x"}]}, client
    )
    assert req.supports_sync and not req.supports_async
    assert StreamRun(req).run().text == "".join(demo_tokens(2))
    assert local_server.requests[-1].headers.get("x-stainless-lang") == "python"


def test_chat_requests_ask_for_usage_unless_told_otherwise(local_server: LocalServer) -> None:
    """Usage by default: exact tokens (not estimated) from a server that honours include_usage;
    a caller's stream_options are kept; stream_options=None sends no stream_options at all."""
    client = openai.OpenAI(base_url=local_server.base_url, api_key="x", max_retries=0)
    base = {"model": "demo?tokens=5&ttft=0", "messages": [{"role": "user", "content": "x"}]}

    run = StreamRun(ChatRequest(base, client)).run()
    assert local_server.requests[-1].body["stream_options"] == {"include_usage": True}
    assert run.state.usage is not None and run.state.usage.completion_tokens == 5
    assert run.metrics.tokens == 5 and run.metrics.tokens_estimated is False

    mine = {**base, "stream_options": {"include_usage": False}}
    run = StreamRun(ChatRequest(mine, client)).run()
    assert local_server.requests[-1].body["stream_options"] == {"include_usage": False}
    assert run.state.usage is None and run.metrics.tokens_estimated is True

    run = StreamRun(ChatRequest({**base, "stream_options": None}, client)).run()
    assert "stream_options" not in local_server.requests[-1].body
    assert run.status == "done" and run.metrics.tokens_estimated is True

    resumed = ChatRequest(base, client).with_params(messages=[])
    assert resumed.params["stream_options"] == {"include_usage": True}
