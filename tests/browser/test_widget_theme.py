"""The widget follows JupyterLab's light and dark themes: the same answer, re-rendered after the
theme changes, is light text on a dark page (and the other way round), code blocks included."""

from __future__ import annotations

import pytest
from browser_jupyter import set_lab_setting
from browser_page import StreamWidget, wait_until
from streams import setup_cell

pytestmark = pytest.mark.browser

THEMES = "@jupyterlab/apputils-extension:themes"
COLORS = """
root => {
  const luminance = (css) => {  // null while the value is not a colour yet (see _colors)
    const rgb = css.match(/[\\d.]+/g);
    return rgb ? (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255 : null;
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


def _colors(widget: StreamWidget) -> dict[str, float]:
    """The colours once the answer is fully rendered. Right after a reload the widget paints the
    answer over a few frames and a CI run once read a computed colour with no value there (all other
    runs and machines: a colour at once): read again until every value is a colour."""
    widget.page.wait_for_selector(
        "[data-testid=answer][data-rendered=complete]", state="attached", timeout=30_000
    )
    found: dict[str, float | None] = {}

    def complete() -> bool:
        found.update(widget.root.evaluate(COLORS))
        return None not in found.values()

    wait_until(complete, 10, 0.2, f"computed colours of the widget ({found})")
    return {k: v for k, v in found.items() if v is not None}


def test_widget_follows_the_light_and_dark_themes(open_notebook, llm, jupyter_lab):
    nb = open_notebook(
        [setup_cell(llm.base_url), "view = nbstream.stream(ask(tokens_per_s=300), background=True)"]
    )
    nb.run_cells([0, 1])
    widget = StreamWidget(nb, 1).wait_rendered()
    widget.wait_status("done")
    light = _colors(widget)
    assert light["page"] > 0.8 and light["text"] < 0.4 and light["code"] < 0.5, light
    assert light["codeBackground"] > 0.8 and light["status"] < 0.6, light

    nb.save()  # the reloaded page shows the saved outputs, their widgets from the kernel
    set_lab_setting(jupyter_lab, THEMES, {"theme": "JupyterLab Dark"})
    try:
        nb.reload()
        widget = StreamWidget(nb, 1).wait_rendered()
        widget.page.wait_for_selector("body[data-jp-theme-light='false']", state="attached")
        assert widget.status() == "done"
        dark = _colors(widget)
        nb.screenshot("theme-dark", nb.cell(1))
    finally:
        set_lab_setting(jupyter_lab, THEMES, {"theme": "JupyterLab Light"})
    assert dark["page"] < 0.3 and dark["text"] > 0.6 and dark["code"] > 0.5, dark
    assert dark["codeBackground"] < 0.3 and dark["status"] > 0.4, dark
