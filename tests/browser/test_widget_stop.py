"""Stop in real JupyterLab, in every mode the kernel allows: the Stop button in background mode
and while a cell awaits the view, and the notebook's interrupt (■) for a plain waiting cell (the
Stop button of a waiting cell sends the same interrupt: test_stop_waiting.py). Each must close
the HTTP connection (the local server, in this process, sees the client go) and keep the partial
answer, marked stopped, without a traceback."""

from __future__ import annotations

import re
import time

import pytest
from browser_page import NotebookPage, StreamWidget
from streams import setup_cell

from nbstream.server.demo import demo_tokens

pytestmark = pytest.mark.browser

LONG = "tokens=3000, tokens_per_s=30"  # ~100 s if nobody stops it
LONG_TEXT = "".join(demo_tokens(3000))


def _stop_and_check_disconnect(llm, act, nb: NotebookPage, widget: StreamWidget) -> float:
    """Let some text arrive, ``act()`` to stop, and return the seconds until the server saw the
    client hang up. Asserts the stream was cut early and the partial text kept."""
    widget.watch_answer(lambda text: len(text) > 150, timeout=30)
    assert widget.status() == "streaming"
    clicked = time.monotonic()
    act()
    record = llm.wait_for_disconnect(timeout=10)
    assert record.disconnected and record.end_reason == "client_disconnected"
    assert 0 < record.chunks_sent < 3000 // 2
    widget.wait_status("stopped", timeout=10)
    partial = widget.copied_text()
    assert partial and LONG_TEXT.startswith(partial), partial[-200:]
    assert widget.answer_text().strip()  # still on screen
    return record.ended - clicked


def test_stop_button_in_background_mode_closes_the_connection(open_notebook, llm):
    nb = open_notebook(
        [
            setup_cell(llm.base_url),
            f"view = nbstream.stream(ask({LONG}), background=True)",
            "print(view.status, len(view.text), view.reason)",
        ]
    )
    nb.run_cells([0, 1])  # returns at once: the stream runs on the kernel's loop
    widget = StreamWidget(nb, 1).wait_rendered()
    assert widget.root.get_attribute("data-mode") == "background"

    latency = _stop_and_check_disconnect(llm, lambda: widget.click("stop"), nb, widget)
    print(f"background Stop: server saw the disconnect {latency * 1000:.0f} ms after the click")
    assert widget.part("stop").is_hidden()
    nb.screenshot("stop-background", nb.cell(1))

    nb.run_cell(2)
    status, chars, reason = nb.output_text(2).strip().split(" ", 2)
    assert status == "stopped" and reason == "stopped by user"
    assert int(chars) == len(widget.copied_text())  # Python and the page agree on the text


def test_stop_button_while_the_cell_awaits_the_view(open_notebook, llm):
    nb = open_notebook(
        [
            setup_cell(llm.base_url),
            f"view = nbstream.stream(ask({LONG}), background=True)\n"
            "await view\n"
            "print('after await:', view.status, len(view.text))",
        ]
    )
    nb.run_cell(0)
    nb.run_cell(1, wait=False)
    widget = StreamWidget(nb, 1).wait_rendered()
    widget.watch_answer(lambda text: len(text) > 20, timeout=30)
    assert nb.prompt(1) == "[*]:"  # the cell is still running: it waits for the stream
    assert widget.root.get_attribute("data-mode") == "await"

    latency = _stop_and_check_disconnect(llm, lambda: widget.click("stop"), nb, widget)
    print(f"await Stop: server saw the disconnect {latency * 1000:.0f} ms after the click")
    nb.wait_cell_done(1, timeout=10)
    output = nb.output_text(1)
    assert f"after await: stopped {len(widget.copied_text())}" in output
    assert "Traceback" not in output and "Error" not in output


@pytest.mark.parametrize("client", ["sync_client", "async_client"])
def test_kernel_interrupt_stops_a_waiting_cell(open_notebook, llm, client):
    nb = open_notebook(
        [
            setup_cell(llm.base_url),
            f"view = nbstream.stream(ask({LONG}, client={client}))\n"
            "print('after:', view.status, len(view.text), view.reason)",
        ]
    )
    nb.run_cell(0)
    nb.run_cell(1, wait=False)
    widget = StreamWidget(nb, 1).wait_rendered()
    widget.watch_answer(lambda text: len(text) > 20, timeout=30)
    assert widget.root.get_attribute("data-mode") == "blocking"

    # (the widget's own Stop in this mode asks for this same interrupt: test_stop_waiting.py)
    latency = _stop_and_check_disconnect(llm, nb.interrupt_kernel, nb, widget)
    print(f"interrupt ({client}): server saw the disconnect {latency * 1000:.0f} ms after it")
    nb.wait_cell_done(1, timeout=10)
    output = nb.output_text(1)
    partial = widget.copied_text()
    assert f"after: stopped {len(partial)} stopped (kernel interrupt)" in output
    assert "Traceback" not in output
    assert not re.search(r"^KeyboardInterrupt", output, re.MULTILINE), output
