"""Fixtures for real-browser tests: JupyterLab / Notebook 7 servers, Chromium, the local LLM server.

One JupyterLab server and one Chromium per test session; each test gets a fresh browser context
and its own notebook, and its kernels are shut down after it. The local OpenAI-compatible server
runs inside the pytest process so tests can see what it received (and when a client hung up);
kernels reach it over 127.0.0.1 through the base URL written into the notebook's cells.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing_requirement() -> str | None:
    if not CHROMIUM.exists():
        return (
            f"browser tests need Debian's Chromium at {CHROMIUM} "
            "(`apt-get install -y chromium`; .ci/run installs it)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "browser tests need playwright: pip install -e '.[test]'"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _missing_requirement()
    if reason and os.environ.get("CI"):
        # CI installs Chromium: a skipped browser suite there would pass without testing anything.
        raise pytest.UsageError(f"CI is set but {reason}")
    for item in items:
        if "tests/browser/" not in item.nodeid.replace("\\", "/"):
            continue
        item.add_marker(pytest.mark.browser)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the item, so ``page`` can screenshot failures."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


# -- servers ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def jupyter_lab(tmp_path_factory: pytest.TempPathFactory):
    """A JupyterLab server for the whole session (stopped, with its kernels, at the end)."""
    from browser_jupyter import start_jupyter

    server = start_jupyter("lab", tmp_path_factory.mktemp("jupyterlab"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def jupyter_notebook7(tmp_path_factory: pytest.TempPathFactory):
    """A Jupyter Notebook 7 server for the whole session."""
    from browser_jupyter import start_jupyter

    server = start_jupyter("notebook", tmp_path_factory.mktemp("notebook7"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def llm_server():
    """nbstream's local OpenAI-compatible server, in this process, on 127.0.0.1."""
    from nbstream.server import serve

    with serve() as server:
        yield server


@pytest.fixture
def llm(llm_server):
    """The local LLM server with its request records cleared for this test."""
    llm_server.reset()
    return llm_server


# -- browser ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium driven by Playwright (Playwright gives it a fresh temporary profile)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class PageEvents:
    """What the page did that a test may need to assert on: dialogs, errors, console output."""

    def __init__(self) -> None:
        self.dialogs: list[str] = []
        self.page_errors: list[str] = []
        self.console: list[str] = []


@pytest.fixture
def page_events() -> PageEvents:
    return PageEvents()


@pytest.fixture
def page(chromium, page_events: PageEvents, request: pytest.FixtureRequest):
    """A fresh browser context and page; a screenshot lands in test-artifacts/ if the test fails."""
    from browser_page import ARTIFACTS

    context = chromium.new_context(
        viewport={"width": 1280, "height": 900},
        permissions=["clipboard-read", "clipboard-write"],  # the widget's Copy button
    )
    page = context.new_page()
    page.set_default_timeout(30_000)

    def on_dialog(dialog) -> None:
        if dialog.type == "beforeunload":  # "leave the page?" on reload: yes
            dialog.accept()
            return
        page_events.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: page_events.page_errors.append(str(error)))
    page.on("console", lambda msg: page_events.console.append(f"{msg.type}: {msg.text}"))
    try:
        yield page
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            try:
                page.screenshot(path=str(ARTIFACTS / f"failed-{_slug(request.node.name)}.png"))
            except Exception as error:  # a dead page must not hide the test's own failure
                print(f"could not take the failure screenshot: {error}")
        context.close()


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")


@pytest.fixture
def open_notebook(page, request: pytest.FixtureRequest) -> Iterator[Callable]:
    """``open_notebook(cells, app="lab")``: write a notebook of code cells (or copy the notebook
    file ``cells`` when it is a Path) named after the test, open it in ``page`` and wait for an
    idle kernel. Its kernel is shut down after the test."""
    from browser_page import NotebookPage, write_notebook

    used = []

    def _open(cells: Sequence[str] | Path, app: str = "lab") -> NotebookPage:
        server = request.getfixturevalue("jupyter_lab" if app == "lab" else "jupyter_notebook7")
        name = f"{_slug(request.node.name)}-{len(used)}.ipynb"
        if isinstance(cells, Path):  # an existing notebook, copied as it is
            shutil.copyfile(cells, server.root_dir / name)
        else:
            write_notebook(server, name, cells)
        used.append(server)
        return NotebookPage(page, server, name).open()

    yield _open
    for server in used:
        server.shutdown_kernels()
