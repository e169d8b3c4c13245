"""The wire contract: every message a view really sends in streamed runs (frames, log pages,
errors, the bundle, snapshot updates) matches the TypedDicts of ``nbstream.frontend.protocol``,
keys and value types. The TypedDicts are the single source of truth for the wire's keys."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict

import openai
import pytest
from recorded_oracle import MORE, STREAMS

from nbstream.frontend import protocol
from nbstream.frontend.widget import StreamView
from nbstream.server import LocalServer, serve
from nbstream.sources.request import ChatRequest, ResponsesRequest

USER = [{"role": "user", "content": "hello"}]

# recorded streams covering every part kind: tools, filter, refusal (+ logprobs), n>1, logprobs,
# reasoning, hosted tools, citations, custom tools, a mid-stream error
RECORDED = [
    "streams/03-openai-chat-parallel-tool-calls.sse",
    "streams/05-azure-chat-content-filter-long-story.sse",
    "streams/08-openai-responses-reasoning-summary-long.sse",
    "streams/10-openrouter-chat-error-midstream.sse",
    "streams/14-openai-chat-n3-interleaved-choices.sse",
    "streams/15-openai-chat-content-logprobs.sse",
    "streams/16-openai-chat-refusal-logprobs.sse",
    "more/27-openai-responses-web-search.sse",
    "more/29-openai-responses-mcp-call.sse",
    "more/30-openai-responses-file-search-annotations.sse",
    "more/37-openai-responses-custom-tool-call.sse",
]


# ---- a checker of values against TypedDicts ----------------------------------------------------


def problems(value: Any, tp: Any, path: str = "$") -> list[str]:
    """What in ``value`` does not match the type ``tp`` (TypedDicts: missing and unknown keys)."""
    if tp is Any:
        return []
    if is_typeddict(tp):
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__}, expected {tp.__name__}"]
        hints = get_type_hints(tp)
        out = [
            f"{path}: missing key {k!r} ({tp.__name__})"
            for k in tp.__required_keys__ - value.keys()
        ]
        out += [f"{path}: key {k!r} is not in {tp.__name__}" for k in value.keys() - hints.keys()]
        for k, v in value.items():
            if k in hints:
                out += problems(v, hints[k], f"{path}.{k}")
        return out
    origin = get_origin(tp)
    if origin is Literal:
        return [] if value in get_args(tp) else [f"{path}: {value!r} not in {get_args(tp)}"]
    if origin in (Union, types.UnionType):
        options = [problems(value, a, path) for a in get_args(tp)]
        return [] if any(not p for p in options) else min(options, key=len)
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: {type(value).__name__}, expected a list"]
        (item,) = get_args(tp)
        return [p for i, v in enumerate(value) for p in problems(v, item, f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__}, expected a dict"]
        _, item = get_args(tp)
        return [p for k, v in value.items() for p in problems(v, item, f"{path}.{k}")]
    if tp is type(None):
        return [] if value is None else [f"{path}: {value!r}, expected None"]
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r}, expected a number"]
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r}, expected an int"]
    return [] if isinstance(value, tp) else [f"{path}: {value!r}, expected {tp.__name__}"]


def outbound_type(msg: dict[str, Any]) -> Any:
    return protocol.WireFrame if protocol.is_frame(msg) else protocol.OUTBOUND[msg["type"]]


def test_the_checker_catches_drift() -> None:
    frame = {"t": "f", "s": 1, "p": [{"o": 0, "x": "a"}]}
    assert problems(frame, protocol.WireFrame) == []
    assert problems({**frame, "zz": 1}, protocol.WireFrame) == ["$: key 'zz' is not in WireFrame"]
    assert problems({"t": "f", "p": []}, protocol.WireFrame) == ["$: missing key 's' (WireFrame)"]
    assert problems({**frame, "st": "finished"}, protocol.WireFrame)
    assert problems({**frame, "p": [{"o": "0", "x": "a"}]}, protocol.WireFrame)


def test_short_keys_are_the_typed_messages_keys() -> None:
    """FRAME_KEYS / PART_KEYS (what read_frame and js decodeFrame expand) match the TypedDicts."""

    def keys(td: Any) -> set[str]:
        return set(td.__required_keys__ | td.__optional_keys__)

    assert keys(protocol.WireFrame) == set(protocol.FRAME_KEYS.values())
    assert keys(protocol.FrameMessage) == set(protocol.FRAME_KEYS)
    assert keys(protocol.WirePart) == set(protocol.PART_KEYS.values())
    assert keys(protocol.FramePart) == set(protocol.PART_KEYS)


# ---- what the widget really sends --------------------------------------------------------------


@pytest.fixture(scope="module")
def more_server() -> Iterator[LocalServer | None]:
    if not MORE.is_dir():
        yield None
        return
    with serve(streams_dir=MORE) as server:
        yield server


def record(view: StreamView) -> list[tuple[str, dict[str, Any]]]:
    """Every comm message the frontend gets: ("custom", content) or ("update", state)."""
    out: list[tuple[str, dict[str, Any]]] = []
    send = view.comm.send

    def comm_send(data: Any = None, metadata: Any = None, buffers: Any = None) -> Any:
        if isinstance(data, dict) and data.get("method") == "update":
            out.append(("update", data["state"]))
        elif isinstance(data, dict) and data.get("method") == "custom":
            out.append(("custom", data["content"]))
        return send(data=data, metadata=metadata, buffers=buffers)

    view.comm.send = comm_send
    return out


def exercise(view: StreamView, *, ready: bool) -> list[tuple[str, dict[str, Any]]]:
    """Stream, then ask for what a frontend asks: log pages, the export, a resync, the bundle,
    an unknown message (an error reply)."""
    sent = record(view)
    msg = view._on_frontend_msg
    if ready:
        msg(view, {"type": protocol.READY}, [])
    view.start()
    msg(view, {"type": "log_page", "id": 1, "version": 0, "start": 0, "count": 5, "raw": True}, [])
    msg(view, {"type": "log_page", "id": "t", "start": 0, "count": 1000, "times": True}, [])
    msg(view, {"type": "log_page", "id": 3, "jsonl": True}, [])
    msg(view, {"type": "log_page", "id": 4, "version": 9}, [])  # no such version: an error
    msg(view, {"type": protocol.RESYNC, "version": 0}, [])
    msg(view, {"type": protocol.BUNDLE}, [])
    msg(view, {"type": "nonsense"}, [])
    return sent


def check_all(sent: list[tuple[str, dict[str, Any]]]) -> list[str]:
    out: list[str] = []
    kinds: set[str] = set()
    for i, (how, msg) in enumerate(sent):
        if how == "custom":
            tp = outbound_type(msg)
            kinds.add(tp.__name__)
            out += problems(msg, tp, f"custom[{i}]")
        else:
            for name, value in msg.items():
                if name in protocol.TRAITS:
                    kinds.add(name)
                    out += problems(value, protocol.TRAITS[name], f"update[{i}].{name}")
                elif name == "mode":
                    out += problems(value, protocol.Mode, f"update[{i}].mode")
    assert {"WireFrame", "LogPageReply", "ErrorMessage"} <= kinds, kinds
    return out


@pytest.mark.parametrize("ready", [False, True], ids=["headless", "frontend-ready"])
@pytest.mark.parametrize("name", RECORDED)
def test_recorded_streams_send_only_typed_messages(
    module_server: LocalServer, more_server: LocalServer | None, name: str, ready: bool
) -> None:
    folder, file = name.split("/")
    server = module_server if folder == "streams" else more_server
    if server is None or not ((STREAMS if folder == "streams" else MORE) / file).is_file():
        pytest.skip(f"{name} not found (../shared/streams)")
    client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
    if "responses" in file:
        source: Any = ResponsesRequest({"model": f"replay:{file}", "input": "hello"}, client)
    else:
        source = ChatRequest({"model": f"replay:{file}", "messages": USER}, client)
    view = StreamView(source)
    sent = exercise(view, ready=ready)
    assert view.status in protocol.FINAL
    assert check_all(sent) == []
    client.close()


@pytest.mark.parametrize(
    "options",
    [
        {"reasoning": 20, "tokens": 40},
        {"fail": 400},
        {"disconnect_after": 6, "fail_times": 1, "key": "wire-resume"},
    ],
    ids=["reasoning", "http-400", "cut-then-continue"],
)
def test_demo_runs_send_only_typed_messages(module_server: LocalServer, options: Any) -> None:
    client = openai.OpenAI(base_url=module_server.base_url, api_key="local", max_retries=0)
    params = {"model": "demo", "messages": USER, "extra_body": {"nbstream": options}}
    view = StreamView(ChatRequest(params, client))
    sent = exercise(view, ready=False)
    if view.status == "incomplete":  # Continue: a second version, announced by a snapshot
        view.resume()
        assert view.status == "done" and len(view.versions) == 2
    assert check_all(sent) == []
    client.close()
