"""Fill ``{name}`` placeholders in a ``%%stream`` prompt from the notebook's namespace.

Why not ``str.format(**user_ns)``: a missing name must be a clear error that says what to do
(define it, or write ``{{`` for a literal brace) *before* any request is sent, and positional
``{}`` or malformed braces must be reported the same way instead of as a ``KeyError`` or
``IndexError`` from deep inside ``string.Formatter``.

What a placeholder may name, and why (the prompt goes to a remote model):

- a plain name (``{topic}``), optionally with a format spec or conversion (``{n:03d}``,
  ``{x!r}``);
- plain attribute access on public names (``{doc.title}``): the attribute is read from the
  object's ``__dict__`` or its class without running any code (no property getter, no
  ``__getattr__``): a property, a method or a private name (``_x``) is refused;
- an item of a built-in ``dict``, ``list`` or ``tuple`` (``{d[key]}``, ``{xs[0]}``); indexing
  anything else is refused (its ``__getitem__`` is code): assign the item to a name first.
- **never a credential**: a value that is the process environment (``{os.environ}``) or whose
  text holds a secret nbstream knows (an API key from the environment or a client, a header
  token, a URL password) or a key-shaped string is *refused*, not redacted: nothing is sent, and
  the message names the placeholder (never the value). A prompt with a hole where the user
  expected data would be a silent wrong answer.

A value whose ``__format__``/``__str__``/``__repr__`` raises gives a one-line message, no
traceback.
"""

from __future__ import annotations

import os
import string
import sys
from collections.abc import Mapping
from typing import Any

from nbstream.redact import redact_text, refresh_env, register_client

_MISSING = object()


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
        first, rest = _field_name_split(field_name)
        obj = self.get_value(first, args, kwargs)
        shown = "{" + field_name + "}"
        for is_attr, name in rest:
            if is_attr:
                obj = _plain_attribute(obj, str(name), shown)
            elif type(obj) in (dict, list, tuple):  # built-in containers: no user code runs
                try:
                    obj = obj[name]
                except (LookupError, TypeError) as exc:
                    raise InterpolationError(
                        f"cannot fill '{shown}' in the prompt: no item {exc!s} ({_HINT})"
                    ) from None
            else:
                raise InterpolationError(
                    f"'{shown}' in the prompt indexes a {type(obj).__name__}: only a dict, list "
                    f"or tuple is indexed (anything else would run its code); assign the item to "
                    f"a name in a cell above, or {_HINT}"
                )
        _refuse_environment(obj, shown)
        return obj, first

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        try:
            return super().convert_field(value, conversion)
        except InterpolationError:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's __repr__/__str__: say it in one line
            raise InterpolationError(
                f"cannot convert a value with '!{conversion}' in the prompt: {_one_line(exc)}"
            ) from None

    def format_field(self, value: Any, format_spec: str) -> Any:
        try:
            text = super().format_field(value, format_spec)
        except InterpolationError:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's __format__/__str__, in one line
            spec = f" with ':{format_spec}'" if format_spec else ""
            raise InterpolationError(
                f"cannot format a value{spec} in the prompt: {_one_line(exc)}"
            ) from None
        if redact_text(text) != text:
            raise InterpolationError(
                f"a placeholder's value holds a credential (an API key, token or password "
                f"nbstream knows, or a key-shaped string): it is never sent to a model. Remove "
                f"that placeholder, or {_HINT}"
            )
        return text


def _one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (scrubbed): what a failing ``__format__`` said."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return redact_text(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)


def _field_name_split(field_name: str) -> tuple[Any, Any]:
    # string.Formatter's own parser (the same rules as str.format); CPython's, without a stub
    import _string  # type: ignore[import-not-found]

    first, rest = _string.formatter_field_name_split(field_name)
    return first, rest


def _plain_attribute(obj: Any, name: str, shown: str) -> Any:
    """``obj.name`` when it is plain data, read without running code; InterpolationError else."""
    if name.startswith("_"):
        raise InterpolationError(
            f"'{shown}' in the prompt reads the private attribute '{name}': only public "
            f"attributes are filled; assign it to a name in a cell above, or {_HINT}"
        )
    try:
        instance_dict = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        instance_dict = {}
    value = instance_dict.get(name, _MISSING) if isinstance(instance_dict, Mapping) else _MISSING
    if value is _MISSING:
        for klass in type.__getattribute__(type(obj), "__mro__"):
            found = klass.__dict__.get(name, _MISSING)
            if found is not _MISSING:
                if hasattr(type(found), "__get__"):  # property, method, descriptor: code
                    raise InterpolationError(
                        f"'{shown}' in the prompt reads '{name}', which is computed (a "
                        f"property or method), so it is not filled; assign its value to a "
                        f"name in a cell above, or {_HINT}"
                    )
                value = found
                break
    if value is _MISSING:
        raise InterpolationError(
            f"cannot fill '{shown}' in the prompt: {type(obj).__name__!r} object has no "
            f"attribute '{name}' ({_HINT})"
        )
    return value


def _register_clients(namespace: Mapping[str, Any]) -> None:
    """Make the credentials of the notebook's own OpenAI clients known (and the environment's)
    before filling: ``{client.api_key}`` is then refused even when nbstream never used that
    client and the key has no recognisable shape."""
    refresh_env()
    openai = sys.modules.get("openai")
    kinds = tuple(
        k for k in (getattr(openai, "OpenAI", None), getattr(openai, "AsyncOpenAI", None)) if k
    )
    if not kinds:
        return
    for value in list(namespace.values()):
        if isinstance(value, kinds):
            register_client(value)


def _refuse_environment(value: Any, shown: str) -> None:
    if value is os.environ or isinstance(value, type(os.environ)):
        raise InterpolationError(
            f"'{shown}' in the prompt is the process environment (it holds credentials): it is "
            f"never sent to a model; put the one variable you need in a name first, or {_HINT}"
        )


def placeholders(template: str) -> list[str]:
    """The field names used in ``template`` (``{a.b}`` gives ``a.b``), in order of appearance."""
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise InterpolationError(f"malformed braces in the prompt: {exc} ({_HINT})") from None


def fill(template: str, namespace: Mapping[str, Any]) -> str:
    """Return ``template`` with ``{name}`` (and ``{name.attr}``, ``{name:fmt}``, ``{name!r}``)
    filled from ``namespace``; ``{{`` and ``}}`` give literal braces.

    Raises ``InterpolationError`` with a message that names the placeholder and the fix: for a
    missing name, indexing, a private or computed attribute, a value that is or holds a
    credential (refused, never redacted: see the module docstring), a value that fails to format.
    """
    if "" in placeholders(template):
        raise InterpolationError(
            f"empty placeholder '{{}}' in the prompt: put a variable name inside the braces, "
            f"or {_HINT}"
        )
    _register_clients(namespace)
    formatter = _Formatter(namespace)
    try:
        return formatter.vformat(template, (), {})
    except InterpolationError:
        raise
    except ValueError as exc:
        raise InterpolationError(f"malformed braces in the prompt: {exc} ({_HINT})") from None
