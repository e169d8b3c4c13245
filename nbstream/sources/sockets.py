"""The socket under a streamed HTTP response: close it from another thread, see what waits in
it, and read a body's end for a bounded time.

Stop must end a read blocked in another thread at once. Closing the response alone does not wake
a blocked ``recv``; shutting the connection's socket down does (httpx and httpx2 responses expose
it the same way). A body read to the end is only closed, which gives the connection back to the
pool (keep-alive across cells).
"""

from __future__ import annotations

import contextlib
import select
import socket
import sys
import threading
from collections.abc import Iterable
from typing import Any

from nbstream.timers import TIMERS

try:  # FIONREAD: the bytes waiting in a socket, for any descriptor (select() stops at 1,024)
    import fcntl
    import termios

    _FIONREAD: int | None = termios.FIONREAD
except ImportError:  # pragma: no cover - Windows
    _FIONREAD = None

# After [DONE], the rest of a body (its chunked-encoding end) is read for at most this long.
DRAIN_S = 0.25


def shutdown_socket(response: Any) -> None:
    """Wake a read blocked in another thread: shut the connection's socket down."""
    try:
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
    except Exception:
        sock = None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def close_response(response: Any, finished: bool) -> None:
    """Stop: shut the socket down unless the body was read to the end, then close the response."""
    if response is None:
        return
    if not finished:
        shutdown_socket(response)
    with contextlib.suppress(Exception):
        response.close()


def available_bytes(sock: Any) -> int | None:
    """Bytes waiting in the socket's receive buffer (not counting a TLS object's own buffer);
    None when that cannot be known (closed, no FIONREAD on this platform)."""
    if _FIONREAD is None:
        return None
    try:
        fd = sock.fileno()
        if fd < 0:
            return None
        return int.from_bytes(fcntl.ioctl(fd, _FIONREAD, b"\0\0\0\0"), sys.byteorder)
    except (OSError, ValueError, AttributeError):
        return None


def readable(sock: Any) -> bool:
    """True when a read would not wait: bytes are in the socket (or in its TLS buffer), or it is
    closed (the read reports that at once). FIONREAD first: ``select()`` fails for descriptors
    past 1,024 (a kernel with many files open), which read as "always readable"."""
    pending = getattr(sock, "pending", None)
    if pending is not None and pending():
        return True
    waiting = available_bytes(sock)
    if waiting is not None:
        return waiting > 0
    try:
        return bool(select.select((sock,), (), (), 0)[0])
    except (OSError, ValueError):  # closed under us (Stop): let the read report it
        return True


def drain(reads: Iterable[Any], response: Any, errors: tuple[type[BaseException], ...]) -> bool:
    """After [DONE]: read the body to its end so the connection goes back to the pool, for at
    most ``DRAIN_S``. A server or proxy that leaves the body open must not hold the run until
    the read timeout (600 s by default): its socket is shut down then, which ends the read, and
    only that connection's reuse is lost. True when the body ended by itself."""
    lock = threading.Lock()
    state = {"drained": False, "cut": False}

    def cut() -> None:
        with lock:  # never after the body ended: the connection may be back in the pool
            if not state["drained"]:
                state["cut"] = True
                shutdown_socket(response)

    TIMERS.schedule(DRAIN_S, cut)
    try:
        for _rest in reads:
            pass
    except errors:
        return False
    with lock:
        state["drained"] = not state["cut"]
    return state["drained"]
