"""Model output is untrusted: a corpus of XSS payloads streamed through a real stream (the local
server's ``echo`` model sends the prompt back token by token, so half-written tags pass through
the renderer too) must not run any script in the JupyterLab page."""

from __future__ import annotations

import pytest
from browser_page import StreamWidget, wait_until
from streams import setup_cell

pytestmark = pytest.mark.browser

# Each payload, if it ran, would set window.__pwned or open a dialog.
PAYLOADS = [
    "<script>window.__pwned='script'</script>",
    "<img src=x onerror=\"window.__pwned='img-onerror'\">",
    '<svg onload="window.__pwned=\'svg-onload\'"><circle r="1"/></svg>',
    "<svg><script>window.__pwned='svg-script'</script></svg>",
    "<iframe srcdoc=\"<script>parent.__pwned='iframe'</script>\"></iframe>",
    "<a href=\"javascript:window.__pwned='a-href'\">html link</a>",
    "[markdown link](javascript:window.__pwned='md-link')",
    "[mixed case](JaVaScRiPt:alert('md-link-case'))",
    "[entity](&#106;avascript:alert('md-link-entity'))",
    "<javascript:alert('autolink')>",
    "![image](x\" onerror=\"window.__pwned='md-img-attr')",
    "![image2](javascript:alert('md-img-js'))",
    "[data url](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "<details open ontoggle=\"window.__pwned='details'\">x</details>",
    "<math><mtext><table><mglyph><style><img src=x onerror=\"window.__pwned='mxss'\">"
    "</style></mglyph></table></mtext></math>",
    "<object data=\"javascript:alert('object')\"></object>",
    "<embed src=\"javascript:alert('embed')\">",
    "<form action=\"javascript:alert('form')\"><button>go</button></form>",
    "<input autofocus onfocus=\"window.__pwned='autofocus'\">",
    "<body onload=\"window.__pwned='body'\">",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(\'meta\')">',
    "<style>@import 'javascript:alert(1)';</style>",
    "Inline math $\\href{javascript:alert('katex-href')}{click}$ and "
    "$\\url{javascript:alert('katex-url')}$",
    "$$\\htmlData{onload=alert('katex-data')}{x}$$",
    "`<img src=x onerror=\"window.__pwned='code-span'\">`",
    "```html\n<script>window.__pwned='fence'</script>\n```",
    "| table | <img src=x onerror=\"window.__pwned='table'\"> |\n|---|---|\n| a | b |",
]
CORPUS = "# XSS corpus\n\n" + "\n\n".join(PAYLOADS) + "\n"

DANGEROUS_DOM = """
roots => {
  const found = [];
  for (const root of roots) {
    for (const el of root.querySelectorAll('*')) {
      const tag = el.tagName.toLowerCase();
      if (['script', 'iframe', 'object', 'embed', 'img', 'form', 'input', 'meta', 'base',
           'style', 'frame'].includes(tag)) found.push('<' + tag + '>');
      for (const attr of el.attributes) {
        const name = attr.name.toLowerCase();
        const value = attr.value.trim().toLowerCase();
        if (name.startsWith('on')) found.push(tag + ' ' + name);
        if (['href', 'src', 'xlink:href', 'action', 'formaction', 'data'].includes(name)
            && /^(javascript|data|vbscript):/.test(value))
          found.push(tag + ' ' + name + '=' + value);
        if (tag === 'a' && name === 'href' && !/^(https?:|mailto:|#)/.test(value))
          found.push('a href=' + value);
      }
    }
  }
  return found;
}
"""


def test_xss_corpus_streamed_through_the_widget_runs_no_script(
    open_notebook, llm, page, page_events
):
    nb = open_notebook(
        [
            setup_cell(llm.base_url) + f"\nCORPUS = {CORPUS!r}",
            "md = nbstream.stream(ask(CORPUS, model='echo', tokens_per_s=400), background=True)",
            "txt = nbstream.stream(ask(CORPUS, model='echo'), format='text', background=True)",
        ]
    )
    nb.run_cells([0, 1, 2])
    markdown, text = StreamWidget(nb, 1).wait_rendered(), StreamWidget(nb, 2).wait_rendered()
    markdown.wait_status("done", timeout=60)
    text.wait_status("done", timeout=60)
    assert llm.wait_idle()[-1].end_reason == "complete"

    # The whole corpus went through the renderers...
    assert markdown.copied_text() == CORPUS
    assert text.copied_text() == CORPUS
    assert "window.__pwned='script'" in text.answer_text()  # shown as text, not run
    markdown.answer.hover()
    for link in markdown.answer.locator("a").all():
        link.hover()
    page.wait_for_timeout(1000)  # time for onerror/onload handlers, had any survived

    # ...and nothing ran: no flag, no dialog, no dangerous element or attribute in the widgets.
    assert page.evaluate("() => window.__pwned") is None
    assert page_events.dialogs == []
    assert page_events.page_errors == []
    roots = page.locator(".nbstream-root")
    assert roots.count() == 2
    assert roots.evaluate_all(DANGEROUS_DOM) == []
    nb.screenshot("xss-corpus", nb.cell(1))

    # Control: the same kind of payload does run when put in this page unsanitized, so the
    # checks above can fail.
    page.evaluate(
        "() => document.body.insertAdjacentHTML('beforeend',"
        " '<img src=x onerror=\"window.__pwned_control=1\">')"
    )
    wait_until(lambda: page.evaluate("() => window.__pwned_control") == 1, 5, what="control")
