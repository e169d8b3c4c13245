"""Responses API events -> events: a pure state machine over each event's JSON dict (the shape
of the SDK's ``ResponseStreamEvent``).

Text and refusal deltas, reasoning (summary or full text) deltas, function-call and custom
(freeform) tool-call input deltas, hosted tools the server runs (web search, file search, code
interpreter, MCP, image generation: their status, input and output), citations
(``response.output_text.annotation.added``), ``response.completed`` with usage,
``response.failed``, ``response.incomplete`` and ``error``. The Responses API has no
``finish_reason``: a completed response finishes with ``"tool_calls"`` when it called a function
and ``"stop"`` otherwise; an incomplete one with its reason.

Separate message items are paragraphs of one answer (``"\\n\\n"`` between them, as between
reasoning summary parts), never glued together. Text that arrives only in a ``.done`` event (no
deltas, or deltas a server shortened) is caught up from it when it extends what was shown.
"""

from __future__ import annotations

from typing import Any

from nbstream.events import (
    Citation,
    Event,
    Failed,
    Finished,
    HostedToolDelta,
    LogprobsDelta,
    ReasoningDelta,
    RefusalDelta,
    Started,
    TextDelta,
    TokenLogprob,
    ToolCallDelta,
)
from nbstream.sources.openai_chat import usage_event

# Items a client must answer (tool calls); every other ``*_call`` item (and mcp_list_tools) is a
# tool the server ran itself: shown as activity, by its type without "_call".
_CALLS = frozenset({"function_call", "custom_tool_call"})
_HOSTED_EXTRA = frozenset({"mcp_list_tools"})
PARAGRAPH = "\n\n"
_ARGUMENT_DELTAS = frozenset(
    {"response.function_call_arguments.delta", "response.custom_tool_call_input.delta"}
)


def event_from_json(data: dict[str, Any]) -> Any:
    """Build a Responses event from its JSON the way the SDK does (unknown types stay lenient).
    The adapter reads the JSON dict itself; this is for comparing with the SDK's models (the SDK
    is imported here only)."""
    from openai._models import construct_type
    from openai.types.responses import ResponseStreamEvent

    return construct_type(type_=ResponseStreamEvent, value=data)


def _get(obj: Any, name: str) -> Any:
    """A field of a JSON dict (or of an SDK model)."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _logprobs(items: Any) -> tuple[TokenLogprob, ...]:
    return tuple(
        TokenLogprob(
            token=lp["token"],
            logprob=lp["logprob"],
            top=tuple((t["token"], t["logprob"]) for t in (lp.get("top_logprobs") or ())),
        )
        for lp in items
    )


def _is_hosted(item_type: Any) -> bool:
    return isinstance(item_type, str) and (
        item_type in _HOSTED_EXTRA or (item_type.endswith("_call") and item_type not in _CALLS)
    )


def _hosted_input(item: Any) -> str | None:
    """What the model sent a hosted tool, from its item: code, MCP arguments, search query."""
    for name in ("code", "arguments"):
        value = _get(item, name)
        if isinstance(value, str) and value:
            return value
    action = _get(item, "action")
    query = _get(action, "query") if action is not None else None
    if isinstance(query, str) and query:
        return query
    queries = _get(item, "queries")
    if isinstance(queries, list) and queries:
        return "\n".join(q for q in queries if isinstance(q, str))
    return None


class ResponsesAdapter:
    """``handle(event) -> list[Event]``; maps output items to tool / hosted-tool indexes and
    remembers how much text of each part it has shown."""

    kind = "responses"

    def __init__(self) -> None:
        self._started = False
        self._tool_index: dict[int, int] = {}  # output index -> tool-call index
        self._tool_args: dict[int, int] = {}  # tool index -> characters of arguments seen
        self._hosted: dict[int, tuple[int, str]] = {}  # output index -> (hosted index, kind)
        self._images: dict[int, int] = {}  # hosted index -> partial images seen
        self._hosted_sent: dict[int, int] = {}  # output index -> hosted input chars sent
        self._shown: dict[tuple[str, int, int], int] = {}  # (kind, item, part) -> chars shown
        self._last: dict[str, tuple[int, int]] = {}  # kind -> the part it last came from
        self._cited: dict[str, int] = {}  # source (url / file id) -> citation index

    def _tool(self, output_index: int) -> int:
        idx = self._tool_index.get(output_index)
        if idx is None:
            idx = self._tool_index[output_index] = len(self._tool_index)
        return idx

    def _piece(self, kind: str, item: int, part: int, text: str) -> list[Event]:
        """Text or reasoning from part ``part`` of output item ``item``: a new part after another
        one that showed something starts a paragraph."""
        if not text:
            return []
        out: list[Event] = []
        key = (item, part)
        last = self._last.get(kind)
        if last != key:
            if last is not None:
                out.append(TextDelta(PARAGRAPH) if kind == "text" else ReasoningDelta(PARAGRAPH))
            self._last[kind] = key
        full = (kind, item, part)
        self._shown[full] = self._shown.get(full, 0) + len(text)
        out.append(TextDelta(text) if kind == "text" else ReasoningDelta(text))
        return out

    def _catch_up(self, kind: str, item: int, part: int, text: Any) -> list[Event]:
        """The whole text of a part (a ``.done`` event): what the deltas did not show yet. Text
        that does not extend what was shown is left alone (shown text is never taken back)."""
        if not isinstance(text, str):
            return []
        shown = self._shown.get((kind, item, part), 0)
        if len(text) <= shown:
            return []
        # only the length shown is kept (not the text): a server whose deltas were shortened
        # (more/41) is trusted for the part of its final text not shown yet
        return self._piece(kind, item, part, text[shown:])

    def _hosted_slot(self, output_index: int, kind: str | None = None) -> tuple[int, str]:
        """(hosted index, kind) of an output item: numbered in order of appearance."""
        known = self._hosted.get(output_index)
        if known is None:
            known = self._hosted[output_index] = (len(self._hosted), kind or "tool")
        return known

    def _hosted_delta(self, output_index: int, kind: str | None = None, **fields: Any) -> Event:
        idx, known_kind = self._hosted_slot(output_index, kind)
        return HostedToolDelta(index=idx, kind=known_kind, **fields)

    def _hosted_input(self, output_index: int, text: object, whole: bool) -> str:
        """The input to send for a hosted tool: a delta as it is, a whole input (a ``.done``
        event, the finished item) only for what was not sent yet."""
        if not isinstance(text, str) or not text:
            return ""
        sent = self._hosted_sent.get(output_index, 0)
        if whole:
            text = text[sent:]
        self._hosted_sent[output_index] = sent + len(text)
        return text

    def _cite(self, annotation: Any) -> list[Event]:
        atype = _get(annotation, "type")
        if atype == "url_citation":
            url, title = _get(annotation, "url"), _get(annotation, "title")
            key, fields = url, {"url": url, "title": title or None}
        elif atype in ("file_citation", "container_file_citation", "file_path"):
            file_id, name = _get(annotation, "file_id"), _get(annotation, "filename")
            key, fields = file_id, {"file_id": file_id, "filename": name or None}
        else:
            return []
        if not isinstance(key, str) or not key or key in self._cited:
            return []
        self._cited[key] = len(self._cited)
        return [Citation(index=self._cited[key], **fields)]

    def handle(self, event: dict[str, Any]) -> list[Event]:
        """Events carried by one Responses API event, its JSON dict (most carry none: bookkeeping
        events)."""
        etype = event.get("type")
        if etype == "response.output_text.delta":
            out = self._piece("text", event["output_index"], event["content_index"], event["delta"])
            lps = event.get("logprobs")
            if lps:
                out.append(LogprobsDelta(_logprobs(lps)))
            return out
        if etype in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            part = event.get("summary_index")
            if part is None:
                part = event.get("content_index", 0)
            return self._piece("reasoning", event["output_index"], part or 0, event["delta"])
        if etype == "response.output_text.done":
            return self._catch_up(
                "text", event["output_index"], event["content_index"], event["text"]
            )
        if etype in ("response.reasoning_summary_text.done", "response.reasoning_text.done"):
            part = event.get("summary_index")
            if part is None:
                part = event.get("content_index", 0)
            return self._catch_up("reasoning", event["output_index"], part or 0, event["text"])
        if etype == "response.output_text.annotation.added":
            return self._cite(event.get("annotation"))
        if etype == "response.refusal.delta":
            return [RefusalDelta(event["delta"])] if event["delta"] else []
        if etype in _ARGUMENT_DELTAS:
            idx = self._tool(event["output_index"])
            self._tool_args[idx] = self._tool_args.get(idx, 0) + len(event["delta"])
            return [ToolCallDelta(index=idx, arguments=event["delta"])]
        if etype in ("response.output_item.added", "response.output_item.done"):
            return self._item(
                etype == "response.output_item.added", event["output_index"], event["item"]
            )
        if etype in ("response.created", "response.in_progress", "response.queued"):
            if self._started:
                return []
            self._started = True  # a resumed background stream starts without "created"
            response = event["response"]
            return [
                Started(model=response.get("model") or None, response_id=response.get("id") or None)
            ]
        if etype == "response.completed":
            response = event["response"]
            out = [usage_event(response["usage"])] if response.get("usage") is not None else []
            called = any(_get(o, "type") in _CALLS for o in response.get("output") or ())
            out.append(Finished("tool_calls" if called or self._tool_index else "stop"))
            return out
        if etype == "response.incomplete":
            response = event["response"]
            details = response.get("incomplete_details")
            reason = (details.get("reason") if details else None) or "incomplete"
            out = [usage_event(response["usage"])] if response.get("usage") is not None else []
            out.append(Finished(reason))
            out.append(Failed(f"response incomplete: {reason}", code=reason, incomplete=True))
            return out
        if etype == "response.failed":
            response = event["response"]
            err = response.get("error")
            message = (err.get("message") if err else None) or "response failed"
            usage = [usage_event(response["usage"])] if response.get("usage") is not None else []
            return [
                *usage,
                Failed(message, code=str(err["code"]) if err and err.get("code") else None),
            ]
        if etype == "error":
            code = event.get("code")
            return [Failed(event.get("message") or "error event", code=code)]
        if isinstance(etype, str) and etype.startswith("response."):
            return self._hosted_event(etype, event)
        return []

    def _item(self, added: bool, output_index: int, item: Any) -> list[Event]:
        itype = _get(item, "type")
        if itype == "function_call" or itype == "custom_tool_call":
            custom = itype == "custom_tool_call"
            args = _get(item, "input" if custom else "arguments") or ""
            idx = self._tool(output_index)
            if added:
                self._tool_args[idx] = len(args)
                return [
                    ToolCallDelta(
                        index=idx,
                        arguments=args,
                        id=_get(item, "call_id"),
                        name=_get(item, "name"),
                        kind="custom" if custom else None,
                    )
                ]
            if not self._tool_args.get(idx) and args:  # arguments sent whole at the end
                self._tool_args[idx] = len(args)
                return [ToolCallDelta(index=idx, arguments=args)]
            return []
        if itype == "message":
            if added:
                return []
            out: list[Event] = []
            for part, content in enumerate(_get(item, "content") or ()):
                if _get(content, "type") == "output_text":
                    out += self._catch_up("text", output_index, part, _get(content, "text"))
                for annotation in _get(content, "annotations") or ():
                    out += self._cite(annotation)
            return out
        if _is_hosted(itype):
            status = _get(item, "status")
            fields: dict[str, Any] = {
                "id": _get(item, "id"),
                "status": status if isinstance(status, str) else (None if added else "completed"),
                "name": _get(item, "name") or _get(item, "server_label"),
            }
            if not added:
                fields["input"] = self._hosted_input(output_index, _hosted_input(item), True)
                output = _get(item, "output")
                fields["output"] = output if isinstance(output, str) else None
            return [self._hosted_delta(output_index, itype.removesuffix("_call"), **fields)]
        return []

    def _hosted_event(self, etype: str, event: dict[str, Any]) -> list[Event]:
        """``response.<item>.<what>`` of a hosted tool: its status, input or partial images."""
        output_index = event.get("output_index")
        if not isinstance(output_index, int):
            return []
        base, _, what = etype[len("response.") :].rpartition(".")
        if base.endswith(("_code", "_arguments")):  # code_interpreter_call_code, mcp_call_arguments
            if output_index not in self._hosted:
                return []
            if what == "delta":
                text = self._hosted_input(output_index, event.get("delta"), False)
            elif what == "done":
                whole = event.get("code") or event.get("arguments")
                text = self._hosted_input(output_index, whole, True)
            else:
                text = ""
            return [self._hosted_delta(output_index, input=text)] if text else []
        if not _is_hosted(base):
            return []  # bookkeeping events (content_part.*...): nothing to show
        kind = base.removesuffix("_call")
        if what == "partial_image":
            idx = self._hosted_slot(output_index, kind)[0]
            self._images[idx] = self._images.get(idx, 0) + 1
            return [self._hosted_delta(output_index, kind, images=self._images[idx])]
        item_id = event.get("item_id")
        return [self._hosted_delta(output_index, kind, id=item_id, status=what)]
