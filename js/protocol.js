// The widget's wire protocol: mirrors nbstream/frontend/protocol.py (change both together).
//
// State tiers (lonboard style):
// - Python -> JS synced traits, set rarely: `snapshot` ({protocol, current, versions: [{version, seq,
//   status, reason, metrics, parts: [{choice, kind, index?, text, meta?}]}]}), `format`, `language`,
//   `mode`, `rerunnable`, `resumable`, `uid`.
// - Python -> JS custom messages, <= ~60/s: `frame` {type, version, seq, parts: [{choice?, kind?,
//   index?, offset, text, meta?}], status?, metrics?, final?, reason?, notes?, mode?} (choice defaults
//   to 0, kind to "text"; reason/notes/mode only on the final frame: `mode` is the `mode` trait's value
//   after the end, which the widget sets on the model locally, so an end costs this one message).
//   On the wire a frame has short keys (FRAME_KEYS: {t: "f", v?, s, p: [{o, x, c?, k?, i?, m?}], st?,
//   mt?, fin?, r?, n?, md?}); decodeFrame
//   gives the long form. `offset` counts UTF-16 code units (JS string length) already sent for that
//   part: a larger offset than what the document holds is a gap, answered with a `resync`.
//   `log_page` answers a log_page request.
// - The final snapshot of a version is not sent again to a frontend that said `ready`: the document
//   builds it from the frames (toSnapshot) and sets it on the model locally (no save_changes), so
//   JupyterLab's saved widget state has the whole answer; the kernel keeps it for get_state().
// - JS -> Python custom messages, rare: ready, stop, regenerate, resume, retry, resync, log_page;
//   and `bundle` from js/loader.js where the shared bundle model cannot be read (answered with
//   {type: "bundle", js, css}; it does not mean a document is ready).
// - UI-only state (log panel open, version page shown, scroll) is never synced.
//
// DOM hooks for tests (stable, documented here):
//   .nbstream-root                 the widget root; attribute data-status = current version's status
//                                  ("stopped" when it never ended because the kernel went),
//                                  data-mode = the `mode` trait, data-version = version shown (0-based),
//                                  data-kernel = live | none (a stored answer) | gone (restarted, died)
//   [data-testid=answer]           the rendered answer of the version shown
//   [data-testid=stop]             Stop button (title says "interrupt the kernel (■)" in blocking mode)
//   [data-testid=regenerate]       Regenerate button (hidden when the source is not re-runnable)
//   [data-testid=resume]           Continue button (shown for stopped/incomplete resumable versions)
//   [data-testid=copy]             Copy button
//   [data-testid=version-pager]    ‹ n/m › pager; [data-testid=version-prev|version-next|version-label]
//   [data-testid=status]           status line
//   [data-testid=error]            why the version ended (error/incomplete/stopped reason)
//   [data-testid=notes]            resilience notes (flags, rate limit, budget)
//   [data-testid=reasoning]        "Thinking" section (reasoning deltas); [data-testid=refusal]
//   [data-testid=hosted-tools]     tools the server ran: [data-testid=hosted-tool][data-index][data-type]
//                                  [data-status] with hosted-name, hosted-status, hosted-input, hosted-output
//   [data-testid=citations]        "Sources": [data-testid=citation][data-index] (a link through DOMPurify)
//   [data-testid=tool-calls]       tool-call cards: [data-testid=tool-call][data-index][data-state=
//                                  streaming|valid|invalid] with tool-name, tool-id, tool-args (pretty
//                                  JSON when complete) and tool-invalid (the flag)
//   [data-testid=reasoning-label]  the Thinking summary (duration, tokens); reasoning-text its text
//   [data-testid=refusal-text]     the refusal's text inside [data-testid=refusal]
//   [data-testid=choice-tabs]      one [data-testid=choice-tab][data-choice][data-finish] per choice (n > 1)
//   [data-testid=finish]           finish-reason notice (data-reason = length|content_filter|tool_calls)
//   [data-testid=content-filter]   Azure content-filter results ([data-testid=filter-row])
//   [data-testid=confidence-toggle] token-confidence toggle (only with logprobs); [data-testid=confidence]
//                                  holds [data-testid=token] spans (data-p, title = alternatives)
//
// Part kinds (frames and snapshot): text, refusal, reasoning, tool (index = call; meta.type "custom"
// for a freeform tool: plain-text input, not JSON), logprobs / refusal_logprobs (one JSON line per
// token: [token, logprob, [[alt, logprob], ...]]), filter (meta.results = the latest content-filter
// results; choice -1 = the prompt's), hosted (index = a tool the server ran; text = its input: code,
// query, MCP arguments; meta {type, id?, status?, name?, output?, images?}), citation (index = a
// source, text empty; meta {url, title?} or {file_id, filename?}).
//   [data-testid=log-toggle]       opens the chunk-log panel ([data-testid=log-panel])
//   [data-testid=log-row]          one chunk row (data-index = the chunk index in its attempt);
//                                  request/response/error/end records are [data-testid=log-record]
//   [data-testid=log-raw]          raw JSON of a row (shown on demand)
//   [data-testid=log-download]     JSONL download;  [data-testid=log-timeline] the timeline plot
//   [data-testid=log-request]      one request record (attempt) of the version

export const PROTOCOL_VERSION = 1;

// Python -> JS
export const FRAME = "frame";
export const FRAME_TAG = "f"; // a frame on the wire: {t: "f", ...}
export const LOG_PAGE = "log_page";
export const ERROR = "error";

// JS -> Python
export const STOP = "stop";
export const REGENERATE = "regenerate";
export const RESUME = "resume";
export const RETRY = "retry";
export const RESYNC = "resync";
export const READY = "ready";

// Short wire keys (mirrors FRAME_KEYS / PART_KEYS in nbstream/frontend/protocol.py).
const FRAME_KEYS = { t: "type", v: "version", s: "seq", p: "parts", st: "status", mt: "metrics", fin: "final", r: "reason", n: "notes", md: "mode" };
const PART_KEYS = { c: "choice", k: "kind", i: "index", o: "offset", x: "text", m: "meta" };

/** A wire frame with long names: {type: "frame", version, seq, parts: [{offset, text, ...}], ...}. */
export function decodeFrame(msg) {
  const out = { type: FRAME, version: 0 };
  for (const [k, v] of Object.entries(msg)) if (k !== "t" && k !== "p") out[FRAME_KEYS[k] ?? k] = v;
  out.parts = (msg.p ?? []).map((p) => {
    const part = {};
    for (const [k, v] of Object.entries(p)) part[PART_KEYS[k] ?? k] = v;
    return part;
  });
  out.final = !!out.final;
  return out;
}

export const FINAL_STATUSES = new Set(["done", "stopped", "error", "incomplete"]);

/** Continue (Resume) is offered for an answer cut short: stopped, incomplete (a transport failure,
 * a stall, a token limit), or an error the server reported after some text. */
export const resumableStatus = (status, text) =>
  status === "stopped" || status === "incomplete" || (status === "error" && text.length > 0);

/** Key of a part: choice, kind and (tool calls) index. */
export function partKey(part) {
  return `${part.choice ?? 0}:${part.kind ?? "text"}:${part.index ?? ""}`;
}

export const stop = () => ({ type: STOP });
export const regenerate = () => ({ type: REGENERATE });
export const resume = () => ({ type: RESUME });
export const retry = () => ({ type: RETRY });
export const resync = (version) => ({ type: RESYNC, version });
export const ready = () => ({ type: READY });
/** Ask for chunk-log rows of a version; `raw` adds raw JSON, `times` all arrival times, `jsonl` the export. */
export const logPage = ({ id, version, start = 0, count = 100, raw = false, times = false, jsonl = false }) => ({
  type: LOG_PAGE, id, version, start, count, raw, times, jsonl,
});
