"""Closing a streamed HTTP response from another thread, for every source that reads one.

Stop must end a read blocked in another thread at once. Closing the response alone does not wake
a blocked ``recv``; shutting the connection's socket down does (httpx and httpx2 responses expose
it the same way). A body read to the end is only closed, which gives the connection back to the
pool (keep-alive across cells).
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any


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
