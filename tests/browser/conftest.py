"""Fixtures for real-browser tests: JupyterLab / Notebook 7 servers, Chromium, the local LLM server.

One JupyterLab server and one Chromium per test session; each test gets a fresh browser context
and its own notebook, and its kernels are shut down after it. The local OpenAI-compatible server
runs inside the pytest process so tests can see what it received (and when a client hung up);
kernels reach it over 127.0.0.1 through the base URL written into the notebook's cells.
"""

from __future__ import annotations

import contextlib
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
    """Mark (or skip) the browser tests and run them last, all together: the resources they
    share are started once and stopped as soon as they are done (see ``_Shared``)."""
    browser = [item for item in items if _is_browser_test(item)]
    if not browser:
        return
    reason = _missing_requirement()
    if reason and os.environ.get("CI"):
        # CI installs Chromium: a skipped browser suite there would pass without testing anything.
        raise pytest.UsageError(f"CI is set but {reason}")
    for item in browser:
        item.add_marker(pytest.mark.browser)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
    items[:] = [item for item in items if not _is_browser_test(item)] + browser


def _is_browser_test(item: pytest.Item | None) -> bool:
    return item is not None and "tests/browser/" in item.nodeid.replace("\\", "/")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the item, so ``page`` can screenshot failures."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


class _Shared:
    """What the browser tests share, started on first use and stopped when they are over.

    Not session-scoped fixtures: a running sync Playwright leaves an event loop registered on
    the main thread, so ``asyncio.run()`` in any later test would fail. Everything stops right
    after the last browser test instead (and at the end of the session in any case).
    """

    def __init__(self) -> None:
        self.playwright = None
        self.browser = None
        self.jupyter: dict[str, object] = {}
        self.llm = None  # (context manager, server)

    def chromium(self):
        if self.browser is None:
            from playwright.sync_api import sync_playwright

            self.playwright = sync_playwright().start()
            # Playwright gives the browser a fresh temporary profile (user-data-dir) of its own.
            self.browser = self.playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
        return self.browser

    def jupyter_server(self, app: str, home_factory):
        if app not in self.jupyter:
            from browser_jupyter import start_jupyter

            self.jupyter[app] = start_jupyter(app, home_factory(app))
        return self.jupyter[app]

    def llm_server(self):
        if self.llm is None:
            from nbstream.server import serve

            manager = serve()
            self.llm = (manager, manager.__enter__())
        return self.llm[1]

    def stop(self) -> None:
        if self.browser is not None:
            with contextlib.suppress(Exception):
                self.browser.close()
        if self.playwright is not None:
            self.playwright.stop()
        self.browser = self.playwright = None
        for server in self.jupyter.values():
            server.stop()
        self.jupyter = {}
        if self.llm is not None:
            self.llm[0].__exit__(None, None, None)
            self.llm = None


_SHARED = _Shared()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if _is_browser_test(item) and not _is_browser_test(nextitem):
        _SHARED.stop()


def pytest_sessionfinish(session: pytest.Session) -> None:
    _SHARED.stop()


# -- servers ------------------------------------------------------------------------------------


@pytest.fixture
def jupyter_lab(tmp_path_factory: pytest.TempPathFactory):
    """The JupyterLab server shared by the browser tests (throwaway dirs, 127.0.0.1, token)."""
    return _SHARED.jupyter_server("lab", tmp_path_factory.mktemp)


@pytest.fixture
def jupyter_notebook7(tmp_path_factory: pytest.TempPathFactory):
    """The Jupyter Notebook 7 server shared by the browser tests."""
    return _SHARED.jupyter_server("notebook", tmp_path_factory.mktemp)


@pytest.fixture
def llm():
    """nbstream's local OpenAI-compatible server, in this process on 127.0.0.1, shared by the
    browser tests; its request records are cleared for each test."""
    server = _SHARED.llm_server()
    server.reset()
    return server


# -- browser ------------------------------------------------------------------------------------


@pytest.fixture
def chromium():
    """Debian's Chromium driven by Playwright, shared by the browser tests."""
    return _SHARED.chromium()


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
