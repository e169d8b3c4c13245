"""``%%stream`` / ``%stream``: a prompt in a cell, streamed live below it.

A thin shell over the public API (``nbstream.chat``, ``nbstream.stream``, ``nbstream.replay``,
``nbstream.compare``): this module only turns options into calls. It parses the options with
IPython's ``magic_arguments`` (so ``%%stream?`` shows them and bad options are ``UsageError``s),
fills ``{name}`` placeholders from the notebook before any request is sent, takes its defaults
from ``%config Stream.<option>``, carries named conversations (``--chat``) from cell to cell, and
stores the answer (``--out``) and the chunk log (``--log``) once the stream ends.
"""

from __future__ import annotations

import keyword
import re
import shlex
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Bool, CFloat, CInt, Enum, Unicode
from traitlets.config import Configurable

from nbstream.frontend.runner import start_detached, wait_in_cell
from nbstream.notebook.conversations import Conversations
from nbstream.notebook.interpolate import InterpolationError, fill

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

FORMATS = ("markdown", "text", "code")
APIS = ("chat", "responses")
MAX_COLUMNS = 16


class Stream(Configurable):
    """Defaults for ``%%stream``; set them with ``%config Stream.model = "gpt-4o-mini"``.

    Options given on the magic's line win over these. The endpoint itself (API key, base URL,
    or the bundled local server when neither is set) is resolved by ``nbstream.sources.client``.
    """

    model = Unicode(
        None,
        allow_none=True,
        help="Model to use when -m is not given (None: the endpoint's default; 'demo' locally).",
    ).tag(config=True)
    system = Unicode(None, allow_none=True, help="System prompt when -s is not given.").tag(
        config=True
    )
    temperature = CFloat(None, allow_none=True, help="Sampling temperature (0-2).").tag(config=True)
    max_tokens = CInt(None, allow_none=True, help="Cap on the answer's tokens.").tag(config=True)
    format = Enum(FORMATS, "markdown", help="How the answer is rendered.").tag(config=True)
    api = Enum(APIS, "chat", help="Chat Completions ('chat') or the Responses API.").tag(
        config=True
    )
    base_url = Unicode(
        None,
        allow_none=True,
        help="OpenAI-compatible base URL (default: OPENAI_BASE_URL, else api.openai.com with "
        "OPENAI_API_KEY, else the bundled local server).",
    ).tag(config=True)
    background = Bool(
        False, help="Return at once while the answer streams (default: the cell waits)."
    ).tag(config=True)
    replay_speed = CFloat(1.0, help="Speed for --replay (1: original timing, 0: at once).").tag(
        config=True
    )


@dataclass
class Invocation:
    """One ``%%stream`` call after parsing and checking, before anything is sent."""

    models: list[str | None]
    n: int
    system: str | None
    temperature: float | None
    max_tokens: int | None
    format: Literal["markdown", "text", "code"]
    base_url: str | None
    api: Literal["chat", "responses"]
    out: str | None
    view: str | None
    chat: str | None
    background: bool
    replay: Path | None
    speed: float
    log: Path | None
    raw: bool
    reset: bool
    show: bool
    client: str | None = None  # a notebook variable holding the client (any supported SDK)

    @property
    def columns(self) -> int:
        """How many streams this call shows side by side."""
        return len(self.models) * self.n


_WORD = re.compile(r"""(?:'[^']*'|"[^"]*"|[^\s'"]+)+""")


def split_line(line: str, takes_value: dict[str, bool]) -> tuple[list[str], str]:
    """Split a magic line into option tokens and the free-text prompt that follows them.

    Why not ``shlex.split`` on the whole line: a prompt such as ``What's new?`` has an unbalanced
    quote. Options (and their values, which may be quoted) come first; the first word that is
    not an option, or ``--``, starts the prompt, which is kept exactly as typed.
    """
    argv: list[str] = []
    pos = 0
    expect_value = False
    while True:
        while pos < len(line) and line[pos].isspace():
            pos += 1
        if pos >= len(line):
            return argv, ""
        match = _WORD.match(line, pos)
        if match is None:  # an unbalanced quote
            if expect_value:
                raise UsageError(f"unbalanced quote in the option value: {line[pos:]}")
            return argv, line[pos:].strip()
        token = match.group(0)
        if not expect_value and token == "--":
            return argv, line[match.end() :].strip()
        if not expect_value and not token.startswith("-"):
            return argv, line[pos:].strip()
        try:
            words = shlex.split(token)
        except ValueError as exc:
            raise UsageError(f"cannot read option {token!r}: {exc}") from None
        argv.extend(words or [""])
        if expect_value:
            expect_value = False
        else:
            name = token.split("=", 1)[0]
            expect_value = "=" not in token and takes_value.get(name, False)
        pos = match.end()


def _identifier(kind: str, name: str | None) -> None:
    if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
        raise UsageError(f"{kind} {name!r} is not a valid Python name: use letters, digits and _")


def check(args: Any, config: Stream) -> Invocation:
    """Merge parsed options with the ``%config`` defaults and reject bad combinations."""
    models = list(args.model) if args.model else [config.model]
    if args.n < 1:
        raise UsageError(f"-n must be at least 1, got {args.n}")
    temperature = args.temperature if args.temperature is not None else config.temperature
    if temperature is not None and not 0 <= temperature <= 2:
        raise UsageError(f"--temperature must be between 0 and 2, got {temperature}")
    max_tokens = args.max_tokens if args.max_tokens is not None else config.max_tokens
    if max_tokens is not None and max_tokens < 1:
        raise UsageError(f"--max-tokens must be at least 1, got {max_tokens}")
    speed = args.speed if args.speed is not None else config.replay_speed
    if speed < 0:
        raise UsageError(f"--speed must be 0 (as fast as possible) or more, got {speed}")
    _identifier("--out", args.out)
    _identifier("--view", args.view)
    _identifier("--client", args.client)
    if args.chat is not None and not args.chat.strip():
        raise UsageError("--chat needs a conversation name, e.g. --chat trip")
    background = config.background
    if args.background and args.wait:
        raise UsageError("--background and --wait contradict each other: pick one")
    if args.background:
        background = True
    if args.wait:
        background = False
    inv = Invocation(
        models=models,
        n=args.n,
        system=args.system if args.system is not None else config.system,
        temperature=temperature,
        max_tokens=max_tokens,
        # argparse's choices and the Enum traits admit only FORMATS / APIS
        format=cast('Literal["markdown", "text", "code"]', args.format or config.format),
        base_url=args.base_url or config.base_url,
        api=cast('Literal["chat", "responses"]', args.api or config.api),
        out=args.out,
        view=args.view,
        chat=args.chat,
        background=background,
        replay=Path(args.replay).expanduser() if args.replay else None,
        speed=speed,
        log=Path(args.log).expanduser() if args.log else None,
        raw=args.raw,
        reset=args.reset,
        show=args.show,
        client=args.client,
    )
    if inv.columns > MAX_COLUMNS:
        raise UsageError(
            f"{inv.columns} streams side by side is too many (at most {MAX_COLUMNS}): "
            "use fewer -m or a smaller -n"
        )
    if inv.chat is not None and inv.columns > 1:
        raise UsageError("--chat continues one conversation: use a single -m and no -n")
    if inv.replay is not None:
        if inv.columns > 1 or inv.chat is not None:
            raise UsageError("--replay plays one recorded log: drop -m/-n/--chat")
        if not inv.replay.is_file():
            raise UsageError(
                f"--replay: no log file at {str(inv.replay)!r} (save one with --log FILE "
                "or view.log.to_jsonl(FILE))"
            )
    if inv.log is not None and inv.columns > 1:
        raise UsageError("--log saves one stream's log: with several columns use compare().logs")
    if (inv.reset or inv.show) and (inv.out is not None or inv.view is not None):
        raise UsageError("--reset/--show manage conversations and do not stream: drop --out/--view")
    return inv


def _plain_usage(doc: str | None) -> str | None:
    """The help ``%%stream?`` shows, without the reST marker IPython's ``magic_arguments`` puts
    before the usage (``::`` then the usage indented: a literal block for Sphinx, a stray ``::``
    on screen)."""
    if not doc or not doc.startswith("::\n\n"):
        return doc
    usage, sep, rest = doc[len("::\n\n") :].partition("\n\n")
    return textwrap.dedent(usage) + sep + rest


@magics_class
class StreamMagics(Magics):
    """The ``%%stream`` and ``%stream`` magics, registered by ``%load_ext nbstream``."""

    shell: InteractiveShell  # always set: the magics are only made by load_ipython_extension

    def __init__(self, shell: InteractiveShell, config: Stream) -> None:
        super().__init__(shell)
        self.settings = config
        self.conversations = Conversations()
        self.cell_id: str | None = None  # the running cell's notebook id (JupyterLab sends it)

    def pre_run_cell(self, info: Any) -> None:
        """IPython's ``pre_run_cell`` event: remember which notebook cell is running, so a
        re-run ``--chat`` cell replaces its exchange instead of adding it again."""
        self.cell_id = getattr(info, "cell_id", None)

    @no_var_expand
    @magic_arguments()
    @argument(
        "-m",
        "--model",
        action="append",
        metavar="MODEL",
        help="Model to stream from; repeat it to compare models side by side "
        "(default: %%config Stream.model, else the endpoint's default).",
    )
    @argument(
        "-n",
        type=int,
        default=1,
        metavar="N",
        help="Stream N samples of each model side by side (default 1).",
    )
    @argument("-s", "--system", metavar="TEXT", help="System prompt (quote it).")
    @argument("-t", "--temperature", type=float, metavar="T", help="Sampling temperature, 0-2.")
    @argument("--max-tokens", type=int, metavar="N", help="Cap on the answer's tokens.")
    @argument("-f", "--format", choices=FORMATS, help="Render as markdown (default), text or code.")
    @argument("--base-url", metavar="URL", help="An OpenAI-compatible endpoint.")
    @argument(
        "--client",
        metavar="NAME",
        help="The client in the notebook variable NAME: an OpenAI client, or an anthropic, "
        "google-genai, ollama, cohere or mistralai one.",
    )
    @argument("--api", choices=APIS, help="chat (Chat Completions, default) or responses.")
    @argument(
        "-o",
        "--out",
        metavar="NAME",
        help="Store the final answer's text in NAME (a list of texts with several columns).",
    )
    @argument(
        "--view",
        metavar="NAME",
        help="Store the live view in NAME at once (to stop, await or inspect it: NAME.stop(), "
        "await NAME, NAME.log, NAME.metrics).",
    )
    @argument(
        "-c",
        "--chat",
        metavar="NAME",
        help="Continue the conversation NAME: earlier turns are sent along, and this one is "
        "added once answered (running the same cell again replaces its turn). With --show: "
        "print it; with --reset: forget it.",
    )
    @argument("--show", action="store_true", help="Show the conversation(s) instead of streaming.")
    @argument("--reset", action="store_true", help="Forget the conversation(s) before this cell.")
    @argument(
        "-b",
        "--background",
        action="store_true",
        help="Return at once while the answer streams (--out/--log/--chat are filled when it "
        "ends).",
    )
    @argument(
        "--wait",
        action="store_true",
        help="Wait for the answer even if %%config Stream.background is True.",
    )
    @argument("--replay", metavar="FILE", help="Replay a chunk log saved with --log (no request).")
    @argument("--speed", type=float, metavar="X", help="Replay speed: 1 original, 0 at once.")
    @argument("--log", metavar="FILE", help="Save the chunk log as JSONL when the stream ends.")
    @argument("--raw", action="store_true", help="Send the prompt as is: no {name} filling.")
    @argument(
        "prompt",
        nargs="*",
        help="(line magic) the prompt; in a %%%%stream cell the prompt is the cell body. "
        "{name} is filled from the notebook, {{ and }} are literal braces.",
    )
    @line_cell_magic
    def stream(self, line: str, cell: str | None = None) -> Any:
        """Stream an LLM answer live into the cell's output."""
        parser = self.stream.parser
        takes_value = {
            option: action.nargs != 0
            for action in parser._actions
            for option in action.option_strings
        }
        argv, line_prompt = split_line(line, takes_value)
        args = parser.parse_args(argv)
        inv = check(args, self.settings)
        if cell is not None and line_prompt:
            raise UsageError(
                f"unexpected text after the options: {line_prompt!r}. In a %%stream cell the "
                "prompt is the cell body (quote option values that contain spaces)"
            )
        template = cell if cell is not None else line_prompt
        return self._run(inv, template)

    stream.__doc__ = _plain_usage(stream.__doc__)

    # -- what the options do ---------------------------------------------------------------

    def _run(self, inv: Invocation, template: str) -> Any:
        if inv.reset:
            self.conversations.reset(inv.chat)
        if inv.show:
            if inv.chat is not None:
                return self.conversations.get(inv.chat)
            return self.conversations
        if inv.reset and not template.strip():
            return None
        if inv.replay is not None:
            if template.strip():
                raise UsageError("--replay plays a recorded log: leave the prompt empty")
            return self._replay(inv)
        prompt = template.strip("\n")
        if not prompt.strip():
            raise UsageError(
                "empty prompt: write it in the cell below %%stream (or after the options of "
                "%stream), e.g.  %stream -m demo Tell me a joke"
            )
        try:
            prompt = prompt if inv.raw else fill(prompt, self.shell.user_ns)
            system = inv.system
            if system is not None and not inv.raw:
                system = fill(system, self.shell.user_ns)
        except InterpolationError as exc:
            raise UsageError(f"{exc}. Nothing was sent.") from None
        if inv.columns > 1:
            return self._compare(inv, prompt, system)
        return self._chat(inv, prompt, system)

    def _request_options(self, inv: Invocation, system: str | None) -> dict[str, Any]:
        options: dict[str, Any] = {"api": inv.api}
        if system is not None:
            options["system"] = system
        if inv.temperature is not None:
            options["temperature"] = inv.temperature
        if inv.max_tokens is not None:
            key = "max_output_tokens" if inv.api == "responses" else "max_tokens"
            options[key] = inv.max_tokens
        if inv.client is not None:
            if inv.client not in self.shell.user_ns:
                raise UsageError(f"--client {inv.client}: no such variable in the notebook")
            options["client"] = self.shell.user_ns[inv.client]
        elif inv.base_url is not None:
            from nbstream.sources.client import client_for

            # one endpoint serves both modes (an async pool per event loop)
            options["client"] = client_for(inv.base_url)
        return options

    def _chat(self, inv: Invocation, prompt: str, system: str | None) -> None:
        import nbstream

        options = self._request_options(inv, system)
        message: Any = prompt
        conversation = None
        cell = self.cell_id
        if inv.chat is not None:
            conversation = self.conversations.get(inv.chat)
            if system is not None:
                conversation.system = system
            options.pop("system", None)
            message = conversation.messages(prompt, cell=cell)

        def start() -> Any:
            return nbstream.chat(
                message,
                model=inv.models[0],
                format=inv.format,
                background=True,
                display=False,
                **options,
            )

        def finish(view: Any) -> None:
            if conversation is not None:
                conversation.record(prompt, view.text, cell=cell)
            self._store(inv, view)

        self._show(inv, start, finish)

    def _replay(self, inv: Invocation) -> None:
        import nbstream

        assert inv.replay is not None
        path, speed = inv.replay, inv.speed

        def start() -> Any:
            return nbstream.stream(
                nbstream.replay(path, speed=speed),
                format=inv.format,
                background=True,
                display=False,
            )

        self._show(inv, start, lambda view: self._store(inv, view))

    def _compare(self, inv: Invocation, prompt: str, system: str | None) -> None:
        import nbstream

        models = [m for m in inv.models for _ in range(inv.n)]
        board = _usage_errors(
            lambda: nbstream.compare(
                prompt,
                models=models,
                format=inv.format,
                background=inv.background,
                **self._request_options(inv, system),
            )
        )()
        if inv.view is not None:
            self.shell.user_ns[inv.view] = board
        if inv.out is None:
            return
        name = inv.out
        if inv.background:
            remaining = set(range(len(board.views)))

            def one_done(view: Any, index: int) -> None:
                remaining.discard(index)
                if not remaining:
                    self.shell.user_ns[name] = board.texts

            for index, view in enumerate(board.views):
                when_done(view, lambda v, i=index: one_done(v, i))
        else:
            self.shell.user_ns[name] = board.texts

    def _show(self, inv: Invocation, start: Any, finish: Any) -> None:
        """Start a single stream, show it live, and apply --out/--log/--chat when it ends."""
        start = _usage_errors(start)
        if inv.background:
            view = start()  # a task on the kernel's event loop: the cell returns at once
            view._display_live(waiting=False)
            if inv.view is not None:
                self.shell.user_ns[inv.view] = view
            when_done(view, finish)
            return
        view = start_detached(start)  # its own thread, so this cell can wait for it
        if inv.view is not None:
            self.shell.user_ns[inv.view] = view
        # the interrupt button (■) stops the stream and keeps the partial text
        wait_in_cell([view], view._outputs, then=lambda: finish(view))

    def _store(self, inv: Invocation, view: Any) -> None:
        if inv.out is not None:
            self.shell.user_ns[inv.out] = view.text
        if inv.log is not None and view.log is not None:
            try:
                inv.log.parent.mkdir(parents=True, exist_ok=True)
                view.log.to_jsonl(inv.log)
            except OSError as exc:
                # a bad --log path must not cost the answer: this runs before the static copy is
                # shown (and for background cells in a callback), so warn and go on
                reason = exc.strerror or exc.__class__.__name__
                if exc.filename:
                    reason += f": {exc.filename}"  # e.g. the file in the way of a directory
                print(
                    f"nbstream: could not save the chunk log to {str(inv.log)!r} ({reason}). "
                    "The answer is shown as usual; give --log a writable path (with --view NAME, "
                    "NAME.log.to_jsonl(PATH) saves it now).",
                    file=sys.stderr,
                )


def _usage_errors(start: Any) -> Any:
    """Bad arguments found by the public API (e.g. no model for a real server) -> UsageError."""

    def wrapped() -> Any:
        try:
            return start()
        except (TypeError, ValueError) as exc:
            raise UsageError(str(exc)) from None

    return wrapped


def when_done(view: Any, fn: Any) -> None:
    """Call ``fn(view)`` once, when the view's current answer has ended (background streams)."""
    from nbstream.run.stream_run import FINAL

    called = False

    def check(_change: Any = None) -> None:
        nonlocal called
        if called or view.status not in FINAL:
            return
        called = True
        view.unobserve(check, names="snapshot")
        fn(view)

    view.observe(check, names="snapshot")
    check()


def load_ipython_extension(ipython: Any) -> None:  # IPython mistypes .configurables
    """Register ``%%stream`` / ``%stream`` and the ``Stream`` configurable for ``%config``."""
    config = Stream(parent=ipython)
    if not any(isinstance(c, Stream) for c in ipython.configurables):
        ipython.configurables.append(config)
    else:
        config = next(c for c in ipython.configurables if isinstance(c, Stream))
    magics = StreamMagics(ipython, config)
    ipython.register_magics(magics)
    for callback in list(ipython.events.callbacks["pre_run_cell"]):  # %reload_ext: one hook
        if isinstance(getattr(callback, "__self__", None), StreamMagics):
            ipython.events.unregister("pre_run_cell", callback)
    ipython.events.register("pre_run_cell", magics.pre_run_cell)
