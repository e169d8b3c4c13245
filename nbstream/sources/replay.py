"""A recorded :class:`~nbstream.log.ChunkLog` as a source, with the original timing.

``nbstream.replay(path, speed=1.0)``: each chunk comes ``t / speed`` seconds after the start, as it
did when recorded (``speed=0``: as fast as possible). Chunks go through the same adapters as live
ones, so a replay reproduces the text, tool calls, usage and a recorded mid-stream error.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from nbstream.events import Event, TextDelta
from nbstream.log import ChunkLog
from nbstream.sources.base import AOpened, Opened, ResponseMeta, StreamError


def _adapter_for(data: Any) -> Any:
    from nbstream.sources.openai_chat import ChatAdapter
    from nbstream.sources.openai_responses import ResponsesAdapter

    return ChatAdapter() if isinstance(data, dict) and "choices" in data else ResponsesAdapter()


def _model_for(adapter: Any) -> Callable[[dict[str, Any]], Any]:
    if adapter.kind == "chat":
        from nbstream.sources.openai_chat import chunk_from_json

        return chunk_from_json
    from nbstream.sources.openai_responses import event_from_json

    return event_from_json


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
        if not isinstance(log, ChunkLog):
            log = ChunkLog.read(log)
        if speed < 0:
            raise ValueError("speed must be >= 0 (0 replays as fast as possible)")
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
        for rec in self.log:
            if rec.get("attempt", 1) != self.attempt:
                continue
            rtype = rec["type"]
            if rtype == "chunk":
                chunks.append(rec)
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
        build = None
        for rec in chunks:
            if "text" in rec:
                text = rec["text"]
                yield rec["t"], text, [TextDelta(text)] if text else []
                continue
            data = rec.get("data")
            if adapter is None:
                adapter = _adapter_for(data)
                build = _model_for(adapter)
            assert build is not None
            yield rec["t"], data, adapter.handle(build(data))

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
