"""Issue 13 without a browser: every payload of ../shared/xss through the static copies, rendered
by the Markdown renderers a saved notebook meets (GitHub's cmark-gfm with its unsafe mode on, the
worst case, and in its default safe mode; mistune, nbconvert's; markdown-it), parsed by an HTML5
parser (html5lib: the browser's algorithm) and scanned for unsafe DOM. Controls show each scan
finds the raw payloads."""

from __future__ import annotations

import http.server
import threading

import pytest
import xss_corpus

from nbstream.frontend import static_copy
from nbstream.frontend.cells import cell_source

cmarkgfm = pytest.importorskip("cmarkgfm", reason="pip install cmarkgfm (test extra)")
pytest.importorskip("html5lib", reason="pip install html5lib (test extra)")


def _gfm(text: str, safe: bool) -> str:
    from cmarkgfm.cmark import Options

    options = 0 if safe else Options.CMARK_OPT_UNSAFE
    return cmarkgfm.github_flavored_markdown_to_html(text, options=options)


def _mistune(text: str) -> str:
    """nbconvert's own Markdown renderer (headings get ids from their text: its anchors)."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return markdown2html_mistune(text)


def _markdown_it(text: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(text)


RENDERERS = {
    "gfm-unsafe": lambda t: _gfm(t, safe=False),
    "gfm-safe": lambda t: _gfm(t, safe=True),
    "mistune": _mistune,
    "markdown-it": _markdown_it,
}


@pytest.mark.parametrize("renderer", list(RENDERERS))
def test_safe_markdown_of_every_payload_renders_no_unsafe_dom(renderer):
    render = RENDERERS[renderer]
    items = xss_corpus.payloads()
    unsafe = {}
    for item in items:
        found = xss_corpus.scan_html(render(static_copy.safe_markdown(item["payload"])))
        if found:
            unsafe[item["id"]] = found
    assert unsafe == {}, f"{len(unsafe)} of {len(items)}: {list(unsafe.items())[:5]}"
    # control: the raw payloads through the same renderer and scan
    raw = sum(1 for item in items if xss_corpus.scan_html(render(item["payload"])))
    print(f"{renderer}: 0 of {len(items)} unsafe (raw payloads: {raw})")
    if renderer != "gfm-safe":  # GitHub's safe mode drops raw HTML by itself
        assert raw > 100


def test_answer_html_of_every_payload_has_no_unsafe_dom():
    items = xss_corpus.payloads()
    bad = {}
    for item in items:
        p = item["payload"]
        parts = {"text": p, "reasoning": p, "refusal": p, "summary": p, "status": p,
                 "tool_calls": [{"name": p, "id": p, "arguments": p, "valid": False}]}  # fmt: skip
        for fmt in ("markdown", "text", "code"):
            found = xss_corpus.scan_html(static_copy.answer_html(parts, format=fmt, language=p))
            if found:
                bad[(item["id"], fmt)] = found
    assert bad == {}, list(bad.items())[:5]


@pytest.mark.parametrize(
    "name",
    ["tool`</code><img src=x onerror=alert(1)>", "``x`` <b>y</b>", "a` [l](javascript:alert(1)) `"],
)
def test_a_tool_name_with_backticks_stays_in_its_code_element(name):
    html = static_copy.answer_html(
        {
            "text": "",
            "tool_calls": [
                {"name": name, "id": "i`d", "arguments": "{}", "valid": True, "parsed": {}}
            ],
        }  # fmt: skip
    )
    import html5lib

    tree = html5lib.parseFragment(html, treebuilder="etree", namespaceHTMLElements=False)
    codes = [el for el in tree.iter() if el.tag == "code"]
    assert "".join(codes[0].itertext()) == name  # the whole name, as text, in one element
    assert xss_corpus.scan_html(html) == []
    assert not [el for el in tree.iter() if el.tag in ("a", "b", "img")]


class _Counting(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - the stdlib's name
        type(self).hits.append(self.path)
        body = b"<img src=x onerror=alert(1)>"
        self.send_response(200)
        self.send_header("Content-Type", "text/markdown")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_an_inserted_cell_never_fetches_or_reads_what_the_answer_names(tmp_path):
    """IPython's ``Markdown(data)`` fetches ``data`` starting with "http" and reads an existing
    file named by it: the ``%%markdown`` cell of an answer that is a URL or a path, run in a real
    kernel, must show the answer and fetch/read nothing."""
    from kernel_session import KernelSession

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret = tmp_path / "secret.md"
    secret.write_text("<img src=x onerror=alert(1)> the secret")
    url = f"http://127.0.0.1:{server.server_address[1]}/exfil?q=conversation"
    kernel = KernelSession(tmp_path)
    try:
        for answer in (url, str(secret), "secret.md"):
            run = kernel.run(cell_source(answer))
            assert run.status == "ok", run
            shown = "".join(run.data("text/markdown"))
            assert answer in shown and "the secret" not in shown and "<img" not in shown
        assert _Counting.hits == []
    finally:
        kernel.close()
        server.shutdown()
