"""What a view sends at its start and end: one message per end, none to start a first version,
and the final state complete both for a frontend that said ``ready`` and headless."""

from __future__ import annotations

import asyncio

import openai
import pytest

from nbstream.frontend import protocol
from nbstream.frontend.widget import StreamView
from nbstream.sources.request import ChatRequest


def request(server, *, asynchronous: bool = False, **options) -> ChatRequest:
    cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    client = cls(base_url=server.base_url, api_key="local", max_retries=0)
    return ChatRequest(
        {
            "model": "demo",
            "messages": [{"role": "user", "content": "hi"}],
            "extra_body": {"nbstream": options},
        },
        client,
    )


def record(view: StreamView) -> list[tuple[str, dict]]:
    """Every message the frontend would get, in order: ("custom", msg) or ("update", state)."""
    out: list[tuple[str, dict]] = []
    send = view.comm.send

    def comm_send(data=None, metadata=None, buffers=None):
        if isinstance(data, dict) and data.get("method") == "update":
            out.append(("update", data["state"]))
        elif isinstance(data, dict) and data.get("method") == "custom":
            out.append(("custom", data["content"]))
        return send(data=data, metadata=metadata, buffers=buffers)

    view.comm.send = comm_send
    return out


def run_background(view: StreamView) -> None:
    async def main() -> None:
        view.start(background=True)
        while view.mode != "idle":  # (not `await view`: that sets the mode to "await")
            await asyncio.sleep(0.01)

    asyncio.run(main())


@pytest.mark.parametrize("ready", [False, True], ids=["headless", "frontend-ready"])
def test_a_background_stream_costs_frames_and_one_message_at_its_end(local_server, ready):
    view = StreamView(request(local_server, asynchronous=True, tokens=30), mode="background")
    sent = record(view)
    if ready:
        view._on_frontend_msg(view, {"type": protocol.READY}, [])
    run_background(view)
    assert view.status == "done" and view.mode == "idle"
    # starting the first version sent nothing: the first frame creates it in the frontend
    assert sent[0][0] == "custom"
    frames = [protocol.read_frame(m) for kind, m in sent if kind == "custom"]
    final = frames[-1]
    assert final["final"] and final["status"] == "done"
    state = view.get_state()
    assert state["mode"] == "idle"
    assert state["snapshot"]["versions"][0]["status"] == "done"
    text = "".join(p["text"] for p in state["snapshot"]["versions"][0]["parts"])
    assert text == view.text
    updates = [m for kind, m in sent if kind == "update"]
    if ready:
        # the end is the final frame alone: it carries the mode the view ends in
        assert final["mode"] == "idle"
        assert sent[-1][0] == "custom" and sent[-1][1]["md"] == "idle"
        assert updates == []
    else:
        # headless: the final snapshot (with the mode) follows the final frame, in one update
        assert "mode" not in final
        assert updates == [{"snapshot": state["snapshot"], "mode": "idle"}]
        assert sent[-1][0] == "update"


def test_regenerate_still_announces_the_new_version(local_server):
    view = StreamView(request(local_server, tokens=10))
    sent = record(view)
    view._on_frontend_msg(view, {"type": protocol.READY}, [])
    view.start()
    first = len(sent)
    view.regenerate(background=False)
    assert view.status == "done" and len(view.versions) == 2
    # a second version is announced at once (the old answer must not stay on screen as if live)
    kind, state = sent[first]
    assert kind == "update" and len(state["snapshot"]["versions"]) == 2
    assert state["snapshot"]["versions"][1]["status"] == "pending"
