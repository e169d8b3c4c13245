"""Failures and sync sources in background mode inside a real IPython kernel (issue 12 §3).

In a kernel, ``background=True`` with a callable source makes the run a task on the kernel's
event loop. A ``lambda`` around a *sync* client's ``create(stream=True)`` used to stay
"streaming" with no text forever there, and a closed port crashed the backoff: both must end
in a final status with Stop gone (the view's mode back to ``idle``)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from kernel_session import KernelSession

from nbstream.server.demo import demo_tokens

FINAL = ("done", "error", "stopped", "incomplete")


@pytest.fixture(scope="module")
def kernel(module_server, tmp_path_factory) -> KernelSession:
    session = KernelSession(Path(tmp_path_factory.mktemp("kernel")))
    try:
        session.ok(
            "import openai, nbstream\n"
            f"sync_client = openai.OpenAI(base_url={module_server.base_url!r}, api_key='sk-local')"
        )
        yield session
    finally:
        session.close()


def final_state(kernel: KernelSession, name: str, timeout: float = 20) -> dict:
    """Poll the view from later cells (the kernel is idle between them, as for a person) until
    it reaches a final status; fail if it stays "streaming"."""
    deadline = time.monotonic() + timeout
    while True:
        state = kernel.value(
            f"{{'status': {name}.status, 'reason': {name}.reason, 'text': {name}.text, "
            f"'mode': {name}.mode, 'snapshot': {name}.snapshot['versions'][-1]['status'], "
            f"'log': [r['type'] for r in {name}.log]}}"
        )
        if state["status"] in FINAL or time.monotonic() > deadline:
            return state
        time.sleep(0.1)


def test_sync_client_lambda_in_background_ends_done_with_the_text(kernel) -> None:
    reply = kernel.ok(
        "v = nbstream.stream(lambda: sync_client.chat.completions.create(model='demo', "
        "messages=[{'role': 'user', 'content': 'hi'}], stream=True), background=True)\n"
        "print(v.mode)"
    )
    assert reply.stdout.strip() == "background"  # the cell returned at once
    state = final_state(kernel, "v")
    assert (state["status"], state["reason"]) == ("done", None), state
    assert state["text"] == "".join(demo_tokens())
    assert state["snapshot"] == "done" and state["mode"] == "idle"


def test_closed_port_in_background_ends_error_with_stop_gone(kernel) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    # the defaults a person gets: default Resilience(), its random backoff (4 attempts)
    kernel.ok(
        f"bad = openai.OpenAI(base_url='http://127.0.0.1:{port}/v1', api_key='sk-local')\n"
        "w = nbstream.chat('hi', model='m', client=bad, background=True)"
    )
    state = final_state(kernel, "w")
    assert state["status"] == "error", state
    assert f"Could not connect to http://127.0.0.1:{port}/v1: connection refused" in (
        state["reason"] or ""
    )
    assert state["text"] == "" and state["log"].count("request") == 4
    # the frontend hides Stop once the status is final; the view is no longer "background"
    assert state["snapshot"] == "error" and state["mode"] == "idle"


def test_emoji_halves_in_a_displayed_stream_give_the_answer_output(kernel) -> None:
    """Waiting mode, displayed as a person runs it: the halves of an emoji in two chunks and a
    lone half. The cell used to fail with UnicodeEncodeError and leave the view "streaming"."""
    result = kernel.ok(
        "v = nbstream.stream(iter(['a\\ud83d', '\\ude00b', ' x\\udc00']))\nprint(v.status)"
    )
    assert result.stdout.strip() == "done"
    assert "a\U0001f600b x\ufffd" in result.data("text/plain")  # the saved answer output
    assert kernel.value("v.text") == "a\U0001f600b x\ufffd"
