"""Per-request options of the local server: demo settings and injected faults.

Options come from two places, merged (the JSON body wins): the query-string shorthand in the model
name (``model="demo?disconnect_after=5&ttft=0.2"``, handy in the ``%%stream`` magic) and the
``"nbstream"`` object of the request body (``extra_body={"nbstream": {...}}`` with the openai SDK).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

FAIL_STATUSES = (408, 409, 429, 500, 502, 503, 504)
MAX_VALUES = {
    "tokens": 5_000_000,
    "reasoning": 1_000_000,
    "tool_calls": 8,
}  # answers are built in memory
# Every wait a request can ask for is bounded, so one request cannot park a server thread for
# days (stop() interrupts waits anyway; this bounds what a forgotten client can hold).
MAX_SECONDS = 3600.0
# Replayed ``.json`` bodies are sent with this status: 1xx is informational (no body, the client
# keeps waiting for a final answer), so only final statuses are accepted.
STATUS_RANGE = (200, 599)
# Strings echoed back (error_message) or kept (key): long enough for any demo, not a memory sink.
MAX_STRING = 2000


class OptionError(ValueError):
    """A request option is unknown or has a bad value (answered with HTTP 400)."""

    def __init__(self, message: str, param: str = "nbstream") -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class RequestOptions:
    """Everything a request may ask of the local server besides the OpenAI parameters."""

    # pacing (seconds; tokens_per_s is turned into a per-chunk delay)
    ttft: float | None = None
    tokens_per_s: float | None = None
    delay: float | None = None
    # demo model
    tokens: int | None = None
    echo: bool = False
    reasoning: int = 0
    tool_calls: int = 0
    # faults
    fail: int | None = None
    fail_times: int | None = None
    retry_after: float = 1.0
    disconnect_after: int | None = None
    malformed_after: int | None = None
    error_after: int | None = None
    error_message: str = "Injected mid-stream error (nbstream local server)."
    stall_after: int | None = None
    stall: float = 30.0
    key: str | None = None
    status: int | None = None
    log_attempt: int | None = None

    def chunk_delay(self, default_tokens_per_s: float | None) -> float:
        """Seconds to wait between two chunks (0 = as fast as possible)."""
        if self.delay is not None:
            return self.delay
        rate = self.tokens_per_s if self.tokens_per_s is not None else default_tokens_per_s
        return 1.0 / rate if rate and rate > 0 else 0.0


_FIELDS = {f.name: f for f in dataclasses.fields(RequestOptions)}
_FLOATS = {"ttft", "tokens_per_s", "delay", "retry_after", "stall"}
_INTS = {
    "tokens",
    "tool_calls",
    "reasoning",
    "fail",
    "fail_times",
    "disconnect_after",
    "malformed_after",
    "error_after",
    "stall_after",
    "status",
    "log_attempt",
}
_BOOLS = {"echo"}
_STRS = {"error_message", "key"}
ALIASES = {"rate": "tokens_per_s", "trickle": "delay", "tps": "tokens_per_s"}


def _convert(name: str, value: Any, param: str) -> Any:
    try:
        if name in _FLOATS:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            if not math.isfinite(number) or number < 0:
                raise ValueError
            return number
        if name in _INTS:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            number = int(value)
            if number < 0:
                raise ValueError
            return number
        if name in _BOOLS:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on", ""):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        text = str(value)
    except (TypeError, ValueError, OverflowError):
        kind = (
            "a number >= 0"
            if name in _FLOATS
            else "an integer >= 0"
            if name in _INTS
            else "true or false"
        )
        raise OptionError(
            f"nbstream option {name!r} must be {kind}, got {_short(value)}.", param
        ) from None
    if len(text) > MAX_STRING:
        raise OptionError(f"nbstream option {name!r} is at most {MAX_STRING:,} characters.", param)
    return text


def _short(value: Any) -> str:
    """``repr`` cut short: a 4,000-digit number is not echoed back in full."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's 4,300-digit str() limit
        return "a number too large to show"
    return text if len(text) <= 80 else text[:60] + f"... ({len(text):,} characters)"


def build_options(raw: dict[str, Any], param: str = "nbstream") -> RequestOptions:
    """Validate option names and values; an unknown name gets a message listing the valid ones."""
    values: dict[str, Any] = {}
    for given, value in raw.items():
        name = ALIASES.get(given, given)
        if name not in _FIELDS:
            valid = ", ".join(sorted(set(_FIELDS) | set(ALIASES)))
            raise OptionError(f"Unknown nbstream option {given!r}. Valid options: {valid}.", param)
        values[name] = _convert(name, value, param)
    for name, cap in MAX_VALUES.items():
        if values.get(name, 0) > cap:
            raise OptionError(f"nbstream option {name!r} is at most {cap:,}.", param)
    for name in ("ttft", "delay", "stall", "retry_after"):
        if values.get(name, 0) > MAX_SECONDS:
            raise OptionError(
                f"nbstream option {name!r} is at most {MAX_SECONDS:g} seconds, "
                f"got {values[name]:g}.",
                param,
            )
    rate = values.get("tokens_per_s")
    if rate is not None and 0 < rate < 1 / MAX_SECONDS:
        raise OptionError(
            f"nbstream option 'tokens_per_s' must be 0 (unpaced) or at least 1/{MAX_SECONDS:g} "
            f"(one chunk an hour), got {rate:g}.",
            param,
        )
    status = values.get("status")
    low, high = STATUS_RANGE
    if status is not None and not low <= status <= high:
        raise OptionError(
            f"nbstream option 'status' must be an HTTP status from {low} to {high}, got {status}.",
            param,
        )
    fail = values.get("fail")
    if fail is not None and fail not in FAIL_STATUSES:
        allowed = ", ".join(map(str, FAIL_STATUSES))
        raise OptionError(f"nbstream option 'fail' must be one of {allowed}, got {fail}.", param)
    return RequestOptions(**values)


def split_model(model: str) -> tuple[str, dict[str, str]]:
    """``"demo?ttft=0.2&echo"`` -> ``("demo", {"ttft": "0.2", "echo": ""})``."""
    base, sep, query = model.partition("?")
    if not sep:
        return model, {}
    return base, dict(parse_qsl(query, keep_blank_values=True))


def parse_request_options(model: str, body_options: Any) -> tuple[str, RequestOptions]:
    """Merge the model-name shorthand with the body's ``"nbstream"`` object (the body wins)."""
    base, from_model = split_model(model)
    if body_options is None:
        body_options = {}
    if not isinstance(body_options, dict):
        raise OptionError('"nbstream" must be a JSON object of options, e.g. {"ttft": 0.5}.')
    build_options(from_model, param="model")  # validate each source so errors name the right param
    build_options(body_options)
    return base, build_options({**from_model, **body_options})


def fail_budget_exhausted(options: RequestOptions, attempt: int) -> bool:
    """True when this attempt (1-based) should succeed despite ``fail`` (after ``fail_times``)."""
    return options.fail_times is not None and attempt > options.fail_times
