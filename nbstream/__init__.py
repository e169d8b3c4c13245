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
    "stream": ("nbstream.notebook.api", "stream"),
    "chat": ("nbstream.notebook.api", "chat"),
    "compare": ("nbstream.notebook.compare", "compare"),
    "StreamView": ("nbstream.frontend.widget", "StreamView"),
    "ChunkLog": ("nbstream.run.log", "ChunkLog"),
    "replay": ("nbstream.sources.replay", "replay"),
    # resilience (issue 4): stream(..., resilience=Resilience(...))
    "Resilience": ("nbstream.resilience.layer", "Resilience"),
    "RetryPolicy": ("nbstream.resilience.retry", "RetryPolicy"),
    "StallPolicy": ("nbstream.resilience.stall", "StallPolicy"),
    "KeywordHook": ("nbstream.resilience.hooks", "KeywordHook"),
    "OpenAIModerationHook": ("nbstream.resilience.hooks", "OpenAIModerationHook"),
    "NbstreamError": ("nbstream.resilience.errors", "NbstreamError"),
}

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from nbstream.frontend.widget import StreamView
    from nbstream.notebook.api import chat, stream
    from nbstream.notebook.compare import compare
    from nbstream.resilience.errors import NbstreamError
    from nbstream.resilience.hooks import KeywordHook, OpenAIModerationHook
    from nbstream.resilience.layer import Resilience
    from nbstream.resilience.retry import RetryPolicy
    from nbstream.resilience.stall import StallPolicy
    from nbstream.run.log import ChunkLog
    from nbstream.sources.replay import replay


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
    from nbstream.notebook.magic import load_ipython_extension as _load

    _load(ipython)
