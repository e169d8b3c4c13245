"""Fill ``{name}`` placeholders in a ``%%stream`` prompt from the notebook's namespace.

Why not ``str.format(**user_ns)``: a missing name must be a clear error that says what to do
(define it, or write ``{{`` for a literal brace) *before* any request is sent, and positional
``{}`` or malformed braces must be reported the same way instead of as a ``KeyError`` or
``IndexError`` from deep inside ``string.Formatter``.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any


class InterpolationError(ValueError):
    """A placeholder in the prompt cannot be filled; the message says how to fix it."""


_HINT = "write {{ and }} for literal braces"


class _Formatter(string.Formatter):
    """``string.Formatter`` that looks names up in one namespace and explains failures."""

    def __init__(self, namespace: Mapping[str, Any]) -> None:
        self.namespace = namespace

    def get_value(self, key: int | str, args: Any, kwargs: Any) -> Any:
        if isinstance(key, int) or key == "":
            shown = "{" + str(key) + "}"
            raise InterpolationError(
                f"positional placeholder '{shown}' in the prompt: put a variable name inside "
                f"the braces, or {_HINT}"
            )
        if key not in self.namespace:
            raise InterpolationError(
                f"name '{key}' is not defined in the notebook, so '{{{key}}}' in the prompt "
                f"cannot be filled: define it in a cell above, or {_HINT}"
            )
        return self.namespace[key]

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        try:
            return super().get_field(field_name, args, kwargs)
        except InterpolationError:
            raise
        except (AttributeError, LookupError, TypeError) as exc:
            raise InterpolationError(
                f"cannot fill '{{{field_name}}}' in the prompt: {exc!s} ({_HINT})"
            ) from None

    def format_field(self, value: Any, format_spec: str) -> Any:
        try:
            return super().format_field(value, format_spec)
        except (ValueError, TypeError) as exc:
            raise InterpolationError(
                f"cannot format a value with ':{format_spec}' in the prompt: {exc}"
            ) from None


def placeholders(template: str) -> list[str]:
    """The field names used in ``template`` (``{a.b}`` gives ``a.b``), in order of appearance."""
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise InterpolationError(f"malformed braces in the prompt: {exc} ({_HINT})") from None


def fill(template: str, namespace: Mapping[str, Any]) -> str:
    """Return ``template`` with ``{name}`` (and ``{name.attr}``, ``{name[key]}``, ``{name:fmt}``)
    filled from ``namespace``; ``{{`` and ``}}`` give literal braces.

    Raises ``InterpolationError`` with a message that names the placeholder and the fix.
    """
    if "" in placeholders(template):
        raise InterpolationError(
            f"empty placeholder '{{}}' in the prompt: put a variable name inside the braces, "
            f"or {_HINT}"
        )
    formatter = _Formatter(namespace)
    try:
        return formatter.vformat(template, (), {})
    except InterpolationError:
        raise
    except ValueError as exc:
        raise InterpolationError(f"malformed braces in the prompt: {exc} ({_HINT})") from None
