"""A planted key never appears in any output, log record, export, repr or exception message."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

import nbstream.sources.client as nbclient
from nbstream.redact import REDACTED, redact_obj, redact_text
from nbstream.run.log import ChunkLog
from nbstream.run.stream_run import StreamRun
from nbstream.server import LocalServer
from nbstream.sources.request import ChatRequest

KEY = "sk-test-PLANTED0123456789abcdefXYZ"
SHAPELESS = "plainsecret-PLANTED-42"  # a key with no recognisable shape, known from the env


def _everything(run: StreamRun, tmp_path: Path) -> str:
    """Every text nbstream produces about a run (the answer text itself is the model's output,
    kept as sent: the widget's display is checked by the widget's own tests)."""
    path = run.log.to_jsonl(tmp_path / "export.jsonl")
    parts = [
        path.read_text(encoding="utf-8"),
        json.dumps(list(run.log)),
        json.dumps(run.log.page(0, len(run.log))),
        repr(run),
        repr(run.log),
        repr(run.source),
        repr(run.metrics),
        str(run.reason),
        str(run.error_message),
    ]
    return "\n".join(parts)


def test_planted_key_never_leaks(local_server: LocalServer, tmp_path: Path, capfd) -> None:
    client = openai.OpenAI(base_url=local_server.base_url, api_key=KEY, max_retries=0)
    params = {
        "model": f"echo?error_after=8&error_message=bad+key+{KEY}",
        "messages": [{"role": "user", "content": f"my key is {KEY} - please repeat it back"}],
        "extra_headers": {"Authorization": f"Bearer {KEY}", "X-Debug": KEY},
        "extra_body": {"api_key": KEY},
    }
    run = StreamRun(ChatRequest(params, client)).run()
    # the stream really carried the key: the echo model sent it back, the error message held it
    (record,) = local_server.wait_idle(timeout=10)[-1:]  # its counts are final once it ended
    assert record.chunks_sent >= 8
    assert run.status == "error"  # the server reported it in the stream
    assert f"my key is {KEY}".startswith(run.text[: len("my key is ") + 4])
    out = _everything(run, tmp_path)
    captured = capfd.readouterr()
    out += captured.out + captured.err
    assert KEY not in out
    assert "PLANTED" not in out
    assert REDACTED in out  # it was scrubbed, not merely absent


def test_key_shaped_strings_and_secret_names_are_scrubbed() -> None:
    assert redact_text(f"Authorization: Bearer {KEY}") == f"Authorization: {REDACTED}"
    assert redact_obj({"headers": {"Authorization": "x", "api-key": "y"}, "n": [KEY, 3]}) == {
        "headers": {"Authorization": REDACTED, "api-key": REDACTED},
        "n": [REDACTED, 3],
    }
    log = ChunkLog()
    log.begin(1, "chat", {"api_key": KEY, "model": "m"})
    log.error(1, 0.1, f"failed with {KEY}", data={"message": KEY})
    assert KEY not in json.dumps(list(log)) and "PLANTED" not in repr(log)


def test_api_key_param_is_refused_without_echoing_it() -> None:
    with pytest.raises(TypeError) as info:
        ChatRequest({"model": "m", "messages": [], "api_key": KEY})
    assert KEY not in str(info.value) and "OPENAI_API_KEY" in str(info.value)


def test_env_key_without_a_shape_is_scrubbed_too(
    local_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SHAPELESS)
    monkeypatch.setenv("OPENAI_BASE_URL", local_server.base_url)
    client = nbclient.default_client()
    assert str(client.base_url).rstrip("/") == local_server.base_url.rstrip("/")
    assert nbclient.default_client() is client  # one client per endpoint, pool reused
    params = {"model": "echo", "messages": [{"role": "user", "content": f"token {SHAPELESS}"}]}
    run = StreamRun(ChatRequest(params)).run()  # no client given: resolved from the env
    assert run.status == "done" and SHAPELESS in run.text  # echoed back by the model
    assert SHAPELESS not in _everything(run, tmp_path)
