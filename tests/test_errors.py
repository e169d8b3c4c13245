"""Errors users understand: real SDK failures against the local server mapped to clear messages."""

from __future__ import annotations

import socket

import httpx2
import openai
import pytest

from nbstream.resilience.errors import (
    AuthenticationFailed,
    BadBaseURL,
    BadRequest,
    ConnectionFailed,
    MissingAPIKey,
    NbstreamError,
    RateLimited,
    ServerError,
    UnknownModel,
    explain,
)
from nbstream.server import serve

PLANTED = "sk-proj-PLANTEDsecret0123456789abcdef"
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def server():
    with serve() as s:
        yield s


def failure(fn) -> BaseException:
    with pytest.raises(Exception) as info:
        fn()
    return info.value


def check(err: NbstreamError, kind: type[NbstreamError], *needles: str) -> None:
    assert isinstance(err, kind), err
    for needle in needles:
        assert needle in err.text, err.text
    assert PLANTED not in err.text and PLANTED not in repr(err.record())
    assert err.hint  # always says what to do
    lines = err._render_traceback_()
    assert lines[0].startswith(type(err).__name__) and "Traceback" not in "".join(lines)


def test_missing_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    err = explain(failure(lambda: openai.OpenAI()))
    check(err, MissingAPIKey, "No API key", "OPENAI_API_KEY")


def test_unknown_model_keeps_the_servers_message(server) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key=PLANTED, max_retries=0)
    exc = failure(
        lambda: client.chat.completions.create(model="gpt-nope", messages=MESSAGES, stream=True)
    )
    err = explain(exc, base_url=server.base_url, model="gpt-nope")
    check(err, UnknownModel, "Unknown model 'gpt-nope'", "demo", "models.list()")
    assert err.status == 404 and err.request_id and err.request_id.startswith("req_")


def test_bad_base_url_path(server) -> None:
    client = openai.OpenAI(base_url=server.url + "/wrong", api_key=PLANTED, max_retries=0)
    exc = failure(lambda: client.chat.completions.create(model="demo", messages=MESSAGES))
    check(explain(exc), BadBaseURL, "HTTP 404", "/v1")


def test_bad_base_url_scheme() -> None:
    client = openai.OpenAI(base_url="localhost:8000/v1", api_key=PLANTED, max_retries=0)
    exc = failure(lambda: client.chat.completions.create(model="demo", messages=MESSAGES))
    check(explain(exc, base_url="localhost:8000/v1"), BadBaseURL, "localhost:8000/v1")


def test_http_400_shows_the_servers_message(server) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key=PLANTED, max_retries=0)
    exc = failure(
        lambda: client.chat.completions.create(
            model="demo", messages=MESSAGES, extra_body={"nbstream": {"nope": 1}}
        )
    )
    check(explain(exc), BadRequest, "HTTP 400", "Unknown nbstream option 'nope'")


def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}/v1"
    client = openai.OpenAI(base_url=base, api_key=PLANTED, max_retries=0)
    exc = failure(lambda: client.chat.completions.create(model="demo", messages=MESSAGES))
    check(explain(exc, base_url=base), ConnectionFailed, "connection refused", base, "running")


@pytest.mark.parametrize(
    ("fail", "kind"), [(429, RateLimited), (503, ServerError), (500, ServerError)]
)
def test_status_faults(server, fail: int, kind: type[NbstreamError]) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key=PLANTED, max_retries=0)
    exc = failure(
        lambda: client.chat.completions.create(
            model="demo", messages=MESSAGES, extra_body={"nbstream": {"fail": fail}}
        )
    )
    check(explain(exc), kind, f"HTTP {fail}")


def test_rejected_key_is_redacted_in_the_message() -> None:
    request = httpx2.Request("POST", "https://api.example.com/v1/chat/completions")
    body = {
        "error": {"message": f"Incorrect API key provided: {PLANTED}.", "code": "invalid_api_key"}
    }
    response = httpx2.Response(401, request=request, json=body)
    client = openai.OpenAI(api_key=PLANTED, base_url="https://api.example.com/v1")
    err = explain(client._make_status_error_from_response(response))
    check(err, AuthenticationFailed, "HTTP 401", "[REDACTED]")


def test_already_explained_and_unknown_errors() -> None:
    err = MissingAPIKey("No API key is set.", "Set it.")
    assert explain(err) is err
    other = explain(ValueError(f"odd {PLANTED}"))
    assert type(other) is NbstreamError and PLANTED not in other.text
