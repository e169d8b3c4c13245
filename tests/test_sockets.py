"""``nbstream/sources/sockets.py``: what waits in a socket, also past descriptor 1,024.

A kernel that has opened many files (notebooks full of plots, many clients) gets socket
descriptors past 1,024, where ``select()`` fails: read as "always readable", it turned every live
stream of a caller's ``Stream`` into bursts of 32 chunks and silenced the view's read watch (a
review showed it at fd 1,106).
"""

from __future__ import annotations

import os
import resource
import socket
import time

import pytest

from nbstream.sources.sockets import available_bytes, readable

HIGH_FD = 1500


def _pair(high: bool) -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    if not high:
        return a, b
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft <= HIGH_FD:
        pytest.skip(f"the open-files limit ({soft}) is below descriptor {HIGH_FD}")
    fd = os.dup2(a.fileno(), HIGH_FD)
    a.close()
    return socket.socket(fileno=fd), b


@pytest.mark.parametrize("high", [False, True], ids=["low-fd", "fd-1500"])
def test_readable_and_available_bytes_say_what_waits(high: bool) -> None:
    reader, writer = _pair(high)
    with reader, writer:
        assert reader.fileno() >= (HIGH_FD if high else 0)
        assert not readable(reader) and available_bytes(reader) == 0
        writer.sendall(b"x" * 100)
        deadline = time.monotonic() + 5
        while available_bytes(reader) != 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert readable(reader) and available_bytes(reader) == 100
        reader.recv(100)
        assert not readable(reader)


def test_a_closed_socket_reads_as_readable() -> None:
    """Closed under the reader (Stop): the read reports it at once, so it is never announced as a
    wait."""
    reader, writer = socket.socketpair()
    writer.close()
    reader.close()
    assert readable(reader) and available_bytes(reader) is None
