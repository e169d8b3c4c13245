"""StreamView in a real IPython kernel: waiting mode output, interrupt (■) = Stop, Stop clicks
reaching a cell that awaits the view. The kernel talks to the local server over real HTTP."""

from __future__ import annotations

import queue
import time
from pathlib import Path

import pytest
from kernel_session import KernelSession

from nbstream.server.demo import demo_tokens

SETUP = """
import openai, nbstream
from nbstream.sources.request import ChatRequest
sync_client = openai.OpenAI(base_url={base!r}, api_key="sk-local-test", max_retries=0)
async_client = openai.AsyncOpenAI(base_url={base!r}, api_key="sk-local-test", max_retries=0)
def ask(client=sync_client, **options):
    return ChatRequest({{"model": "demo", "messages": [{{"role": "user", "content": "hi"}}],
                        "extra_body": {{"nbstream": options}}}}, client)
"""


@pytest.fixture(scope="module")
def kernel(module_server, tmp_path_factory) -> KernelSession:
    session = KernelSession(Path(tmp_path_factory.mktemp("kernel")))
    try:
        session.ok(SETUP.format(base=module_server.base_url))
        yield session
    finally:
        session.close()


def iopub_until_reply(kernel: KernelSession, msg_id: str, timeout: float, on_msg=None) -> dict:
    """Collect iopub messages of one execution until its execute_reply arrives."""
    client = kernel.client
    deadline = time.monotonic() + timeout
    seen: list[dict] = []
    while time.monotonic() < deadline:
        try:
            msg = client.get_iopub_msg(timeout=0.05)
            if msg["parent_header"].get("msg_id") == msg_id:
                seen.append(msg)
                if on_msg is not None:
                    on_msg(msg)
        except queue.Empty:
            pass
        try:
            reply = client.get_shell_msg(timeout=0.01)
        except queue.Empty:
            continue
        if reply["parent_header"].get("msg_id") == msg_id:
            # drain what is left of this execution's output
            while True:
                try:
                    msg = client.get_iopub_msg(timeout=0.3)
                except queue.Empty:
                    break
                if msg["parent_header"].get("msg_id") == msg_id:
                    seen.append(msg)
                    if on_msg is not None:
                        on_msg(msg)
            return {"reply": reply, "iopub": seen}
    raise AssertionError(f"no execute_reply within {timeout} s")


WIDGET = "application/vnd.jupyter.widget-view+json"


def saved_outputs(outputs: list[dict]) -> list[dict]:
    """The outputs as a notebook saves them: display updates applied (JupyterLab, nbclient)."""
    saved: list[dict] = []
    for out in outputs:
        display_id = (out.get("transient") or {}).get("display_id")
        if out["type"] == "update_display_data":
            for old in saved:
                if (old.get("transient") or {}).get("display_id") == display_id:
                    old["data"] = out["data"]
        else:
            saved.append({**out, "data": dict(out["data"])})
    return saved


def nbval_view(outputs: list[dict]) -> list[tuple[str, str]]:
    """What strict nbval compares: data of display_data/execute_result, updates ignored, widget
    view ids skipped."""
    return [
        (mime, value)
        for out in outputs
        if out["type"] in ("display_data", "execute_result")
        for mime, value in sorted(out["data"].items())
        if mime != WIDGET
    ]


OUTPUT = "application/vnd.nbstream.output+json"


def test_chat_as_last_line_shows_one_widget_and_the_answer_for_nbval(kernel, module_server):
    result = kernel.ok("nbstream.stream(ask(tokens=60))")
    expected = "".join(demo_tokens(60))
    # the live output, then (the stream ended in this cell) the answer output; the view as the
    # cell's last line adds nothing: one widget, one answer
    assert [o["type"] for o in result.outputs] == ["display_data", "display_data"]
    live, answer = result.outputs
    assert WIDGET in live["data"] and live["data"]["text/plain"] == ""
    assert live["data"][OUTPUT] == {"output": "live"}
    assert answer["data"][OUTPUT] == {"output": "answer"}
    assert answer["data"][WIDGET]["model_id"] == ""  # hidden next to the live widget
    assert answer["data"]["text/plain"] == expected
    (stored,) = answer["metadata"][OUTPUT]["answers"]
    assert stored["uid"] == live["metadata"][OUTPUT]["answers"][0]["uid"]
    text = "".join(p["text"] for p in stored["snapshot"]["versions"][0]["parts"])
    assert text == expected
    saved = saved_outputs(result.outputs)
    assert sum(bool(out["data"][WIDGET]["model_id"]) for out in saved) == 1
    # strict nbval (which ignores display updates) sees exactly what the saved notebook holds
    assert nbval_view(result.outputs) == nbval_view(saved)


def test_assigned_view_gets_the_final_answer_into_its_answer_output(kernel, module_server):
    result = kernel.ok("v = nbstream.stream(ask(tokens=60))")
    expected = "".join(demo_tokens(60))
    assert [o["type"] for o in result.outputs] == ["display_data", "display_data"]
    saved = saved_outputs(result.outputs)
    assert [out["data"][OUTPUT]["output"] for out in saved] == ["live", "answer"]
    assert saved[1]["data"]["text/plain"] == expected
    assert kernel.value("v.text") == expected
    # shown again in a later cell: the widget again, and its answer
    later = kernel.ok("v")
    assert [out["data"][OUTPUT]["output"] for out in later.outputs] == ["live", "answer"]
    assert later.outputs[1]["data"]["text/plain"] == expected
    # a new version (Regenerate) updates every answer output of the view
    again = kernel.ok("v.regenerate()")
    updates = [o for o in again.outputs if o["type"] == "update_display_data"]
    assert len(updates) == 2
    assert all("version 2 of 2" in u["data"]["text/html"] for u in updates)


def test_interrupt_acts_as_stop_in_waiting_mode(kernel, module_server):
    module_server.reset()
    msg_id = kernel.client.execute("v = nbstream.stream(ask(tokens=3000, tokens_per_s=50))")
    modes: list[str] = []

    def on_msg(msg: dict) -> None:
        state = msg["content"].get("data", {}).get("state", {})
        # the widget's first state (comm_open) already has the mode stream() runs in
        if msg["header"]["msg_type"] in ("comm_open", "comm_msg") and "mode" in state:
            modes.append(state["mode"])

    time.sleep(1.5)
    kernel.manager.interrupt_kernel()
    done = iopub_until_reply(kernel, msg_id, timeout=20, on_msg=on_msg)
    assert done["reply"]["content"]["status"] == "ok"  # no traceback: interrupt = Stop
    assert not [m for m in done["iopub"] if m["header"]["msg_type"] == "error"]
    assert "blocking" in modes  # the widget was told the button cannot reach the kernel
    assert kernel.value("v.status") == "stopped"
    assert kernel.value("len(v.text)") > 0
    record = module_server.last_request
    assert record.wait(5) and record.disconnected


def test_stop_click_reaches_a_cell_that_awaits_the_view(kernel, module_server):
    module_server.reset()
    code = (
        "v = nbstream.stream(ask(async_client, tokens=3000, tokens_per_s=50), background=True)\n"
        "print('model', v.model_id, flush=True)\n"
        "await v\n"
        "print('ended', v.status)"
    )
    client = kernel.client
    msg_id = client.execute(code)
    model_id: list[str] = []
    clicked: list[float] = []

    def on_msg(msg: dict) -> None:
        if msg["header"]["msg_type"] == "stream" and msg["content"]["text"].startswith("model "):
            model_id.append(msg["content"]["text"].split()[1])

    def click_when_ready(msg: dict) -> None:
        on_msg(msg)
        if model_id and not clicked:
            time.sleep(0.8)  # let some text stream
            stop = client.session.msg(
                "comm_msg",
                {"comm_id": model_id[0], "data": {"method": "custom", "content": {"type": "stop"}}},
            )
            client.shell_channel.send(stop)
            clicked.append(time.monotonic())

    done = iopub_until_reply(kernel, msg_id, timeout=30, on_msg=click_when_ready)
    assert clicked, "the cell never printed its model id"
    # causal: the 3000-token answer takes 60 s at 50 tokens/s; ending sooner means Stop worked
    assert time.monotonic() - clicked[0] < 60
    out = "".join(
        m["content"]["text"] for m in done["iopub"] if m["header"]["msg_type"] == "stream"
    )
    assert "ended stopped" in out
    assert done["reply"]["content"]["status"] == "ok"
    record = module_server.last_request
    assert record.wait(5) and record.disconnected
    assert record.chunks_sent < 3000


def test_waiting_mode_with_an_async_client_works_again_and_again(kernel, module_server):
    # a synchronous cell blocks the loop an AsyncOpenAI client belongs to: the request is driven
    # with a synchronous twin client; mixing with await/background on the kernel loop still works
    expected = len("".join(demo_tokens(30)))
    cells = [
        "v = nbstream.stream(ask(async_client, tokens=30))",
        "v = nbstream.stream(ask(async_client, tokens=30))",
        "v = nbstream.stream(ask(async_client, tokens=30), background=True)\nawait v",
        "v = nbstream.stream(ask(async_client, tokens=30))",
    ]
    for code in cells:
        kernel.ok(code)
        assert kernel.value("[v.status, v.reason, len(v.text)]") == ["done", None, expected], code
