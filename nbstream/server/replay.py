"""Replay of recorded files from ``streams_dir``: SSE bodies byte for byte, JSON error bodies.

Only plain file names directly inside ``streams_dir`` are served; anything that looks like a path
(separators, ``..``, hidden files) is refused, so a request can never read outside it.
"""

from __future__ import annotations

import re
from pathlib import Path

from nbstream.server.wire import Stream

REPLAY_PREFIX = "replay:"
SERVABLE_SUFFIXES = (".sse", ".json", ".jsonl")
_BLOCK = re.compile(rb".*?(?:\r\n\r\n|\n\n|\r\r)|.+", re.S)
_DATA_LINE = re.compile(rb"^data:[ ]?(.*?)\r?$", re.M)


class ReplayError(Exception):
    """A replay request names no servable file (``status`` says 400 or 404)."""

    def __init__(self, message: str, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def available(streams_dir: Path | None) -> list[str]:
    """Names of the files that ``replay:<name>`` can serve."""
    if streams_dir is None or not streams_dir.is_dir():
        return []
    return sorted(
        p.name
        for p in streams_dir.iterdir()
        if p.is_file() and p.suffix in SERVABLE_SUFFIXES and not p.name.startswith(".")
    )


def resolve(streams_dir: Path | None, name: str) -> Path:
    """The file ``name`` inside ``streams_dir``, or a :class:`ReplayError` saying why not."""
    if streams_dir is None:
        raise ReplayError(
            f"Cannot replay {name!r}: this server has no streams directory. "
            "Start it with serve(streams_dir=...) or `nbstream serve --streams-dir DIR`.",
            404,
            "model_not_found",
        )
    unsafe = (
        not name
        or "/" in name
        or "\\" in name
        or "\x00" in name
        or name.startswith(".")
        or name in ("..", ".")
    )
    if unsafe:
        raise ReplayError(
            f"Invalid replay file name {name!r}: give a plain file name from the streams "
            "directory (no path separators, no '..'), e.g. model='replay:01-example.sse'.",
            400,
            "invalid_replay_name",
        )
    root = streams_dir.resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise ReplayError(f"Invalid replay file name {name!r}.", 400, "invalid_replay_name")
    if not path.is_file() or path.suffix not in SERVABLE_SUFFIXES:
        names = available(streams_dir)
        listing = ", ".join(names[:30]) + (" ..." if len(names) > 30 else "")
        raise ReplayError(
            f"No replay file {name!r} in the streams directory. Available: {listing or '(none)'}.",
            404,
            "model_not_found",
        )
    return path


def is_chunk(block: bytes) -> bool:
    """True when an SSE block carries data other than ``[DONE]`` (comments do not count)."""
    datas = _DATA_LINE.findall(block)
    return bool(datas) and datas[0].strip() != b"[DONE]"


def split_blocks(body: bytes) -> Stream:
    """The SSE body cut into event blocks, each with its separator: they join back to ``body``."""
    for match in _BLOCK.finditer(body):
        block = match.group(0)
        yield block, is_chunk(block)
