"""Metrics of one run: timings, sizes, tokens per second, usage, request id, model, finish reasons.

Tokens come from the server's usage when it reported one; otherwise they are an estimate
(~4 characters a token) and ``tokens_estimated`` says so. Usage not reported is None, never 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from nbstream.events import Usage
from nbstream.redact import redact_text

CHARS_PER_TOKEN = 4.0


@dataclass(frozen=True)
class Metrics:
    """A snapshot: build a new one whenever you need fresh numbers (cheap)."""

    ttft_s: float | None = None
    duration_s: float | None = None
    chunks: int = 0
    chars: int = 0
    tokens: int | None = None
    tokens_per_s: float | None = None
    tokens_estimated: bool = False
    usage: Usage | None = None
    request_id: str | None = None
    model: str | None = None
    finish_reasons: dict[int, str | None] = field(default_factory=dict)
    attempts: int = 0
    http_status: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the widget's status line and the log)."""
        d = asdict(self)
        d["finish_reasons"] = {str(k): v for k, v in self.finish_reasons.items()}
        return d


def compute(
    *,
    ttft_s: float | None,
    duration_s: float | None,
    chunks: int,
    chars: int,
    usage: Usage | None,
    request_id: str | None,
    model: str | None,
    finish_reasons: dict[int, str | None],
    attempts: int = 0,
    http_status: int | None = None,
) -> Metrics:
    """Derive tokens and tokens/s: generation rate over the time after the first token."""
    estimated = False
    tokens: int | None = None
    if usage is not None and usage.completion_tokens is not None:
        tokens = usage.completion_tokens
    elif chars:
        tokens = max(1, round(chars / CHARS_PER_TOKEN))
        estimated = True
    rate = None
    if tokens is not None and duration_s is not None and ttft_s is not None:
        span = duration_s - ttft_s
        if span > 0:
            rate = tokens / span
    return Metrics(
        ttft_s=ttft_s,
        duration_s=duration_s,
        chunks=chunks,
        chars=chars,
        tokens=tokens,
        tokens_per_s=rate,
        tokens_estimated=estimated,
        usage=usage,
        # shown and saved: a server can put anything in its request id header
        request_id=redact_text(request_id) if request_id else request_id,
        model=redact_text(model) if model else model,
        finish_reasons=finish_reasons,
        attempts=attempts,
        http_status=http_status,
    )
