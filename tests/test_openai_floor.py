"""The openai floor that pyproject.toml declares is the real one (issue 15).

The floor was set for ``ChatCompletionChunk.moderation`` (openai >= 2.41), which nbstream read on
every chunk. Since issue 16 §1 the adapters read each chunk's JSON dict, not the SDK's models: the
release below the floor streams too, and the floor stays where it is (conservative) until a lower
one is tested. The SDK's HTTP library is ``httpx`` before openai 3 and ``httpx2`` from 3 on:
no nbstream module imports either by name and nbstream works with both (``_watch_reads`` and the
SDK path's batches use the connection's ``network_stream``, the same in httpcore and httpcore2;
nbstream's own request, sent without the SDK, takes ``httpx2`` where installed, else ``httpx``:
``sources/openai_http.http_library``). Both ways of reading a stream are checked: a ``Stream`` the
caller made (the SDK path) and a ``ChatRequest`` / ``ResponsesRequest`` (nbstream's fast path
through ``with_streaming_response``, and the own request).

The quick tests install nothing. The floor test installs the floor and the release just below it
with ``pip install --no-deps --target`` (next to this environment's own dependencies: pydantic,
httpx...), hides ``httpx2`` as a clean install of an openai 2.x would not have it, and streams a
chat and a Responses answer from the local server through a ``StreamView`` in a subprocess
(~15 s; skipped when pip cannot reach the package index).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLOOR = "2.41.0"
BELOW_FLOOR = "2.40.0"


def _declared_floor() -> str:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = [d for d in project["dependencies"] if re.match(r"openai\b", d)]
    assert len(specs) == 1, specs
    match = re.fullmatch(r"openai>=([\d.]+)", specs[0].replace(" ", ""))
    assert match, f"openai should have a plain floor, got {specs[0]!r}"
    return match.group(1)


def test_declared_floor_is_the_checked_one() -> None:
    # change both together, after running test_floor_streams_through_a_view for the new floor
    assert _declared_floor() == FLOOR.removesuffix(".0")


def test_what_the_code_needs_is_in_the_installed_sdk() -> None:
    import openai
    from openai.types.chat import ChatCompletionChunk
    from openai.types.responses import ResponseStreamEvent  # noqa: F401 - openai >= 1.66

    assert "moderation" in ChatCompletionChunk.model_fields  # openai >= 2.41
    assert hasattr(openai.Stream, "_iter_events")  # the raw-JSON capture wraps it


def test_no_module_imports_an_http_library() -> None:
    # openai 2.x comes with httpx only, 3.x with httpx2 only: an import of either breaks the other
    # generation (every sync stream driven by a view ended "error" on openai 2.x); the own
    # request picks the installed one at run time (openai_http.http_library)
    pattern = re.compile(r"^\s*(import|from)\s+httpx2?\b", re.MULTILINE)
    found = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "nbstream").rglob("*.py")
        if pattern.search(path.read_text())
    ]
    assert found == []


_CHECK = r"""
import json, sys
if sys.argv[1] == "no-httpx2":
    sys.modules["httpx2"] = None  # a clean openai 2.x install has no httpx2
import openai
from nbstream.server import serve
from nbstream.frontend.widget import StreamView

with serve() as server:
    client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
    makers = {
        "chat": lambda: client.chat.completions.create(
            model="demo", messages=[{"role": "user", "content": "hi"}], stream=True
        ),
        "responses": lambda: client.responses.create(model="demo", input="hi", stream=True),
    }
    from nbstream.sources.request import ChatRequest, ResponsesRequest

    makers["chat_request"] = ChatRequest(
        {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}, client
    )
    makers["responses_request"] = ResponsesRequest({"model": "demo", "input": "hi"}, client)
    from nbstream.sources.client import client_for

    # no SDK client: nbstream's own request, on the HTTP library this SDK generation has
    makers["own_request"] = ChatRequest(
        {"model": "demo", "messages": [{"role": "user", "content": "hi"}]},
        client_for(server.base_url, "local"),
    )
    out = {"version": openai.__version__}
    for api, make in makers.items():
        view = StreamView(make)
        view.start(background=False)
        out[api] = [view.status, len(view.text), view.reason]
print(json.dumps(out))
"""


def _install(version: str, target: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target)]
        + [f"openai=={version}"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if proc.returncode != 0:
        pytest.skip(f"pip could not install openai=={version}: {proc.stderr.strip()[-300:]}")


def _stream_with(version: str, target: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)])}
    hide = "no-httpx2" if int(version.split(".")[0]) < 3 else "keep"
    proc = subprocess.run(
        [sys.executable, "-c", _CHECK, hide],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=target,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_floor_streams_through_a_view(tmp_path: Path) -> None:
    pytest.importorskip("httpx")  # what openai 2.x runs on (the SDKs of the test extra bring it)
    _install(FLOOR, tmp_path / "floor")
    _install(BELOW_FLOOR, tmp_path / "below")

    at_floor = _stream_with(FLOOR, tmp_path / "floor")
    assert at_floor["version"] == FLOOR
    apis = ("chat", "responses", "chat_request", "responses_request", "own_request")
    for api in apis:
        status, chars, reason = at_floor[api]
        assert (status, reason) == ("done", None), (api, at_floor)
        assert chars > 100, (api, at_floor)

    below = _stream_with(BELOW_FLOOR, tmp_path / "below")
    assert below["version"] == BELOW_FLOOR
    # nothing reads ChatCompletionChunk.moderation any more: the release below streams as well
    for api in apis:
        status, chars, reason = below[api]
        assert (status, reason) == ("done", None) and chars > 100, (api, below)
