"""Stop from another thread, another asyncio task, a hook, and KeyboardInterrupt: the HTTP response
is closed at once (the local server records the disconnect), the partial text and the log stay."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import openai
import pytest

from nbstream.run.stream_run import StreamRun
from nbstream.server import LocalServer
from nbstream.server.demo import demo_tokens
from nbstream.sources.request import ChatRequest

USER = [{"role": "user", "content": "hello"}]
FULL = "".join(demo_tokens())


def _request(server: LocalServer, model: str, is_async: bool = False) -> ChatRequest:
    cls = openai.AsyncOpenAI if is_async else openai.OpenAI
    client = cls(base_url=server.base_url, api_key="local", max_retries=0)
    return ChatRequest({"model": model, "messages": USER}, client)


def _assert_stopped(run: StreamRun, server: LocalServer, reason: str) -> None:
    assert run.status == "stopped"
    assert run.reason == reason
    assert run.text and FULL.startswith(run.text) and run.text != FULL  # partial, in order
    record = server.wait_for_disconnect(timeout=5)
    assert record.disconnected and record.end_reason == "client_disconnected"
    records = list(run.log)
    chunks = [r for r in records if r["type"] == "chunk"]
    assert len(chunks) == run.metrics.chunks >= 2
    assert records[-1] == {
        "type": "end",
        "attempt": 1,
        "t": records[-1]["t"],
        "status": "stopped",
        "reason": reason,
    }


def test_stop_from_another_thread_closes_at_once(local_server: LocalServer) -> None:
    run = StreamRun(_request(local_server, "demo?delay=0.05"))
    timer = threading.Timer(0.4, run.stop)
    timer.start()
    run.run()
    timer.join()
    # partial text, server saw the disconnect (no wall-clock bound: Stop latency is benchmarked
    # in bench/bench_browser.py); the full answer would take ~10 s at this pace
    _assert_stopped(run, local_server, "stopped by user")


def test_stop_during_a_stall_does_not_wait_for_data(local_server: LocalServer) -> None:
    """A read blocked on a silent server is woken by the socket shutdown."""
    run = StreamRun(_request(local_server, "demo?stall_after=5&stall=30"))
    seen = threading.Event()
    run.subscribe(lambda r, ev: seen.set() if r.metrics.chunks >= 5 else None)
    threading.Thread(target=lambda: (seen.wait(5), time.sleep(0.2), run.stop("stall"))).start()
    started = time.monotonic()
    run.run()
    # causal: the server stays silent for 30 s, so returning sooner means the stop woke the read
    assert time.monotonic() - started < 30
    _assert_stopped(run, local_server, "stall")
    assert run.metrics.chunks == 5


def test_stop_from_a_hook(local_server: LocalServer) -> None:
    def hook(run: StreamRun, events: list) -> None:
        if len(run.text) > 40:
            run.stop("moderation flagged")

    run = StreamRun(_request(local_server, "demo?delay=0.01"), hooks=[hook]).run()
    _assert_stopped(run, local_server, "moderation flagged")
    assert 40 < len(run.text) < 80


def test_keyboard_interrupt_is_a_clean_stop(local_server: LocalServer) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("SIGINT reaches the main thread only")
    run = StreamRun(_request(local_server, "demo?delay=0.05"))
    timer = threading.Timer(0.4, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    run.run()  # must not raise
    timer.join()
    _assert_stopped(run, local_server, "stopped (kernel interrupt)")


def test_async_stop_from_another_task(local_server: LocalServer) -> None:
    async def main() -> StreamRun:
        run = StreamRun(_request(local_server, "demo?delay=0.05", is_async=True))

        async def stopper() -> None:
            await asyncio.sleep(0.4)
            run.stop()

        task = asyncio.create_task(stopper())
        await run.arun()
        await task
        return run

    run = asyncio.run(main())
    _assert_stopped(run, local_server, "stopped by user")


def test_async_stop_from_another_thread(local_server: LocalServer) -> None:
    async def main() -> tuple[StreamRun, float]:
        run = StreamRun(_request(local_server, "demo?stall_after=4&stall=30", is_async=True))
        threading.Timer(0.5, run.stop, ("from thread",)).start()
        started = time.monotonic()
        await run.arun()
        return run, time.monotonic() - started

    run, elapsed = asyncio.run(main())
    assert elapsed < 30  # causal: the server is silent for 30 s after 4 chunks
    _assert_stopped(run, local_server, "from thread")


def test_async_external_cancel_is_stopped_and_propagates(local_server: LocalServer) -> None:
    """Cancelled by someone else (asyncio.timeout): stopped, closed, and the cancel is honoured."""

    async def main() -> StreamRun:
        run = StreamRun(_request(local_server, "demo?delay=0.05", is_async=True))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.4):
                await run.arun()
        return run

    run = asyncio.run(main())
    _assert_stopped(run, local_server, "cancelled")


def test_stop_before_start_never_opens(local_server: LocalServer) -> None:
    run = StreamRun(_request(local_server, "demo"))
    run.stop("not wanted")
    run.run()
    assert run.status == "stopped" and run.reason == "not wanted" and run.text == ""
    assert local_server.requests == []


def test_status_sequence_and_listeners(local_server: LocalServer) -> None:
    seen: list[str] = []
    deltas: list[int] = []
    run = StreamRun(_request(local_server, "demo?tokens=20"))
    run.subscribe(lambda r, ev: seen.append(r.status) if not ev else deltas.append(len(ev)))
    run.run()
    assert seen == ["streaming", "done"]
    assert run.text == "".join(demo_tokens(20))
    assert sum(deltas) >= 20
    m = run.metrics
    assert m.ttft_s is not None and 0 <= m.ttft_s <= m.duration_s
    assert m.finish_reasons == {0: "stop"}
    assert m.model and m.request_id


def test_sync_source_under_await_runs_in_a_thread_and_stops(local_server: LocalServer) -> None:
    """A sync client's request awaited in a notebook: the loop stays free, Stop still closes."""

    async def main() -> tuple[StreamRun, int]:
        run = StreamRun(_request(local_server, "demo?delay=0.05"))
        assert not run.source.supports_async
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while not run.done:
                ticks += 1
                await asyncio.sleep(0.01)

        async def stopper() -> None:
            await asyncio.sleep(0.4)
            run.stop()

        await asyncio.gather(run.arun(), ticker(), stopper())
        return run, ticks

    run, ticks = asyncio.run(main())
    assert ticks >= 10  # the event loop kept running while the thread streamed
    _assert_stopped(run, local_server, "stopped by user")


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_stop_while_waiting_for_the_first_token(local_server: LocalServer, is_async: bool) -> None:
    run = StreamRun(_request(local_server, "demo?ttft=20", is_async=is_async))
    threading.Timer(0.4, run.stop, ("too slow",)).start()
    started = time.monotonic()
    if is_async:
        asyncio.run(run.arun())
    else:
        run.run()
    assert time.monotonic() - started < 20  # causal: the first token would come after 20 s
    assert run.status == "stopped" and run.reason == "too slow" and run.text == ""
    assert run.metrics.ttft_s is None and run.metrics.chunks == 0
    assert local_server.wait_for_disconnect(timeout=5).end_reason == "client_disconnected"
