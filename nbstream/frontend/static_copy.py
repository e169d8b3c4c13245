"""The static copy of an answer: what a notebook shows where the live widget cannot.

A saved notebook is read by many renderers that have no widget: nbconvert (HTML, with and without
``--sanitize-html``), GitHub and nbviewer, JupyterLab and Notebook 7 without the nbstream extension
or with the kernel gone, VS Code. Notebook outputs are *trusted* in the user's own notebook, so
JupyterLab inserts a ``text/html`` or ``text/markdown`` output without sanitizing it, and nbconvert
copies ``text/html`` into the page as it is. Model output is untrusted (prompt injection puts any
text into an answer), so the copy is made safe here, once, for every renderer:

- ``answer_html``: the answer rendered to HTML by markdown-it-py with raw HTML *off* (model HTML
  becomes visible text), links limited to http(s)/mailto/#, images shown as links (a remote image
  is a data-leak channel: its URL can carry the conversation), math left as TeX for the page's
  MathJax inside elements that opt in to typesetting (the rest of the answer opts out, so a ``\\(``
  in prose is not typeset), TeX commands that make links or load things shown as code. The result
  is then cleaned by nh3 (the ammonia sanitizer) with an allowlist, as a second, independent wall.
- ``safe_markdown``: the answer as Markdown that no Markdown renderer can turn into live HTML
  (for ``view.insert_cell()``, whose ``%%markdown`` cell is rendered trusted): no ``<`` from the
  model survives outside what this module writes, unsafe link destinations are broken, images
  become links.

The widget's own renderer (``js/markdown.js`` + DOMPurify) follows the same policy.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

# markdown-it-py, its math plugin and nh3 load on the first static copy (an answer's end), not
# with the widget: they were ~25-90 ms of the ~0.3-0.5 s of imports before a first token
# (python -X importtime, bench/bench_cold_start.py; BENCHMARKS.md issue 16 §4)
if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token
    from markdown_it.utils import EnvType, OptionsDict

# ---- HTML ----------------------------------------------------------------------------------

# TeX commands that make a link, load a file or style the page in MathJax/KaTeX: math using them
# is shown as code (MathJax turns \href{javascript:...} into a live link).
_UNSAFE_TEX = re.compile(
    r"\\(?:href|url|class|cssId|style|html\w*|unicode|require|data|includegraphics|mmlToken"
    r"|bbox|fbox|boxed|rule)\b"
)
_SAFE_URL = re.compile(r"^(?:https?:|mailto:|#)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # keeps \t \n \r

_TAGS = {
    "a", "b", "blockquote", "br", "code", "del", "details", "div", "em", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "s", "span", "strong", "summary", "table",
    "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "div": {"class", "data-status"},
    "ol": {"start"},
    "pre": {"class"},
    "span": {"class", "title"},
    "td": {"style"},
    "th": {"style"},
}


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _math(tex: str, display: bool, block: bool = False) -> str:
    if _UNSAFE_TEX.search(tex):
        return f"<code>{_escape(tex)}</code>"
    open_, close = (r"\[", r"\]") if display else (r"\(", r"\)")
    tag = "div" if block else "span"
    # tex2jax_process / mathjax_process: typeset this element although the answer opts out
    return (
        f'<{tag} class="nbstream-math tex2jax_process mathjax_process">'
        f"{open_}{_escape(tex)}{close}</{tag}>"
    )


def _code(code: str, language: str) -> str:
    """A code block, highlighted by Pygments (classes styled by JupyterLab and nbconvert)."""
    body = _highlight(code, language)
    lang = re.sub(r"[^\w+-]", "", language)[:40]
    cls = f' class="language-{lang}"' if lang else ""
    return f'<div class="highlight"><pre><code{cls}>{body}</code></pre></div>\n'


def _highlight(code: str, language: str) -> str:
    if language:
        try:
            from pygments import highlight
            from pygments.formatters import HtmlFormatter
            from pygments.lexers import get_lexer_by_name
            from pygments.util import ClassNotFound

            try:
                lexer = get_lexer_by_name(language)
            except ClassNotFound:
                lexer = None
            if lexer is not None:
                return highlight(code, lexer, HtmlFormatter(nowrap=True))
        except ImportError:  # pragma: no cover - Pygments comes with IPython
            pass
    return _escape(code)


@functools.cache
def _parser() -> MarkdownIt:
    """The answer's Markdown renderer (built once, on first use)."""
    from markdown_it import MarkdownIt
    from markdown_it.renderer import RendererHTML
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    class _Renderer(RendererHTML):
        """markdown-it-py's HTML renderer with the answer's policy for code and images (math:
        the dollarmath rules set below)."""

        def fence(
            self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
        ) -> str:
            token = tokens[idx]
            language = token.info.strip().split(" ")[0] if token.info else ""
            return _code(token.content, language)

        def code_block(
            self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
        ) -> str:
            return _code(tokens[idx].content, "")

        def image(
            self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
        ) -> str:
            token = tokens[idx]
            src = str(token.attrGet("src") or "")
            alt = _escape(self.renderInlineAsText(token.children or [], options, env) or "image")
            if src.lower().startswith(("http://", "https://")):
                return f'<a href="{_escape(src)}">[image: {alt}]</a>'
            return f"<span>[image: {alt}]</span>"

    md = MarkdownIt(
        "commonmark",
        {"html": False, "linkify": False, "typographer": False},
        renderer_cls=_Renderer,
    )
    md.enable(["table", "strikethrough"])
    md.use(dollarmath_plugin, allow_space=True, allow_digits=False, double_inline=True)
    # after the plugin, which registers its own rules (a <span> without the MathJax opt-in)
    md.add_render_rule(
        "math_inline", lambda _self, tokens, idx, *_: _math(tokens[idx].content, False)
    )
    md.add_render_rule(
        "math_inline_double", lambda _self, tokens, idx, *_: _math(tokens[idx].content, True)
    )
    for kind in ("math_block", "math_block_label"):
        md.add_render_rule(
            kind, lambda _self, tokens, idx, *_: _math(tokens[idx].content, True, True) + "\n"
        )
    md.validateLink = lambda url: bool(_SAFE_URL.match(url.strip()))  # type: ignore[method-assign]
    return md


def clean_html(fragment: str) -> str:
    """nh3 (ammonia) with the static copy's allowlist: no script, no event handlers, no ids or
    names (DOM clobbering), http(s)/mailto links only, no images, no forms, no styles but the
    table alignment markdown-it writes."""
    import nh3

    return nh3.clean(
        fragment,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
        filter_style_properties={"text-align"},
    )


def _text(value: Any) -> str:
    """Any value as escaped text on one HTML line (ids, names, refusals: never Markdown)."""
    return _escape(plain(str(value or "")))


def plain(text: str) -> str:
    """Text for ``text/plain``: control characters (terminal escape sequences) removed."""
    return _CONTROL.sub("", text)


def markdown_html(text: str, format: str = "markdown", language: str = "") -> str:  # noqa: A002
    """The answer body as safe HTML: Markdown rendered, or a code/plain-text block."""
    text = plain(text)
    if format == "code":
        body = _code(text, language)
    elif format == "text":
        body = f'<pre class="nbstream-plain">{_escape(text)}</pre>'
    else:
        body = _parser().render(text)
    return clean_html(body)


# ---- the whole answer, as the widget shows it --------------------------------------------------


def answer_html(parts: dict[str, Any], *, format: str = "markdown", language: str = "") -> str:  # noqa: A002
    """The static copy of one version: thinking, refusal, answer, tool calls, status line.

    ``parts``: ``text``, ``reasoning``, ``refusal``, ``tool_calls`` (name, id, arguments, valid,
    parsed), ``status``, ``reason``, ``summary`` (the status line's words). Every value is
    escaped or rendered through :func:`markdown_html`; the result goes through nh3 once more.
    """
    out: list[str] = []
    status = str(parts.get("status") or "")
    reasoning = str(parts.get("reasoning") or "")
    if reasoning:
        out.append(f"<details><summary>Thinking</summary>{markdown_html(reasoning)}</details>")
    refusal = parts.get("refusal")
    if refusal:
        out.append(
            f"<blockquote><strong>Refused:</strong> {_escape(plain(str(refusal)))}</blockquote>"
        )
    text = str(parts.get("text") or "")
    if text.strip():
        out.append(markdown_html(text, format, language))
    for call in parts.get("tool_calls") or []:
        args = str(call.get("arguments") or "")
        if call.get("valid") and call.get("parsed") is not None:
            args = json.dumps(call["parsed"], indent=2, ensure_ascii=False)
        flag = " <em>(invalid JSON)</em>" if not call.get("valid", True) else ""
        ident = (
            f" <span>({_escape(plain(str(call.get('id') or '')))})</span>" if call.get("id") else ""
        )
        out.append(
            f"<p><strong>Tool call</strong> <code>{_text(call.get('name'))}</code>"
            f"{ident}{flag}</p>{_code(plain(args), 'json')}"
        )
    summary = str(parts.get("summary") or "")
    if summary:
        out.append(f'<p class="nbstream-static-status"><em>{_escape(plain(summary))}</em></p>')
    body = "".join(out) or "<p><em>(empty answer)</em></p>"
    # tex2jax_ignore / mathjax_ignore: MathJax leaves the answer's prose alone (only the math
    # elements above opt back in), so TeX-looking text in prose is never typeset into links
    return clean_html(
        '<div class="nbstream-static tex2jax_ignore mathjax_ignore" '
        f'data-status="{_text(status)}">{body}</div>'
    )


# ---- Markdown that stays Markdown ----------------------------------------------------------------

_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*:", re.IGNORECASE)
_LINK_OPEN = re.compile(r"\]\s*[(:]")  # an inline link "](" or a reference definition "]:"
_INVISIBLE = re.compile(r"[\s\x00-\x1f\x7f]+")


def _unsafe_destination(rest: str) -> bool:
    """Whether a link destination (the text after ``](`` or ``]:``) could be a script URL.

    CommonMark decodes entities and backslash escapes in destinations and ignores surrounding
    ``<>``: decode the way a renderer would, drop whitespace and control characters, and accept
    only http(s), mailto, fragments and scheme-less (relative) paths."""
    dest = html.unescape(rest)
    dest = dest.replace("\\", "")
    dest = _INVISIBLE.sub("", dest).lstrip("<(")
    if not dest:
        return False
    if _SCHEME.match(dest):
        return not _SAFE_URL.match(dest)
    return False


def _code_span_html(code: str) -> str:
    return f"<code>{_escape(code)}</code>"


_BACKTICKS = re.compile(r"`+")


def _escape_inline(segment: str) -> str:
    """Prose: ``<`` written as ``&lt;`` (a code span holding ``<`` becomes a ``<code>`` element,
    whose content is escaped here), image syntax shown as text, unsafe links broken."""
    out: list[str] = []
    pos = 0
    while pos < len(segment):
        m = _BACKTICKS.search(segment, pos)
        if m is None:
            out.append(_escape_prose(segment[pos:]))
            break
        ticks = m.group(0)
        close = re.compile(r"(?<!`)" + ticks + r"(?!`)")
        end = close.search(segment, m.end())
        if end is None:  # no closing run: literal backticks
            out.append(_escape_prose(segment[pos : m.end()]))
            pos = m.end()
            continue
        out.append(_escape_prose(segment[pos : m.start()]))
        code = segment[m.end() : end.start()]
        out.append(_code_span_html(code) if "<" in code else ticks + code + ticks)
        pos = end.end()
    return "".join(out)


def _unsafe_link(text: str) -> bool:
    return any(_unsafe_destination(text[m.end() :]) for m in _LINK_OPEN.finditer(text))


def _escape_prose(text: str) -> str:
    text = text.replace("<", "&lt;")
    # MathJax turns \href{javascript:...} into a live link: a doubled backslash is plain text
    text = _UNSAFE_TEX.sub(lambda m: "\\" + m.group(0), text)
    text = text.replace("![", "!\\[")  # no image (a remote image leaks data): the syntax as text
    out: list[str] = []
    pos = 0
    for m in _LINK_OPEN.finditer(text):
        if _unsafe_destination(text[m.end() :]):
            out.append(text[pos : m.start()] + "\\")  # "\]" cannot close a link text
            pos = m.start()
    out.append(text[pos:])
    return "".join(out)


def safe_markdown(text: str) -> str:
    """``text`` as Markdown that renders the same for honest answers and never as live HTML.

    Code blocks without ``<`` are kept as they are; code blocks holding ``<`` become ``<pre>``
    elements with escaped content (so no renderer, whatever it thinks of the fence, sees the
    model's ``<``). Everything else goes through :func:`_escape_inline` line by line."""
    text = plain(text)
    lines = text.split("\n")
    out: list[str] = []
    code_lines: dict[int, tuple[int, str, str]] = {}  # first line -> (end line, info, content)
    for token in _code_parser().parse(text):
        if token.type in ("fence", "code_block") and token.map:
            start, end = token.map
            code_lines[start] = (end, token.info.strip().split(" ")[0] if token.info else "",
                                 token.content)  # fmt: skip
    i = 0
    while i < len(lines):
        block = code_lines.get(i)
        if block is not None:
            end, info, content = block
            raw = "\n".join(lines[i:end])
            if "<" in raw or _UNSAFE_TEX.search(raw) or _unsafe_link(raw):
                lang = re.sub(r"[^\w+-]", "", info)[:40]
                cls = f' class="language-{lang}"' if lang else ""
                indent = re.match(r"[ >]*", lines[i])
                prefix = indent.group(0) if indent else ""
                escaped = _escape(content.rstrip("\n")).split("\n")
                out.append(f"{prefix}<pre><code{cls}>{escaped[0]}")
                out.extend(prefix + line for line in escaped[1:])
                out[-1] += "</code></pre>"
            else:
                out.extend(lines[i:end])
            i = max(end, i + 1)
            continue
        out.append(_escape_inline(lines[i]))
        i += 1
    return "\n".join(out)


@functools.cache
def _code_parser() -> MarkdownIt:
    """CommonMark with HTML on: finds code blocks exactly as a renderer will (built once)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True})
