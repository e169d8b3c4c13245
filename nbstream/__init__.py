"""nbstream: stream LLM completions live inside Jupyter notebooks.

The public API only; heavy modules (openai, the widget) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "ChunkLog",
    "StreamView",
    "chat",
    "compare",
    "load_ipython_extension",
    "replay",
    "stream",
]

_LAZY = {
    "stream": ("nbstream.api", "stream"),
    "chat": ("nbstream.api", "chat"),
    "compare": ("nbstream.sidebyside", "compare"),
    "StreamView": ("nbstream.widget", "StreamView"),
    "ChunkLog": ("nbstream.log", "ChunkLog"),
    "replay": ("nbstream.sources.replay", "replay"),
}

if TYPE_CHECKING:
    from nbstream.api import chat, stream
    from nbstream.log import ChunkLog
    from nbstream.sidebyside import compare
    from nbstream.sources.replay import replay
    from nbstream.widget import StreamView


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nbstream' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbstream``: register the ``%%stream`` / ``%stream`` magics."""
    from nbstream.magic import load_ipython_extension as _load

    _load(ipython)
