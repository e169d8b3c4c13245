"""%%stream streaming in a real kernel against the bundled local server (no key, no network).

Each test runs cells the way a notebook does and checks what the cell showed, what landed in
the user's namespace, and what the in-kernel local server received.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kernel_session import Execution, KernelSession

from nbstream.server.demo import demo_tokens

WIDGET = "application/vnd.jupyter.widget-view+json"
OUTPUT = "application/vnd.nbstream.output+json"
FAST = "rate=2000&ttft=0"  # the in-kernel server is paced like a real model by default


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelSession]:
    session = KernelSession(tmp_path_factory.mktemp("magic-stream"))
    try:
        session.ok("%load_ext nbstream\nfrom nbstream.server import start_background")
        yield session
    finally:
        session.close()


def requests_seen(kernel: KernelSession) -> int:
    return kernel.value("len(start_background().requests)")


def last_body(kernel: KernelSession) -> dict:
    return kernel.value("start_background().requests[-1].body")


def live_and_final(result: Execution) -> tuple[dict, dict]:
    """The two outputs of a waiting cell: the live widget, then the static final answer."""
    displays = [o for o in result.outputs if o["type"] == "display_data"]
    assert len(displays) == 2, result.outputs
    live, final = (d["data"] for d in displays)
    assert live[WIDGET]["model_id"] and live["text/plain"] == ""
    assert live[OUTPUT] == {"output": "live"} and final[OUTPUT] == {"output": "answer"}
    assert final[WIDGET]["model_id"] == ""  # hidden next to the live widget in JupyterLab
    return live, final


def test_waiting_cell_shows_widget_then_final_answer_and_stores_out(kernel: KernelSession) -> None:
    expected = "".join(demo_tokens(25))
    result = kernel.ok(f"%%stream -m demo?tokens=25&{FAST} --out answer\nHello there")
    _live, final = live_and_final(result)
    assert final["text/plain"] == expected
    assert "<strong>" in final["text/html"]  # the demo's Markdown, rendered
    assert kernel.value("answer") == expected
    assert last_body(kernel)["messages"] == [{"role": "user", "content": "Hello there"}]


def test_first_stream_says_it_uses_the_local_server(tmp_path: Path) -> None:
    session = KernelSession(tmp_path)
    try:
        session.ok("%load_ext nbstream")
        result = session.ok(f"%stream -m echo?{FAST} --view first hi")
        # said in the widget, as a note line under the answer: not a red stderr box
        assert "OPENAI_API_KEY" not in result.stderr
        notes = session.value("first.snapshot['versions'][-1]['notes']")
        assert notes[0].startswith("no OPENAI_API_KEY or OPENAI_BASE_URL set"), notes
        assert "bundled local demo server at http://127.0.0.1:" in notes[0]
        # every answer of the demo server says so (a saved notebook's reader sees it too)
        again = session.ok(f"%stream -m echo?{FAST} --view second hi")
        assert "OPENAI_API_KEY" not in again.stderr
        assert session.value("second.snapshot['versions'][-1]['notes']") == notes
    finally:
        session.close()


def test_interpolation_fills_names_and_keeps_double_braces(kernel: KernelSession) -> None:
    kernel.ok("topic = 'server-sent events'\nitems = {'n': 3}")
    result = kernel.ok(
        f"%%stream -m echo?{FAST}\nExplain {{topic}} in {{items[n]}} lines, as {{{{json}}}}"
    )
    _live, final = live_and_final(result)
    assert final["text/plain"] == "Explain server-sent events in 3 lines, as {json}"


def test_missing_name_sends_nothing(kernel: KernelSession) -> None:
    before = requests_seen(kernel)
    result = kernel.run(f"%%stream -m echo?{FAST}\nSummarize {{not_defined_anywhere}}")
    assert result.ename == "UsageError"
    assert "not_defined_anywhere" in (result.evalue or "")
    assert result.outputs == []
    assert requests_seen(kernel) == before


def test_line_magic_prompt_with_apostrophe(kernel: KernelSession) -> None:
    result = kernel.ok(f"%stream -m echo?{FAST} What's {{topic}}?")
    assert live_and_final(result)[1]["text/plain"] == "What's server-sent events?"


def test_request_options_reach_the_server(kernel: KernelSession) -> None:
    kernel.ok(f"%%stream -m demo?{FAST} -s 'You are terse.' -t 0.25 --max-tokens 7\nHi")
    body = last_body(kernel)
    assert body["messages"][0] == {"role": "system", "content": "You are terse."}
    assert body["temperature"] == 0.25
    assert body["max_tokens"] == 7


def test_responses_api(kernel: KernelSession) -> None:
    expected = "".join(demo_tokens(12))
    result = kernel.ok(f"%%stream --api responses -m demo?tokens=12&{FAST} --out r\nHi")
    assert live_and_final(result)[1]["text/plain"] == expected
    assert kernel.value("start_background().requests[-1].path").endswith("/responses")
    assert kernel.value("r") == expected


def test_config_default_model_and_format(kernel: KernelSession) -> None:
    kernel.ok(f'%config Stream.model = "echo?{FAST}"\n%config Stream.format = "code"')
    try:
        result = kernel.ok("%stream print(1)")
        final = live_and_final(result)[1]
        assert final["text/plain"] == "print(1)"
        assert "<pre><code>print(1)" in final["text/html"]
    finally:
        kernel.ok('%config Stream.model = None\n%config Stream.format = "markdown"')


def test_chat_carries_history_across_cells_and_resets(kernel: KernelSession) -> None:
    kernel.ok("%stream --reset --chat trip")
    kernel.ok(f"%%stream -m echo?{FAST} --chat trip -s 'Plan trips.'\nWhere to in May?")
    kernel.ok(f"%%stream -m echo?{FAST} --chat trip\nAnd in June?")
    assert last_body(kernel)["messages"] == [
        {"role": "system", "content": "Plan trips."},
        {"role": "user", "content": "Where to in May?"},
        {"role": "assistant", "content": "Where to in May?"},
        {"role": "user", "content": "And in June?"},
    ]
    shown = kernel.ok("%stream --chat trip --show").plain
    assert "Conversation 'trip': 2 exchange(s)" in shown
    kernel.ok("%stream --chat trip --reset")
    kernel.ok(f"%%stream -m echo?{FAST} --chat trip\nFresh start")
    assert last_body(kernel)["messages"] == [{"role": "user", "content": "Fresh start"}]


def test_rerunning_a_chat_cell_replaces_its_exchange(kernel: KernelSession) -> None:
    """A notebook cell (JupyterLab sends its id) run twice counts once in the conversation."""
    kernel.ok("%stream --reset --chat rerun")
    first = f"%%stream -m echo?{FAST} --chat rerun\nFirst question"
    kernel.ok(first, cell_id="cell-a")
    kernel.ok(f"%%stream -m echo?{FAST} --chat rerun\nSecond question", cell_id="cell-b")
    kernel.ok(first.replace("First question", "First, rephrased"), cell_id="cell-a")
    assert last_body(kernel)["messages"] == [{"role": "user", "content": "First, rephrased"}]
    conv = "get_ipython().magics_manager.registry['StreamMagics'].conversations.get('rerun')"
    assert kernel.value(f"[m['content'] for m in {conv}.messages()]") == [
        "First, rephrased",
        "First, rephrased",
        "Second question",
        "Second question",
    ]
    kernel.ok(f"%%stream -m echo?{FAST} --chat rerun\nThird question", cell_id="cell-c")
    assert len(last_body(kernel)["messages"]) == 5


def test_log_then_replay_reproduces_the_answer(kernel: KernelSession, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "answer.jsonl"
    expected = "".join(demo_tokens(30))
    kernel.ok(f"%%stream -m demo?tokens=30&{FAST} --log {log}\nHi")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert sum(r["type"] == "chunk" for r in records) >= 30
    before = requests_seen(kernel)
    result = kernel.ok(f"%stream --replay {log} --speed 0 --out replayed")
    assert live_and_final(result)[1]["text/plain"] == expected
    assert kernel.value("replayed") == expected
    assert requests_seen(kernel) == before  # a replay sends no request


def test_unwritable_log_path_warns_and_keeps_the_answer(
    kernel: KernelSession, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    log = blocker / "answer.jsonl"  # its "directory" is a file: cannot be created
    expected = "".join(demo_tokens(12))
    result = kernel.ok(f"%%stream -m demo?tokens=12&{FAST} --log {log} --out kept\nHi")
    assert live_and_final(result)[1]["text/plain"] == expected  # the static copy is there
    assert kernel.value("kept") == expected
    assert "could not save the chunk log" in result.stderr and str(log) in result.stderr
    assert not log.exists()


def test_background_returns_at_once_and_fills_out_at_the_end(kernel: KernelSession) -> None:
    result = kernel.ok("%%stream -b -m demo?tokens=30&rate=10&ttft=0 --out later\nHi")
    displays = [o for o in result.outputs if o["type"] == "display_data"]
    # the live widget, and the answer output to be filled in when the stream ends
    assert len(displays) == 2 and displays[0]["data"][WIDGET]["model_id"]
    assert displays[1]["data"][OUTPUT] == {"output": "answer"}
    # causal, not timed: the cell returned while the stream (3 s at 10 tokens/s) still ran
    assert kernel.value("'later' in globals()") is False
    deadline = time.monotonic() + 20
    while not kernel.value("'later' in globals()"):
        assert time.monotonic() < deadline, "background stream never finished"
        time.sleep(0.2)
    assert kernel.value("later") == "".join(demo_tokens(30))


def test_several_models_side_by_side(kernel: KernelSession) -> None:
    result = kernel.ok(f"%%stream -m demo?tokens=8&{FAST} -m echo?{FAST} --out both\nCompare us")
    _live, final = live_and_final(result)
    demo_text = "".join(demo_tokens(8))
    assert f"== demo?tokens=8&{FAST} ==\n{demo_text}" in final["text/plain"]
    assert f"== echo?{FAST} ==\nCompare us" in final["text/plain"]
    assert final["text/html"].count("<h4>") == 2
    assert kernel.value("both") == [demo_text, "Compare us"]


def test_n_samples_make_numbered_columns(kernel: KernelSession) -> None:
    result = kernel.ok(f"%%stream -n 3 -m echo?{FAST} --out three\nSame")
    plain = live_and_final(result)[1]["text/plain"]
    for i in (1, 2, 3):
        assert f"== echo?{FAST} #{i} ==" in plain
    assert kernel.value("three") == ["Same"] * 3


def test_unknown_model_is_shown_as_an_error_not_a_traceback(kernel: KernelSession) -> None:
    result = kernel.ok("%%stream -m no-such-model --out failed\nHi")
    final = live_and_final(result)[1]
    assert final["text/plain"].startswith("[error")
    assert "no-such-model" in final["text/plain"]
    assert kernel.value("failed") == ""


def test_base_url_option_uses_that_endpoint(kernel: KernelSession) -> None:
    kernel.ok(
        "from nbstream.server import serve\n_other_cm = serve()\nother = _other_cm.__enter__()"
    )
    try:
        kernel.ok(
            "get_ipython().run_cell_magic('stream', "
            f"f'--base-url {{other.base_url}} -m echo?{FAST}', 'Over there')"
        )
        assert kernel.value("len(other.requests)") == 1
        assert kernel.value("other.requests[0].body['messages'][-1]['content']") == "Over there"
    finally:
        kernel.ok("_other_cm.__exit__(None, None, None)")


def test_interrupt_stops_the_stream_and_keeps_partial_text(kernel: KernelSession) -> None:
    import threading

    timer = threading.Timer(1.5, kernel.manager.interrupt_kernel)
    timer.start()
    try:
        result = kernel.run("%%stream -m demo?rate=10&ttft=0 --out partial\nHi", timeout=60)
    finally:
        timer.cancel()
    assert result.status == "ok", (result.ename, result.evalue)
    final = live_and_final(result)[1]
    assert "[stopped" in final["text/plain"]
    partial = kernel.value("partial")
    full = "".join(demo_tokens())
    assert 0 < len(partial) < len(full) and full.startswith(partial)
    assert kernel.value("start_background().requests[-1].disconnected") is True


def test_view_option_gives_a_handle_to_stop_and_await(kernel: KernelSession) -> None:
    kernel.ok("%%stream -b -m demo?rate=5&ttft=0 --view live --out live_text\nHi")
    assert kernel.value("live.status") in ("pending", "streaming")
    kernel.ok("live.stop()\nawait live")
    assert kernel.value("live.status") == "stopped"
    deadline = time.monotonic() + 10
    while not kernel.value("'live_text' in globals()"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert kernel.value("live_text") == kernel.value("live.text")


def test_no_model_for_a_real_endpoint_is_a_usage_error(tmp_path: Path) -> None:
    session = KernelSession(tmp_path, extra_env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    try:
        session.ok("%load_ext nbstream")
        for line in ("%stream hi", "%stream -n 2 hi"):
            result = session.run(line)
            assert result.ename == "UsageError", (line, result.ename, result.evalue)
            assert "needs a model" in (result.evalue or "")
            assert result.traceback == []
    finally:
        session.close()


def test_many_background_streams_leave_the_kernel_responsive(kernel: KernelSession) -> None:
    kernel.ok(
        "import nbstream\n"
        "from nbstream.notebook.compare import Comparison\n"
        "views = [nbstream.chat('Many at once', model='demo?tokens=40&rate=10&ttft=0',"
        " background=True, display=False) for _ in range(50)]\n"
        "many = Comparison(views, [str(i) for i in range(50)])\n"
        "running_when_returned = sum(s in ('pending', 'streaming') for s in many.statuses)"
    )
    # causal, not timed: the cell returned before any stream ended (the tasks run on the
    # kernel's loop only once the cell yields) ...
    assert kernel.value("running_when_returned") == 50
    # ... and the next cell runs while they stream (4-s streams: the kernel is not blocked by
    # them; only a machine too loaded to run one cell in 4 s could see them all finished)
    assert kernel.value("sum(s in ('pending', 'streaming') for s in many.statuses)") > 0
    kernel.ok("await many", timeout=120)
    assert kernel.value("many.statuses") == ["done"] * 50
    assert kernel.value("len(set(many.texts))") == 1
    assert kernel.value("many.texts[0]") == "".join(demo_tokens(40))
