"""The resilience layer end to end through the public API (stream()/chat() -> StreamView, no
frontend): Resume in the view, retry messages while streaming, moderation and keyword hooks,
budget stops, clear errors - all against the local server with the real openai client."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import openai
import pytest

import nbstream
from nbstream.resilience.hooks import KeywordHook, OpenAIModerationHook
from nbstream.resilience.layer import Resilience
from nbstream.resilience.retry import RetryPolicy
from nbstream.server import LocalServer, serve
from nbstream.server.demo import demo_tokens, tokenize

FULL = "".join(demo_tokens())
_keys = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with serve() as s:
        yield s


@pytest.fixture(scope="module")
def client(server: LocalServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="local")


def fast() -> Resilience:
    return Resilience(retry=RetryPolicy(max_attempts=4, base_delay=0.02), session=None)


def faults(**options: object) -> dict:
    return {"extra_body": {"nbstream": {"key": f"view-{next(_keys)}", **options}}}


def test_incomplete_then_resume_in_the_view(client: openai.OpenAI) -> None:
    # the disconnect happens on the first attempt only (fail_times=1): Resume then succeeds
    view = nbstream.chat(
        "hi", model="demo", client=client, display=False, resilience=fast(),
        **faults(disconnect_after=6, fail_times=1),
    )  # fmt: skip
    assert (view.status, view.reason) == ("incomplete", "the answer was cut off: Connection error.")
    assert view.text == "".join(demo_tokens(5))
    view.resume()
    assert view.status == "done" and view.text == FULL  # nothing lost, nothing repeated
    assert len(view.versions) == 2
    assert view.snapshot["versions"][-1]["status"] == "done"


def test_retry_progress_is_shown_while_streaming(client: openai.OpenAI) -> None:
    from nbstream.sources.request import ChatRequest

    request = ChatRequest(
        {"model": "demo", "messages": [{"role": "user", "content": "hi"}],
         **faults(fail=503, fail_times=2, retry_after=0.05)},
        client,
    )  # fmt: skip
    view = nbstream.stream(request, display=False, resilience=fast(), background=True)
    reasons: list[str] = []
    view.run.subscribe(lambda run, events: reasons.append(run.reason) if not events else None)
    view.wait(10)
    assert view.status == "done" and view.text == FULL
    retries = [r for r in view.log if r["type"] == "retry"]
    assert len(retries) == 2 and view.metrics.attempts == 3
    # the first retry message can come before our subscription; the second is always seen
    assert "HTTP 503, retrying in 50 ms (attempt 3/4)" in reasons
    notes = view.snapshot["versions"][-1]["notes"]
    # the local server's budget is far from spent: no rate-limit line under the answer
    assert not any(n.startswith("rate limit") for n in notes), notes


def test_moderation_hook_stops_the_stream_in_the_view(
    server: LocalServer, client: openai.OpenAI
) -> None:
    prompt = "This is calm text. We bomb here. " + "Then a long and calm tail. " * 20
    hook = OpenAIModerationHook(client, every_chars=30)
    view = nbstream.chat(
        prompt, model="echo", client=client, display=False,
        resilience=Resilience(hooks=[hook], session=None), **faults(delay=0.02),
    )  # fmt: skip
    assert view.status == "stopped"
    assert view.reason == "stopped by moderation: moderation flagged: violence"
    assert prompt.startswith(view.text) and "bomb" in view.text
    assert len(tokenize(view.text)) < len(tokenize(prompt))  # stopped mid-way
    flags = [r for r in view.log if r["type"] == "flag"]
    assert flags[0]["hook"] == "moderation" and flags[0]["category"] == "violence"
    assert "stopped by moderation" in view.snapshot["versions"][-1]["notes"][0]
    hook.close()


def test_keyword_flag_is_recorded_and_shown_but_does_not_stop(client: openai.OpenAI) -> None:
    hook = KeywordHook(keywords=["deterministic"], name="keyword")
    view = nbstream.chat(
        "hi", model="demo", client=client, display=False,
        resilience=Resilience(hooks=[hook], session=None),
    )  # fmt: skip
    assert view.status == "done" and view.text == FULL
    notes = view.snapshot["versions"][-1]["notes"]
    assert "flagged by keyword: matched 'deterministic'" in notes
    assert [r["reason"] for r in view.log if r["type"] == "flag"] == ["matched 'deterministic'"]


def test_budget_stops_with_the_reason(client: openai.OpenAI) -> None:
    view = nbstream.chat(
        "hi", model="demo", client=client, display=False,
        resilience=Resilience(max_tokens=12, session=None),
    )  # fmt: skip
    assert view.status == "stopped"
    assert view.reason.startswith("stopped by budget: token budget reached: ")
    assert FULL.startswith(view.text) and 0 < len(view.text) < len(FULL) / 4


def test_session_budget_refuses_a_new_stream(client: openai.OpenAI) -> None:
    from nbstream.resilience.budget import SessionBudget

    session = SessionBudget(max_tokens=30)
    res = Resilience(session=session)
    first = nbstream.chat("hi", model="demo", client=client, display=False, resilience=res)
    assert first.status == "stopped" and "session token budget used up" in first.reason
    second = nbstream.chat("hi", model="demo", client=client, display=False, resilience=res)
    assert second.status == "stopped" and second.reason.startswith("not started: session token")
    assert second.text == ""


def test_unknown_model_gives_one_clear_message(client: openai.OpenAI, server) -> None:
    view = nbstream.chat("hi", model="gpt-nope", client=client, display=False)
    assert view.status == "error"
    assert view.reason.startswith(f"Unknown model 'gpt-nope' at {server.base_url}")
    assert "client.models.list()" in view.reason
    assert view.metrics.attempts == 1  # a 404 is not retried


def test_keep_alive_one_connection_for_many_streams_across_cells(server: LocalServer) -> None:
    """Streams built through the resilience layer (SDK retries off via a client copy) still share
    the client's connection pool: five answers in a row use one TCP connection. (The sync SDK
    drops the connection at [DONE] unless the body is read to its end: openai_stream.py does.)"""
    from nbstream.sources.client import client_for

    client = client_for(server.base_url, "local-keepalive")
    assert client_for(server.base_url, "local-keepalive") is client  # one client per endpoint
    before = set(server._connections)
    for _ in range(5):  # as five cells would
        view = nbstream.chat("hi", model="demo", client=client, display=False, resilience=fast())
        assert view.status == "done"
    opened = set(server._connections) - before
    assert len(opened) == 1, f"{len(opened)} connections for 5 streams"
    assert view.run.source.inner.client is client


def test_an_answer_stopped_by_a_hook_is_not_continued(client: openai.OpenAI) -> None:
    res = Resilience(hooks=[KeywordHook(keywords=["table"], action="stop")], session=None)
    view = nbstream.chat("hi", model="demo", client=client, display=False, resilience=res)
    assert view.status == "stopped"
    assert view.run.resilience.resume_blocked == "stopped by keyword: matched 'table'"
    with pytest.raises(RuntimeError, match="not continued: stopped by keyword"):
        res.resume(view.run)


def test_the_view_does_not_offer_continue_after_a_hook_stop(client: openai.OpenAI) -> None:
    res = Resilience(hooks=[KeywordHook(keywords=["table"], action="stop")], session=None)
    view = nbstream.chat("hi", model="demo", client=client, display=False, resilience=res)
    version = view.snapshot["versions"][-1]
    assert version["status"] == "stopped"
    assert version["resume_blocked"] == "stopped by keyword: matched 'table'"  # JS hides Continue
    assert view.resumable is False  # the synced trait: the frontend hides Continue
    with pytest.raises(RuntimeError, match="not continued: stopped by keyword"):
        view.resume()
    assert len(view.versions) == 1


def test_nearly_spent_rate_limit_says_when_it_resets_as_a_clock_time() -> None:
    """The rate-limit note is saved with the answer: "resets in 40 s" read in a notebook reopened
    tomorrow would be wrong, so it names the clock time, from the response's own headers."""
    import time

    from nbstream.server import RateLimit

    with serve(rate_limit=RateLimit(requests=10, window_s=60.0)) as limited:
        client = openai.OpenAI(base_url=limited.base_url, api_key="local")
        for _ in range(9):  # 9 of the window's 10 requests: one left, 10 % of the budget
            client.chat.completions.create(
                model="demo", messages=[{"role": "user", "content": "?"}]
            )
        before = time.time()
        view = nbstream.chat("hi", model="demo", client=client, display=False)
        after = time.time()
    assert view.status == "done" and view.text == FULL
    response = next(r for r in view.log if r["type"] == "response")
    headers = {k.lower(): v for k, v in response["headers"].items()}
    assert headers["x-ratelimit-remaining-requests"] == "0"
    reset_s = float(headers["x-ratelimit-reset-requests"].removesuffix("s"))
    notes = [n for n in view.snapshot["versions"][-1]["notes"] if n.startswith("rate limit")]
    assert len(notes) == 1 and "resets in" not in notes[0], notes
    clock = notes[0].split("requests 0/10 left (resets at ", 1)[1][:8]
    seconds = range(int(before + reset_s), int(after + reset_s) + 1)  # the headers came between
    possible = {time.strftime("%H:%M:%S", time.localtime(t)) for t in seconds}
    assert clock in possible, (notes, possible)
