"""No credential nbstream can know reaches any artefact: a planted secret of each kind, real
journeys over real HTTP on 127.0.0.1, then every artefact grepped for the secret as is, split,
JSON-escaped, URL-encoded and base64 (Basic).

The kinds: an explicit ``OpenAI(api_key=...)`` (the README's main path), a ``default_headers``
token, a ``default_query`` / base-URL ``?api-key=``, a base-URL password (``user:pw@``) and the
Basic-auth header httpx derives from it, an environment key. Every secret here is shapeless
(``opaque-...``): only the registry can know it, a key-shape regex cannot.

The echo server below sends back what it received (the Authorization and token headers, the
query, the prompt) the way a model that repeats a key would: split across chunks of a few
characters, JSON-escaped (``\\u002d``, ``\\/``), and in its ``x-request-id``; it fails with the key
and the URL in the error body when asked to.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import openai
import pytest

import nbstream
from nbstream.frontend.widget import StreamView
from nbstream.redact import REDACTED, register_secret
from nbstream.resilience.errors import explain
from nbstream.resilience.layer import Resilience
from nbstream.sources.request import ChatRequest

# ---- a local server that echoes credentials back -------------------------------------------


def _pieces(text: str, n: int = 4) -> list[str]:
    return [text[i : i + n] for i in range(0, len(text), n)]


def _escaped(text: str) -> str:
    """``text`` as a JSON string body with every ``-`` and ``/`` escaped (valid JSON)."""
    return json.dumps(text)[1:-1].replace("-", "\\u002d").replace("/", "\\/")


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received: list[dict[str, Any]]

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        query = dict(parse_qsl(urlsplit(self.path).query))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.received.append({"path": self.path, "headers": headers, "body": body})
        said = [
            self.headers.get("authorization", ""),
            self.headers.get("x-auth-token", ""),
            query.get("api-key", ""),
            body["messages"][-1]["content"],
        ]
        said = [s for s in said if s]
        token = said[0].partition(" ")[2] or said[0]
        url = f"http://{self.headers.get('host')}{self.path}"
        model = body.get("model", "")
        if model == "fail401":
            return self._json(
                401,
                {"error": {"message": f"Incorrect API key provided: {token} ({url})"}},
                token,
            )
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("x-request-id", f"req_{token}")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        head = '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"echo",'
        for text in said:
            for piece in ["\nheard: ", *_pieces(text), " (whole:", f" {text}", ")"]:
                self._data(head + '"choices":[{"index":0,"delta":{"content":' + json.dumps(piece))
            escaped = _escaped(text)
            self._data(head + f'"choices":[{{"index":0,"delta":{{"content":" esc:{escaped}"')
        if model == "midfail":
            self._send(
                "data: "
                + json.dumps({"error": {"message": f"key {token} rejected at {url}"}})
                + "\n\n"
            )
        else:
            finish = '"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'
            self._send(f"data: {head}{finish}\n\n")
            self._send("data: [DONE]\n\n")
        self._send("")

    def _data(self, chunk_head: str) -> None:
        self._send(f"data: {chunk_head}}}}}]}}\n\n")

    def _send(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _json(self, status: int, body: Any, token: str) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("x-request-id", f"req_{token}")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def echo_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Handler", (_Echo,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- every artefact, and the forms a secret can take in them -------------------------------


def _forms(secret: str) -> set[str]:
    """The secret as is, JSON-escaped both ways, URL-encoded, and every 8-character piece of it
    (what survives when a key split across chunks is scrubbed chunk by chunk)."""
    forms = {secret, _escaped(secret), json.dumps(secret)[1:-1], quote(secret, safe="")}
    forms |= {secret[i : i + 8] for i in range(len(secret) - 7)}
    return forms


def _chain_text(exc: BaseException | None) -> str:
    parts = []
    seen = 0
    while exc is not None and seen < 20:
        seen += 1
        parts += [str(exc), repr(exc), repr(exc.args), repr(getattr(exc, "body", None))]
        for name in ("request", "_request"):
            request = exc.__dict__.get(name)
            if request is not None:
                parts += [repr(request), str(request.url), repr(dict(request.headers))]
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


def _artefacts(view: StreamView, tmp_path: Path, *extra: Any) -> dict[str, str]:
    """Everything nbstream shows, saves, sends to the widget or raises about a stream."""
    run = view.run
    assert run is not None
    path = view.log.to_jsonl(tmp_path / "export.jsonl")
    jsonl = path.read_text(encoding="utf-8")
    decoded = [json.loads(line) for line in jsonl.splitlines()]
    deltas = "".join(  # the log's text joined: a key split across chunks shows here
        (c.get("delta") or {}).get("content") or ""
        for rec in decoded
        if rec["type"] == "chunk"
        for c in (rec.get("data") or {}).get("choices") or []
    )
    panel = view._log_page({"type": "log_page", "start": 0, "count": 500, "raw": True})
    panel_times = view._log_page({"type": "log_page", "start": 0, "count": 0, "times": True})
    panel_jsonl = view._log_page({"type": "log_page", "jsonl": True})
    guard = getattr(run, "resilience", None)
    return {
        "to_jsonl": jsonl,
        "to_jsonl decoded": json.dumps(decoded, ensure_ascii=False),
        "log text joined": deltas,
        "log records": json.dumps(list(view.log), ensure_ascii=False),
        "log panel rows": json.dumps(panel, ensure_ascii=False),
        "log panel times": json.dumps(panel_times, ensure_ascii=False),
        "log panel jsonl": json.dumps(panel_jsonl, ensure_ascii=False),
        "widget state": json.dumps(view.get_state(), ensure_ascii=False, default=str),
        "snapshot": json.dumps(view._publisher.snapshot(), ensure_ascii=False),
        "metrics": json.dumps(view.metrics.to_dict()) + repr(view.metrics),
        "reprs": "\n".join(
            [repr(view), repr(run), repr(run.source), repr(view.log), *map(repr, extra)]
        ),
        "reason": f"{view.reason}\n{run.error_message}",
        "run.exception": _chain_text(run.exception),
        "explained error": str(getattr(guard, "error", None)),
    }


def _assert_clean(artefacts: dict[str, str], secrets: dict[str, str]) -> None:
    leaks = [
        f"{kind} ({form!r}) in {where}"
        for where, text in artefacts.items()
        for kind, secret in secrets.items()
        for form in _forms(secret)
        if form in text
    ]
    assert not leaks, "\n".join(leaks[:20])


# ---- the journeys ---------------------------------------------------------------------------


def test_explicit_key_header_token_and_query_never_leak(
    echo_server: tuple[str, list[dict[str, Any]]], tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    """The README's main path: ``OpenAI(api_key=...)``, plus an auth header and an Azure-style
    ``api-key`` query; the server echoes all three (split, escaped, whole, in its request id)."""
    host, received = echo_server
    secrets = {
        "api_key": "opaque-EXPLICITkey-0001",
        "header token": "opaque-HEADERtoken-0002",
        "query api-key": "opaque-QUERYkey-0003",
        "extra header": "opaque-EXTRAheader-0014",
    }
    client = openai.OpenAI(
        api_key=secrets["api_key"],
        base_url=f"http://{host}/v1",
        default_headers={"X-Auth-Token": secrets["header token"]},
        default_query={"api-key": secrets["query api-key"]},
        max_retries=0,
    )
    view = nbstream.chat(
        "say hi",
        model="echo",
        client=client,
        display=False,
        extra_headers={"X-Request-Token": secrets["extra header"]},  # logged with the params
    )
    # the secrets really went out and came back in the stream
    sent = received[-1]
    assert sent["headers"]["x-request-token"] == secrets["extra header"]
    assert sent["headers"]["authorization"] == f"Bearer {secrets['api_key']}"
    assert secrets["query api-key"] in sent["path"]
    assert view.status == "done"
    assert secrets["api_key"] in view.text and secrets["header token"] in view.text
    assert view.log.request_id(1) is not None
    artefacts = _artefacts(view, tmp_path, ChatRequest({"model": "m"}, client))
    captured = capfd.readouterr()
    artefacts["stdout/stderr"] = captured.out + captured.err
    _assert_clean(artefacts, secrets)
    assert REDACTED in artefacts["log text joined"] and REDACTED in artefacts["metrics"]


def test_url_password_and_derived_basic_auth_never_leak(
    echo_server: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """``http://user:pw@host/v1``: httpx sends ``Authorization: Basic base64(user:pw)``; the
    server echoes it (and the model fails mid-stream naming the URL)."""
    host, received = echo_server
    password = "opaque-URLpassword-0004"
    basic = base64.b64encode(f"alice:{password}".encode()).decode()
    client = openai.OpenAI(
        api_key="opaque-BASICPATHkey-0005", base_url=f"http://alice:{password}@{host}/v1"
    )
    request = ChatRequest({"model": "midfail", "messages": [{"role": "user", "content": "hi"}]})
    request = ChatRequest(request.params, client)
    view = nbstream.stream(request, display=False)
    assert received[-1]["headers"]["authorization"] == f"Basic {basic}"
    assert basic in view.text  # echoed back by the "model"
    assert view.status == "error"
    artefacts = _artefacts(view, tmp_path, request)
    _assert_clean(artefacts, {"url password": password, "basic": basic})
    assert f"http://{host}/v1" in repr(request)  # still says where, without the userinfo


def test_environment_key_through_the_default_client(
    echo_server: tuple[str, list[dict[str, Any]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No client given: ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``; another vendor's key in the
    environment is echoed in the prompt and must not come back either."""
    host, received = echo_server
    env_key = "opaque-ENVkey-0006"
    other = "opaque-ANTHROPICkey-0007"
    monkeypatch.setenv("OPENAI_API_KEY", env_key)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://{host}/v1")
    monkeypatch.setenv("ANTHROPIC_API_KEY", other)
    view = nbstream.chat(f"my other key is {other}", model="echo", display=False)
    assert received[-1]["headers"]["authorization"] == f"Bearer {env_key}"
    assert env_key in view.text and other in view.text
    artefacts = _artefacts(view, tmp_path)
    _assert_clean(artefacts, {"OPENAI_API_KEY": env_key, "ANTHROPIC_API_KEY": other})


def test_rejected_key_in_the_error_body_and_request_id(
    echo_server: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """HTTP 401 whose body quotes the key and the URL, with the key in ``x-request-id``."""
    host, _received = echo_server
    key = "opaque-REJECTEDkey-0008"
    client = openai.OpenAI(api_key=key, base_url=f"http://{host}/v1", max_retries=0)
    view = nbstream.chat("hi", model="fail401", client=client, display=False)
    assert view.status == "error" and view.run.exception is not None
    assert view.run.exception.status_code == 401  # still the SDK's error, usable by code
    artefacts = _artefacts(view, tmp_path)
    with pytest.raises(openai.AuthenticationError) as raised:  # what the user's own call sees
        client.chat.completions.create(model="fail401", messages=[{"role": "user", "content": "x"}])
    artefacts["explain()"] = str(explain(raised.value)) + repr(explain(raised.value).record())
    _assert_clean(artefacts, {"api_key": key})
    assert "HTTP 401" in artefacts["reason"]


def test_connection_error_with_credentials_in_the_base_url(tmp_path: Path) -> None:
    """A closed port, base URL ``http://user:pw@127.0.0.1:PORT/v1?api-key=...``: the connection
    error names the URL in the SDK's exception, httpx's and the explained message."""
    password = "opaque-CLOSEDpw-0009"
    query = "opaque-CLOSEDquery-0010"
    url = f"http://bob:{password}@127.0.0.1:{_closed_port()}/v1?api-key={query}"
    client = openai.OpenAI(api_key="opaque-CLOSEDkey-0011", base_url=url, max_retries=0)
    # retries off, as a user who wants the failure at once sets it (the default backs off for
    # seconds on a refused port)
    view = nbstream.chat(
        "hi", model="m", client=client, display=False, resilience=Resilience(retry=None)
    )
    assert view.status == "error"
    assert "connect" in view.reason.lower()
    exc = view.run.exception
    assert isinstance(exc, openai.APIConnectionError)
    artefacts = _artefacts(view, tmp_path, client.base_url and ChatRequest({"model": "m"}, client))
    _assert_clean(
        artefacts,
        {
            "url password": password,
            "query api-key": query,
            "basic": base64.b64encode(f"bob:{password}".encode()).decode(),
        },
    )


# ---- %%stream in a real kernel: what the prompt may carry ----------------------------------


def test_stream_magic_never_sends_the_environment_or_runs_getters(
    echo_server: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """``{os.environ}`` (the whole environment, the key inside) and a raising property: each is
    a one-line UsageError naming the placeholder, never the key, and nothing reaches the
    server. A plain name and a data attribute still go through."""
    from kernel_session import KernelSession

    host, received = echo_server
    key = "opaque-KERNELenvkey-0012"
    session = KernelSession(
        tmp_path, {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": f"http://{host}/v1"}
    )
    try:
        session.ok(
            "%load_ext nbstream\nimport os\n"
            "class Doc:\n"
            "    name = 'streams'\n"
            "    @property\n"
            "    def title(self):\n"
            "        raise RuntimeError('getter ran')\n"
            "doc = Doc()\nsettings = {'key': os.environ['OPENAI_API_KEY']}"
        )
        for cell, expect in [
            ("%%stream -m echo\nSummarize {os.environ}", "process environment"),
            ("%%stream -m echo\nUse {settings}", "holds a credential"),
            ("%%stream -m echo\nAbout {doc.title}", "computed"),
        ]:
            result = session.run(cell)
            assert result.ename == "UsageError", (cell, result.ename, result.evalue)
            shown = f"{result.evalue}\n{result.stdout}\n{result.stderr}\n{result.traceback}"
            assert expect in shown and "Nothing was sent" in shown, shown
            assert key not in shown and "getter ran" not in shown
            assert "\n" not in (result.evalue or "").strip()
        assert received == []  # not one request left the kernel
        session.ok("%%stream -m echo --out answer\nAbout {doc.name}")
        assert received[-1]["body"]["messages"][-1]["content"] == "About streams"
        assert received[-1]["headers"]["authorization"] == f"Bearer {key}"
        assert key in session.value("answer")  # the echo repeated the Authorization header
    finally:
        session.close()


def test_stream_magic_outputs_hold_no_echoed_key(
    echo_server: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """What the cell leaves in the notebook (the live widget's output and the static copy) holds
    no key, even when the model repeats it."""
    from kernel_session import KernelSession

    host, _received = echo_server
    key = "opaque-KERNELoutputkey-0013"
    session = KernelSession(
        tmp_path, {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": f"http://{host}/v1"}
    )
    try:
        session.ok("%load_ext nbstream")
        result = session.ok("%%stream -m echo\nhello")
        outputs = json.dumps(result.outputs)
        assert "heard: " in outputs  # the answer is there
        assert key not in outputs and REDACTED in outputs
    finally:
        session.close()


# ---- the chunk log on its own: long streams, other kinds of text ---------------------------


def _chat_chunk(**delta: Any) -> str:
    return json.dumps({"id": "c", "choices": [{"index": 0, "delta": delta}]})


def test_a_split_secret_is_scrubbed_even_after_the_log_spilled(tmp_path: Path) -> None:
    """A long stream spills to disk every few records: the chunks of a word being spelled stay
    in memory until the word ends, so a key completed later is scrubbed from all of them; tool
    call arguments, Responses deltas and text sources are watched the same way."""
    from nbstream.events import TextDelta, ToolCallDelta
    from nbstream.redact import register_secret
    from nbstream.run.log import ChunkLog

    secret = "opaque-SPILLsecret-0015"
    register_secret(secret)
    log = ChunkLog(max_memory=4, spill_path=tmp_path / "spill.jsonl")
    log.begin(1, "chat")
    i = 0
    for round_ in range(20):
        for piece in [" word", f" {round_}", *_pieces(" " + secret, 2), " end", "."]:
            log.chunk(1, i, i / 100, _chat_chunk(content=piece), [TextDelta(piece)])
            i += 1
        args = f'{{"token": "{secret}"}}'
        for piece in _pieces(args, 3):
            raw = _chat_chunk(tool_calls=[{"index": 0, "function": {"arguments": piece}}])
            log.chunk(1, i, i / 100, raw, [ToolCallDelta(index=0, arguments=piece)])
            i += 1
    log.end(1, 1.0, "done", None)
    log.begin(2, "responses")
    for piece in _pieces(f"a {secret} b", 5):
        raw = json.dumps({"type": "response.output_text.delta", "delta": piece})
        log.chunk(2, i, 0.0, raw, [TextDelta(piece)])
        i += 1
    log.begin(3, "text")
    for piece in _pieces(f"a {secret} b", 3):
        log.chunk(3, i, 0.0, piece, [TextDelta(piece)])
        i += 1
    assert log.spill_path is not None  # most of it went to disk
    exported = log.to_jsonl(tmp_path / "all.jsonl").read_text()
    joined = "".join(
        json.dumps(r.get("data", r.get("text")), ensure_ascii=False) for r in log.chunks()
    )
    texts = []
    for r in log:
        if r["type"] != "chunk":
            continue
        data = r.get("data")
        if isinstance(data, dict) and "delta" in data:
            texts.append(data["delta"])
        elif isinstance(data, dict):
            delta = data["choices"][0]["delta"]
            texts.append(delta.get("content") or delta["tool_calls"][0]["function"]["arguments"])
        else:
            texts.append(r["text"])
    text = "".join(texts)
    _assert_clean(
        {"to_jsonl": exported, "records": joined, "joined text": text}, {"secret": secret}
    )
    assert text.count(REDACTED) >= 20 * 2 + 2
    assert " word 19" in text and '{"token": "' in text  # the rest is kept


def test_a_json_escaped_key_is_caught_raw_and_decoded() -> None:
    from nbstream.run.log import ChunkLog

    secret = "opaque-ESCAPEDsecret-0016"
    ChatRequest({"model": "m"}, openai.OpenAI(api_key=secret, base_url="http://127.0.0.1:9/v1"))
    log = ChunkLog()
    log.begin(1, "chat")
    raw = '{"choices":[{"index":0,"delta":{"content":"key: ' + _escaped(secret) + '"}}]}'
    log.chunk(1, 0, 0.0, raw)  # no events: the per-chunk scrub alone must catch it
    record = next(log.chunks())
    assert record["data"]["choices"][0]["delta"]["content"] == f"key: {REDACTED}"
    assert not any(form in json.dumps(list(log)) for form in _forms(secret))


def test_a_repeated_key_is_not_sent_again_with_the_chat_history() -> None:
    """``%%stream --chat``: the earlier answers go out with every later turn; a key the model
    repeated is scrubbed from the history (and from ``--show``)."""
    from nbstream.notebook.conversations import Conversations

    secret = "opaque-HISTORYkey-0017"
    ChatRequest({"model": "m"}, openai.OpenAI(api_key=secret, base_url="http://127.0.0.1:9/v1"))
    chats = Conversations()
    chat = chats.get("trip")
    chat.record("what is my key?", f"Your key is {secret[:9]}{secret[9:]}.")
    outgoing = json.dumps(chat.messages("and now?"))
    assert secret not in outgoing and f"Your key is {REDACTED}." in outgoing
    assert secret not in repr(chats) + repr(chat)


def test_resume_does_not_send_a_repeated_key_back(local_server: Any) -> None:
    """Continue sends the partial answer back to the model: a key it repeated is scrubbed from
    what goes out (the local server records the request it received)."""
    secret = "opaque-RESUMEkey-0018"
    client = openai.OpenAI(api_key="opaque-RESUMEclient-0019", base_url=local_server.base_url)
    view = nbstream.chat(
        f"repeat {secret} please",
        model="echo?disconnect_after=3&fail_times=1&key=resume-secret",
        client=client,
        display=False,
        resilience=Resilience(retry=None),
    )
    assert view.status == "incomplete" and secret[:6] in view.text
    register_secret(secret)  # as if it were an environment key the model had seen
    view.resume()
    view.wait(timeout=20)
    bodies = json.dumps([r.body for r in local_server.requests])
    assert len(local_server.requests) == 2
    continued = json.dumps(local_server.requests[-1].body["messages"][1:])
    assert REDACTED in continued and secret not in continued
    assert secret in bodies  # only in the user's own first prompt
