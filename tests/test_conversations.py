"""Named conversations carried across %%stream --chat cells."""

from __future__ import annotations

from nbstream.conversations import Conversation, Conversations


def test_messages_carry_system_history_and_new_prompt() -> None:
    conv = Conversation("c", system="Be brief.")
    conv.record("Hi", "Hello!")
    assert conv.messages("And now?") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "And now?"},
    ]
    assert len(conv) == 1


def test_empty_answer_records_nothing_so_the_cell_can_be_rerun() -> None:
    conv = Conversation("c")
    conv.record("Hi", "")
    assert conv.messages() == []
    assert len(conv) == 0


def test_messages_are_copies() -> None:
    conv = Conversation("c")
    conv.record("q", "a")
    conv.messages()[0]["content"] = "changed"
    assert conv.turns[0]["content"] == "q"


def test_reset_forgets_turns_and_system() -> None:
    conv = Conversation("c", system="s")
    conv.record("q", "a")
    conv.reset()
    assert conv.messages() == [] and conv.system is None


def test_repr_is_deterministic_and_readable() -> None:
    conv = Conversation("trip", system="Plan trips.")
    conv.record("Where to?", "Lisbon.")
    assert repr(conv) == (
        "Conversation 'trip': 1 exchange(s)\n"
        "  system: 'Plan trips.'\n"
        "  user: 'Where to?'\n"
        "  assistant: 'Lisbon.'"
    )
    md = conv._repr_markdown_()
    assert "**user**" in md and "> Where to?" in md
    assert "is empty" in Conversation("x")._repr_markdown_()


def test_store_creates_on_first_use_and_resets_one_or_all() -> None:
    store = Conversations()
    assert "a" not in store
    store.get("a").record("q", "a")
    store.get("b")
    assert list(store) == ["a", "b"]
    assert store.get("a") is store.get("a")
    assert store.as_dict() == {
        "a": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        "b": [],
    }
    store.reset("a")
    assert list(store) == ["b"]
    store.reset()
    assert len(store) == 0
    assert "No conversations yet" in repr(store)
