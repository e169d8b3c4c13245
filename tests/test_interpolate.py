"""``{name}`` filling for %%stream prompts: values, literal braces, errors that say what to do."""

from __future__ import annotations

import pytest

from nbstream.interpolate import InterpolationError, fill, placeholders


def test_fills_names_attributes_and_format_specs() -> None:
    class Doc:
        title = "Streams"

    doc = Doc()
    doc.author = "Ada"
    ns = {"topic": "SSE", "doc": doc, "n": 7}
    out = fill("About {topic}: {doc.title} by {doc.author}, {n:03d}, {topic!r}", ns)
    assert out == "About SSE: Streams by Ada, 007, 'SSE'"


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
        ("{d[missing]}", "'{d[missing]}' in the prompt indexes a value"),
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
