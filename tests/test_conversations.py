"""Named conversations carried across %%stream --chat cells."""

from __future__ import annotations

from nbstream.notebook.conversations import Conversation, Conversations


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


def test_rerunning_a_cell_replaces_its_exchange_and_sends_only_what_came_before() -> None:
    conv = Conversation("c")
    conv.record("q1", "a1", cell="cell-1")
    conv.record("q2", "a2", cell="cell-2")
    conv.record("q3", "a3", cell="cell-3")
    # cell-2 runs again: the turns before it are sent, as on its first run
    assert conv.messages("q2 again", cell="cell-2") == [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2 again"},
    ]
    conv.record("q2 again", "a2 again", cell="cell-2")
    assert len(conv) == 3
    assert [t["content"] for t in conv.turns] == ["q1", "a1", "q2 again", "a2 again", "q3", "a3"]
    # a new cell still sees the whole history; a cell without an id (a terminal) appends
    assert len(conv.messages("q4", cell="cell-4")) == 7
    conv.record("q", "a")
    conv.record("q", "a")
    assert len(conv) == 5


def test_a_failed_rerun_keeps_the_earlier_answer() -> None:
    conv = Conversation("c")
    conv.record("q1", "a1", cell="cell-1")
    conv.record("q1", "", cell="cell-1")
    assert [t["content"] for t in conv.turns] == ["q1", "a1"]
    conv.reset()
    assert conv.turns == [] and conv.cells == []
