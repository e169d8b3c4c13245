"""Make streamed text valid Unicode: join an emoji split across chunks, replace lone halves.

A character outside the Basic Multilingual Plane (most emoji) is two UTF-16 code units. Sources
that cut text by UTF-16 units - a JavaScript server, a tokenizer emitting ``"\\ud83d"`` JSON
escapes one per chunk, a Python generator slicing such text - can send the halves in separate
chunks: ``"a\\ud83d"`` then ``"\\ude00b"``. Python decodes each into a ``str`` holding a lone
surrogate, which cannot be encoded as UTF-8: the widget's messages, the notebook's static output
and ``log.to_jsonl()`` all failed on it, leaving the view "streaming".

So text is made valid once, where events enter the run (:class:`StreamRun` calls :meth:`mend`
per chunk), and everything downstream (state, hooks, widget, output) only sees valid text:

- a high surrogate at the end of a delta is held back until the next delta of the same part
  (choice, kind, tool call); if that one starts with the matching low surrogate the two become
  one character (``"a"``, then ``"\\U0001F600b"``);
- any other lone half becomes U+FFFD (the replacement character), as a UTF-8 decoder would do;
- a half still held when the attempt ends (:meth:`flush`) becomes U+FFFD too.

The chunk log keeps the raw chunks as received (it escapes lone halves as ``\\udXXX`` in its JSON,
see ``log.py``), so a replay mends them the same way.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from nbstream.events import Event, Finished, ReasoningDelta, RefusalDelta, TextDelta, ToolCallDelta

_SURROGATE = re.compile("[\ud800-\udfff]")
_PAIR_OR_LONE = re.compile("([\ud800-\udbff][\udc00-\udfff])|[\ud800-\udfff]")
_TEXT_EVENTS = (TextDelta, RefusalDelta, ReasoningDelta)
REPLACEMENT = "\ufffd"


def _join_pair(match: re.Match[str]) -> str:
    pair = match.group(1)
    return pair.encode("utf-16-le", "surrogatepass").decode("utf-16-le") if pair else REPLACEMENT


def valid_text(text: str) -> str:
    """``text`` with surrogate pairs joined and lone halves replaced by U+FFFD."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return _PAIR_OR_LONE.sub(_join_pair, text)


def valid_obj(obj: Any) -> Any:
    """A JSON-like value with every string (keys too) made valid (the log panel's raw rows)."""
    if isinstance(obj, str):
        return valid_text(obj)
    if isinstance(obj, dict):
        return {valid_obj(k): valid_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [valid_obj(v) for v in obj]
    return obj


def _text_of(event: Any) -> str | None:
    cls = type(event)
    text: str | None = None
    if cls is ToolCallDelta:
        text = event.arguments
    elif cls in _TEXT_EVENTS:
        text = event.text
    return text


class SurrogateMender:
    """Per attempt: :meth:`mend` each chunk's events, :meth:`flush` when the attempt ends."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[tuple[Any, ...], tuple[str, Event]] = {}

    def mend(self, events: list[Event]) -> list[Event]:
        """The events with valid text (the same list when nothing needed mending: the hot path
        costs one ``isascii()`` per text event)."""
        if not self._held:
            for event in events:  # (a plain loop: ~3x cheaper than any() over a generator)
                text = event.text if type(event) is TextDelta else _text_of(event)
                if text and not text.isascii() and _SURROGATE.search(text) is not None:
                    break
            else:
                return events
        out: list[Event] = []
        held = self._held
        for event in events:
            text = _text_of(event)
            if text is None:
                if type(event) is Finished:
                    out.extend(self._release(lambda key, c=event.choice: key[1] == c))
                out.append(event)
                continue
            key = _key(event)
            before = held.pop(key, None)
            if before is not None:
                text = before[0] + text
            if text and "\ud800" <= text[-1] <= "\udbff":
                # maybe the first half of a pair whose second half is in the next chunk
                held[key] = (text[-1], event)
                text = text[:-1]
            text = valid_text(text)
            if text or type(event) is ToolCallDelta:
                out.append(_with_text(event, text))
        return out

    def flush(self) -> list[Event]:
        """The halves still held at the end of an attempt, as U+FFFD."""
        return list(self._release(lambda _key: True))

    def _release(self, which: Any) -> list[Event]:
        held = self._held
        keys = [key for key in held if which(key)]
        return [_with_text(held.pop(key)[1], REPLACEMENT) for key in keys]


def _key(event: Any) -> tuple[Any, ...]:
    return (type(event), event.choice, getattr(event, "index", None))


def _with_text(event: Any, text: str) -> Event:
    mended: Event
    if type(event) is ToolCallDelta:
        mended = dataclasses.replace(event, arguments=text)
    else:
        mended = dataclasses.replace(event, text=text)
    return mended
