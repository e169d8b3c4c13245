"""nbstream's own request (sources/openai_http.py) over real HTTP on 127.0.0.1: what the server
sees, how every failure reads, Stop, and that a cold ``nbstream.chat`` never loads the SDK.

The requests nbstream makes without a client of the caller's go out without the openai SDK (its
import alone is ~450 ms of a cold start, issue 16 §4). Nothing may change for the user or the
server, so each test holds the own request against an SDK client talking to the same server: the
same request (body, auth, organization and project, the per-request options), the same final
status, reason and chunk log for each HTTP failure (401, 404, 429 with Retry-After, 5xx retried
with backoff, an error in the stream), and no credential in what an error carries. The recorded
streams go through both in tests/test_sources_recorded.py, the network failures (closed port,
DNS, timeouts, TLS) in tests/test_failures.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

import nbstream
from nbstream.redact import scrub_exception
from nbstream.resilience.layer import Resilience
from nbstream.resilience.retry import RetryPolicy
from nbstream.run.stream_run import StreamRun
from nbstream.server import LocalServer
from nbstream.sources.client import client_for
from nbstream.sources.openai_http import (
    USER_AGENT,
    APIStatusError,
    AuthenticationError,
    Endpoint,
    RateLimitError,
    http_library,
)
from nbstream.sources.request import ChatRequest, ResponsesRequest

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-own-request-test-0123456789abcdef"
USER = [{"role": "user", "content": "hi"}]
QUICK = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02)


def _sdk(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0)


# ---- what the server sees -----------------------------------------------------------------------


SAME_HEADERS = ("authorization", "content-type", "accept", "openai-organization", "openai-project")


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_the_server_sees_the_sdks_request(
    api: str, local_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-test")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_test")
    params: dict[str, Any] = {
        "model": "demo?tokens=3&ttft=0",
        "temperature": 0.2,
        "extra_headers": {"X-Trace": "t-1"},
        "extra_query": {"api-version": "2024-10-21"},
        "extra_body": {"nbstream": {"tokens": 4}},
        "timeout": 30.0,
    }
    if api == "chat":
        make: Callable[[Any], Any] = lambda c: ChatRequest({**params, "messages": USER}, c)  # noqa: E731
    else:
        make = lambda c: ResponsesRequest({**params, "input": "hi"}, c)  # noqa: E731
    # a new endpoint (as `%%stream --base-url` makes one): the environment is read now
    own = StreamRun(make(Endpoint(local_server.base_url, KEY))).run()
    theirs = local_server.requests[-1]
    sdk = StreamRun(make(_sdk(local_server.base_url))).run()
    sdks = local_server.requests[-1]
    assert own.text == sdk.text and own.status == sdk.status == "done"
    assert theirs.path == sdks.path  # the endpoint and the extra query
    assert "api-version=2024-10-21" in theirs.path
    assert theirs.body == sdks.body and theirs.body["stream"] is True  # extra_body merged in
    # (the local server keeps no Authorization header: see test_failures_read_as_with_...)
    for name in (*SAME_HEADERS, "x-trace"):
        assert theirs.headers.get(name) == sdks.headers.get(name), name
    assert theirs.headers["openai-project"] == "proj_test"
    assert theirs.headers["user-agent"] == USER_AGENT
    assert not any(h.startswith("x-stainless") for h in theirs.headers)  # the SDK's own telemetry


def test_endpoint_defaults_are_the_sdks() -> None:
    """The SDK's default base URL, timeouts and pool size; no key in the repr."""
    endpoint = Endpoint(None, KEY)
    sdk = openai.OpenAI(api_key=KEY)
    assert endpoint.base_url == str(sdk.base_url)
    http = endpoint.http()
    assert http.timeout == sdk.timeout
    assert http.follow_redirects is True
    pool = http._transport._pool
    limits = sdk._client._transport._pool
    assert (pool._max_connections, pool._max_keepalive_connections) == (
        limits._max_connections,
        limits._max_keepalive_connections,
    )
    assert KEY not in repr(endpoint) and "api.openai.com" in repr(endpoint)
    # the SDK's per-request ``timeout``: absent = the client's, None = none, a number = that
    timeouts = [
        endpoint._request(http, "chat/completions", {"model": "m", **extra}).extensions["timeout"]
        for extra in ({}, {"timeout": None}, {"timeout": 7.5})
    ]
    assert timeouts[0] == sdk.timeout.as_dict()
    assert set(timeouts[1].values()) == {None} and set(timeouts[2].values()) == {7.5}


def test_keep_alive_across_requests(local_server: LocalServer) -> None:
    """One pool per endpoint: the second request reuses the first one's connection."""
    endpoint = client_for(local_server.base_url, KEY)
    params = {"model": "demo?tokens=2&ttft=0", "messages": USER}
    first = StreamRun(ChatRequest(params, endpoint)).run()
    second = StreamRun(ChatRequest(params, endpoint)).run()
    assert first.status == second.status == "done"
    assert len(endpoint.http()._transport._pool.connections) == 1


# ---- failures: the same status, reason and log as with an SDK client ----------------------------


class Scripted(ThreadingHTTPServer):
    """Answers every POST with one scripted response (status, headers, body)."""

    daemon_threads = True

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.answer = (status, headers, body)
        self.seen: list[dict[str, str]] = []
        self.raw: list[list[tuple[str, str]]] = []  # as sent: a header twice is seen twice
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Scripted

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.server.seen.append({k.lower(): v for k, v in self.headers.items()})
        self.server.raw.append(list(self.headers.items()))
        status, headers, body = self.server.answer
        self.send_response(status)
        for name, value in {"content-length": str(len(body)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _json(status: int, message: str, code: str | None = None, **headers: str) -> Any:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    body = json.dumps({"error": error}).encode()
    return status, {"content-type": "application/json", **headers}, body


def _sse(*events: tuple[str | None, dict[str, Any]]) -> Any:
    body = b""
    for event, data in events:
        body += (f"event: {event}\n" if event else "").encode()
        body += b"data: " + json.dumps(data).encode() + b"\n\n"
    return 200, {"content-type": "text/event-stream", "x-request-id": "req_sse"}, body


def _chunk(content: str) -> dict[str, Any]:
    delta = {"index": 0, "delta": {"content": content}, "finish_reason": None}
    return {"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": [delta]}


STREAM_ERROR = {"error": {"message": "The server had an error mid-stream", "type": "server_error"}}
FAILURES: dict[str, Any] = {
    "401": _json(401, "Incorrect API key provided: sk-own-***cdef.", "invalid_api_key"),
    "404 model": _json(404, "The model `nope` does not exist", "model_not_found"),
    "404 plain": (404, {"content-type": "text/plain"}, b"Not Found"),
    "400": _json(400, "Unrecognized request argument supplied: foo"),
    "429 retry-after": _json(
        429,
        "Rate limit reached",
        "rate_limit_exceeded",
        **{"retry-after": "0.05", "x-ratelimit-remaining-requests": "0"},
    ),
    "500": _json(500, "The server had an error while processing your request."),
    "503 not json": (503, {"content-type": "text/html"}, b"<html>upstream down</html>"),
    "error in the stream": _sse((None, _chunk("partial ")), (None, STREAM_ERROR)),
    "event: error": _sse((None, _chunk("partial ")), ("error", STREAM_ERROR)),
}


def _shape(record: dict[str, Any]) -> dict[str, Any]:
    """A log record without what differs between two runs (times, ids, random delays)."""
    skip = ("t", "wall_time", "request_id", "waited_s")
    return {k: v for k, v in record.items() if k not in skip}


def _fail(client_of: Callable[[str], Any], failure: str) -> tuple[StreamRun, dict[str, str], Any]:
    """A run against a server of its own (a 429 blocks its endpoint for the next run), with a
    pinned backoff draw: the run, the headers the server saw, and what the user reads (status,
    reason, text, the log) with the server's address replaced."""
    server = Scripted(*FAILURES[failure])
    try:
        request = ChatRequest({"model": "m", "messages": USER}, client_of(server.base_url))
        run = Resilience(retry=QUICK, session=None, rand=lambda: 0.5).build(request).run()
    finally:
        server.shutdown()
    seen = json.dumps([run.status, run.reason, run.text, [_shape(r) for r in run.log]])
    return run, server.seen[-1], json.loads(seen.replace(server.base_url, "<server>"))


@pytest.mark.parametrize("failure", list(FAILURES))
def test_failures_read_as_with_an_sdk_client(failure: str) -> None:
    own, own_headers, own_read = _fail(lambda url: client_for(url, KEY), failure)
    sdk, sdk_headers, sdk_read = _fail(_sdk, failure)
    assert own_read == sdk_read  # status, reason, text, every log record
    assert own.status == "error", own.reason
    errors = [r for r in own.log if r["type"] == "error"]
    assert errors and all(KEY not in json.dumps(r) for r in own.log)
    if failure.startswith(("429", "500", "503")):  # retried, with the server's Retry-After
        assert [r["type"] for r in own.log if r["type"] in ("retry", "giving_up")] == [
            "retry",
            "giving_up",
        ]
    if failure == "429 retry-after":
        retry = next(r for r in own.log if r["type"] == "retry")
        assert retry["retry_after_s"] == pytest.approx(0.05) and retry["delay_s"] == 0.05
    for name in SAME_HEADERS:
        assert own_headers.get(name) == sdk_headers.get(name), name
    assert own_headers["authorization"] == f"Bearer {KEY}"


def test_a_status_error_carries_no_credential() -> None:
    """The error of a 429: the SDK's class name and attributes, no Authorization anywhere."""
    server = Scripted(*FAILURES["429 retry-after"])
    try:
        with pytest.raises(APIStatusError) as caught:
            client_for(server.base_url, KEY).send("chat/completions", {"model": "m"})
        assert server.seen[-1]["authorization"] == f"Bearer {KEY}"  # it was sent
    finally:
        server.shutdown()
    exc = caught.value
    assert isinstance(exc, RateLimitError) and exc.status_code == 429
    assert exc.message == "Error code: 429 - Rate limit reached"
    assert exc.code == "rate_limit_exceeded" and exc.body["message"] == "Rate limit reached"
    assert exc.response.headers["retry-after"] == "0.05"
    for request in (exc.request, exc.response.request):
        assert "authorization" not in request.headers
    assert KEY not in repr(exc) + str(exc) + repr(vars(exc))


class Redirecting(ThreadingHTTPServer):
    """A POST to ``/old/...`` answers 307 to ``/v1/...``, which answers 401 (a moved endpoint
    behind which the key is rejected): the error comes after a redirect was followed."""

    daemon_threads = True

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []  # (path, Authorization) of each request
        super().__init__(("127.0.0.1", 0), _RedirectHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/old"


class _RedirectHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Redirecting

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.server.seen.append((self.path, self.headers.get("authorization")))
        if self.path.startswith("/old/"):
            self.send_response(307)
            self.send_header("location", "/v1/" + self.path[len("/old/") :])
            body = b""
        else:
            self.send_response(401)
            self.send_header("content-type", "application/json")
            body = json.dumps({"error": {"message": "Bad key", "code": "invalid_api_key"}}).encode()
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _no_key_in_http(exc: BaseException) -> None:
    """No key in the error's request, its response's, nor any redirect hop's (nor their
    ``next_request``), nor in what the error shows."""
    requests = [getattr(exc, "request", None)]
    response = getattr(exc, "response", None)
    if response is not None:
        hops = [*response.history, response]
        assert len(hops) == 2 and hops[0].status_code == 307  # the redirect is kept
        requests += [hop.request for hop in hops] + [hop.next_request for hop in hops]
    for request in requests:
        if request is not None:
            assert KEY not in repr(request.headers.raw), request
    assert KEY not in repr(exc) + str(exc) + repr(vars(exc))


def test_an_error_after_a_redirect_carries_no_credential() -> None:
    """A 307 followed, then a 401: the first request (``Authorization`` and all) is in the
    response's history; the error carries a cleaned copy of every hop (the SDK's
    ``_error_response``)."""
    server = Redirecting()
    try:
        with pytest.raises(AuthenticationError) as caught:
            Endpoint(server.base_url, KEY).send("chat/completions", {"model": "m"})
    finally:
        server.shutdown()
    assert [path for path, _ in server.seen] == ["/old/chat/completions", "/v1/chat/completions"]
    assert all(auth == f"Bearer {KEY}" for _, auth in server.seen)  # it was sent, both times
    _no_key_in_http(caught.value)
    # the original response is untouched (the stream reader may still use it)
    assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"


def test_chat_after_a_redirect_keeps_the_key_out_of_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``nbstream.chat`` through ``OPENAI_BASE_URL`` moved by a 307: no key in the run's
    exception (nor its request, response, history), its log, its reason."""
    server = Redirecting()
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    try:
        view = nbstream.chat("hi", model="m", display=False, background=False)
    finally:
        server.shutdown()
    run = view.run
    assert run.status == "error" and isinstance(run.exception, AuthenticationError)
    assert len(server.seen) == 2
    _no_key_in_http(run.exception)
    shown = [json.dumps(list(run.log)), view.reason, run.error_message, repr(view)]
    assert all(KEY not in str(text) for text in shown)


def test_scrub_exception_cleans_the_redirect_history() -> None:
    """Defence in depth: an exception holding a raw response (its redirect history unclean, as a
    library's own error may) is scrubbed hop by hop, ``next_request`` too."""
    server = Redirecting()
    lib = http_library()
    try:
        with lib.Client(follow_redirects=True) as http:
            followed = http.post(
                server.base_url + "/chat/completions", headers={"Authorization": f"Bearer {KEY}"}
            )
        with lib.Client(follow_redirects=False) as http:
            stopped = http.post(
                server.base_url + "/chat/completions", headers={"Authorization": f"Bearer {KEY}"}
            )
    finally:
        server.shutdown()
    assert followed.history and stopped.next_request is not None
    for response in (followed, stopped):
        exc = RuntimeError("failed")
        exc.response = response  # type: ignore[attr-defined]
        scrub_exception(exc)
        for hop in [*response.history, response]:
            for request in (hop.request, hop.next_request):
                if request is not None:
                    assert KEY not in repr(request.headers.raw), request


# ---- the per-request options: headers and timeout -----------------------------------------------


def test_extra_headers_replace_the_defaults_whatever_their_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``extra_headers`` merged as the SDK merges them: case-insensitively (one header of each
    name, the per-request value wins); ``omit`` / ``NOT_GIVEN`` removes a default header."""
    monkeypatch.setenv("OPENAI_ORG_ID", "org-env")
    server = Scripted(*_sse((None, _chunk("x"))))
    try:
        endpoint = Endpoint(server.base_url, KEY)
        per_request = {
            "authorization": "Bearer per-request",
            "user-agent": "myapp/1",
            "OPENAI-ORGANIZATION": "org-call",
        }
        for extra in (
            per_request,
            {"OpenAI-Organization": openai.omit},
            {"openai-organization": openai.NOT_GIVEN},
        ):
            endpoint.send("chat/completions", {"model": "m", "extra_headers": extra}).close()
    finally:
        server.shutdown()
    replaced, *omitted = server.raw

    def values(raw: list[tuple[str, str]], name: str) -> list[str]:
        return [v for k, v in raw if k.lower() == name]

    assert values(replaced, "authorization") == ["Bearer per-request"]
    assert values(replaced, "user-agent") == ["myapp/1"]
    assert values(replaced, "openai-organization") == ["org-call"]
    assert values(replaced, "accept") == ["application/json"]  # the other defaults stay
    for raw in omitted:
        assert values(raw, "openai-organization") == []
        assert values(raw, "authorization") == [f"Bearer {KEY}"]
        assert values(raw, "user-agent") == [USER_AGENT]


@pytest.mark.parametrize("kind", ["httpx", "library"])
def test_a_timeout_object_is_taken(
    kind: str, local_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``timeout=httpx.Timeout(...)`` (what a user of openai 2.x writes) works with httpx2 as
    with openai 3 (converted), the library's own ``Timeout`` as is."""
    lib: Any = httpx if kind == "httpx" else http_library()
    timeout = lib.Timeout(60.0, read=5.0, write=10.0, connect=2.0)
    endpoint = Endpoint(local_server.base_url, KEY)
    request = endpoint._request(endpoint.http(), "chat/completions", {"timeout": timeout})
    assert request.extensions["timeout"] == timeout.as_dict()
    monkeypatch.setenv("OPENAI_BASE_URL", local_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    view = nbstream.chat(
        "hi",
        model="demo?tokens=5&ttft=0",
        display=False,
        background=False,
        timeout=lib.Timeout(5.0),
        resilience=None,
    )
    assert view.run.status == "done", view.run.reason
    assert view.run.text


# ---- Stop --------------------------------------------------------------------------------------


def test_stop_closes_the_connection_at_once(local_server: LocalServer) -> None:
    endpoint = client_for(local_server.base_url, KEY)
    pace = {"nbstream": {"tokens": 2000, "tokens_per_s": 100}}
    params = {"model": "demo", "messages": USER, "extra_body": pace}
    run = StreamRun(ChatRequest(params, endpoint))
    worker = threading.Thread(target=run.run, daemon=True)
    worker.start()
    deadline = time.monotonic() + 10
    while len(run.text) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.monotonic()
    run.stop()
    worker.join(5)
    assert not worker.is_alive() and time.monotonic() - t0 < 1.0
    assert run.status == "stopped" and len(run.text) >= 20
    record = local_server.wait_for_disconnect(timeout=5)
    assert record.disconnected and record.chunks_sent < 2000


# ---- cold start: no SDK --------------------------------------------------------------------------


COLD = r"""
import sys
import nbstream
view = nbstream.chat("hi", model="demo?tokens=5&ttft=0")
assert view.status == "done", view.reason
again = view.regenerate()
assert again.status == "done", again.reason
both = nbstream.compare("hi", models=["demo?tokens=3&ttft=0", "demo?tokens=4&ttft=0"])
assert [v.status for v in both.views] == ["done", "done"]
print(json.dumps(sorted({m.partition(".")[0] for m in sys.modules} & {"openai", "pydantic"})))
""".replace("import sys\n", "import sys, json\n", 1)


@pytest.mark.parametrize("where", ["OPENAI_BASE_URL", "bundled server"])
def test_chat_in_a_fresh_process_never_imports_the_sdk(
    where: str, local_server: LocalServer
) -> None:
    """``import nbstream; nbstream.chat(...)`` (and Regenerate) in a fresh interpreter: the
    answer comes without ``openai`` (nor pydantic) ever being imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    if where == "OPENAI_BASE_URL":
        env.update(OPENAI_BASE_URL=local_server.base_url, OPENAI_API_KEY=KEY)
    done = subprocess.run(
        [sys.executable, "-c", COLD], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
