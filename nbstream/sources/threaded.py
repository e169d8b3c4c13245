"""A synchronous attempt read from an event loop: the blocking reads run in their own thread.

``nbstream.stream(lambda: client.chat.completions.create(..., stream=True), background=True)``
with a *sync* client inside a kernel runs as a task on the kernel's event loop (a callable may
return an async stream just as well, so it is driven by ``arun()``). The sync ``Stream`` it
returns cannot be iterated with ``async for``, and iterating it on the loop would block the
kernel (no Stop click, no other cell's output) until the answer ends. So the callable is called
in a worker thread, and the sync attempt's items are read by a thread of their own and handed
to the loop through an ``asyncio.Queue``; ``aclose()`` closes the response from the loop thread
(``Opened.close`` is thread-safe: it shuts the socket down), which ends the reader too.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

from nbstream.sources.base import AOpened, Item, Opened

_END = object()


def read_in_thread(opened: Opened) -> AOpened:
    """``opened`` as an async attempt of the running loop (call from a coroutine)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[Any, BaseException | None]] = asyncio.Queue()
    closing = threading.Event()

    def put(entry: tuple[Any, BaseException | None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is reading any more
            loop.call_soon_threadsafe(queue.put_nowait, entry)

    def pump() -> None:
        try:
            for item in opened.items:
                put((item, None))
                if closing.is_set():
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the loop, raised there
            put((_END, None if closing.is_set() else exc))
        else:
            put((_END, None))

    reader = threading.Thread(target=pump, name="nbstream-sync-reader", daemon=True)

    async def items() -> AsyncIterator[Item]:
        reader.start()
        while True:
            item, exc = await queue.get()
            if item is _END:
                if exc is not None:
                    raise exc
                # decided while the body was read ([DONE] without a finish reason)
                outer.expects_finish = opened.expects_finish
                return
            yield item

    async def aclose() -> None:
        closing.set()
        opened.close()

    outer = AOpened(
        items(),
        kind=opened.kind,
        meta=opened.meta,
        aclose=aclose,
        pending_raw=opened.pending_raw,
        expects_finish=opened.expects_finish,
        adapter=getattr(opened, "_adapter", None),
    )
    return outer
