"""Issue 12 §6: every text in the widget is readable (WCAG AA, 4.5:1) in JupyterLab's light and
dark themes, measured from the browser's computed colours, and "stopped by user" is a neutral
notice, not an error.

The notebook holds the widget's many faces: an answer with reasoning, a tool call and its chunk
log open (a raw chunk shown, the timeline), a mid-stream error, a cut connection (incomplete)
and a stream stopped with the Stop button. A script walks every visible text node of every
widget, composites its colour over the backgrounds behind it, and reports each below 4.5:1.
"""

from __future__ import annotations

import pytest
from browser_jupyter import set_lab_setting
from browser_page import ARTIFACTS, NotebookPage, StreamWidget
from streams import setup_cell

pytestmark = pytest.mark.browser

THEMES = "@jupyterlab/apputils-extension:themes"

# Every visible text node under each .nbstream-root: its colour (with opacity) over the stack of
# backgrounds behind it, down to the first opaque one (the page's, at worst).
CONTRAST = r"""
() => {
  const probe = document.createElement("canvas").getContext("2d", { willReadFrequently: true });
  const rgba = (css) => {  // any CSS colour -> [r, g, b, a] (0-255, a 0-1), via a canvas pixel
    probe.clearRect(0, 0, 1, 1);
    probe.fillStyle = "#000"; probe.fillStyle = css; probe.fillRect(0, 0, 1, 1);
    const [r, g, b, a] = probe.getImageData(0, 0, 1, 1).data;
    return [r, g, b, a / 255];
  };
  const over = (top, bottom) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat(1);
  };
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let bg = [255, 255, 255, 1];
    if (!layers.length || layers[layers.length - 1][3] < 1)
      bg = rgba(getComputedStyle(document.body).backgroundColor);
    for (const layer of layers.reverse()) bg = over(layer, bg);
    return bg;
  };
  const opacity = (el) => {
    let o = 1;
    for (let e = el; e; e = e.parentElement) o *= Number(getComputedStyle(e).opacity);
    return o;
  };
  const results = [];
  for (const root of document.querySelectorAll(".nbstream-root")) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = node.textContent.trim();
      const el = node.parentElement;
      if (!text || !el || !el.getClientRects().length) continue;
      // WCAG exempts inactive controls; hidden and MathML-for-screen-readers text is not seen
      if (el.closest("button:disabled, [hidden], title, .katex-mathml")) continue;
      const style = getComputedStyle(el);
      if (style.visibility === "hidden") continue;
      const bg = background(el);
      const fg = rgba(el instanceof SVGElement ? style.fill : style.color);
      fg[3] *= opacity(el);
      const shown = over(fg, bg);
      const [l1, l2] = [lum(shown), lum(bg)].sort((a, b) => b - a);
      results.push({
        text: text.slice(0, 40),
        where: el.className?.baseVal ?? el.className,
        testid: el.closest("[data-testid]")?.dataset.testid ?? "",
        ratio: (l1 + 0.05) / (l2 + 0.05),
      });
    }
  }
  return results;
}
"""

CELLS = [
    # reasoning, a tool call, an answer: a bit of every kind of text
    "rich = nbstream.stream(ask(tokens=30, reasoning=20, tokens_per_s=400), background=True)",
    "tool = nbstream.stream(ask(tool_calls=1, tokens_per_s=400), background=True)",
    "err = nbstream.stream(ask(tokens=60, error_after=5, tokens_per_s=400), background=True)",
    "cut = nbstream.stream(ask(tokens=60, disconnect_after=5, tokens_per_s=400), background=True)",
    "stop = nbstream.stream(ask(tokens=3000, tokens_per_s=40), background=True)",
]


def _widgets(nb: NotebookPage) -> list[StreamWidget]:
    return [StreamWidget(nb, i).wait_rendered() for i in range(1, len(CELLS) + 1)]


def _open_log(widget: StreamWidget) -> None:
    widget.click("log-toggle")
    widget.part("log-row").wait_for()
    widget.root.locator("[data-testid=log-row] button").first.click()  # a raw chunk
    widget.part("log-raw").wait_for()


def _banner_screenshot(nb: NotebookPage, name: str) -> None:
    """The error, incomplete and stopped answers (cells 3-5), whole, in one picture."""
    nb.page.set_viewport_size({"width": 1100, "height": 3000})  # every cell on screen at once
    try:
        nb.cell(5).scroll_into_view_if_needed()
        top = nb.cell(3).bounding_box()
        bottom = nb.cell(5).bounding_box()
        clip = {
            "x": top["x"],
            "y": top["y"],
            "width": top["width"],
            "height": bottom["y"] + bottom["height"] - top["y"],
        }
        ARTIFACTS.mkdir(exist_ok=True)
        nb.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), clip=clip)
    finally:
        nb.page.set_viewport_size({"width": 1280, "height": 900})


def _low(nb: NotebookPage) -> list[dict]:
    measured = nb.page.evaluate(CONTRAST)
    assert len(measured) > 40, measured  # the walk saw the widgets' texts
    return [m for m in measured if m["ratio"] < 4.5]


def test_every_widget_text_meets_wcag_aa_in_light_and_dark(open_notebook, llm, jupyter_lab):
    nb = open_notebook([setup_cell(llm.base_url), *CELLS])
    nb.run_cells(range(len(CELLS) + 1))
    rich, tool, err, cut, stop = _widgets(nb)
    stop.watch_answer(lambda text: len(text) > 20)
    stop.click("stop")
    assert {w.wait_status() for w in (rich, tool, err, cut, stop)} >= {"error", "stopped"}
    assert cut.wait_status() == "incomplete", cut.status_line()
    # "stopped by user" is the user's choice, said calmly: not an alert styled as an error
    banners = {
        name: (w.part("error").inner_text(), w.part("error").get_attribute("data-kind"),
               w.part("error").get_attribute("role"))
        for name, w in (("stop", stop), ("err", err), ("cut", cut))
    }  # fmt: skip
    _open_log(rich)
    light = _low(nb)
    _banner_screenshot(nb, "banners-light")

    nb.save()
    set_lab_setting(jupyter_lab, THEMES, {"theme": "JupyterLab Dark"})
    try:
        nb.reload()
        nb.page.wait_for_selector("body[data-jp-theme-light='false']", state="attached")
        # the live widget (the kernel still has it), not the stored copy shown until it mounts
        nb.cell(1).locator(".nbstream-root[data-kernel='live']").wait_for()
        rich, *_ = _widgets(nb)
        rich.wait_status("done")
        _open_log(rich)
        dark = _low(nb)
        _banner_screenshot(nb, "banners-dark")
    finally:
        set_lab_setting(jupyter_lab, THEMES, {"theme": "JupyterLab Light"})
    assert not light, light
    assert not dark, dark
    assert banners["stop"] == ("stopped by user", "stopped", "status"), banners
    assert banners["err"][1:] == ("error", "alert"), banners
    assert banners["cut"][1:] == ("incomplete", "status"), banners
