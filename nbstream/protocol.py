"""The widget's wire protocol: typed messages between ``StreamView`` and ``js/``.

Mirrors ``js/protocol.js``; change both together. State tiers (as in lonboard):

- Python -> JS, synced traits, set rarely (start/end of a version, status changes, resync):
  ``snapshot`` = every version's complete text per part, status, reason, metrics, and the ``seq``
  of the last frame it includes. A reloaded page, a second view and a saved notebook read it.
- Python -> JS, custom messages, at most ~60/s: ``frame`` = only the new text since the previous
  frame per part (``choice`` defaults to 0, ``kind`` to "text"), each with its ``offset``
  (UTF-16 code units, i.e. JS string length) so a view that missed a frame sees a gap and asks
  for a ``resync``; status/metrics only when changed.
  ``log_page`` answers a ``log_page`` request.
- JS -> Python, custom messages, rare: ``stop``, ``regenerate``, ``resume``, ``retry``,
  ``resync``, ``log_page``.
- UI-only state (log panel open, version page shown, scroll) is never synced.

A part is identified by ``choice`` (``n > 1``), ``kind`` (``text``, ``refusal``, ``reasoning``,
``tool``) and, for tool calls, ``index``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal, TypedDict

from nbstream.coalesce import Frame, Part, PartKey

PROTOCOL_VERSION = 1

# Python -> JS custom message types
FRAME = "frame"
LOG_PAGE = "log_page"
ERROR = "error"

# JS -> Python custom message types
STOP = "stop"
REGENERATE = "regenerate"
RESUME = "resume"
RETRY = "retry"
RESYNC = "resync"
INBOUND = frozenset({STOP, REGENERATE, RESUME, RETRY, RESYNC, LOG_PAGE})

Status = Literal["pending", "streaming", "done", "stopped", "error", "incomplete"]
STATUSES: tuple[str, ...] = ("pending", "streaming", "done", "stopped", "error", "incomplete")
FINAL_STATUSES = frozenset({"done", "stopped", "error", "incomplete"})

# How a Stop click can reach the kernel (the ``mode`` trait):
#   idle        nothing running
#   background  the stream is a task/thread and the cell returned: the button works
#   await       the cell awaits the view (top-level await): the button works on ipykernel >= 7.4
#   blocking    a plain synchronous loop holds the kernel: only the interrupt (■) can stop it
Mode = Literal["idle", "background", "await", "blocking"]
MODES: tuple[str, ...] = ("idle", "background", "await", "blocking")


class WirePart(TypedDict, total=False):
    choice: int
    kind: str
    index: int | None
    offset: int
    text: str
    meta: dict[str, Any]


class FrameMessage(TypedDict, total=False):
    type: Literal["frame"]
    version: int
    seq: int
    parts: list[WirePart]
    status: str
    metrics: dict[str, Any]
    final: bool


class SnapshotPart(TypedDict, total=False):
    choice: int
    kind: str
    index: int | None
    text: str
    meta: dict[str, Any]


class VersionSnapshot(TypedDict):
    version: int
    seq: int
    status: str
    reason: str | None
    metrics: dict[str, Any]
    parts: list[SnapshotPart]


class Snapshot(TypedDict):
    protocol: int
    current: int
    versions: list[VersionSnapshot]


def part_to_wire(part: Part) -> WirePart:
    """One part of a frame, as JSON. ``choice`` 0 and ``kind`` "text" are the defaults and are
    left out (most frames carry only the first choice's text: fewer bytes per frame)."""
    wire: WirePart = {"offset": part.offset, "text": part.text}
    if part.key.choice != 0:
        wire["choice"] = part.key.choice
    if part.key.kind != "text":
        wire["kind"] = part.key.kind
    if part.key.index is not None:
        wire["index"] = part.key.index
    if part.meta:
        wire["meta"] = dict(part.meta)
    return wire


def frame_message(frame: Frame, version: int) -> FrameMessage:
    """A coalesced frame as the ``frame`` custom message (only the keys that carry news)."""
    msg: FrameMessage = {
        "type": FRAME,
        "version": version,
        "seq": frame.seq,
        "parts": [part_to_wire(p) for p in frame.parts],
    }
    if frame.status is not None:
        msg["status"] = frame.status
    if frame.metrics is not None:
        msg["metrics"] = frame.metrics
    if frame.final:
        msg["final"] = True
    return msg


def snapshot_part(key: PartKey, text: str, meta: dict[str, Any] | None = None) -> SnapshotPart:
    """One part's complete text for the ``snapshot`` trait."""
    part: SnapshotPart = {"choice": key.choice, "kind": key.kind, "text": text}
    if key.index is not None:
        part["index"] = key.index
    if meta:
        part["meta"] = dict(meta)
    return part


def jsonable(value: Any) -> Any:
    """Make metrics and log records JSON-safe: dataclasses to dicts, NaN/inf to None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def compact_metrics(metrics: Any) -> dict[str, Any]:
    """Metrics for the wire: JSON-safe, absent values left out (the frontend shows them as
    absent), times rounded to 0.1 ms. They ride along with frames, so every byte counts."""
    out: dict[str, Any] = {}
    for key, value in jsonable(metrics).items():
        if value is None or value == {} or value is False:
            continue
        if isinstance(value, float):
            value = round(value, 4)
        out[key] = value
    return out


def parse_inbound(content: Any) -> dict[str, Any]:
    """Validate a JS -> Python message; raise ``ValueError`` saying what was expected."""
    if not isinstance(content, dict) or content.get("type") not in INBOUND:
        raise ValueError(
            f"nbstream: unknown widget message {content!r}; expected a dict whose 'type' is one "
            f"of {sorted(INBOUND)} (is the widget bundle from another nbstream version?)"
        )
    return content
