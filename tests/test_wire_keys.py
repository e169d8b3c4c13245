"""The widget's wire keys agree on both sides: ``js/protocol.js`` and
``nbstream.frontend.protocol``.

``js/protocol.js`` exports ``WIRE``: the short frame and part keys it decodes, the fields of every
message typedef (tsc checks each list against its typedef, ``npm run check``) and the message
types it sends and handles. This test reads ``WIRE`` (Node imports the module: no parsing of
JavaScript here) and compares it with the Python side, both as declared (``FRAME_KEYS``, the
TypedDicts, ``INBOUND`` / ``OUTBOUND``) and as sent (a real stream's frames, snapshot, log-panel
replies and error message).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nbstream.frontend import protocol
from nbstream.frontend.widget import StreamView

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wire() -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (it reads js/protocol.js's WIRE)")
    script = "import(process.argv[1]).then((m) => process.stdout.write(JSON.stringify(m.WIRE)))"
    url = (ROOT / "js" / "protocol.js").as_uri()
    out = subprocess.run(
        [node, "--input-type=module", "-e", script, url],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return dict(json.loads(out))


def keys(typed_dict: Any) -> set[str]:
    return set(typed_dict.__required_keys__ | typed_dict.__optional_keys__)


def test_protocol_version(wire: dict[str, Any]) -> None:
    assert wire["protocol"] == protocol.PROTOCOL_VERSION


def test_short_keys_of_frames_and_parts(wire: dict[str, Any]) -> None:
    # JS maps short -> long (decodeFrame), Python long -> short (frame_message)
    assert wire["frameKeys"] == {short: long for long, short in protocol.FRAME_KEYS.items()}
    assert wire["partKeys"] == {short: long for long, short in protocol.PART_KEYS.items()}


@pytest.mark.parametrize(
    ("name", "typed_dict"),
    [
        ("frame", protocol.FrameMessage),
        ("part", protocol.FramePart),
        ("snapshot", protocol.Snapshot),
        ("version", protocol.VersionSnapshot),
        ("snapshotPart", protocol.SnapshotPart),
        ("logPageRequest", protocol.LogPageRequest),
        ("logPageReply", protocol.LogPageReply),
        ("logRow", protocol.LogRow),
        ("errorMessage", protocol.ErrorMessage),
    ],
)
def test_message_fields(wire: dict[str, Any], name: str, typed_dict: Any) -> None:
    assert set(wire[name]) == keys(typed_dict), f"js/protocol.js WIRE.{name}"


def test_message_types(wire: dict[str, Any]) -> None:
    assert set(wire["toKernel"]) == protocol.INBOUND
    assert set(wire["fromKernel"]) == set(protocol.OUTBOUND)


def test_what_python_sends_uses_only_those_keys(wire: dict[str, Any]) -> None:
    """A real stream (a text source, no kernel): every frame, the snapshot, the log panel's
    replies and an error reply carry only keys js/protocol.js knows."""
    view = StreamView(iter(["Hel", "lo ", "world"]))
    sent: list[dict[str, Any]] = []
    view.send = sent.append  # what the frontend would receive
    view.start()
    assert view.status == "done", view.reason

    frames = [m for m in sent if protocol.is_frame(m)]
    assert frames and frames[-1].get("fin")
    for frame in frames:
        assert set(frame) <= set(wire["frameKeys"]), frame
        for part in frame["p"]:
            assert set(part) <= set(wire["partKeys"]), part

    snapshot = view._publisher.snapshot()
    assert set(snapshot) == set(wire["snapshot"])
    for version in snapshot["versions"]:
        assert set(version) == set(wire["version"])
        for part in version["parts"]:
            assert set(part) <= set(wire["snapshotPart"]), part

    sent.clear()
    for request in (
        {"start": 0, "count": 10, "raw": True, "times": True},  # rows, times, request records
        {"start": 0, "count": 0, "jsonl": True},  # the export
        {"version": 7},  # no such version: an error reply
    ):
        view._on_frontend_msg(view, {"type": protocol.LOG_PAGE, "id": 1, **request}, [])
    view._on_frontend_msg(view, {"type": "no such message"}, [])
    replies, error = sent[:3], sent[3]
    for reply in replies:
        assert reply["type"] in wire["fromKernel"]
        assert set(reply) <= set(wire["logPageReply"]), reply
        for row in reply.get("rows", []):
            assert set(row) <= set(wire["logRow"]), row
    assert {"rows", "times", "jsonl", "error"} <= {k for r in replies for k in r}
    assert set(error) == set(wire["errorMessage"]) and error["type"] in wire["fromKernel"]
