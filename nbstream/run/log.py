"""ChunkLog: every chunk as received, with time, index and attempt, plus request-level records.

Why this shape: the log is written on the hot path of a stream, so a chunk costs one list append
of a tuple holding the chunk's JSON text exactly as the server sent it (no copy, no re-serialising).
Records become dicts only when read. Memory is bounded: past ``max_memory`` records, everything in
memory is appended to a JSONL spill file, one write per ``INDEX_EVERY`` lines (never the whole
batch encoded at once); from then on records are spilled every ``SPILL_BATCH``. Chunk JSON is
redacted by a :class:`~nbstream.redact.LineRedactor`: the head that a stream's chunks share is
scanned once, not on every line. Only a sparse index stays in memory: the
byte offset of every ``INDEX_EVERY``-th spilled line (a read seeks there and skips forward), so a
1M-chunk log keeps ~125 kB of offsets instead of 8 MB. Every record that
leaves the log (iteration, pages, exports) goes through :mod:`nbstream.redact`.

JSONL format, one object a line (chunk lines are written compactly, starting
``{"type":"chunk",`` with ``"data":<the chunk JSON as received>`` last, or ``"text"`` for text
sources)::

    {"type": "request", "attempt": 1, "t": 0.0, "source": "chat", "params": {...}, "wall_time": ..}
    {"type": "response", "attempt": 1, "t": 0.1, "status": 200, "request_id": .., "headers": {..}}
    {"type":"chunk","attempt":1,"index":0,"t":0.2,"data":{...}}
    {"type": "error", "attempt": 1, "t": 0.9, "message": .., "error_type": .., "data": {..}}
    {"type": "end", "attempt": 1, "t": 1.0, "status": "done", "reason": null}

``t`` is seconds since that attempt's request started (monotonic clock).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import threading
import weakref
from array import array
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from nbstream.events import ReasoningDelta, RefusalDelta, TextDelta, ToolCallDelta
from nbstream.redact import (
    _KEY_PATTERN,
    REDACTED,
    LineRedactor,
    _fragment,
    plain_secrets,
    redact_json_text,
    redact_obj,
    redact_text,
)

RATE_LIMIT_PREFIXES = ("x-ratelimit-", "retry-after", "x-request-id", "openai-processing-ms")
JSON_KINDS = frozenset({"chat", "responses", "openai"})  # "openai": SDK stream, API not yet known


# Once spilling has started, records are written out every this many (short streams never spill).
SPILL_BATCH = 256
# One byte offset is kept per this many spilled lines; reading line i seeks to the offset of line
# i - i % INDEX_EVERY and skips forward over at most INDEX_EVERY - 1 lines.
INDEX_EVERY = 64


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


class ChunkLog:
    """The record of a run (all its attempts): ``len(log)``, ``for rec in log``, ``page(i, n)``."""

    def __init__(self, max_memory: int = 2_000, spill_path: str | Path | None = None) -> None:
        if max_memory < 1:
            raise ValueError("max_memory must be at least 1 record")
        self.max_memory = max_memory
        self._mem: list[Any] = []  # tuple (attempt, index, t, raw) for chunks; dict otherwise
        self._kinds: dict[int, str] = {}
        self._request_ids: dict[int, str | None] = {}
        self._spill_path: str | None = str(spill_path) if spill_path is not None else None
        self._own_spill = False
        self._limit = max_memory  # records held before the next spill (SPILL_BATCH once spilling)
        self._spilled = 0  # lines in the spill file
        self._index = array("q")  # byte offset of spilled lines 0, INDEX_EVERY, 2 * INDEX_EVERY...
        self._spill_size = 0
        self._lock = threading.Lock()
        self._redactor = LineRedactor()
        self._splits = _SplitScanner()
        # record position -> pieces of a secret the model sent across chunks, to scrub from it
        self._patches: dict[int, set[tuple[str, str]]] = {}

    # ---- writing (called by StreamRun) -------------------------------------------------------

    def begin(
        self,
        attempt: int,
        source: str,
        params: Mapping[str, Any] | None = None,
        wall_time: float | None = None,
    ) -> None:
        """A new attempt starts: what was asked (secrets removed) and by which source kind."""
        self._kinds[attempt] = source
        self._splits.reset()
        rec: dict[str, Any] = {"type": "request", "attempt": attempt, "t": 0.0, "source": source}
        if params is not None:
            rec["params"] = redact_obj(_jsonable(params))
        if wall_time is not None:
            rec["wall_time"] = wall_time
        self._append(rec)

    def set_source(self, attempt: int, source: str) -> None:
        """Correct an attempt's source kind once known (an SDK stream is chat or Responses)."""
        self._kinds[attempt] = source
        for rec in reversed(self._mem):
            if type(rec) is dict and rec["type"] == "request" and rec["attempt"] == attempt:
                rec["source"] = source
                break

    def response(
        self,
        attempt: int,
        t: float,
        status: int | None,
        request_id: str | None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """The HTTP response head: status, request id and the rate-limit headers."""
        request_id = redact_text(request_id) if request_id else request_id  # server-chosen text
        self._request_ids[attempt] = request_id
        rec = {
            "type": "response",
            "attempt": attempt,
            "t": t,
            "status": status,
            "request_id": request_id,
            "headers": redact_obj(dict(headers or {})),
        }
        self._append(rec)

    def chunk(self, attempt: int, index: int, t: float, raw: Any, events: Any = None) -> None:
        """One chunk as received: its JSON text (or dict), or the text of a text source.

        ``events``: what the chunk said, decoded (the run passes them): the text deltas are
        watched for a secret the model spells across several chunks (see :class:`_SplitScanner`).
        """
        mem = self._mem
        mem.append((attempt, index, t, raw))
        if events:
            self._scan(events)
        if len(mem) > self._limit:
            self._spill()

    def _scan(self, events: Any) -> None:
        """Feed the streamed text of a chunk's events to the split scanner; the common token
        (``" word"``: it starts a new word) costs a dict lookup and two character tests."""
        words = self._splits.words
        pos = -1
        for ev in events:
            cls = type(ev)
            if cls is TextDelta:
                key: Any = ev.choice
                text = ev.text
            elif cls is ReasoningDelta or cls is RefusalDelta:
                key, text = (cls, ev.choice), ev.text
            elif cls is ToolCallDelta:
                key, text = (ev.choice, ev.index), ev.arguments
            else:
                continue
            if not text:
                continue
            if pos < 0:
                pos = self._spilled + len(self._mem) - 1
            entry = words.get(key)
            if entry is not None and entry[0] and not text[0].isspace():
                found = self._splits.feed(entry, text, pos)  # the text continues a word
                if found:
                    for at, piece, where in found:
                        self._patches.setdefault(at, set()).add((piece, where))
            elif text[-1].isspace():
                if entry is not None:
                    del words[key]
            else:  # a new word starts in this text (what precedes it cannot hold a secret)
                words[key] = [text if len(text) <= WORD_MAX else text[-WORD_MAX:], pos]

    def error(
        self,
        attempt: int,
        t: float,
        message: str,
        error_type: str | None = None,
        status: int | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """An error: HTTP status errors, mid-stream error payloads (``data`` = the payload)."""
        rec: dict[str, Any] = {
            "type": "error",
            "attempt": attempt,
            "t": t,
            "message": redact_text(message),
            "error_type": error_type,
        }
        if status is not None:
            rec["status"] = status
        if data is not None:
            rec["data"] = redact_obj(_parse(data))
        if headers:
            rec["headers"] = redact_obj(dict(headers))
        self._append(rec)

    def note(self, attempt: int, t: float, kind: str, /, **fields: Any) -> None:
        """Any other request-level record (``retry``, ``flag``, ``rate_limit``, ``stall``...):
        what the resilience layer decided and why, so the log tells the whole story."""
        rec: dict[str, Any] = {"type": kind, "attempt": attempt, "t": t}
        rec.update(redact_obj(_jsonable(fields)))
        self._append(rec)

    def end(self, attempt: int, t: float, status: str, reason: str | None) -> None:
        """How the attempt ended."""
        self._splits.reset()
        self._append(
            {
                "type": "end",
                "attempt": attempt,
                "t": t,
                "status": status,
                "reason": redact_text(reason) if reason else reason,
            }
        )

    def _append(self, rec: Any) -> None:
        self._mem.append(rec)
        if len(self._mem) > self._limit:
            self._spill()

    # ---- spilling -----------------------------------------------------------------------------

    def _ensure_spill_file(self) -> str:
        if self._spill_path is None:
            fd, path = tempfile.mkstemp(prefix="nbstream-log-", suffix=".jsonl")
            os.close(fd)
            self._spill_path = path
            self._own_spill = True
            weakref.finalize(self, _remove, path)
        elif not self._spilled:
            Path(self._spill_path).write_bytes(b"")
        return self._spill_path

    def _spill(self) -> None:
        with self._lock:
            # the records that a secret being spelled across chunks may still reach stay in
            # memory (they may be scrubbed later): at most the chunks of the current word
            hold = self._splits.oldest()
            records = self._mem
            cut = len(records) if hold is None else max(0, hold - self._spilled)
            if cut == 0:
                self._limit = len(records) + SPILL_BATCH
                return
            records, self._mem = records[:cut], records[cut:]
            path = self._ensure_spill_file()
            index = self._index
            pos = self._spill_size
            n = self._spilled
            line = self._spill_line
            with open(path, "ab") as f:
                # one write per group of lines between two indexed ones (at most INDEX_EVERY):
                # the group's first line is where the index points
                i, total = 0, len(records)
                while i < total:
                    j = min(total, i + INDEX_EVERY - n % INDEX_EVERY)
                    if n % INDEX_EVERY == 0:
                        index.append(pos)
                    block = _utf8("".join([line(records[k], n + k - i) for k in range(i, j)]))
                    records[i:j] = [None] * (j - i)  # free the records once written
                    f.write(block)
                    pos += len(block)
                    n += j - i
                    i = j
            self._spill_size = pos
            self._spilled = n
            self._limit = len(self._mem) + min(self.max_memory, SPILL_BATCH)

    @property
    def spill_path(self) -> str | None:
        """The JSONL file holding records beyond the memory cap (None until the first spill)."""
        return self._spill_path if self._spilled else None

    # ---- reading ------------------------------------------------------------------------------

    def _line(self, rec: Any, pos: int = -1) -> str:
        """One record as a redacted JSON line; a chunk's raw JSON is spliced, not re-encoded."""
        if type(rec) is tuple:
            attempt, index, t, raw = rec
            if pos in self._patches:
                raw = _patched(raw, self._patches[pos])
            head = f'{{"type":"chunk","attempt":{attempt},"index":{index},"t":{t!r},'
            if isinstance(raw, str):
                if self._kinds.get(attempt) in JSON_KINDS:
                    body = raw.replace("\n", " ").replace("\r", " ")
                    return head + '"data":' + redact_json_text(body) + "}"
                text = json.dumps(raw, ensure_ascii=False)
                return head + '"text":' + redact_json_text(text) + "}"
            data = json.dumps(raw, ensure_ascii=False)
            return head + '"data":' + redact_json_text(data) + "}"
        return redact_json_text(json.dumps(rec, ensure_ascii=False))

    def _spill_line(self, rec: Any, pos: int = -1) -> str:
        """:meth:`_line` with its newline, as spilled: the JSON of a stream's chunks is redacted
        by a :class:`~nbstream.redact.LineRedactor` (it does not scan their shared head again)."""
        if type(rec) is tuple and pos not in self._patches:
            attempt, index, t, raw = rec
            if isinstance(raw, str) and self._kinds.get(attempt) in JSON_KINDS:
                if "\n" in raw or "\r" in raw:
                    raw = raw.replace("\n", " ").replace("\r", " ")
                body = self._redactor(raw)
                return (  # one f-string: built in one go
                    f'{{"type":"chunk","attempt":{attempt},"index":{index},"t":{t!r},'
                    f'"data":{body}}}\n'
                )
        return self._line(rec, pos) + "\n"

    def _record(self, rec: Any, pos: int = -1) -> dict[str, Any]:
        record: dict[str, Any] = (
            json.loads(self._line(rec, pos)) if type(rec) is tuple else redact_obj(rec)
        )
        return record

    def __len__(self) -> int:
        return self._spilled + len(self._mem)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Every record in order, as redacted dicts (spilled ones are read back from the file)."""
        with self._lock:
            spilled = self._spilled
            mem = list(self._mem)
            path = self._spill_path
        if spilled and path:
            with open(path, encoding="utf-8") as f:
                for i, line in enumerate(f):
                    if i >= spilled:
                        break
                    yield json.loads(line)
        for i, rec in enumerate(mem, spilled):
            yield self._record(rec, i)

    def page(self, start: int, count: int) -> list[dict[str, Any]]:
        """Records ``start .. start+count`` (what the widget's log panel fetches on demand)."""
        with self._lock:
            spilled = self._spilled
            mem = list(self._mem)
            path = self._spill_path
            seek = self._index[start // INDEX_EVERY] if start < spilled else 0
        out: list[dict[str, Any]] = []
        end = start + count
        if start < spilled and path:
            with open(path, "rb") as f:
                f.seek(seek)
                for _ in range(start % INDEX_EVERY):
                    f.readline()
                for _ in range(min(end, spilled) - start):
                    out.append(json.loads(f.readline()))
        first = max(0, start - spilled)
        for i, rec in enumerate(mem[first : max(0, end - spilled)], spilled + first):
            out.append(self._record(rec, i))
        return out

    def chunks(self, attempt: int | None = None) -> Iterator[dict[str, Any]]:
        """Only the chunk records (of one attempt if given)."""
        for rec in self:
            if rec["type"] == "chunk" and (attempt is None or rec["attempt"] == attempt):
                yield rec

    @property
    def attempts(self) -> int:
        """How many attempts (requests) the log holds."""
        return max(self._kinds, default=0)

    def source_kind(self, attempt: int) -> str | None:
        return self._kinds.get(attempt)

    def request_id(self, attempt: int) -> str | None:
        return self._request_ids.get(attempt)

    def to_jsonl(self, path: str | Path) -> Path:
        """Write the whole log (redacted) as JSON lines; returns the path."""
        path = Path(path)
        with self._lock:
            spilled = self._spilled
            size = self._spill_size
            mem = list(self._mem)
            spill = self._spill_path
        with open(path, "wb") as out:
            if spilled and spill:
                with open(spill, "rb") as f:
                    remaining = size
                    while remaining > 0:
                        block = f.read(min(1 << 20, remaining))
                        if not block:
                            break
                        out.write(block)
                        remaining -= len(block)
            lines = (self._line(r, i) + "\n" for i, r in enumerate(mem, spilled))
            out.write(_utf8("".join(lines)))
        return path

    @classmethod
    def read(cls, path: str | Path, max_memory: int = 2_000) -> ChunkLog:
        """Load a log written by :meth:`to_jsonl` (for replay or inspection)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"no chunk log at {str(path)!r}: pass a .jsonl written by to_jsonl"
            )
        log = cls(max_memory=max_memory)
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError as exc:
                    raise ValueError(
                        f"{path.name} line {lineno} is not JSON ({exc}); is it a chunk log "
                        "written by ChunkLog.to_jsonl?"
                    ) from None
                if not isinstance(rec, dict) or "type" not in rec:
                    raise ValueError(f"{path.name} line {lineno}: not a chunk-log record")
                if rec["type"] == "request":
                    log._kinds[rec.get("attempt", 1)] = rec.get("source", "chat")
                elif rec["type"] == "response":
                    log._request_ids[rec.get("attempt", 1)] = rec.get("request_id")
                log._append(rec)
        return log

    def __repr__(self) -> str:
        spill = f", spilled={self._spilled}" if self._spilled else ""
        return f"ChunkLog(records={len(self)}, attempts={self.attempts}{spill})"


_SURROGATE = re.compile("[\ud800-\udfff]")


def _utf8(lines: str) -> bytes:
    """JSON lines as UTF-8. A lone surrogate (half an emoji, as a text source or a server may
    send it: see ``surrogates.py``) cannot be UTF-8: it is written as its JSON escape
    (``\\ud83d``), which reads back as the same ``str``. It only ever sits inside a JSON string
    (json.dumps writes nothing else raw), so the escape keeps the line valid JSON."""
    try:
        return lines.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", lines).encode("utf-8")


def _parse(data: Any) -> Any:
    if isinstance(data, str):
        try:
            return json.loads(data)
        except ValueError:
            return data
    return _jsonable(data)


def _jsonable(obj: Any) -> Any:
    """Make request parameters JSON-ready without failing on SDK objects or NotGiven sentinels."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        try:
            return _jsonable(dump(mode="json"))
        except Exception:
            pass
    return repr(obj)


# The longest run of non-whitespace the split scanner keeps (a key is far shorter): bounds the
# work per chunk and the records held in memory for a stream that never writes a space.
WORD_MAX = 1024
# Keys of a chunk's JSON whose string values are streamed text (chat deltas, Responses deltas).
_TEXT_KEYS = frozenset(
    {"content", "reasoning_content", "reasoning", "refusal", "arguments", "delta", "text"}
)


class _SplitScanner:
    """Finds a secret that the model spells across several chunks (``"sk-pr"``, ``"oj-AbC"``...).

    Each chunk is scrubbed on its own when it leaves the log; this finds what no single chunk
    shows. A secret holds no whitespace, so only the current *word* can hide one: per stream of
    text (choice, kind) the scanner keeps the text since the last whitespace and which records it
    came from. A chunk that starts with whitespace (most tokens: ``" word"``) only starts a new
    word; one that continues the word is checked together with it, for the registered secrets and
    the key shapes, and only for matches that cross into this chunk. The work per chunk is its
    own length plus the current word's (bounded by ``WORD_MAX``), never the text so far. A match
    gives, for each record it crosses, the piece of the secret that record holds.
    """

    __slots__ = ("words",)

    def __init__(self) -> None:
        # key -> [the word, its records: one position, or [(position, offset in the word)...]]
        self.words: dict[Any, list[Any]] = {}

    def reset(self) -> None:
        self.words.clear()

    def oldest(self) -> int | None:
        """The oldest record a current word reaches (later matches may scrub it), or None."""
        oldest = None
        for word, recs in self.words.values():
            if not word:
                continue
            first = recs if type(recs) is int else recs[0][0]
            if oldest is None or first < oldest:
                oldest = first
        return oldest

    def feed(self, entry: list[Any], text: str, pos: int) -> list[tuple[int, str, str]] | None:
        """``text`` (from record ``pos``) continues the word of ``entry``."""
        word, recs = entry
        if type(recs) is int:
            recs = entry[1] = [(recs, 0)]
        head = text.split(None, 1)[0]
        joined = word + head
        found = _crossing(joined, len(word))
        out = None
        if found:
            bounds = [*recs, (pos, len(word))]
            out = []
            for start, end in found:
                for i, (at, off) in enumerate(bounds):
                    stop = bounds[i + 1][1] if i + 1 < len(bounds) else len(joined)
                    lo, hi = max(start, off), min(end, stop)
                    if lo < hi:  # this record holds joined[lo:hi] of the secret
                        out.append((at, joined[lo:hi], "start" if at == pos else "end"))
        if len(head) < len(text):  # the word ends in this text: a new one may start
            if text[-1].isspace():
                entry[0], entry[1] = "", pos
            else:
                entry[0], entry[1] = text[-WORD_MAX:], pos
        else:
            recs.append((pos, len(word)))
            if len(joined) > WORD_MAX:  # forget the oldest part (and its records)
                cut = len(joined) - WORD_MAX
                joined = joined[cut:]
                recs[:] = [(at, off - cut) for at, off in recs if off - cut >= 0] or [(pos, 0)]
            entry[0] = joined
        return out


def _crossing(joined: str, boundary: int) -> list[tuple[int, int]]:
    """Spans of secrets in ``joined`` that start before ``boundary`` and end after it."""
    spans = []
    for secret in plain_secrets():
        n = len(secret)
        if n > len(joined):
            continue
        i = joined.find(secret, max(0, boundary - n + 1))
        while i != -1 and i < boundary:
            if i + n > boundary:
                spans.append((i, i + n))
            i = joined.find(secret, i + 1)
    if _fragment(joined):
        for m in _KEY_PATTERN.finditer(joined):
            start, end = m.span("pw") if m.group("pw") is not None else m.span()
            if start < boundary < end:
                spans.append((start, end))
    return spans


def _patched(raw: Any, pieces: set[tuple[str, str]]) -> Any:
    """``raw`` (a chunk's JSON text or dict, or a text chunk) with the pieces of a secret spelled
    across chunks scrubbed from its streamed text: ``end`` pieces end a text value, ``start``
    ones begin it. A piece found nowhere scrubs all the chunk's text (never leave it)."""
    data = raw
    with contextlib.suppress(TypeError, ValueError):
        # a copy, never the record kept in memory (the pieces are applied to the original)
        data = json.loads(raw if isinstance(raw, str) else json.dumps(raw))
    if not isinstance(data, (dict, list)):  # the text of a text source
        text, hit = _scrub_piece(str(raw), pieces)
        return text if hit else REDACTED
    leaves: list[tuple[Any, Any]] = []
    _text_leaves(data, leaves)
    for piece, where in sorted(pieces, key=lambda p: -len(p[0])):
        for container, k in leaves:
            value = container[k]
            fixed, hit = _scrub_piece(value, {(piece, where)})
            if hit:
                container[k] = fixed
                break
        else:
            for container, k in leaves:
                container[k] = REDACTED
    if isinstance(raw, str):
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return data


def _text_leaves(obj: Any, out: list[tuple[Any, Any]]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, str) and k in _TEXT_KEYS:
                out.append((obj, k))
            elif isinstance(v, (dict, list)):
                _text_leaves(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _text_leaves(v, out)


def _scrub_piece(value: str, pieces: set[tuple[str, str]]) -> tuple[str, bool]:
    hit = False
    for piece, where in pieces:
        if where == "end" and value.endswith(piece):
            value, hit = value[: len(value) - len(piece)] + REDACTED, True
        elif where == "start" and value.startswith(piece):
            value, hit = REDACTED + value[len(piece) :], True
        elif piece in value:
            value, hit = value.replace(piece, REDACTED), True
    return value, hit
