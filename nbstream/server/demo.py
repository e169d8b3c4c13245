"""The built-in deterministic demo model: a Markdown answer cut into token-sized pieces.

Deterministic on purpose: the same request always yields the same tokens, so tests can compare the
text a client assembled with :func:`demo_tokens` computed independently.
"""

from __future__ import annotations

import re
from typing import Any

DEMO_ANSWER = r"""# Streaming in notebooks

Streaming shows the answer **while it is written**, so you can read, judge and *stop* early.

## Why stream?

- Lower perceived latency: the first token arrives in a fraction of a second.
- You keep the partial text when something fails.
- Stop costs nothing but a closed connection.

1. Open the request with `stream=True`.
2. Read the chunks as they come.
3. Render them incrementally.

## A code block

```python
from openai import OpenAI

client = OpenAI()
stream = client.chat.completions.create(
    model="demo",
    messages=[{"role": "user", "content": "Hello"}],
    stream=True,
)
for chunk in stream:
    print(chunk.choices[0].delta.content or "", end="")
```

## A table

| metric | meaning | unit |
|---|---|---|
| TTFT | time to first token | s |
| rate | tokens per second | tok/s |
| chunks | SSE events received | count |

## Some math

Inline math such as $e^{i\pi} + 1 = 0$ flows with the text, and display math stands alone:

$$
\sum_{k=1}^{n} k = \frac{n(n+1)}{2}
$$

> That is all: the demo model is deterministic, so the same request gives the same answer.
"""

DEMO_REASONING = (
    "**Planning the answer**\n\nThe user wants to see streaming at work. I will show a heading, "
    "a short list, a code block, a table and some math, so that every renderer is exercised. "
    "Keep it short, and keep it deterministic. "
)

_TOKEN = re.compile(r"\s*\S+|\s+")
_FILLER = "Token streaming keeps going so benchmarks have something long to read."


def tokenize(text: str) -> list[str]:
    """Word-sized tokens (leading whitespace attached) that join back to ``text``."""
    return _TOKEN.findall(text)


_DEMO_TOKENS = tokenize(DEMO_ANSWER)
_FILLER_TOKENS = tokenize("\n\n" + _FILLER)


def demo_tokens(count: int | None = None, choice: int = 0) -> list[str]:
    """The demo answer's tokens; with ``count``, exactly that many (cut, or padded with filler).

    ``choice`` > 0 (``n>1`` requests) gives a variant whose title says which take it is, so the
    choices of one response differ visibly and deterministically.
    """
    base = _DEMO_TOKENS if choice == 0 else _variant_tokens(choice)
    if count is None:
        return list(base)
    if count <= len(base):
        return base[:count]
    out = list(base)
    while len(out) < count:
        out.extend(_FILLER_TOKENS[: count - len(out)])
    return out


def reasoning_tokens(count: int) -> list[str]:
    """``count`` tokens of the demo's reasoning text (repeated as needed)."""
    base = tokenize(DEMO_REASONING)
    out: list[str] = []
    while len(out) < count:
        out.extend(base[: count - len(out)])
    return out


def _variant_tokens(choice: int) -> list[str]:
    title, rest = DEMO_ANSWER.split("\n", 1)
    return tokenize(f"{title} (take {choice + 1})\n{rest}")


def _content_text(content: Any) -> str:
    """Text of a message content: a string, or a list of parts with ``text``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    return ""


def chat_prompt_text(messages: list[Any]) -> str:
    """All message texts joined (used to count prompt tokens)."""
    return "\n".join(_content_text(m.get("content")) for m in messages if isinstance(m, dict))


def last_user_text(messages: list[Any]) -> str:
    """The last user message's text (what ``echo`` repeats)."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def responses_input_text(body: dict[str, Any]) -> tuple[str, str]:
    """(all input text, last user text) of a Responses API request's ``input``."""
    value = body.get("input")
    if isinstance(value, str):
        return value, value
    if isinstance(value, list):
        messages = [item for item in value if isinstance(item, dict)]
        return chat_prompt_text(messages), last_user_text(messages)
    return "", ""


def count_tokens(text: str) -> int:
    """A rough token count (words), stable and cheap: good enough for usage and rate limits."""
    return len(tokenize(text)) if text else 0
