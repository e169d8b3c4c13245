"""Checks every request passes before the local server acts on it (see SECURITY.md).

The server runs inside the user's kernel and listens on loopback, but a web page in the user's
browser can still reach loopback: by DNS rebinding (a name the attacker controls re-pointed at
127.0.0.1: the request carries the attacker's name in ``Host``) or by a "simple" cross-origin POST
(``text/plain`` or a form type, which a browser sends without asking first). So:

- ``Host`` must name this server: a loopback name or IP with the server's port, the host it was
  started on, or one of ``allowed_hosts``; anything else gets 421 (400 when missing/garbled).
- A POST body must be ``application/json`` (415 otherwise): a browser only sends that cross-origin
  after a CORS preflight, which this server never grants.
- The body's size is known and bounded *before* it is read (``Content-Length`` only, no chunked
  request bodies; 413 past the limit), and its JSON nesting is bounded.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from email.message import Message
from typing import Any

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024  # ~2M tokens of prompt: far beyond any demo
MAX_JSON_DEPTH = 64  # OpenAI bodies (tool schemas included) nest a dozen levels at most
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})
_DIGITS = re.compile(r"[0-9]{1,19}")


class Rejected(Exception):
    """A request refused before it is served: an HTTP status and an OpenAI-shaped error."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IPs (127.0.0.0/8, ::1), with or without brackets."""
    name = host.strip().lower().removeprefix("[").removesuffix("]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str) -> str | None:
    """The warning to show when the server listens beyond this machine, else None."""
    if is_loopback(host):
        return None
    where = "every network interface" if host in WILDCARD_HOSTS else host
    return (
        f"WARNING: the nbstream local server listens on {where}: anyone who can reach this "
        "machine on the network can use it (no authentication; it answers every request and "
        "can replay every file of --streams-dir). Use the default --host 127.0.0.1 unless you "
        "mean to share it, and only on a network you trust."
    )


def split_host(value: str) -> tuple[str, int | None]:
    """``"127.0.0.1:8000"`` -> ``("127.0.0.1", 8000)``; ``"[::1]"`` -> ``("::1", None)``.

    Raises ``ValueError`` for anything that is not a host with an optional numeric port."""
    value = value.strip()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise ValueError(value)
        name, rest = value[1:end], value[end + 1 :]
        ipaddress.IPv6Address(name)  # brackets hold an IPv6 literal or nothing valid
        if rest and not rest.startswith(":"):
            raise ValueError(value)
        port_text = rest[1:] if rest else None
    else:
        name, sep, port_text = value.partition(":")
        if not sep:
            port_text = None
    if not name or any(c.isspace() or c in "/\\@" for c in name):
        raise ValueError(value)
    port = None
    if port_text is not None:
        if not _DIGITS.fullmatch(port_text) or not 0 < int(port_text) < 65536:
            raise ValueError(value)
        port = int(port_text)
    return name.lower(), port


def check_host(header: str | None, server_host: str, port: int, allowed: Iterable[str]) -> None:
    """Raise :class:`Rejected` unless ``Host`` names this server (the DNS-rebinding defence)."""
    if header is None:
        raise Rejected(400, "Missing Host header (required by HTTP/1.1).", "missing_host")
    try:
        name, given_port = split_host(header)
    except ValueError:
        raise Rejected(400, f"Malformed Host header {header[:100]!r}.", "invalid_host") from None
    allowed_names = {a.lower().removeprefix("[").removesuffix("]") for a in allowed}
    if name in allowed_names:
        return  # named by the user: any port (port forwarding, proxies)
    # No port means the scheme's default: only right when the server really is on port 80.
    if (given_port if given_port is not None else 80) != port:
        raise Rejected(
            421,
            f"This local server is on port {port}, but the request's Host says "
            f"{header[:100]!r}. Use base_url='http://127.0.0.1:{port}/v1'.",
            "misdirected_request",
        )
    if is_loopback(name):
        return
    configured = server_host.lower().removeprefix("[").removesuffix("]")
    if configured not in WILDCARD_HOSTS and name == configured:
        return
    if configured in WILDCARD_HOSTS and _is_ip(name):
        return  # bound to every interface on purpose; an IP literal cannot be DNS-rebound
    raise Rejected(
        421,
        f"Host {header[:100]!r} is not this local server (it answers to 127.0.0.1, localhost "
        "and ::1). A web page cannot reach it by renaming itself (DNS rebinding); to reach it "
        "under another name, start it with allowed_hosts=[...] (CLI: --allow-host NAME).",
        "misdirected_request",
    )


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def check_post(headers: Message, max_body_bytes: int) -> int:
    """The body length of a POST, after checking framing, size and type (raise :class:`Rejected`).

    Nothing is read here: a request refused by these checks costs the server no memory."""
    if headers.get("Transfer-Encoding") is not None:
        raise Rejected(
            411,
            "Chunked request bodies are not accepted: send the body with a Content-Length.",
            "length_required",
        )
    lengths = headers.get_all("Content-Length") or []
    if len(set(lengths)) > 1:
        raise Rejected(400, "Conflicting Content-Length headers.", "invalid_content_length")
    length = 0
    if lengths:
        text = lengths[0].strip()
        if not text.isascii() or not text.isdigit():
            raise Rejected(
                400,
                f"Content-Length must be a byte count (digits only), got {text[:40]!r}.",
                "invalid_content_length",
            )
        # 20+ digits is past any limit: no need to convert (nor to print) the number
        length = int(text) if len(text) <= 19 else max_body_bytes + 1
    if length > max_body_bytes:
        raise Rejected(
            413,
            f"The request body is {text[:40]} bytes; this local server accepts at most "
            f"{max_body_bytes:,} (max_body_bytes).",
            "request_too_large",
        )
    content_type = headers.get("Content-Type") or ""
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        shown = repr(content_type[:60]) if content_type else "none"
        raise Rejected(
            415,
            f"Send the request body as JSON with Content-Type: application/json (got {shown}).",
            "unsupported_media_type",
        )
    return length


def parse_json(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The decoded body, or :class:`Rejected` (400 ``invalid_json``) with the reason."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise _too_deep(max_depth) from None
    except ValueError as exc:  # bad JSON, bad UTF-8, an integer past Python's 4,300 digits
        raise Rejected(
            400,
            f"We could not parse the JSON body of your request ({str(exc)[:200]}). "
            "Send a JSON object with Content-Type: application/json.",
            "invalid_json",
        ) from None
    if _depth_exceeds(value, max_depth):
        raise _too_deep(max_depth)
    return value


def _too_deep(max_depth: int) -> Rejected:
    return Rejected(400, f"The JSON body nests deeper than {max_depth} levels.", "invalid_json")


def _depth_exceeds(value: Any, max_depth: int) -> bool:
    """Iterative (no recursion to exhaust): True when containers nest deeper than ``max_depth``."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
