"""(Async) iterables of text as a source: your generator, LangChain ``.stream()``, Ollama...

Each item is a piece of text. Besides ``str`` we accept objects whose ``.content`` is a ``str``
(LangChain's ``AIMessageChunk``), so a chat model's ``.stream()`` works as is.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

from nbstream.events import Event, TextDelta
from nbstream.sources.base import AOpened, Opened


def _text_of(item: Any, n: int) -> str:
    if isinstance(item, str):
        return item
    content = getattr(item, "content", None)
    if isinstance(content, str):
        return content
    raise TypeError(
        f"a text source must yield str (or objects with a str .content); item {n} is "
        f"{type(item).__name__}. Convert it, e.g. (str(x) for x in your_iterable)."
    )


def _events(text: str) -> list[Event]:
    return [TextDelta(text)] if text else []


class TextSource:
    """Wraps an iterable or async iterable of text. Re-runnable if it is not a one-shot iterator."""

    kind = "text"
    params = None

    def __init__(self, obj: Any) -> None:
        self._obj = obj
        self.supports_async = True
        is_async = hasattr(obj, "__aiter__")
        self.supports_sync = not is_async
        if is_async:
            self.rerunnable = not (inspect.isasyncgen(obj) or hasattr(obj, "__anext__"))
        else:
            self.rerunnable = not hasattr(obj, "__next__")

    def open(self) -> Opened:
        iterator = iter(self._obj)

        def items() -> Iterator[tuple[Any, list[Event]]]:
            for n, item in enumerate(iterator):
                text = _text_of(item, n)
                yield text, _events(text)

        gen = items()

        def close() -> None:
            # Only the consuming thread closes a generator (Stop from elsewhere sets a flag).
            closer = getattr(iterator, "close", None)
            if callable(closer):
                # "generator already executing" (another thread): the Stop flag will do.
                with contextlib.suppress(ValueError):
                    closer()

        return Opened(gen, kind="text", close=close, expects_finish=False)

    async def aopen(self) -> AOpened:
        obj = self._obj
        if hasattr(obj, "__aiter__"):
            aiterator = obj.__aiter__()

            async def aitems() -> AsyncIterator[tuple[Any, list[Event]]]:
                n = 0
                async for item in aiterator:
                    text = _text_of(item, n)
                    n += 1
                    yield text, _events(text)

            async def aclose() -> None:
                closer = getattr(aiterator, "aclose", None)
                if callable(closer):
                    await closer()

            return AOpened(aitems(), kind="text", aclose=aclose, expects_finish=False)

        iterator = iter(obj)

        async def sync_items() -> AsyncIterator[tuple[Any, list[Event]]]:
            for n, item in enumerate(iterator):
                text = _text_of(item, n)
                yield text, _events(text)

        async def sclose() -> None:
            closer = getattr(iterator, "close", None)
            if callable(closer):
                closer()

        return AOpened(sync_items(), kind="text", aclose=sclose, expects_finish=False)

    def __repr__(self) -> str:
        return f"TextSource({type(self._obj).__name__})"
