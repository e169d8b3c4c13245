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


@pytest.fixture(autouse=True)
def _forget_registered_secrets() -> Iterator[None]:
    """Each test starts with the secrets registry as the session began: a key one test plants
    (``api_key="explicit"``) must not be scrubbed from another test's text. A kernel's registry
    lives in its own process and is not touched."""
    from nbstream import redact

    saved = (set(redact._extra_secrets), set(redact._plain_secrets), list(redact._secrets_seen),
             dict(redact._env_seen))  # fmt: skip
    yield
    redact._extra_secrets, redact._plain_secrets = saved[0], saved[1]
    redact._secrets_seen[:] = saved[2]
    redact._env_seen.clear()
    redact._env_seen.update(saved[3])
