"""The widget follows JupyterLab's light and dark themes: the same answer, re-rendered after the
theme changes, is light text on a dark page (and the other way round), code blocks included."""

from __future__ import annotations

import pytest
from browser_jupyter import set_lab_setting
from browser_page import StreamWidget
from streams import setup_cell

pytestmark = pytest.mark.browser

THEMES = "@jupyterlab/apputils-extension:themes"
COLORS = """
root => {
  const luminance = (css) => {
    const [r, g, b] = css.match(/[\\d.]+/g).slice(0, 3).map(Number);
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
  };
  const style = (sel) => getComputedStyle(root.querySelector(sel));
  let page = root;  // the first ancestor with an opaque background
  while (page && getComputedStyle(page).backgroundColor.match(/rgba\\(.*, 0\\)|transparent/))
    page = page.parentElement;
  return {
    text: luminance(style('[data-testid=answer] p').color),
    code: luminance(style('[data-testid=answer] pre code').color),
    codeBackground: luminance(style('[data-testid=answer] pre').backgroundColor),
    status: luminance(style('[data-testid=status]').color),
    page: luminance(getComputedStyle(page || document.body).backgroundColor),
  };
}
"""


def test_widget_follows_the_light_and_dark_themes(open_notebook, llm, jupyter_lab):
    nb = open_notebook(
        [setup_cell(llm.base_url), "view = nbstream.stream(ask(tokens_per_s=300), background=True)"]
    )
    nb.run_cells([0, 1])
    widget = StreamWidget(nb, 1).wait_rendered()
    widget.wait_status("done")
    light = widget.root.evaluate(COLORS)
    assert light["page"] > 0.8 and light["text"] < 0.4 and light["code"] < 0.5, light
    assert light["codeBackground"] > 0.8 and light["status"] < 0.6, light

    nb.save()  # the reloaded page shows the saved outputs, their widgets from the kernel
    set_lab_setting(jupyter_lab, THEMES, {"theme": "JupyterLab Dark"})
    try:
        nb.reload()
        widget = StreamWidget(nb, 1).wait_rendered()
        widget.page.wait_for_selector("body[data-jp-theme-light='false']", state="attached")
        assert widget.status() == "done"
        dark = widget.root.evaluate(COLORS)
        nb.screenshot("theme-dark", nb.cell(1))
    finally:
        set_lab_setting(jupyter_lab, THEMES, {"theme": "JupyterLab Light"})
    assert dark["page"] < 0.3 and dark["text"] > 0.6 and dark["code"] > 0.5, dark
    assert dark["codeBackground"] < 0.3 and dark["status"] > 0.4, dark
