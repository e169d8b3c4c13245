"""Drive a notebook in a real JupyterLab / Notebook 7 page with Playwright (sync API).

Helpers for what browser tests do over and over: write a notebook, open it, wait until its
kernel is idle and connected (the first Shift+Enter after start-up can be lost otherwise), run
cells one at a time, watch a widget's text change, click, interrupt, take screenshots.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import nbformat
from browser_jupyter import JupyterServer
from playwright.sync_api import Locator, Page

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
_DONE_PROMPT = re.compile(r"^\[(\d+)\]:$")


def write_notebook(server: JupyterServer, name: str, cells: Sequence[str]) -> str:
    """Write a notebook of code cells ``cells`` into the server's root dir; return its path."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    notebook.metadata["language_info"] = {"name": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(notebook, server.root_dir / name)
    return name


def wait_until(
    condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll ``condition`` until it returns something truthy; return that or fail with ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or condition}")
        time.sleep(interval)


class NotebookPage:
    """One open notebook in a browser page, with the server that serves it."""

    def __init__(self, page: Page, server: JupyterServer, name: str) -> None:
        self.page = page
        self.server = server
        self.name = name

    # -- opening ---------------------------------------------------------------------------

    def open(self, timeout: float = 60.0) -> NotebookPage:
        """Load the notebook page and wait until its kernel is idle and connected."""
        self.page.goto(self.server.notebook_url(self.name))
        self.page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout * 1000)
        self.wait_kernel_idle(timeout)
        return self

    def save(self) -> None:
        """Save the notebook as a person does (Ctrl+S, JupyterLab and Notebook 7 alike) and wait
        until the file on disk was written."""
        path = self.server.root_dir / self.name
        before = path.stat().st_mtime_ns if path.exists() else 0
        self.cells.first.click()  # the notebook has the focus (command mode after Escape)
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("Control+s")
        wait_until(lambda: path.stat().st_mtime_ns != before, 15, 0.1, "the file to be saved")
        wait_until(lambda: self.page.locator(".jp-mod-dirty").count() == 0, 10, 0.1, "the save")

    def reload(self, timeout: float = 60.0) -> NotebookPage:
        """Reload the page (same kernel) and wait until it is usable again."""
        self.page.reload()
        self.page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout * 1000)
        self.wait_kernel_idle(timeout)
        return self

    def wait_kernel_idle(self, timeout: float = 60.0) -> None:
        """Wait until the server reports this notebook's kernel idle with a live websocket,
        and the page's own kernel indicator says idle too."""

        def idle() -> bool:
            kernel = self.server.kernel_for(self.name)
            return bool(
                kernel
                and kernel.get("execution_state") == "idle"
                and kernel.get("connections", 0) >= 1
            )

        wait_until(idle, timeout, 0.2, f"the kernel of {self.name} to be idle (server side)")
        self.page.wait_for_selector(
            ".jp-Notebook-ExecutionIndicator[data-status='idle']",
            timeout=timeout * 1000,
            # in a narrow page the toolbar moves the indicator into its overflow menu (another
            # extension's button, e.g. Voila's preview, takes the room): present, not visible
            state="attached",
        )
        if self.server.app == "lab":
            self.page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first.wait_for(
                timeout=timeout * 1000
            )

    # -- cells -----------------------------------------------------------------------------

    @property
    def cells(self) -> Locator:
        return self.page.locator(".jp-Notebook .jp-Cell")

    def cell(self, index: int) -> Locator:
        return self.cells.nth(index)

    def prompt(self, index: int) -> str:
        """The execution prompt of cell ``index``: ``[ ]:``, ``[*]:`` or ``[n]:``."""
        return (self.cell(index).locator(".jp-InputArea-prompt").text_content() or "").strip()

    def run_cell(self, index: int, wait: bool = True, timeout: float = 60.0) -> None:
        """Run cell ``index`` with Shift+Enter; with ``wait``, until its prompt shows a number
        again. Without ``wait``, only until the kernel has started it (``[*]`` or done).
        Cells must not carry stored execution counts (a re-run could show the same number)."""
        before = self.prompt(index)
        self.cell(index).locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Shift+Enter")

        def started() -> bool:
            now = self.prompt(index)
            return now == "[*]:" or (now != before and bool(_DONE_PROMPT.match(now)))

        wait_until(started, min(timeout, 30.0), 0.02, f"cell {index} to start")
        if wait:
            self.wait_cell_done(index, timeout)

    def wait_cell_done(self, index: int, timeout: float = 60.0) -> None:
        """Wait until cell ``index`` has finished executing (its prompt shows a number)."""
        wait_until(
            lambda: _DONE_PROMPT.match(self.prompt(index)),
            timeout,
            0.05,
            f"cell {index} to finish (prompt is {self.prompt(index)!r})",
        )

    def run_cells(self, indices: Sequence[int], timeout: float = 60.0) -> None:
        """Run cells one by one, each to completion."""
        for index in indices:
            self.run_cell(index, wait=True, timeout=timeout)

    def output_text(self, index: int) -> str:
        """All text shown in the output area of cell ``index``."""
        return self.cell(index).locator(".jp-OutputArea").inner_text()

    def interrupt_kernel(self) -> None:
        """Press the notebook toolbar's interrupt button (the square)."""
        self.page.locator(
            ".jp-NotebookPanel-toolbar [data-command='notebook:interrupt-kernel']"
        ).first.click()

    # -- widgets ---------------------------------------------------------------------------

    def widget(self, index: int, selector: str = ".nbstream-root") -> Locator:
        """The widget root rendered in the output of cell ``index``."""
        return self.cell(index).locator(selector).first

    def watch_text(
        self,
        locator: Locator,
        until: Callable[[str], bool],
        timeout: float = 30.0,
        interval: float = 0.03,
    ) -> list[str]:
        """Sample ``locator``'s text until ``until(text)``; return the distinct texts seen,
        in order (the last one satisfies ``until``)."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            text = locator.inner_text() if locator.count() else ""
            if not seen or text != seen[-1]:
                seen.append(text)
            if until(text):
                return seen
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f} s; last text seen: {text[-300:]!r}"
                )
            time.sleep(interval)

    # -- pictures --------------------------------------------------------------------------

    def screenshot(self, name: str, locator: Locator | None = None) -> Path:
        """Save a PNG of the page (or of ``locator``) as ``test-artifacts/<name>.png``."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        (locator or self.page).screenshot(path=str(path))
        return path


class StreamWidget:
    """nbstream's ``StreamView`` as rendered in one cell, through its documented DOM hooks
    (``js/protocol.js``): ``.nbstream-root[data-status]``, ``[data-testid=answer]``, ..."""

    FINAL = ("done", "stopped", "error", "incomplete")

    def __init__(self, notebook: NotebookPage, cell: int) -> None:
        self.notebook = notebook
        self.page = notebook.page
        self.cell = cell
        self.root = notebook.cell(cell).locator(".nbstream-root").first

    def part(self, testid: str) -> Locator:
        return self.root.locator(f"[data-testid={testid}]").first

    @property
    def answer(self) -> Locator:
        return self.part("answer")

    def wait_rendered(self, timeout: float = 30.0) -> StreamWidget:
        self.root.wait_for(timeout=timeout * 1000)
        return self

    def wait_live(self, timeout: float = 30.0) -> StreamWidget:
        """Wait for the kernel's widget: after a reload a cell first shows its stored answer
        (read-only, ``.nbstream-saved``), then swaps it for the live view once mounted."""
        cell = self.notebook.cell(self.cell)
        wait_until(
            lambda: self.root.count() and not cell.locator(".nbstream-saved").count(),
            timeout, 0.05, f"the live widget in cell {self.cell}",
        )  # fmt: skip
        return self

    def status(self) -> str:
        return self.root.get_attribute("data-status") or ""

    def status_line(self) -> str:
        return self.part("status").inner_text()

    def status_details(self) -> str:
        """What the status line shows on hover: speed, request id, usage."""
        return self.part("status").get_attribute("title") or ""

    def wait_status(self, *statuses: str, timeout: float = 30.0) -> str:
        """Wait until the root's ``data-status`` is one of ``statuses`` (any final one if none)."""
        wanted = statuses or self.FINAL
        return wait_until(
            lambda: self.status() if self.status() in wanted else None,
            timeout,
            0.05,
            f"widget status in {wanted} (now {self.status()!r}; {self.status_line()!r})",
        )

    def answer_text(self) -> str:
        return self.answer.inner_text()

    def watch_answer(self, until: Callable[[str], bool], timeout: float = 30.0) -> list[str]:
        """Sample the rendered answer until ``until(text)``; the distinct texts seen, in order."""
        return self.notebook.watch_text(self.answer, until, timeout)

    def copied_text(self) -> str:
        """Press Copy and read the clipboard: the answer's source text exactly as the widget holds
        it (the context must grant clipboard permissions)."""
        # One element, watched from inside the page: the label says "Copied" for 1.5 s only, and
        # a reloaded cell may swap its stored render for the live view between two reads from here
        # (a CI run under load read "Copy" again after seeing it change).
        button = self.part("copy").element_handle()
        button.evaluate(
            """b => { b.__labels = [];
                      new MutationObserver(() => b.__labels.push(b.textContent))
                        .observe(b, { childList: true, characterData: true, subtree: true }); }"""
        )
        button.click()
        labels = wait_until(
            lambda: [x for x in button.evaluate("b => b.__labels") if x != "Copy"],
            15, 0.02, "the copy to finish",
        )  # fmt: skip
        assert labels[0] == "Copied", labels
        return self.page.evaluate("() => navigator.clipboard.readText()")

    def click(self, testid: str) -> None:
        self.part(testid).click()
