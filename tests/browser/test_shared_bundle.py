"""The widget's code travels once per kernel and is stored once per notebook, in real JupyterLab.

Each view's ``_esm`` is a small loader (js/loader.js); the bundle is one shared ``_Bundle`` model
per kernel (nbstream/frontend/widget.py). Checked as a person meets it:
- JupyterLab without nbstream's extension (disabled): the answer still renders, the loader took
  the code from the kernel's shared model (it adds the bundle's ``<style data-nbstream>``);
- JupyterLab with the extension: the answer renders from the extension's copy, the shared model's
  code is never imported (no such style);
- ten answers saved with "Save Widget State Automatically" make a file under 1.5 MB with the
  bundle stored once; exported with ``jupyter nbconvert --to html`` and opened with the network
  blocked (no CDN, so no widget manager), every answer shows its text, once.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from browser_jupyter import set_lab_setting, start_jupyter
from browser_page import NotebookPage, StreamWidget, write_notebook

from nbstream.server.demo import demo_tokens

pytestmark = pytest.mark.browser

ANSWER = 'view = nbstream.chat("Explain streaming in notebooks", model="demo?rate=2000")'
DEMO_TEXT = "".join(demo_tokens())
WIDGETS = "@jupyter-widgets/jupyterlab-manager:plugin"
STATE_MIME = "application/vnd.jupyter.widget-state+json"
KERNEL_STYLE = "() => document.querySelectorAll('style[data-nbstream]').length"


@pytest.fixture
def lab_without_extension(tmp_path):
    """A JupyterLab of its own with nbstream's extension disabled, as `jupyter labextension
    disable nbstream` does (page_config.json in the server's own, throwaway config dir)."""
    labconfig = tmp_path / "home" / "config" / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"nbstream": True}})
    )
    server = start_jupyter("lab", tmp_path / "home")
    yield server
    server.shutdown_kernels()
    server.stop()


def _answer(nb: NotebookPage, cell: int) -> StreamWidget:
    widget = StreamWidget(nb, cell).wait_rendered()
    widget.wait_status("done", timeout=60)
    assert widget.copied_text() == DEMO_TEXT
    return widget


def test_without_the_extension_the_loader_takes_the_code_from_the_kernel(
    page, lab_without_extension
):
    server = lab_without_extension
    name = write_notebook(server, "no-extension.ipynb", ["import nbstream", ANSWER, ANSWER])
    nb = NotebookPage(page, server, name).open()
    assert page.evaluate("() => !globalThis[Symbol.for('nbstream.widget')]")  # really disabled
    nb.run_cells([0, 1, 2])
    _answer(nb, 1)
    _answer(nb, 2)
    assert nb.cell(1).locator(".nbstream-output").count() == 0  # no extension renderer
    assert page.evaluate(KERNEL_STYLE) == 1  # imported once for both views


def test_with_the_extension_the_kernel_bundle_is_not_read(open_notebook):
    nb = open_notebook(["import nbstream", ANSWER])
    assert nb.page.evaluate("() => !!globalThis[Symbol.for('nbstream.widget')]")
    nb.run_cells([0, 1])
    _answer(nb, 1)
    assert nb.page.evaluate(KERNEL_STYLE) == 0


def test_ten_answers_saved_with_widget_state_are_small_and_export_offline(
    open_notebook, jupyter_lab, chromium, tmp_path
):
    set_lab_setting(jupyter_lab, WIDGETS, {"saveState": True})
    try:
        nb = open_notebook(["import nbstream"] + [ANSWER] * 10)
        nb.run_cells(range(11), timeout=120)
        for cell in range(1, 11):
            _answer(nb, cell)
        nb.save()
    finally:
        set_lab_setting(jupyter_lab, WIDGETS, {"saveState": False})
    path = jupyter_lab.root_dir / nb.name
    size = path.stat().st_size
    notebook = json.loads(path.read_text())
    state = notebook["metadata"]["widgets"][STATE_MIME]["state"]
    bundles = [m for m in state.values() if "js" in m.get("state", {})]
    views = [m for m in state.values() if m.get("model_name") == "AnyModel"]
    print(f"10 answers saved with widget state: {size / 1e6:.2f} MB")
    assert len(bundles) == 1 and len(views) == 10  # the code once, every answer's model
    assert size < 1_500_000

    html = tmp_path / "export.html"
    subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "html", str(path)]
        + ["--output-dir", str(tmp_path), "--output", "export"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    context = chromium.new_context()
    blocked: list[str] = []

    def offline(route) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", offline)
    try:
        page = context.new_page()
        page.goto(html.as_uri())
        page.wait_for_timeout(1000)  # whatever the page's scripts would do, they did
        shown = page.locator("body").inner_text()
    finally:
        context.close()
    first_line = "Streaming shows the answer while it is written"
    assert len(re.findall(re.escape(first_line), shown)) == 10, shown[:3000]
