"""The widget's wire protocol: typed messages between ``StreamView`` and ``js/``.

Mirrors ``js/protocol.js``; change both together (``tests/test_wire_keys.py`` compares the
keys both sides use). State tiers (as in lonboard):

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
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

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


# ---- frames: what the coalescer batches (nbstream.frontend.coalesce makes them) ----------------


@dataclass(frozen=True, slots=True)
class PartKey:
    """Which stream of text a piece belongs to: a choice and a kind.

    ``kind`` is ``"text"``, ``"refusal"``, ``"reasoning"``, ``"tool"`` (then ``index`` is the
    tool call's index), ``"logprobs"`` / ``"refusal_logprobs"`` (one compact JSON line per token,
    see :func:`logprob_lines`), ``"filter"`` (the latest content-filter results, in ``meta``;
    choice -1 for the prompt's), ``"hosted"`` (a tool the server ran: the text is its input,
    ``meta`` its type, status, name, output), ``"citation"`` (a source: text empty, ``meta``
    url/title or file_id/filename). New kinds can be added without changing the frame shape.
    """

    choice: int = 0
    kind: str = "text"
    index: int | None = None


@dataclass(slots=True)
class Part:
    """New text for one part since the previous frame, with the offset it starts at.

    ``offset`` counts UTF-16 code units (JS string length) already sent for this part, so a view
    can tell an append from a gap. ``meta`` carries one-off facts (a tool call's id and name).
    """

    key: PartKey
    offset: int
    text: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Frame:
    """One batch for the frontend: new text per part, plus status/metrics when they changed."""

    seq: int
    parts: list[Part]
    status: str | None = None
    metrics: dict[str, Any] | None = None
    final: bool = False


# ---- the messages, typed: the single source of truth for the wire's keys ---------------------
# tests/test_wire_contract.py checks every message a streamed view really sends against these
# (keys and value types). Required keys sit in a base class (Python 3.10 has no Required[]).


class _WirePartRequired(TypedDict):
    o: int  # offset: UTF-16 code units of this part already sent
    x: str  # the new text


class WirePart(_WirePartRequired, total=False):
    """One part of a frame on the wire (:data:`PART_KEYS`); absent ``c`` = 0, ``k`` = "text"."""

    c: int  # choice
    k: str  # kind
    i: int  # index (tool calls, hosted tools, citations)
    m: dict[str, Any]  # meta


class _WireFrameRequired(TypedDict):
    t: Literal["f"]
    s: int  # seq
    p: list[WirePart]


class WireFrame(_WireFrameRequired, total=False):
    """A ``frame`` custom message as sent (:data:`FRAME_KEYS`); absent ``v`` = version 0."""

    v: int  # version
    st: Status  # status, when it changed
    mt: dict[str, Any]  # metrics: the changed values (all of them on the final frame)
    fin: Literal[1]  # the final frame of the version
    r: str  # reason (final frame)
    n: list[str]  # resilience notes (final frame)
    md: Mode  # the mode the view ends in (final frame, to a frontend that said ready)


class _FramePartRequired(TypedDict):
    choice: int
    kind: str
    offset: int
    text: str


class FramePart(_FramePartRequired, total=False):
    """A part with long names (:func:`read_frame`, js ``decodeFrame``)."""

    index: int
    meta: dict[str, Any]


class _FrameMessageRequired(TypedDict):
    type: Literal["frame"]
    version: int
    seq: int
    parts: list[FramePart]
    final: bool


class FrameMessage(_FrameMessageRequired, total=False):
    """A frame with long names and defaults (:func:`read_frame`, js ``decodeFrame``)."""

    status: Status
    metrics: dict[str, Any]
    reason: str
    notes: list[str]
    mode: Mode


class _SnapshotPartRequired(TypedDict):
    choice: int
    kind: str
    text: str


class SnapshotPart(_SnapshotPartRequired, total=False):
    index: int
    meta: dict[str, Any]


class VersionSnapshot(TypedDict):
    """One version in the ``snapshot`` trait (js/document.js ``reconcile``)."""

    version: int
    seq: int  # the last frame included
    status: Status
    reason: str | None
    notes: list[str]  # resilience notes (flags, rate limit, budget, the demo server's notice)
    resume_blocked: str | None  # why Continue is hidden (a hook stopped the answer), or None
    metrics: dict[str, Any]
    parts: list[SnapshotPart]


class Snapshot(TypedDict):
    """The ``snapshot`` trait."""

    protocol: int
    current: int
    versions: list[VersionSnapshot]


class _LogRowRequired(TypedDict):
    index: int  # the record's index in the version's log
    type: str  # request | response | chunk | error | end | retry | ... (log.py)
    t: float | None  # seconds since the attempt began
    attempt: int | None
    delta: str  # a chunk's text; other records: their fields as "key=value"


class LogRow(_LogRowRequired, total=False):
    """One row of the log panel (js/logpanel.js)."""

    chunk: int | None  # a chunk's index in its attempt
    note: str  # a chunk's finish reason, usage, error...
    raw: dict[str, Any]  # the whole record (asked with ``raw``)


class _LogPageReplyRequired(TypedDict):
    type: Literal["log_page"]
    id: int | str | None  # the request's id, echoed


class LogPageReply(_LogPageReplyRequired, total=False):
    """The answer to a ``log_page`` request: rows, or the JSONL export, or an error."""

    version: int
    total: int  # records in the version's log
    rows: list[LogRow]
    times: list[float]  # every chunk's time (``times``: the timeline)
    requests: list[dict[str, Any]]  # the records that are not chunks (``times``)
    jsonl: str  # the whole log (``jsonl``)
    error: str


class ErrorMessage(TypedDict):
    """A frontend message that could not be served (unknown type, Continue while streaming)."""

    type: Literal["error"]
    message: str


class BundleMessage(TypedDict):
    """The widget's code for js/loader.js where the shared bundle model cannot be read."""

    type: Literal["bundle"]
    js: str
    css: str


class _LogPageRequestRequired(TypedDict):
    type: Literal["log_page"]


class LogPageRequest(_LogPageRequestRequired, total=False):
    """JS -> Python (js/protocol.js ``logPage``)."""

    id: int | str
    version: int
    start: int
    count: int
    raw: bool
    times: bool
    jsonl: bool


OUTBOUND: dict[str, type] = {
    FRAME_TAG: WireFrame,
    LOG_PAGE: LogPageReply,
    ERROR: ErrorMessage,
    BUNDLE: BundleMessage,
}
"""Python -> JS custom messages by tag (a frame's ``t``, the others' ``type``), typed."""

TRAITS: dict[str, type] = {"snapshot": Snapshot}
"""Synced traits with a structured value, with their TypedDict."""


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
