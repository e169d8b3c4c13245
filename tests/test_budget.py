"""Budget guard: per-stream and per-session caps on tokens and cost, estimated then exact."""

from __future__ import annotations

import pytest

from nbstream.resilience.budget import BudgetGuard, Price, SessionBudget
from nbstream.resilience.hooks import HookSet


def run(guard: BudgetGuard, pieces: list[str]) -> tuple[str, list[str]]:
    stops: list[str] = []
    hooks = HookSet([guard], stop=stops.append)
    text = ""
    for piece in pieces:
        if stops:
            break  # the run loop stops reading at once
        text += piece
        hooks.on_chunk(piece, text)
    hooks.on_end(text)
    return text, stops


def test_stream_token_cap_stops_with_the_reason() -> None:
    guard = BudgetGuard(max_tokens=5)
    text, stops = run(guard, [" one", " two", " six", " ten", " red", " sky", " air"])
    assert text == " one two six ten red"
    assert stops == ["stopped by budget: token budget reached: 5/5 tokens (estimated)"]


def test_long_pieces_count_by_length() -> None:
    guard = BudgetGuard(max_tokens=10)
    _, stops = run(guard, ["x" * 20, "y" * 20, "z" * 20])  # 5 tokens each (4 chars per token)
    assert guard.completion_tokens == 10 and stops


def test_usage_replaces_the_estimate() -> None:
    guard = BudgetGuard(max_tokens=100)
    run(guard, ["a"] * 10)
    assert guard.completion_tokens == 10 and not guard.exact
    assert guard.on_usage(prompt_tokens=12, completion_tokens=120) is not None
    assert guard.exact and "(estimated)" not in (guard.stopped or "")


def test_session_cap_counts_live_and_finished_streams() -> None:
    session = SessionBudget(max_tokens=30)
    first = BudgetGuard(session=session, prompt_tokens=5)
    run(first, ["w"] * 10)
    assert session.used_tokens == 15  # 5 prompt + 10 completion, charged at the end
    second = BudgetGuard(session=session, prompt_tokens=5)
    _, stops = run(second, ["w"] * 20)
    assert stops == ["stopped by budget: session token budget used up (30/30 tokens) (estimated)"]
    assert session.used_tokens == 30
    third = BudgetGuard(session=session)
    assert third.preflight() == "session token budget used up (30/30 tokens)"
    session.reset()
    assert third.preflight() is None


def test_cost_cap_with_a_price_table_and_prefix_match() -> None:
    prices = {"gpt-4o": Price(input_per_1m=2.5, output_per_1m=10.0)}
    guard = BudgetGuard(max_cost=0.001, model="gpt-4o-2024-08-06", prices=prices, prompt_tokens=200)
    _, stops = run(guard, ["tok"] * 100)
    # 200 * 2.5e-6 = 0.0005 for the prompt; 50 output tokens * 1e-5 = 0.0005 more
    assert guard.completion_tokens == 50
    assert stops == ["stopped by budget: cost budget reached: 0.0010/0.0010 (estimated)"]
    assert guard.snapshot()["cost"] == pytest.approx(0.001)


def test_cost_without_a_price_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="max_cost needs a price for model 'x'"):
        BudgetGuard(max_cost=1.0, model="x")
    with pytest.raises(ValueError, match="positive number"):
        BudgetGuard(max_tokens=0)
