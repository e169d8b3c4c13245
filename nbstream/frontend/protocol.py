"""The widget's wire protocol: typed messages between ``StreamView`` and ``js/``.

Mirrors ``js/protocol.js``; change both together. State tiers (as in lonboard):

- Python -> JS, synced traits, set rarely (start/end of a version, status changes, resync):
  ``snapshot`` = every version's complete text per part, status, reason, metrics, and the ``seq``
  of the last frame it includes. A reloaded page, a second view and a saved notebook read it.
- Python -> JS, custom messages, at most ~60/s: ``frame`` = only the new text since the previous
  frame per part (``choice`` defaults to 0, ``kind`` to "text"), each with its ``offset``
  (UTF-16 code units, i.e. JS string length) so a view that missed a frame sees a gap and asks
  for a ``resync``; status only when changed, metrics only when changed and at most every
  ~250 ms, and then only the values that changed (the frontend merges them); the final frame
  carries all metrics, the reason and the resilience notes, and, to a frontend that said
  ``ready``, the ``mode`` the view ends in (the frontend sets the trait locally: an end costs
  this one message). Frames use short keys (:data:`FRAME_KEYS`): they are most of the bytes
  sent, and ``read_frame`` expands them.
  ``log_page`` answers a ``log_page`` request.
- The start of a view's first version sends nothing (an empty pending version looks like no
  version; the first frame creates it; ``stream()`` gives the mode at construction); a later
  version (Regenerate, Continue) is announced by a ``snapshot`` update at once.
- The end of a version: when a frontend has said it is there (``ready``), the final ``snapshot``
  and the ``mode`` are stored in the traits *without* being sent (the frontend builds the same
  snapshot from the frames and sets both locally, so saved widget state has them); a reloaded
  page reads the full text from the kernel's state, and a view that lost frames asks for a
  ``resync``, which always sends. Without a frontend (nbclient, nbval, scripts) the final
  snapshot and the mode follow the final frame in one state update. Background views' final
  frames queue on the kernel-wide frame budget (:class:`nbstream.frontend.coalesce.FrameBudget`), as
  their first frames do when many views start together.
- JS -> Python, custom messages, rare: ``ready`` (a frontend holds this model's document),
  ``stop``, ``regenerate``, ``resume``, ``retry``, ``resync``, ``log_page``.
- UI-only state (log panel open, version page shown, scroll) is never synced.

A part is identified by ``choice`` (``n > 1``), ``kind`` and, for tool calls, hosted tools and
citations, ``index``. Kinds: ``text``, ``refusal``, ``reasoning``, ``tool`` (meta ``id``, ``name``,
``type: "custom"`` for a freeform tool), ``logprobs`` / ``refusal_logprobs``, ``filter``,
``hosted`` (a tool the server ran: text = its input; meta ``type``, ``id``, ``status``, ``name``,
``output``, ``images``) and ``citation`` (text empty; meta ``url``/``title`` or
``file_id``/``filename``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Literal, TypedDict

from nbstream.frontend.coalesce import Frame, Part, PartKey
from nbstream.run.stream_run import FINAL as FINAL  # re-exported: the wire's statuses
from nbstream.run.stream_run import STATUSES as STATUSES
from nbstream.run.stream_run import Status as Status

PROTOCOL_VERSION = 1

# Python -> JS custom message types
FRAME = "frame"  # long name (read_frame); on the wire a frame is {"t": "f", ...}
FRAME_TAG = "f"
LOG_PAGE = "log_page"
ERROR = "error"

# JS -> Python custom message types
STOP = "stop"
REGENERATE = "regenerate"
RESUME = "resume"
RETRY = "retry"
RESYNC = "resync"
READY = "ready"
# the loader (js/loader.js) asks for the widget's code where the shared bundle model cannot be
# read (a frontend without ipywidgets' widget manager); answered with {type, js, css}
BUNDLE = "bundle"
INBOUND = frozenset({READY, STOP, REGENERATE, RESUME, RETRY, RESYNC, LOG_PAGE, BUNDLE})

# Short wire keys of a frame (long name -> wire key); parts use the part keys.
FRAME_KEYS = {
    "type": "t",
    "version": "v",
    "seq": "s",
    "parts": "p",
    "status": "st",
    "metrics": "mt",
    "final": "fin",
    "reason": "r",
    "notes": "n",
    "mode": "md",
}
PART_KEYS = {"choice": "c", "kind": "k", "index": "i", "offset": "o", "text": "x", "meta": "m"}
_LONG_FRAME = {v: k for k, v in FRAME_KEYS.items()}
_LONG_PART = {v: k for k, v in PART_KEYS.items()}

# the run's statuses: defined once, in nbstream.run.stream_run (Status, STATUSES, FINAL)

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
    """A frame with long names (``read_frame``); on the wire the keys are ``FRAME_KEYS``'."""

    type: Literal["frame"]
    version: int
    seq: int
    parts: list[WirePart]
    status: str
    metrics: dict[str, Any]
    final: bool
    reason: str
    notes: list[str]
    mode: str


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


def part_to_wire(part: Part) -> dict[str, Any]:
    """One part of a frame, as JSON with short keys. ``choice`` 0 and ``kind`` "text" are the
    defaults and are left out (most frames carry only the first choice's text)."""
    wire: dict[str, Any] = {"o": part.offset, "x": part.text}
    if part.key.choice != 0:
        wire["c"] = part.key.choice
    if part.key.kind != "text":
        wire["k"] = part.key.kind
    if part.key.index is not None:
        wire["i"] = part.key.index
    if part.meta:
        wire["m"] = dict(part.meta)
    return wire


def frame_message(frame: Frame, version: int, **final: Any) -> dict[str, Any]:
    """A coalesced frame as the ``frame`` custom message, short keys (see :data:`FRAME_KEYS`),
    only the keys that carry news (``v`` 0 left out). ``final`` adds ``reason`` / ``notes`` to
    the last frame of a version (None / empty values are left out)."""
    msg: dict[str, Any] = {"t": FRAME_TAG}
    if version:
        msg["v"] = version
    msg["s"] = frame.seq
    msg["p"] = [part_to_wire(p) for p in frame.parts]
    if frame.status is not None:
        msg["st"] = frame.status
    if frame.metrics is not None:
        msg["mt"] = frame.metrics
    if frame.final:
        msg["fin"] = 1
        for name, value in final.items():
            if value:
                msg[FRAME_KEYS[name]] = value
    return msg


def read_frame(msg: dict[str, Any]) -> FrameMessage:
    """A wire frame with its long names and defaults (``version`` 0, ``choice`` 0, ``kind``
    "text"): what ``js/protocol.js``'s ``decodeFrame`` gives the document; for tests and tools."""
    out: dict[str, Any] = {_LONG_FRAME.get(k, k): v for k, v in msg.items()}
    out["type"] = FRAME
    out.setdefault("version", 0)
    out["final"] = bool(out.get("final"))
    out["parts"] = [
        {"choice": 0, "kind": "text", **{_LONG_PART.get(k, k): v for k, v in p.items()}}
        for p in out.get("parts", [])
    ]
    return out  # type: ignore[return-value]


def is_frame(msg: Any) -> bool:
    """True for a ``frame`` custom message (wire form)."""
    return isinstance(msg, dict) and msg.get("t") == FRAME_TAG


def snapshot_part(key: PartKey, text: str, meta: dict[str, Any] | None = None) -> SnapshotPart:
    """One part's complete text for the ``snapshot`` trait."""
    part: SnapshotPart = {"choice": key.choice, "kind": key.kind, "text": text}
    if key.index is not None:
        part["index"] = key.index
    if meta:
        part["meta"] = dict(meta)
    return part


_SLICE = 1 << 16


def json_size(value: Any) -> int:
    """UTF-8 bytes of ``json.dumps(value, ensure_ascii=False)``, without building that text for
    long strings (a final snapshot holds the whole answer: encoding it to count its bytes would
    briefly hold two more copies of it). Long strings are encoded 64k characters at a time."""
    long = 0

    def short(v: Any) -> Any:
        nonlocal long
        if type(v) is str and len(v) > _SLICE:
            for i in range(0, len(v), _SLICE):  # JSON escapes one character at a time
                long += len(json.dumps(v[i : i + _SLICE], ensure_ascii=False).encode()) - 2
            return ""
        if isinstance(v, dict):
            return {k: short(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [short(x) for x in v]
        return v

    return len(json.dumps(short(value), ensure_ascii=False).encode()) + long


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
