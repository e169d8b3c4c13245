"""Which endpoint to use when no client is given: one place, one endpoint per server and key.

Order: an explicit client (passed by the caller, never replaced) > ``OPENAI_API_KEY`` /
``OPENAI_BASE_URL`` from the environment (as the SDK's ``OpenAI()`` reads them; with a base URL
and no key, a placeholder key for key-less servers) > the bundled local server started
in-process, announced with a one-line notice so nobody mistakes the demo model for a real one.
What is returned is nbstream's own :class:`~nbstream.sources.openai_http.Endpoint`, not an SDK
client: requests nbstream makes itself never import openai (issue 16 §4). Endpoints are cached
per (base URL, key) so their connection pools are reused across runs.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import weakref
from typing import Any

from nbstream.redact import register_client, register_secret, register_url
from nbstream.sources.openai_http import Endpoint

LOCAL_KEY = "nbstream-local"
_clients: dict[tuple[str, str], Endpoint] = {}
_lock = threading.Lock()
_announced = False
_local_clients: weakref.WeakSet[Any] = weakref.WeakSet()  # default clients of the local server


def _key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]  # never keep the key itself as a dict key


def _notice(base_url: str) -> str:
    return (
        f"no OPENAI_API_KEY or OPENAI_BASE_URL set - using the bundled local demo server at "
        f"{base_url} (set OPENAI_API_KEY to use OpenAI)."
    )


def _announce(base_url: str) -> None:
    """Say once that the demo server answers. In IPython the widget of each such answer says it
    (a note line, see :func:`local_notice`): on stderr it was a red box that read as an error."""
    global _announced
    if not _announced:
        _announced = True
        if not _in_ipython():
            print(f"nbstream: {_notice(base_url)}", file=sys.stderr)


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def local_notice(client: Any) -> str | None:
    """The notice to show with an answer from ``client`` when it is the default client of the
    bundled local server (no key, no base URL set), else None."""
    if client is None or not any(client is c for c in list(_local_clients)):
        return None
    return _notice(str(client.base_url).rstrip("/"))


def resolve_endpoint() -> tuple[str | None, str, bool]:
    """``(base_url, api_key, is_local)`` from the environment, else the local server (started)."""
    key = os.environ.get("OPENAI_API_KEY")
    base_url = os.environ.get("OPENAI_BASE_URL") or None
    if key or base_url:
        key = key or LOCAL_KEY  # a key-less compatible server (vLLM, Ollama) still needs a value
        if key != LOCAL_KEY:  # the public placeholder is no secret
            register_secret(key)
        register_url(base_url)
        return base_url, key, False
    from nbstream.server import start_background

    server = start_background()
    _announce(server.base_url)
    return server.base_url, LOCAL_KEY, True


def _cached(base_url: str | None, key: str) -> Endpoint:
    cache_key = (base_url or "", _key_id(key))
    with _lock:
        client = _clients.get(cache_key)
        if client is None:
            client = _clients[cache_key] = Endpoint(base_url, key)
    register_client(client)
    return client


def default_client() -> Endpoint:
    """The endpoint to use when no client was given, cached per server and key."""
    base_url, key, local = resolve_endpoint()
    client = _cached(base_url, key)
    if local:
        with _lock:
            _local_clients.add(client)
    return client


def client_for(base_url: str | None = None, api_key: str | None = None) -> Endpoint:
    """A cached endpoint for an explicit server (e.g. the ``%%stream --base-url`` option)."""
    if base_url is None and api_key is None:
        return default_client()
    key = api_key or os.environ.get("OPENAI_API_KEY") or LOCAL_KEY
    return _cached(base_url, key)  # registers the key and the URL's credentials
