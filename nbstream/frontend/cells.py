"""Put an answer into the notebook as a new cell: the whole answer, or one of its code blocks.

A widget cannot reach the notebook's document, but the kernel can: IPython's ``set_next_input``
payload makes JupyterLab, Notebook 7 and VS Code create a cell below the one that ran. So this works
from a cell (``view.insert_cell()``), not from a button in the widget.
"""

from __future__ import annotations

from markdown_it import MarkdownIt

_PARSER = MarkdownIt("commonmark")


def code_blocks(text: str) -> list[tuple[str, str]]:
    """The answer's code blocks as ``(language, code)``, in order (fenced and indented)."""
    return [
        (token.info.strip().split(" ")[0] if token.info else "", token.content)
        for token in _PARSER.parse(text)
        if token.type in ("fence", "code_block")
    ]


def cell_source(text: str, *, code_block: int | None = None, format: str = "markdown") -> str:  # noqa: A002
    """What the new cell holds: code block ``code_block`` of ``text``, or the whole answer.

    A Markdown answer becomes a ``%%markdown`` cell, so running it shows it rendered. Its output
    is trusted, so the answer is written as ``safe_markdown`` (the model's
    HTML shown as text, script links broken, images as text). A plain-text or code answer is
    inserted as it is: a code cell runs only when the user runs it.
    """
    if code_block is not None:
        blocks = code_blocks(text)
        if not blocks:
            raise ValueError(
                "the answer has no code block: call insert_cell() without code_block to insert "
                "the whole answer"
            )
        if not -len(blocks) <= code_block < len(blocks):
            raise ValueError(
                f"the answer has {len(blocks)} code block(s): pass code_block=0 to "
                f"{len(blocks) - 1} (or -1 for the last)"
            )
        return blocks[code_block][1].rstrip("\n")
    if format == "markdown":
        from nbstream.frontend.static_copy import safe_markdown

        body = safe_markdown(text)
        # IPython's Markdown(data) *fetches* data that starts with "http" and *reads the file*
        # named by data when such a path exists, then renders what it got, trusted: an answer
        # "http://evil.example/x.md" would make the kernel fetch and show that page's raw
        # Markdown (script included). A leading blank line keeps the answer as the data.
        if body.startswith("http") or _could_be_path(body):
            body = "\n" + body
        return "%%markdown\n" + body
    return text


def _could_be_path(body: str) -> bool:
    """Whether IPython could take ``body`` (the cell, which ends with a newline) for a path."""
    import os

    for candidate in (body, body + "\n"):
        try:
            if os.path.exists(candidate):
                return True
        except (ValueError, OSError):  # NUL bytes, names too long
            pass
    return False


def insert_cell(source: str, *, replace: bool = False) -> None:
    """Create a cell with ``source`` below the running one (``replace=True``: replace it)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        get_ipython = None
    shell = get_ipython() if get_ipython is not None else None
    if shell is None:
        raise RuntimeError(
            "insert_cell() needs a notebook: run it in a cell (outside a notebook, use view.text)"
        )
    shell.set_next_input(source, replace=replace)
