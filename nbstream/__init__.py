"""nbstream: stream LLM completions live inside Jupyter notebooks.

The public API only; heavy modules (openai, the widget) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "ChunkLog",
    "KeywordHook",
    "NbstreamError",
    "OpenAIModerationHook",
    "Resilience",
    "RetryPolicy",
    "StallPolicy",
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
    # resilience (issue 4): stream(..., resilience=Resilience(...))
    "Resilience": ("nbstream.resilience", "Resilience"),
    "RetryPolicy": ("nbstream.retry", "RetryPolicy"),
    "StallPolicy": ("nbstream.stall", "StallPolicy"),
    "KeywordHook": ("nbstream.hooks", "KeywordHook"),
    "OpenAIModerationHook": ("nbstream.hooks", "OpenAIModerationHook"),
    "NbstreamError": ("nbstream.errors", "NbstreamError"),
}

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from nbstream.api import chat, stream
    from nbstream.errors import NbstreamError
    from nbstream.hooks import KeywordHook, OpenAIModerationHook
    from nbstream.log import ChunkLog
    from nbstream.resilience import Resilience
    from nbstream.retry import RetryPolicy
    from nbstream.sidebyside import compare
    from nbstream.sources.replay import replay
    from nbstream.stall import StallPolicy
    from nbstream.widget import StreamView


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nbstream' has no attribute {name!r}")


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """``%load_ext nbstream``: register the ``%%stream`` / ``%stream`` magics."""
    from nbstream.magic import load_ipython_extension as _load

    _load(ipython)
