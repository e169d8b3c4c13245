"""``{name}`` filling for %%stream prompts: values, literal braces, errors that say what to do."""

from __future__ import annotations

import pytest

from nbstream.notebook.interpolate import InterpolationError, fill, placeholders


def test_fills_names_attributes_and_format_specs() -> None:
    class Doc:
        title = "Streams"

    doc = Doc()
    doc.author = "Ada"
    ns = {"topic": "SSE", "doc": doc, "d": {"k": "v"}, "xs": [1, 2], "n": 7}
    out = fill("About {topic}: {doc.title} by {doc.author}, {d[k]}{xs[1]}, {n:03d}, {topic!r}", ns)
    assert out == "About SSE: Streams by Ada, v2, 007, 'SSE'"


def test_double_braces_are_literal() -> None:
    assert fill('JSON like {{"a": {n}}}', {"n": 1}) == 'JSON like {"a": 1}'


def test_text_without_placeholders_is_unchanged() -> None:
    text = "Plain prompt, no braces at all.\nSecond line."
    assert fill(text, {}) == text


def test_missing_name_names_the_placeholder_and_the_fix() -> None:
    with pytest.raises(InterpolationError) as info:
        fill("Summarize {article}", {"other": 1})
    message = str(info.value)
    assert "'article' is not defined" in message
    assert "{{" in message


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("{}", "empty placeholder"),
        ("{0}", "positional placeholder '{0}'"),
        ("unclosed {x", "malformed braces"),
        ("stray } brace", "malformed braces"),
        ("{d[missing]}", "cannot fill '{d[missing]}'"),
        ("{d.nope}", "cannot fill '{d.nope}'"),
        ("{n:zz}", "cannot format"),
    ],
)
def test_every_failure_is_an_interpolation_error(template: str, fragment: str) -> None:
    with pytest.raises(InterpolationError, match=None) as info:
        fill(template, {"d": {}, "n": 1, "x": 2})
    assert fragment in str(info.value)


def test_placeholders_lists_field_names_in_order() -> None:
    assert placeholders("{a} and {b.c} but not {{d}}") == ["a", "b.c"]


# ---- credentials: the prompt goes to a remote model -------------------------------------------

ENV_KEY = "plain-ENVKEY-0123456789"  # no key shape: known only because it is in the environment


def test_the_environment_is_never_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    for template, ns in [
        ("{os.environ}", {"os": os}),
        ("{env}", {"env": os.environ}),
        ("{copy}", {"copy": dict(os.environ)}),  # a copy holds the key: refused by its content
        ("{copy!r:>10}", {"copy": dict(os.environ)}),
        ("key: {k}", {"k": os.environ["OPENAI_API_KEY"]}),
    ]:
        with pytest.raises(InterpolationError) as info:
            fill(template, ns)
        message = str(info.value)
        assert ENV_KEY not in message and "ENVKEY" not in message
        assert "environment" in message or "credential" in message, message


def test_a_client_key_in_the_notebook_is_never_sent() -> None:
    import openai

    key = "opaque-CLIENTKEY-98765"  # no key shape, and nbstream never used this client
    client = openai.OpenAI(api_key=key, base_url="http://127.0.0.1:9/v1")
    with pytest.raises(InterpolationError) as info:
        fill("{client.api_key}", {"client": client})
    assert "CLIENTKEY" not in str(info.value) and "credential" in str(info.value)


def test_a_key_shaped_value_is_refused() -> None:
    with pytest.raises(InterpolationError, match="credential"):
        fill("{note}", {"note": "use sk-proj-ABCDEFGH12345678 for this"})


def test_property_getters_are_not_run() -> None:
    calls = []

    class Doc:
        @property
        def title(self) -> str:
            calls.append(1)
            raise RuntimeError("boom")

        def summary(self) -> str:
            calls.append(2)
            return "x"

    for template in ("{doc.title}", "{doc.summary}"):
        with pytest.raises(InterpolationError) as info:
            fill(template, {"doc": Doc()})
        assert "computed" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(InterpolationError, match="private attribute '_hidden'"):
        fill("{doc._hidden}", {"doc": Doc()})
    assert calls == []  # nothing of the user's code ran


def test_a_custom_getitem_is_not_run() -> None:
    class Lookup:
        def __getitem__(self, key: str) -> str:
            raise AssertionError("ran")

    with pytest.raises(InterpolationError, match="indexes a Lookup"):
        fill("{x[a]}", {"x": Lookup()})


def test_a_raising_format_is_one_line() -> None:
    class Broken:
        def __format__(self, spec: str) -> str:
            raise ValueError("no format\nsecond line")

        def __repr__(self) -> str:
            raise KeyError("no repr")

    with pytest.raises(InterpolationError) as info:
        fill("{b}", {"b": Broken()})
    assert str(info.value) == "cannot format a value in the prompt: ValueError: no format"
    with pytest.raises(InterpolationError, match="cannot convert a value with '!r'"):
        fill("{b!r}", {"b": Broken()})
