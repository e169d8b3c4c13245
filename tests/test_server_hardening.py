"""The local server refuses what a browser page or a broken client could send it (SECURITY.md).

Real HTTP on 127.0.0.1 with ephemeral ports; raw sockets where a well-behaved client would not
send such a request. Every server here stops at the end of its ``with`` block.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import warnings

import openai
import pytest

from nbstream.server import LocalServer
from nbstream.server.demo import demo_tokens

USER = [{"role": "user", "content": "hello"}]
CHAT = json.dumps({"model": "demo?tokens=3", "messages": USER}).encode()


def _raw(port: int, data: bytes, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` as is; read one response (Content-Length framed): status, headers, body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            more = sock.recv(65536)
            assert more, f"connection closed before a response: {buf!r}"
            buf += more
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            more = sock.recv(65536)
            assert more, "connection closed mid-body"
            body += more
        return status, headers, body[:length]


def _post(
    port: int,
    body: bytes = CHAT,
    *,
    host: str | None = None,
    content_type: str | None = "application/json",
    extra: str = "",
    length: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    lines = ["POST /v1/chat/completions HTTP/1.1"]
    if host is not None:
        lines.append(f"Host: {host}")
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body) if length is None else length}")
    head = "\r\n".join(lines) + "\r\nConnection: close\r\n" + extra + "\r\n"
    return _raw(port, head.encode() + body)


def _error(raw: bytes) -> dict:
    """OpenAI's error shape, exactly."""
    body = json.loads(raw)
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def _conn_threads(port: int) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"nbstream-conn-{port}" and t.is_alive()]


@pytest.fixture
def server():
    with LocalServer() as srv:
        yield srv


# -- Host header (DNS rebinding) -------------------------------------------------------------


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "[::1]", "127.0.0.2", "LOCALHOST"])
def test_loopback_host_with_the_right_port_is_served(server: LocalServer, name: str) -> None:
    status, _, raw = _post(server.port, host=f"{name}:{server.port}")
    assert status == 200, raw
    assert json.loads(raw)["choices"][0]["message"]["content"] == "".join(demo_tokens(3))


@pytest.mark.parametrize(
    "host", ["evil.example:{port}", "localhost.evil.example:{port}", "127.0.0.1:1", "localhost"]
)
def test_foreign_host_is_421(server: LocalServer, host: str) -> None:
    status, headers, raw = _post(server.port, host=host.format(port=server.port))
    assert status == 421 and headers["connection"] == "close"
    assert _error(raw)["code"] == "misdirected_request"
    record = server.last_request
    assert record.wait(5) and record.body is None and record.end_reason == "rejected"


def test_rebound_name_cannot_read_models_either(server: LocalServer) -> None:
    request = f"GET /v1/models HTTP/1.1\r\nHost: attacker.example:{server.port}\r\n\r\n"
    status, _, raw = _raw(server.port, request.encode())
    assert status == 421 and b"demo" not in raw


@pytest.mark.parametrize("host", [None, "", "a b:1", "[::1", "127.0.0.1:http", "x@127.0.0.1"])
def test_missing_or_garbled_host_is_400(server: LocalServer, host: str | None) -> None:
    status, _, raw = _post(server.port, host=host)
    assert status == 400
    assert _error(raw)["code"] in ("missing_host", "invalid_host")


def test_allowed_hosts_and_the_openai_client() -> None:
    with LocalServer(allowed_hosts=["notebook.internal"]) as srv:
        assert _post(srv.port, host="notebook.internal:8443")[0] == 200
        assert _post(srv.port, host=f"other.internal:{srv.port}")[0] == 421
        # what the SDK sends (Host: 127.0.0.1:PORT / localhost:PORT) is accepted
        for base in (srv.base_url, f"http://localhost:{srv.port}/v1"):
            client = openai.OpenAI(base_url=base, api_key="local", max_retries=0)
            completion = client.chat.completions.create(model="demo?tokens=2", messages=USER)
            assert completion.choices[0].message.content == "".join(demo_tokens(2))


# -- content type (simple cross-origin POSTs) -------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        None,
        "application/jsonp",
    ],
)
def test_non_json_posts_are_415(server: LocalServer, content_type: str | None) -> None:
    status, _, raw = _post(server.port, host=f"127.0.0.1:{server.port}", content_type=content_type)
    assert status == 415
    assert _error(raw)["code"] == "unsupported_media_type"
    assert server.last_request.body is None


def test_json_with_charset_is_served(server: LocalServer) -> None:
    ct = "Application/JSON; charset=utf-8"
    assert _post(server.port, host=f"127.0.0.1:{server.port}", content_type=ct)[0] == 200


# -- body size ------------------------------------------------------------------------------


def test_announced_huge_body_is_413_before_it_is_read(server: LocalServer) -> None:
    # 50 MB announced, nothing sent: the answer comes at once, so nothing was waited for
    started = time.monotonic()
    status, headers, raw = _post(
        server.port, b"", host=f"127.0.0.1:{server.port}", length=str(50 * 1024 * 1024)
    )
    assert status == 413 and time.monotonic() - started < 2
    assert _error(raw)["code"] == "request_too_large" and headers["connection"] == "close"


def test_client_uploading_too_much_still_reads_the_413() -> None:
    with LocalServer(max_body_bytes=10_000) as srv:
        big = json.dumps(
            {"model": "echo", "messages": [{"role": "user", "content": "x" * 500_000}]}
        )
        client = openai.OpenAI(base_url=srv.base_url, api_key="local", max_retries=0)
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="echo", messages=json.loads(big)["messages"])
        assert info.value.status_code == 413 and info.value.code == "request_too_large"


@pytest.mark.parametrize(
    ("length", "status"),
    [("abc", 400), ("-5", 400), ("1e3", 400), ("9" * 40, 413), ("１２", 400)],
)
def test_bad_content_length_is_a_clean_4xx(server: LocalServer, length: str, status: int) -> None:
    got, _, raw = _post(server.port, b"", host=f"127.0.0.1:{server.port}", length=length)
    assert got == status
    assert _error(raw)["code"] in ("invalid_content_length", "request_too_large")


def test_chunked_and_conflicting_lengths_are_refused(server: LocalServer) -> None:
    host = f"127.0.0.1:{server.port}"
    status, _, raw = _post(server.port, host=host, extra="Transfer-Encoding: chunked\r\n")
    assert status == 411 and _error(raw)["code"] == "length_required"
    status, _, raw = _post(server.port, host=host, extra="Content-Length: 1\r\n")
    assert status == 400 and _error(raw)["code"] == "invalid_content_length"


# -- malformed JSON: a 400, never a 500 or a traceback ---------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"model": "demo", "messages": ' + b"[" * 70 + b"]" * 70 + b"}",
        b'{"model": "demo", "n": 1' + b"0" * 5000 + b', "messages": []}',
        b'{"model": "demo", "messages": [], "max_tokens": 1' + b"0" * 5000 + b"}",
        b"\xff\xfe{}",
        b"",
    ],
    ids=["brackets", "deep", "huge-n", "huge-max-tokens", "bad-utf8", "empty"],
)
def test_malformed_json_is_400(server: LocalServer, body: bytes, capfd) -> None:
    status, _, raw = _post(server.port, body, host=f"127.0.0.1:{server.port}")
    assert status == 400, raw
    assert _error(raw)["code"] == "invalid_json"
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    "body",
    [
        {"model": 5, "messages": USER},
        {"model": "demo", "messages": [1, None, "x", {"role": 3, "content": 7}]},
        {"model": "demo", "messages": "hello"},
        {"model": "demo", "messages": USER, "n": "2"},
        {"model": "demo", "messages": USER, "n": 10**30},
        {"model": "demo", "messages": USER, "max_tokens": 10**300, "stream": True},
        {"model": "demo", "messages": USER, "max_tokens": -1},
        {"model": "demo", "messages": USER, "stream_options": [1], "stream": True},
        {"model": "demo", "messages": USER, "tools": "x", "tool_choice": "required"},
        {"model": "demo", "messages": USER, "tools": [1, {"function": 2}], "tool_choice": 5},
        {"model": "demo", "messages": USER, "nbstream": [1]},
        {"model": "demo", "messages": USER, "nbstream": {"tokens": 1e308}},
        {"model": "demo", "messages": USER, "nbstream": {"ttft": True}},
        {"model": "demo?tokens=" + "9" * 4000, "messages": USER},
    ],
)
def test_odd_bodies_never_500(server: LocalServer, body: dict, capfd) -> None:
    data = json.dumps(body).encode()
    status, _, raw = _post(server.port, data, host=f"127.0.0.1:{server.port}")
    assert status in (200, 400, 404), raw[:300]
    if status != 200:
        _error(raw)
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /v1/models HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n", 505),
        (b"BREW /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 501),
        (b"GET /v1/models HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
    ],
    ids=["garbage", "version", "method", "header-too-long", "uri-too-long"],
)
def test_garbled_requests_get_json_errors(
    server: LocalServer, request_bytes: bytes, status
) -> None:
    got, headers, raw = _raw(server.port, request_bytes)
    assert got == status and headers["content-type"] == "application/json"
    assert _error(raw)["type"] == "invalid_request_error"


# -- fault parameters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"status": 99999},
        {"status": 100},
        {"status": -1},
        {"ttft": 1e9},
        {"stall": 1e9, "stall_after": 1},
        {"delay": 86400},
        {"retry_after": 1e12},
        {"tokens_per_s": 1e-9},
        {"error_message": "x" * 5000},
        {"key": "k" * 5000},
    ],
)
def test_out_of_range_fault_options_are_400(server: LocalServer, options: dict) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="demo", messages=USER, extra_body={"nbstream": options}
        )
    assert info.value.code == "invalid_nbstream_option" and info.value.param == "nbstream"


def test_status_99999_in_the_model_name_is_400_not_a_status_line(server: LocalServer) -> None:
    body = json.dumps({"model": "replay:x.json?status=99999", "messages": USER}).encode()
    status, _, raw = _post(server.port, body, host=f"127.0.0.1:{server.port}")
    assert status == 400 and "'status'" in _error(raw)["message"]


# -- records ---------------------------------------------------------------------------------


def test_big_bodies_are_answered_but_not_kept() -> None:
    with LocalServer(max_record_bytes=3_000_000) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="local", max_retries=0)
        prompt = "word " * 400_000  # 2 MB: served, not kept
        for _ in range(3):
            done = client.chat.completions.create(
                model="demo?tokens=2", messages=[{"role": "user", "content": prompt}]
            )
            assert done.choices[0].message.content == "".join(demo_tokens(2))
        records = srv.requests
        assert len(records) == 3 and all(r.body is None for r in records)
        assert all(r.body_size > 2_000_000 for r in records)
        assert srv._record_bytes < 100_000


def test_records_are_bounded_in_bytes_newest_kept() -> None:
    with LocalServer(max_record_bytes=500_000) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="local", max_retries=0)
        for i in range(10):
            content = f"{i} " + "x" * 100_000
            client.chat.completions.create(
                model="demo?tokens=1", messages=[{"role": "user", "content": content}]
            )
        records = srv.requests
        assert 1 <= len(records) < 10 and srv._record_bytes <= 500_000
        assert records[-1].body["messages"][0]["content"].startswith("9 ")


# -- sockets, threads, stop() ------------------------------------------------------------------


def test_half_open_connections_time_out() -> None:
    with LocalServer(request_timeout=0.3) as srv:
        socks = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(20)]
        try:
            socks[0].sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            for sock in socks:  # the server closes each one after request_timeout
                assert sock.recv(1024) == b""
            deadline = time.monotonic() + 5
            while _conn_threads(srv.port) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _conn_threads(srv.port) == []
        finally:
            for sock in socks:
                sock.close()


def test_connection_threads_are_bounded() -> None:
    with LocalServer(max_connections=4, request_timeout=30) as srv:
        idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(4)]
        try:
            deadline = time.monotonic() + 5
            while len(_conn_threads(srv.port)) < 4 and time.monotonic() < deadline:
                time.sleep(0.02)
            extra = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(6)]
            for sock in extra:  # answered by the accepting thread, no new thread
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
                assert data.startswith(b"HTTP/1.1 503 ")
                assert b'"too_many_connections"' in data
                sock.close()
            assert len(_conn_threads(srv.port)) == 4
        finally:
            for sock in idle:
                sock.close()


def test_stop_ends_a_long_ttft_stream_with_a_pipelining_client() -> None:
    srv = LocalServer().start()
    port = srv.port
    body = json.dumps({"model": "demo?ttft=3600", "messages": USER, "stream": True}).encode()
    one = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(one + one)  # the second request waits in the socket: "readable" all along
        srv.wait_for_requests(1)
        time.sleep(0.3)  # inside the ttft wait
        assert len(_conn_threads(port)) == 1
        started = time.monotonic()
        srv.stop()
        assert time.monotonic() - started < 3
        assert _conn_threads(port) == []
        assert srv.requests[0].end_reason == "server_stopped"
    finally:
        sock.close()
        srv.stop()


def test_a_stopped_server_starts_again() -> None:
    srv = LocalServer()
    srv.start()
    srv.stop()
    with srv:  # a stream, which the old stop flag would cut at its first chunk
        client = openai.OpenAI(base_url=srv.base_url, api_key="local", max_retries=0)
        stream = client.chat.completions.create(model="demo?tokens=3", messages=USER, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "".join(demo_tokens(3))


# -- listening beyond loopback -----------------------------------------------------------------


def test_cli_warns_when_listening_on_every_interface() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbstream", "serve", "--host", "0.0.0.0", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        text = "".join(lines)
        assert "WARNING" in lines[0] and "anyone who can reach this machine" in text
        port = int(re.search(r"http://0\.0\.0\.0:(\d+)/v1", text).group(1))
        assert _post(port, host=f"127.0.0.1:{port}")[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


def test_loopback_start_is_quiet_and_other_hosts_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with LocalServer():
            pass
    with (
        pytest.warns(RuntimeWarning, match="anyone who can reach this machine"),
        LocalServer(host="0.0.0.0"),
    ):
        pass
