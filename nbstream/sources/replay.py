"""A recorded :class:`~nbstream.run.log.ChunkLog` as a source, with the original timing.

``nbstream.replay(path, speed=1.0)``: each chunk comes ``t / speed`` seconds after the start, as it
did when recorded (``speed=0``: as fast as possible). Chunks go through the same adapters as live
ones, so a replay reproduces the text, tool calls, usage and a recorded mid-stream error.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from nbstream.events import Event, TextDelta
from nbstream.run.log import ChunkLog
from nbstream.sources.base import AOpened, Opened, ResponseMeta, StreamError


def _adapter_for(data: Any) -> Any:
    from nbstream.sources.openai_chat import ChatAdapter
    from nbstream.sources.openai_responses import ResponsesAdapter

    return ChatAdapter() if isinstance(data, dict) and "choices" in data else ResponsesAdapter()


def _record_problem(rec: Any) -> str | None:
    """What is wrong with one decoded log line (None when it can be replayed)."""
    if not isinstance(rec, dict) or not isinstance(rec.get("type"), str):
        return 'not a chunk-log record (a JSON object with a "type")'
    attempt = rec.get("attempt", 1)
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        return f"'attempt' must be a whole number >= 1, got {attempt!r}"[:200]
    if rec["type"] == "chunk":
        t = rec.get("t")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
            return f"a chunk's 't' (seconds since the request) must be a number >= 0, got {t!r}"[
                :200
            ]
        if "text" in rec:
            if not isinstance(rec["text"], str):
                return "a text chunk's 'text' must be a string"
        elif not isinstance(rec.get("data"), (dict, str)):
            return "a chunk needs 'data' (the chunk's JSON object) or 'text'"
    return None


def _check_log_file(path: Path) -> list[int]:
    """Read ``path`` once, failing with a ``ValueError`` naming the file and line of the first
    corrupt record; returns the line number of each record (to name lines in later errors)."""
    if not path.is_file():
        return []  # ChunkLog.read says so
    lines: list[int] = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            where = f"corrupt chunk log {str(path)!r}, line {lineno}"
            try:
                rec = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise ValueError(f"{where}: not UTF-8 text (byte {exc.start + 1})") from None
            except (ValueError, RecursionError) as exc:
                raise ValueError(
                    f"{where}: not JSON ({str(exc)[:120]}); is it a log written by "
                    "ChunkLog.to_jsonl (or %%stream --log)?"
                ) from None
            problem = _record_problem(rec)
            if problem:
                raise ValueError(f"{where}: {problem}")
            lines.append(lineno)
    return lines


_KIND_NAMES = {"chat": "chat", "chunks": "chat", "anthropic": "Anthropic", "gemini": "Gemini"}
_KIND_NAMES.update({"ollama": "Ollama", "cohere": "Cohere", "langchain": "LangChain"})


class ReplaySource:
    """Replays one attempt of a log (the last one by default). Re-runnable."""

    rerunnable = True
    params = None
    supports_sync = True
    supports_async = True

    def __init__(
        self,
        log: ChunkLog | str | Path,
        speed: float = 1.0,
        attempt: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not speed >= 0:
            raise ValueError(
                f"replay speed must be a number >= 0 (1: the recorded timing, 2: twice as fast, "
                f"0: as fast as possible), got {speed!r}"
            )
        self.path: Path | None = None
        self._lines: list[int] = []  # line number of each record, when read from a file
        if not isinstance(log, ChunkLog):
            self.path = Path(log)
            self._lines = _check_log_file(self.path)
            log = ChunkLog.read(log)
        self.log = log
        self.speed = float(speed)
        self.attempt = attempt if attempt is not None else log.attempts
        if self.attempt < 1 or self.attempt > log.attempts:
            raise ValueError(
                f"the log has {log.attempts} attempt(s); cannot replay attempt {self.attempt}"
            )
        self.clock = clock
        self.kind = log.source_kind(self.attempt) or "chat"

    def _records(self) -> tuple[ResponseMeta, list[dict[str, Any]], dict[str, Any] | None]:
        meta = ResponseMeta()
        chunks: list[dict[str, Any]] = []
        error = None
        for position, rec in enumerate(self.log):
            if rec.get("attempt", 1) != self.attempt:
                continue
            rtype = rec["type"]
            if rtype == "chunk":
                chunks.append({**rec, "_position": position})
            elif rtype == "response":
                meta = ResponseMeta(
                    status=rec.get("status"),
                    request_id=rec.get("request_id"),
                    headers=dict(rec.get("headers") or {}),
                )
            elif rtype == "error" and rec.get("status") is None:
                error = rec
        return meta, chunks, error

    def _steps(self, chunks: list[dict[str, Any]]) -> Iterator[tuple[float, Any, list[Event]]]:
        adapter = None
        for rec in chunks:
            if "text" in rec:
                text = rec["text"]
                yield rec["t"], text, [TextDelta(text)] if text else []
                continue
            data: Any = rec.get("data")  # a chunk's JSON; anything else fails below, located
            try:
                if adapter is None:
                    from nbstream.sources.native import adapter_for_kind

                    # every adapter reads the chunks' JSON dicts as logged
                    adapter = adapter_for_kind(self.kind) or _adapter_for(data)
                events = adapter.handle(data)
            except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
                # a record that parses but is not a chunk the adapters know: say where it is
                raise ValueError(
                    f"{self._where(rec)}: the chunk does not have the shape of a "
                    f"{_KIND_NAMES.get(self.kind, 'Responses')} stream chunk ({exc})"
                ) from None
            yield rec["t"], data, events

    def _where(self, rec: dict[str, Any]) -> str:
        position = rec.get("_position", -1)
        if self.path is not None and 0 <= position < len(self._lines):
            return f"corrupt chunk log {str(self.path)!r}, line {self._lines[position]}"
        return f"corrupt chunk log, record {position + 1}"

    @staticmethod
    def _raise(error: dict[str, Any]) -> None:
        data = error.get("data")
        code = None
        if isinstance(data, dict):
            code = data.get("code")
            code = str(code) if code is not None else None
        raise StreamError(error.get("message") or "replayed error", code=code, data=data)

    def open(self) -> Opened:
        meta, chunks, error = self._records()
        stop = threading.Event()
        speed, clock = self.speed, self.clock

        def items() -> Iterator[tuple[Any, list[Event]]]:
            start = clock()
            for t, raw, events in self._steps(chunks):
                if speed > 0:
                    wait = start + t / speed - clock()
                    if wait > 0 and stop.wait(wait):
                        return
                if stop.is_set():
                    return
                yield raw, events
            if error is not None:
                self._raise(error)

        return Opened(
            items(), kind=self.kind, meta=meta, close=stop.set, expects_finish=self.kind != "text"
        )

    async def aopen(self) -> AOpened:
        meta, chunks, error = self._records()
        speed, clock = self.speed, self.clock

        async def items() -> AsyncIterator[tuple[Any, list[Event]]]:
            start = clock()
            for t, raw, events in self._steps(chunks):
                if speed > 0:
                    wait = start + t / speed - clock()
                    if wait > 0:
                        await asyncio.sleep(wait)
                yield raw, events
            if error is not None:
                self._raise(error)

        return AOpened(items(), kind=self.kind, meta=meta, expects_finish=self.kind != "text")

    def __repr__(self) -> str:
        return f"ReplaySource({self.log!r}, speed={self.speed}, attempt={self.attempt})"


def replay(log: ChunkLog | str | Path, speed: float = 1.0, attempt: int | None = None) -> Any:
    """Replay a chunk log (a :class:`ChunkLog` or a ``.jsonl`` path) with its original timing.

    Returns what :func:`nbstream.stream` accepts; ``speed=2`` is twice as fast, ``0`` instant.
    """
    return ReplaySource(log, speed=speed, attempt=attempt)
