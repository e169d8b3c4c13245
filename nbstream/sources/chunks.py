"""OpenAI-shaped chunks that are not an ``openai.Stream``: LiteLLM's ``ModelResponseStream``,
Hugging Face's ``ChatCompletionStreamOutput``, llama-cpp-python's dicts, the pre-1.0 ``openai``
dict chunks of old tutorials, Mistral's SDK chunks. Each is normalised to a Chat Completions
chunk dict and read by the same :class:`~nbstream.sources.openai_chat.ChatAdapter` (kind ``chunks``:
a replay normalises the logged dicts again, as they were received).

Normalising: legacy completions (``choices[].text``) become ``delta.content``; a Mistral content
LIST (``[{"type":"thinking","thinking":[...]}, {"type":"text",...}]``) is split into
``reasoning_content`` and text; tool calls without ``index`` (Mistral sends the whole call in one
delta) get their position; missing ``index`` on a choice is 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nbstream.events import Event

KIND = "chunks"


def looks_like_chat(item: Any) -> bool:
    """A chat-completions-like chunk: a mapping or object with a list of ``choices``."""
    if isinstance(item, Mapping):
        return isinstance(item.get("choices"), list)
    data = getattr(item, "data", None)  # mistralai's CompletionEvent wraps the chunk
    if data is not None and not isinstance(item, Mapping) and hasattr(data, "choices"):
        return True
    return isinstance(getattr(item, "choices", None), list)


def to_raw(item: Any) -> dict[str, Any]:
    """The chunk as a JSON dict (a mapping as is; an SDK object dumped without unset fields)."""
    if not isinstance(item, Mapping) and not hasattr(item, "choices"):
        item = getattr(item, "data", item)
    raw: dict[str, Any]
    if isinstance(item, Mapping):
        raw = _plain(item)
        return raw
    for name in ("model_dump", "dict", "to_dict"):
        fn = getattr(item, name, None)
        if callable(fn):
            try:
                out = fn(exclude_none=True) if name != "to_dict" else fn()
            except TypeError:
                out = fn()
            raw = _plain(out)
            return raw
    raise TypeError(f"cannot read {type(item).__name__} as a chat chunk")


def _plain(obj: Any) -> Any:
    """Mappings (``OpenAIObject``, HF's dict subclasses) as plain dicts, all the way down."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def normalise(d: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``d`` in the shape the OpenAI SDK's ``ChatCompletionChunk`` reads."""
    out = dict(d)
    out.setdefault("id", "")
    out.setdefault("object", "chat.completion.chunk")
    out.setdefault("created", 0)
    out.setdefault("model", "")
    choices = []
    for n, ch in enumerate(d.get("choices") or ()):
        ch = dict(ch)
        if ch.get("index") is None:
            ch["index"] = n
        delta = ch.get("delta")
        if delta is None:
            delta = ch.get("message")  # llama-cpp / HF send whole messages on some servers
        if delta is None and "text" in ch:  # legacy completions
            delta = {"content": ch.pop("text")}
        delta = dict(delta or {})
        content = delta.get("content")
        if isinstance(content, list):
            texts: list[str] = []
            thoughts: list[str] = []
            for block in content:
                _split_block(block, texts, thoughts)
            delta["content"] = "".join(texts) or None
            if thoughts:
                delta["reasoning_content"] = "".join(thoughts)
        calls = delta.get("tool_calls")
        if calls:
            fixed = []
            for k, tc in enumerate(calls):
                tc = dict(tc)
                if tc.get("index") is None:
                    tc["index"] = k
                fixed.append(tc)
            delta["tool_calls"] = fixed
        ch["delta"] = delta
        ch.pop("message", None)
        choices.append(ch)
    out["choices"] = choices
    return out


def _split_block(block: Any, texts: list[str], thoughts: list[str]) -> None:
    if isinstance(block, str):
        texts.append(block)
        return
    if not isinstance(block, Mapping):
        return
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        texts.append(block["text"])
    elif kind in ("thinking", "reasoning"):
        inner = block.get("thinking", block.get("reasoning"))
        if isinstance(inner, str):
            thoughts.append(inner)
        elif isinstance(inner, list):  # Mistral: thinking is a list of text blocks
            for piece in inner:
                _split_block(piece, thoughts, thoughts)


class ChunkAdapter:
    """Normalises each chunk dict and hands it to the Chat Completions adapter."""

    kind = KIND

    def __init__(self) -> None:
        from nbstream.sources.openai_chat import ChatAdapter

        self._chat = ChatAdapter()

    def handle(self, d: dict[str, Any]) -> list[Event]:
        return self._chat.handle(normalise(d))

    def end(self) -> list[Event]:
        return self._chat.end()
