"""HTTP surface of the local server: errors, headers, models, rate limits, log replay, CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest

from nbstream.server import LocalServer, RateLimit, serve, start_background, stop_background
from nbstream.server.demo import demo_tokens

USER = [{"role": "user", "content": "hello"}]


def _request(server: LocalServer, path: str, body: dict | bytes | None = None):
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        server.base_url + path, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def _error(raw: bytes) -> dict:
    body = json.loads(raw)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def _client(server: LocalServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)


def test_unknown_model_is_404_with_help(local_server: LocalServer) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        _client(local_server).chat.completions.create(model="gpt-9", messages=USER)
    assert info.value.code == "model_not_found" and info.value.param == "model"
    assert "'demo'" in info.value.message and "OPENAI_API_KEY" in info.value.message


def test_invalid_json_is_400(local_server: LocalServer) -> None:
    status, headers, raw = _request(local_server, "/chat/completions", b"{not json")
    assert status == 400 and headers["Content-Type"] == "application/json"
    error = _error(raw)
    assert error["code"] == "invalid_json" and error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/chat/completions", {"messages": USER}, "model"),
        ("/chat/completions", {"model": "demo"}, "messages"),
        ("/responses", {"model": "demo"}, "input"),
    ],
)
def test_missing_parameters_are_400(local_server: LocalServer, path, body, param) -> None:
    status, _, raw = _request(local_server, path, body)
    assert status == 400
    error = _error(raw)
    assert error["param"] == param and error["code"] == "missing_required_parameter"


def test_bad_options_are_400_and_list_valid_ones(local_server: LocalServer) -> None:
    client = _client(local_server)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="demo?disconect_after=2", messages=USER)
    assert info.value.param == "model" and "disconnect_after" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="demo", messages=USER, extra_body={"nbstream": {"ttft": "soon"}}
        )
    assert info.value.param == "nbstream" and "'ttft' must be a number" in info.value.message
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="demo?fail=404", messages=USER)


def test_body_options_win_over_model_name(local_server: LocalServer) -> None:
    completion = _client(local_server).chat.completions.create(
        model="demo?tokens=3", messages=USER, extra_body={"nbstream": {"tokens": 5}}
    )
    assert completion.choices[0].message.content == "".join(demo_tokens(5))
    assert completion.model == "demo"
    assert local_server.requests[-1].options.tokens == 5


@pytest.mark.parametrize(
    "name", ["../README.md", "..", ".hidden.sse", "a/b.sse", "..\\x.sse", "/etc/passwd"]
)
def test_replay_path_tricks_are_400(tmp_path: Path, name: str) -> None:
    streams = tmp_path / "streams"
    streams.mkdir()
    (streams / "a.sse").write_text("data: [DONE]\n\n")
    with serve(streams_dir=streams) as server:
        status, _, raw = _request(
            server, "/chat/completions", {"model": f"replay:{name}", "messages": USER}
        )
    assert status == 400, raw
    assert _error(raw)["code"] == "invalid_replay_name"


def test_replay_of_missing_file_is_404_listing_files(local_server, shared_streams) -> None:
    status, _, raw = _request(
        local_server, "/chat/completions", {"model": "replay:nope.sse", "messages": USER}
    )
    assert status == 404
    assert "01-openai-chat-text-include-usage.sse" in _error(raw)["message"]


def test_replay_without_streams_dir_says_how() -> None:
    with serve() as server:
        status, _, raw = _request(
            server, "/chat/completions", {"model": "replay:x.sse", "messages": USER}
        )
    assert status == 404 and "streams_dir" in _error(raw)["message"]


def test_unknown_endpoint_is_404(local_server: LocalServer) -> None:
    status, _, raw = _request(local_server, "/embeddings", {"model": "demo"})
    assert status == 404 and _error(raw)["code"] == "unknown_url"


def test_request_id_unique_and_ratelimit_headers_everywhere(local_server: LocalServer) -> None:
    ids = []
    for path, body in [
        ("/models", None),
        ("/chat/completions", {"model": "demo?tokens=2", "messages": USER}),
        ("/chat/completions", {"model": "demo?tokens=2", "messages": USER, "stream": True}),
        ("/chat/completions", {"model": "nope", "messages": USER}),
        ("/responses", {"model": "demo?tokens=2", "input": "x", "stream": True}),
    ]:
        _, headers, _ = _request(local_server, path, body)
        ids.append(headers["x-request-id"])
        for name in ("requests", "tokens"):
            assert int(headers[f"x-ratelimit-limit-{name}"]) > 0
            assert int(headers[f"x-ratelimit-remaining-{name}"]) >= 0
            assert re.fullmatch(r"\d+(\.\d+)?(ms|s)|\d+m\d+s", headers[f"x-ratelimit-reset-{name}"])
    assert len(set(ids)) == len(ids)
    assert [r.request_id for r in local_server.requests] == ids


def test_request_id_reaches_the_sdk(local_server: LocalServer) -> None:
    stream = _client(local_server).chat.completions.create(
        model="demo?tokens=2", messages=USER, stream=True
    )
    with stream:
        list(stream)
    assert stream.response.headers["x-request-id"] == local_server.requests[-1].request_id


def test_models_endpoint_lists_demo_and_replays(local_server, shared_streams) -> None:
    models = [m.id for m in _client(local_server).models.list()]
    assert models[:2] == ["demo", "echo"]
    assert "replay:05-azure-chat-content-filter-long-story.sse" in models
    assert _client(local_server).models.retrieve("echo").id == "echo"


def test_server_wide_rate_limit() -> None:
    with serve(rate_limit=RateLimit(requests=3, window_s=1.0)) as server:
        assert [_request(server, "/models")[0] for _ in range(5)] == [200] * 5  # not counted
        body = {"model": "demo?tokens=2", "messages": USER}
        results = [_request(server, "/chat/completions", body) for _ in range(4)]
        statuses = [status for status, _, _ in results]
        assert statuses == [200, 200, 200, 429]
        assert [h["x-ratelimit-remaining-requests"] for _, h, _ in results] == ["2", "1", "0", "0"]
        _, headers, raw = results[3]
        assert _error(raw)["code"] == "rate_limit_exceeded"
        assert 0 < int(headers["retry-after-ms"]) <= 1000 and headers["retry-after"] == "1"
        time.sleep(int(headers["retry-after-ms"]) / 1000 + 0.05)
        assert _request(server, "/chat/completions", body)[0] == 200


def test_token_rate_limit_counts_prompt_and_answer() -> None:
    with serve(rate_limit=RateLimit(tokens=25, window_s=60)) as server:
        body = {"model": "demo?tokens=10", "messages": USER}  # 1 prompt token + 10 answer tokens
        statuses = [_request(server, "/chat/completions", body)[0] for _ in range(3)]
        assert statuses == [200, 200, 429]


def _chunk_log_lines(source: str, chunks: list[dict], error: dict | None = None) -> str:
    lines = [{"type": "request", "attempt": 1, "t": 0.0, "source": source, "params": {}}]
    lines.append({"type": "end", "attempt": 1, "t": 0.1, "status": "error", "reason": "first"})
    lines.append({"type": "request", "attempt": 2, "t": 0.0, "source": source, "params": {}})
    lines.append({"type": "response", "attempt": 2, "t": 0.1, "status": 200, "headers": {}})
    for index, chunk in enumerate(chunks):
        lines.append(
            {"type": "chunk", "attempt": 2, "index": index, "t": 0.1 + index / 100, "data": chunk}
        )
    if error is not None:
        lines.append({"type": "error", "attempt": 2, "t": 1, "message": "x", "data": error})
    lines.append({"type": "end", "attempt": 2, "t": 1.0, "status": "done", "reason": None})
    return "\n".join(json.dumps(line, separators=(",", ":")) for line in lines) + "\n"


def test_chunk_log_replay_chat(tmp_path: Path) -> None:
    with serve() as server:
        stream = _client(server).chat.completions.create(
            model="demo?tokens=6", messages=USER, stream=True
        )
        with stream:
            original = [chunk.model_dump(exclude_unset=True) for chunk in stream]
    (tmp_path / "run.jsonl").write_text(_chunk_log_lines("chat", original))
    with serve(streams_dir=tmp_path) as server:
        stream = _client(server).chat.completions.create(
            model="replay:run.jsonl", messages=USER, stream=True
        )
        with stream:
            replayed = [chunk.model_dump(exclude_unset=True) for chunk in stream]
        status, _, raw = _request(
            server, "/chat/completions", {"model": "replay:run.jsonl", "messages": USER}
        )
    assert replayed == original
    assert status == 200 and raw.endswith(b"data: [DONE]\n\n")
    assert raw.count(b"data: {") == len(original)


def test_chunk_log_replay_responses_with_error(tmp_path: Path) -> None:
    events = [
        {
            "type": "response.output_text.delta",
            "delta": "Hi",
            "item_id": "m",
            "output_index": 0,
            "content_index": 0,
            "logprobs": [],
            "sequence_number": 0,
        },
    ]
    error = {
        "type": "error",
        "code": "x",
        "message": "went wrong",
        "param": None,
        "sequence_number": 1,
    }
    (tmp_path / "resp.jsonl").write_text(_chunk_log_lines("responses", events, error))
    (tmp_path / "bad.jsonl").write_text("not json\n")
    with serve(streams_dir=tmp_path) as server:
        received = list(
            _client(server).responses.create(model="replay:resp.jsonl", input="x", stream=True)
        )
        status, _, raw = _request(
            server, "/responses", {"model": "replay:bad.jsonl", "input": "x", "stream": True}
        )
    assert [e.type for e in received] == ["response.output_text.delta", "error"]
    assert received[0].delta == "Hi" and received[1].message == "went wrong"
    assert status == 400 and "line 1" in _error(raw)["message"]


def test_background_server_is_idempotent() -> None:
    first = start_background()
    try:
        assert start_background() is first and first.running
        assert first.tokens_per_s and first.ttft  # paced like a real model by default
        completion = _client(first).chat.completions.create(
            model="demo?ttft=0&tokens=3", messages=USER
        )
        assert completion.choices[0].message.content == "".join(demo_tokens(3))
    finally:
        stop_background()
    assert not first.running and start_background() is not first
    stop_background()


def test_stop_cuts_open_streams_and_releases_port() -> None:
    server = LocalServer(tokens_per_s=20).start()
    stream = _client(server).chat.completions.create(model="demo", messages=USER, stream=True)
    next(iter(stream))
    server.stop()
    with pytest.raises(openai.APIConnectionError):
        list(stream)
    record = server.requests[-1]
    assert record.wait(3) and record.end_reason in ("server_stopped", "client_disconnected")
    stream.close()


def test_cli_serve_prints_url_and_serves() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbstream", "serve", "--port", "0", "--limit-requests", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/v1)", line)
        assert match, line
        client = openai.OpenAI(base_url=match.group(1), api_key="local", max_retries=0)
        completion = client.chat.completions.create(model="demo?tokens=4", messages=USER)
        assert completion.choices[0].message.content == "".join(demo_tokens(4))
        with pytest.raises(openai.RateLimitError):  # --limit-requests 1 per minute
            client.chat.completions.create(model="demo?tokens=4", messages=USER)
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        proc.stdout.close()


def test_console_script_help() -> None:
    script = Path(sys.executable).with_name("nbstream")
    result = subprocess.run(
        [str(script), "serve", "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0 and "--streams-dir" in result.stdout


def test_serve_in_a_child_process(shared_streams: Path) -> None:
    with serve(process=True, streams_dir=shared_streams) as server:
        pid = server.process.pid
        client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
        name = "15-openai-chat-content-logprobs.sse"
        stream = client.chat.completions.create(model=f"replay:{name}", messages=USER, stream=True)
        with stream:
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text and pid != os.getpid()
    assert server.process.poll() is not None


def test_records_are_bounded_and_counted() -> None:
    server = LocalServer(max_records=3).start()
    try:
        for _ in range(5):
            _request(server, "/models")
        assert len(server.requests) == 3
        assert len(server.wait_for_requests(5, timeout=1)) == 3
        with pytest.raises(TimeoutError):
            server.wait_for_requests(6, timeout=0.1)
        server.reset()
        assert server.requests == [] and server.last_request is None
    finally:
        server.stop()


def test_wait_for_disconnect_of_a_given_request(local_server: LocalServer) -> None:
    client = _client(local_server)
    streams = [
        client.chat.completions.create(model="demo?tokens_per_s=40", messages=USER, stream=True)
        for _ in range(2)
    ]
    for stream in streams:
        next(iter(stream))
    second = local_server.requests[1].request_id
    streams[1].close()
    record = local_server.wait_for_disconnect(timeout=3, request_id=second)
    assert record.request_id == second and not local_server.requests[0].disconnected
    with pytest.raises(TimeoutError):
        local_server.wait_for_disconnect(
            timeout=0.2, request_id=local_server.requests[0].request_id
        )
    streams[0].close()


def test_records_never_keep_credentials(local_server: LocalServer) -> None:
    planted = "sk-test-PLANTED-0123456789abcdef"
    client = openai.OpenAI(
        base_url=local_server.base_url,
        api_key=planted,
        default_headers={"api-key": planted, "Cookie": f"k={planted}"},
    )
    client.chat.completions.create(model="demo?tokens=2", messages=USER)
    record = local_server.last_request
    assert planted not in repr(record) and planted not in repr(local_server.requests)
    assert "authorization" not in record.headers and "api-key" not in record.headers


def test_json_replay_status_option(local_server: LocalServer, shared_streams: Path) -> None:
    name = "20-openai-http400-error-body.json"
    body = {"model": f"replay:{name}?status=422", "messages": USER}
    status, _, raw = _request(local_server, "/chat/completions", body)
    assert status == 422 and raw == (shared_streams / name).read_bytes()


def test_other_methods_get_a_json_405(local_server: LocalServer) -> None:
    request = urllib.request.Request(local_server.base_url + "/models", method="DELETE")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 405 and info.value.headers["x-request-id"]
    assert _error(info.value.read())["code"] == "method_not_allowed"
