"""(Async) iterables as a source: your generator of text, LangChain ``.stream()``, chunk dicts...

Each ``str`` item is a piece of text. Any other item is read by the adapter its first one picks
(:class:`nbstream.sources.native.ItemReader`): LangChain ``AIMessageChunk`` in full (tool calls,
usage, reasoning), OpenAI-shaped chunk dicts or objects (LiteLLM, Hugging Face, llama-cpp,
pre-1.0 ``openai``), native SDK chunks; else an object whose ``.content`` is a ``str``.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

from nbstream.events import Event
from nbstream.sources.base import AOpened, Opened
from nbstream.sources.native import ItemReader


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
        reader = ItemReader(_text_of)
        opened: Opened

        def items() -> Iterator[tuple[Any, list[Event]]]:
            for n, item in enumerate(iterator):
                got = reader.read(item, n)
                opened.expects_finish = reader.expects_finish  # chunks of an API: a finish
                yield got

        gen = items()

        def close() -> None:
            # Only the consuming thread closes a generator (Stop from elsewhere sets a flag).
            closer = getattr(iterator, "close", None)
            if callable(closer):
                # "generator already executing" (another thread): the Stop flag will do.
                with contextlib.suppress(ValueError):
                    closer()

        opened = Opened(gen, kind="text", close=close, expects_finish=False, adapter=reader)
        return opened

    async def aopen(self) -> AOpened:
        obj = self._obj
        if hasattr(obj, "__aiter__"):
            aiterator = obj.__aiter__()
            reader = ItemReader(_text_of)
            aopened: AOpened

            async def aitems() -> AsyncIterator[tuple[Any, list[Event]]]:
                n = 0
                async for item in aiterator:
                    got = reader.read(item, n)
                    aopened.expects_finish = reader.expects_finish
                    n += 1
                    yield got

            async def aclose() -> None:
                closer = getattr(aiterator, "aclose", None)
                if callable(closer):
                    await closer()

            aopened = AOpened(
                aitems(), kind="text", aclose=aclose, expects_finish=False, adapter=reader
            )
            return aopened

        iterator = iter(obj)
        sreader = ItemReader(_text_of)
        sopened: AOpened

        async def sync_items() -> AsyncIterator[tuple[Any, list[Event]]]:
            for n, item in enumerate(iterator):
                got = sreader.read(item, n)
                sopened.expects_finish = sreader.expects_finish
                yield got

        async def sclose() -> None:
            closer = getattr(iterator, "close", None)
            if callable(closer):
                closer()

        sopened = AOpened(
            sync_items(), kind="text", aclose=sclose, expects_finish=False, adapter=sreader
        )
        return sopened

    def __repr__(self) -> str:
        return f"TextSource({type(self._obj).__name__})"
