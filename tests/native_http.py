"""The native recordings in ../shared/streams/providers served over real HTTP by
:class:`nbstream.server.native_replay.RecordingServer`, with the response headers the INDEX records
(a request id on every Anthropic answer; anthropic-11's own request id and ``x-should-retry``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nbstream.server.native_replay import RecordingServer

PROVIDERS = Path(__file__).resolve().parents[1].parent / "shared" / "streams" / "providers"
HEADERS = {
    "anthropic-11-http529-overloaded.json": {
        "request-id": "req_01G3LauajeH3QsoDKWHrMhaY",
        "x-should-retry": "true",
    },
}


class NativeServer(RecordingServer):
    def __init__(self, delay: float = 0.0, **kwargs: Any) -> None:
        super().__init__(PROVIDERS, delay=delay, headers=HEADERS, **kwargs)

    def headers_for(self, name: str) -> dict[str, str]:
        if name in HEADERS:
            return HEADERS[name]
        return {"request-id": f"req_native_{name[:12]}"} if name.startswith("anthropic-") else {}
