"""Shared pytest fixtures: the local OpenAI-compatible server and the recorded streams."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nbstream.server import LocalServer, serve

SHARED_STREAMS = Path(__file__).resolve().parents[1].parent / "shared" / "streams"


@pytest.fixture(scope="session")
def shared_streams() -> Path:
    """``../shared/streams`` (real recorded SSE bodies); skips when it is absent."""
    if not SHARED_STREAMS.is_dir():
        pytest.skip(
            f"recorded streams not found at {SHARED_STREAMS}: these tests need the shared "
            "material checked out next to the repository (../shared/streams)"
        )
    return SHARED_STREAMS


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    """A fresh local server per test (ephemeral port, no pacing), replaying ../shared/streams
    when present (``model="replay:<file>"``). Stops at the end of the test."""
    streams = SHARED_STREAMS if SHARED_STREAMS.is_dir() else None
    with serve(streams_dir=streams) as server:
        yield server


@pytest.fixture(scope="module")
def module_server() -> Iterator[LocalServer]:
    """One local server shared by a module's tests (call ``.reset()`` if records matter)."""
    streams = SHARED_STREAMS if SHARED_STREAMS.is_dir() else None
    with serve(streams_dir=streams) as server:
        yield server
