"""Chat messages asked of a native SDK client: what lets ``nbstream.chat(..., client=...)``,
``compare(models=..., client=...)`` and ``%%stream --client NAME`` target Anthropic, Google Gen
AI, Ollama, Cohere and Mistral clients as well as OpenAI ones.

:func:`native_request` returns a zero-argument callable that opens one stream (so Regenerate
asks again), or None when the client is not a native SDK's (then it is an OpenAI client). The
OpenAI-style ``messages`` (``system`` / ``user`` / ``assistant`` with ``str`` content) and the
common parameters (``max_tokens``, ``temperature``) are translated to each SDK's own names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

DEFAULT_MAX_TOKENS = 1024  # Anthropic requires max_tokens; the others default server-side


def _package(client: Any) -> str:
    module = type(client).__module__ or ""
    for package in ("anthropic", "google.genai", "ollama", "cohere", "mistralai"):
        if module == package or module.startswith(package + "."):
            return package
    return ""


def is_native_client(client: Any) -> bool:
    return bool(_package(client)) if client is not None else False


def _split_system(messages: Sequence[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    system = [str(m.get("content") or "") for m in messages if m.get("role") == "system"]
    rest = [dict(m) for m in messages if m.get("role") != "system"]
    return ("\n\n".join(system) if system else None), rest


def native_request(
    client: Any, model: str, messages: Sequence[dict[str, Any]], params: dict[str, Any]
) -> Callable[[], Any] | None:
    """A callable streaming ``messages`` from ``model`` through ``client``; None if the client
    is not a native SDK's."""
    package = _package(client)
    if not package:
        return None
    params = dict(params)
    max_tokens = params.pop("max_tokens", None)
    if package == "anthropic":
        system, rest = _split_system(messages)
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": rest,
            "max_tokens": max_tokens or DEFAULT_MAX_TOKENS,
            **params,
        }
        if system is not None:
            kwargs["system"] = system
        return lambda: client.messages.create(**kwargs, stream=True)
    if package == "google.genai":
        system, rest = _split_system(messages)
        contents = [
            {
                "role": "model" if m.get("role") == "assistant" else "user",
                "parts": [{"text": str(m.get("content") or "")}],
            }
            for m in rest
        ]
        config: dict[str, Any] = dict(params.pop("config", None) or {})
        if system is not None:
            config["system_instruction"] = system
        if max_tokens is not None:
            config["max_output_tokens"] = max_tokens
        for name in ("temperature", "top_p", "top_k", "seed"):
            if name in params:
                config[name] = params.pop(name)
        return lambda: client.models.generate_content_stream(
            model=model, contents=contents, config=config or None, **params
        )
    if package == "ollama":
        options = dict(params.pop("options", None) or {})
        if max_tokens is not None:
            options["num_predict"] = max_tokens
        for name in ("temperature", "top_p", "top_k", "seed"):
            if name in params:
                options[name] = params.pop(name)
        msgs = [dict(m) for m in messages]
        return lambda: client.chat(
            model=model, messages=msgs, stream=True, options=options or None, **params
        )
    if package == "cohere":
        if max_tokens is not None:
            params["max_tokens"] = max_tokens
        msgs = [dict(m) for m in messages]
        return lambda: client.chat_stream(model=model, messages=msgs, **params)
    # mistralai
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    msgs = [dict(m) for m in messages]
    return lambda: client.chat.stream(model=model, messages=msgs, **params)
