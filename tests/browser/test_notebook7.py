"""The smoke test in Jupyter Notebook 7 (a different frontend shell than JupyterLab): a stream
grows live, Stop closes the connection and keeps the partial text, and a full answer arrives
exactly as the server sent it."""

from __future__ import annotations

import pytest
from browser_page import StreamWidget
from streams import setup_cell

from nbstream.server.demo import demo_tokens

pytestmark = pytest.mark.browser


def test_stream_stop_and_final_text_in_notebook7(open_notebook, llm):
    nb = open_notebook(
        [
            setup_cell(llm.base_url),
            "view = nbstream.stream(ask(tokens=3000, tokens_per_s=30), background=True)",
            "full = nbstream.stream(ask(tokens_per_s=300), background=True)",
        ],
        app="notebook",
    )
    nb.run_cells([0, 1])
    widget = StreamWidget(nb, 1).wait_rendered()
    seen = widget.watch_answer(lambda text: len(text) > 150, timeout=30)
    assert len([text for text in seen if text]) >= 3, seen

    widget.click("stop")
    record = llm.wait_for_disconnect(timeout=10)
    assert record.end_reason == "client_disconnected" and record.chunks_sent < 1500
    widget.wait_status("stopped")
    partial = widget.copied_text()
    assert partial and "".join(demo_tokens(3000)).startswith(partial)
    nb.screenshot("notebook7-stopped", nb.cell(1))

    nb.run_cell(2)
    full = StreamWidget(nb, 2).wait_rendered()
    full.wait_status("done")
    assert full.copied_text() == "".join(demo_tokens())
    assert llm.wait_idle()[-1].end_reason == "complete"
