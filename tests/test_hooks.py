"""on_chunk hooks: keyword/regex flags and stops; the moderation hook against the local server."""

from __future__ import annotations

import re
import threading

import openai
import pytest

from nbstream.resilience.budget import BudgetGuard
from nbstream.resilience.hooks import Flag, HookSet, KeywordHook, OpenAIModerationHook
from nbstream.server import serve


def feed(hooks: HookSet, pieces: list[str]) -> str:
    text = ""
    for piece in pieces:
        text += piece
        hooks.on_chunk(piece, text)
    return text


def test_keyword_flag_is_recorded_once_and_the_stream_goes_on() -> None:
    recorded: list[Flag] = []
    stops: list[str] = []
    hooks = HookSet([KeywordHook(keywords=["secret"])], stop=stops.append, record=recorded.append)
    feed(hooks, ["The ", "sec", "ret ", "is ", "out; ", "secretive ", "is fine"])
    assert [f.reason for f in recorded] == ["matched 'secret'"]
    assert recorded[0].at_char == len("The secret")
    assert recorded[0].record()["type"] == "flag"
    assert stops == [] and hooks.flagged and hooks.stopped_by is None


def test_regex_stop_calls_stop_once_with_the_reason() -> None:
    stops: list[str] = []
    hook = KeywordHook([r"\b\d{3}-\d{2}-\d{4}\b"], action="stop", name="pii", category="ssn")
    hooks = HookSet([hook], stop=stops.append)
    feed(hooks, ["my number is 123-", "45-6789", " and again 987-65-4321"])
    assert stops == ["stopped by pii: matched '123-45-6789'"]
    assert hooks.stopped_by is not None and hooks.stopped_by.category == "ssn"
    assert len(hooks.flags) == 2  # the second match is still recorded


def test_keyword_hook_only_scans_the_tail() -> None:
    hook = KeywordHook([re.compile("needle")], overlap=10)
    text = "needle" + "x" * 1000
    assert hook.on_chunk(text, text) is not None
    text2 = text + "y"
    assert hook.on_chunk("y", text2) is None  # the old match is not reported again


def test_bad_hooks_are_refused_with_a_clear_message() -> None:
    with pytest.raises(TypeError, match="on_chunk"):
        HookSet([object()])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at least one pattern"):
        KeywordHook()
    with pytest.raises(ValueError, match="action"):
        KeywordHook(keywords=["x"], action="halt")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server():
    with serve() as s:
        yield s


def test_moderation_hook_checks_off_the_stream_and_stops_when_flagged(server) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
    hook = OpenAIModerationHook(client, every_chars=20, model="omni-moderation-latest?ttft=0.3")
    stopped = threading.Event()
    reasons: list[str] = []

    def stop(reason: str) -> None:
        reasons.append(reason)
        stopped.set()

    hooks = HookSet([hook], stop=stop)
    pieces = ["A calm start, ", "then more text ", "we bomb ", "the test ", "and go on"]
    feed(hooks, pieces)
    # all chunks went through while the (0.3 s) first check was still in flight
    assert hook.checks == [] and not stopped.is_set()
    hook.wait(5)
    assert hook.checks[0] == {"chars": len("A calm start, then more text "), "flagged": False}
    # the next check is sent on the next chunk; then the verdict arrives by itself
    text = "".join(pieces) + "."
    hooks.on_chunk(".", text)
    assert stopped.wait(5)
    assert reasons == ["stopped by moderation: moderation flagged: violence"]
    assert hooks.stopped_by is not None and hooks.stopped_by.at_char == len(text)
    moderation_requests = [r for r in server.requests if r.path.endswith("/moderations")]
    assert [r.body["input"] for r in moderation_requests[-2:]] == [
        "A calm start, then more text ",
        text,
    ]
    hook.close()


def test_moderation_hook_final_check_and_failure_never_raises(server) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
    hook = OpenAIModerationHook(client, every_chars=10_000, action="flag")
    recorded: list[Flag] = []
    hooks = HookSet([hook], record=recorded.append)
    text = feed(hooks, ["short but hateful"])
    hooks.on_end(text)
    hook.wait(5)
    assert [f.category for f in recorded] == ["hate"]

    broken = OpenAIModerationHook(
        openai.OpenAI(
            base_url="http://127.0.0.1:9/v1", api_key="sk-live-abcdefghijklmnop", max_retries=0
        ),
        every_chars=1,
    )
    recorded.clear()
    hooks = HookSet([broken], record=recorded.append)
    feed(hooks, ["x"])
    broken.wait(5)
    assert [f.category for f in recorded] == ["moderation_error"]
    assert recorded[0].action == "flag"  # an outage of the moderation API never stops the answer
    assert "sk-live" not in str(broken.checks)


class _Recorder:
    """A plain on_chunk hook (no on_delta): it must get the whole text as a str."""

    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def on_chunk(self, delta: str, text: str) -> Flag | None:
        self.seen.append((delta, text))
        return None


def _flags_of(hook: KeywordHook, pieces: list[str], *, incremental: bool) -> list[dict]:
    flags = []
    text = ""
    for piece in pieces:
        text += piece
        if incremental:
            flag = hook.on_delta(piece, lambda whole=text: whole)
        else:
            flag = hook.on_chunk(piece, text)
        if flag is not None:
            flags.append(flag.record())
    return flags


def test_keyword_on_delta_finds_exactly_what_the_whole_text_search_finds() -> None:
    words = ["alpha", "beta", "gamma", "betamax", "x-ray"]
    pieces = [f"{words[i % 5]}{' ' if i % 3 else ''}{'·' * (i % 4)}" for i in range(4_000)]
    pieces[1000] = "ssn 123-"  # a regex match split across chunks, far from the start
    pieces[1001] = "45-6789 "
    cases = [
        (lambda: KeywordHook(keywords=["beta", "x-ray"]), "matched 'x-ray'"),
        (
            lambda: KeywordHook(
                [r"\b\d{3}-\d{2}-\d{4}\b", r"(?<=x-ray)\s?·*alpha", r"^alpha"], overlap=30
            ),
            "matched '123-45-6789'",
        ),
    ]
    for make, must in cases:
        expected = _flags_of(make(), pieces, incremental=False)
        assert len(expected) > 100 and must in {f["reason"] for f in expected}
        assert _flags_of(make(), pieces, incremental=True) == expected


def test_hookset_builds_the_whole_text_only_for_hooks_that_need_it(server) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
    moderation = OpenAIModerationHook(client, every_chars=1_000, action="flag")
    keyword = KeywordHook(keywords=["needle"])
    budget = BudgetGuard(max_tokens=10**9)
    builds = [0]
    text = ""

    def text_so_far() -> str:
        builds[0] += 1
        return text

    hooks = HookSet([keyword, budget, moderation])
    for i in range(5_000):
        piece = f"w{i % 10}ord "
        text += piece
        hooks.on_chunk(piece, text_so_far)
    moderation.wait(10)
    # 35,000 characters: a moderation check is due every 1,000 (fewer if one is in flight)
    assert 1 <= builds[0] <= 35
    assert budget.completion_tokens > 0 and moderation.checks
    # a plain on_chunk hook gets the string, built once per chunk for all such hooks
    first, second = _Recorder(), _Recorder()
    builds[0] = 0
    HookSet([first, second, keyword]).on_chunk("tail", text_so_far)
    assert builds[0] == 1 and first.seen == second.seen == [("tail", text)]
    moderation.close()
