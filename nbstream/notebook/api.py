"""Public entry points: ``stream()`` shows any stream live; ``chat()`` asks a model and shows it.

Two modes, because the kernel allows two (see the facts on button clicks while a cell runs);
``background=None`` (the default) means waiting, except in Voila, whose page appears only once
every cell has run: there it means background (see :mod:`nbstream.frontend.hosts`).

- waiting (default): the cell runs the stream to the end, so Run All, ``--out`` and headless
  nbval/nbclient runs capture the whole answer. The notebook's interrupt (■) acts as Stop. The
  Stop *button* cannot reach a kernel busy with a synchronous cell, and the widget says so; for a
  clickable Stop while waiting, use ``view = stream(..., background=True)`` then ``await view``.
- background: the cell returns at once; the stream runs as a task on the kernel's event loop
  (async sources) or in a thread (sync sources), and Stop takes effect within milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from nbstream.frontend import hosts as frontends
from nbstream.frontend.coalesce import DEFAULT_MAX_FPS
from nbstream.frontend.runner import wait_in_cell
from nbstream.frontend.widget import StreamView

if TYPE_CHECKING:
    from nbstream.resilience.layer import Resilience
    from nbstream.run.stream_run import Hook, RetryPolicy
    from nbstream.sources import SourceLike

Format = Literal["markdown", "text", "code"]


def stream(
    source: SourceLike,
    *,
    format: Format = "markdown",  # noqa: A002 - the option's natural name
    language: str = "",
    background: bool | None = None,
    display: bool = True,
    max_fps: float = DEFAULT_MAX_FPS,
    hooks: Sequence[Hook] = (),
    retry: RetryPolicy | None = None,
    resilience: Resilience | Literal["default"] | None = "default",
) -> StreamView:
    """Show ``source`` streaming live and return its :class:`StreamView`.

    ``source``: an OpenAI ``Stream``/``AsyncStream`` (chat chunks or Responses events), a
    zero-argument callable returning one (re-runnable: Regenerate works), an (async) iterable of
    ``str``, a ``ChatRequest``/``ResponsesRequest``, a ``ChunkLog`` or a ``.jsonl`` log path.
    ``format``: ``markdown`` (default), ``text`` or ``code`` (with ``language``).
    ``background=False`` runs to the end before returning; ``True`` returns at once; ``None``
    (default) waits, except where a waiting cell cannot show it live (Voila): there at once.
    ``display=False`` does not display the widget (scripts, tests, composing layouts).
    ``resilience``: a :class:`nbstream.resilience.layer.Resilience` (retries before the first token,
    rate-limit queue, stall timeouts, ``on_chunk`` moderation hooks, budget); the default one
    when not given; ``None`` turns the layer off.
    """
    resilience = _check_resilience(resilience)
    kind = frontends.frontend()
    if background is None:
        background = not frontends.waits_live(kind)
    view = StreamView(
        source,
        format=format,
        language=language,
        max_fps=max_fps,
        hooks=hooks,
        retry=retry,
        resilience=resilience,
        # the mode it is about to run in, in the widget's first state: starting costs no message
        mode="background" if background else _waiting_mode(kind),
    )
    shown = display and kind in ("ipython", "voila", "marimo")
    if shown and kind == "marimo":
        frontends.display_marimo(view)  # no notebook outputs to write: the widget alone
        shown = False
    if background:
        if shown:
            view._display_live(waiting=False)
        return view.start(background=True)
    # the live output, the run to its end here, the answer output in this cell
    wait_in_cell([view], view._outputs if shown else None, run=view.start)
    return view


def chat(
    prompt_or_messages: str | Sequence[dict[str, Any]],
    *,
    model: str | None = None,
    client: object | None = None,
    api: Literal["chat", "responses"] = "chat",
    system: str | None = None,
    format: Format = "markdown",  # noqa: A002
    background: bool | None = None,
    display: bool = True,
    resilience: Resilience | Literal["default"] | None = "default",
    **params: Any,
) -> StreamView:
    """Ask a model and show the answer live: ``nbstream.chat("Explain SSE", model="gpt-4o-mini")``.

    Uses ``client`` or the default one (``OPENAI_API_KEY``/``OPENAI_BASE_URL``, else the bundled
    local server with its ``demo`` model). ``client`` may also be an ``anthropic``, ``google-genai``
    (``genai.Client``), ``ollama``, ``cohere`` (``ClientV2``) or ``mistralai`` client.
    ``api="responses"`` uses the Responses API. Extra
    ``params`` go to the request (``temperature=0.2``, ``max_tokens=200``...). Regenerate and
    Continue work because the request is kept.
    """
    from nbstream.sources.request import ChatRequest, ResponsesRequest

    if model is None:
        model = _default_model()
    if isinstance(prompt_or_messages, str):
        messages: list[dict[str, Any]] = [{"role": "user", "content": prompt_or_messages}]
    elif isinstance(prompt_or_messages, Sequence) and all(
        isinstance(m, dict) for m in prompt_or_messages
    ):
        messages = [dict(m) for m in prompt_or_messages if isinstance(m, dict)]  # all are
    else:
        raise TypeError(
            "chat() takes a prompt string or a list of messages like "
            "[{'role': 'user', 'content': '...'}], got " + type(prompt_or_messages).__name__
        )
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    from nbstream.sources.native_request import native_request

    # an Anthropic / Google Gen AI / Ollama / Cohere / Mistral client: its own API, re-runnable
    native = native_request(client, model, messages, params) if client is not None else None
    if native is not None:
        return stream(
            native, format=format, background=background, display=display, resilience=resilience
        )
    if api == "chat":
        request: Any = ChatRequest({"model": model, "messages": messages, **params}, client)
    elif api == "responses":
        request = ResponsesRequest({"model": model, "input": messages, **params}, client)
    else:
        raise ValueError(f"api must be 'chat' or 'responses', got {api!r}")
    return stream(
        request, format=format, background=background, display=display, resilience=resilience
    )


def _check_resilience(value: object) -> Resilience | None:
    """The resilience layer to use; a wrong value is refused here, before any widget is shown."""
    from nbstream.resilience.layer import Resilience

    if isinstance(value, str) and value == "default":
        return Resilience()
    if value is None or isinstance(value, Resilience):
        return value
    raise TypeError(
        "resilience must be a nbstream.Resilience (e.g. Resilience(stall=None)), "
        f"None to turn the layer off, or left out for the default one; got {value!r}"[:300]
    )


def _default_model() -> str:
    """The model when none is given: ``NBSTREAM_MODEL``, else ``demo`` on the local server."""
    import os

    from nbstream.sources.client import resolve_endpoint

    if os.environ.get("NBSTREAM_MODEL"):
        return os.environ["NBSTREAM_MODEL"]
    _base_url, _key, is_local = resolve_endpoint()
    if is_local:
        return "demo"
    raise ValueError(
        "chat() needs a model when OPENAI_API_KEY/OPENAI_BASE_URL point at a real server: pass "
        "model='gpt-4o-mini' (or any model it serves), or set NBSTREAM_MODEL"
    )


def _waiting_mode(kind: str) -> str:
    """The widget's mode while a cell waits: ``await`` where Stop clicks reach the widget while
    the cell runs (marimo), else ``blocking`` (the widget asks for the kernel interrupt)."""
    return "await" if kind == "marimo" else "blocking"
