// @ts-check
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

// ---- types of everything on the wire (JSDoc, checked by `npm run check`) ----------------------

/** @typedef {"pending" | "streaming" | "done" | "stopped" | "error" | "incomplete"} Status */
/**
 * The `mode` trait (nbstream/frontend/protocol.py MODES); "saved" is the frontend's own: a stored answer
 * rendered without a kernel (widget.js renderSaved).
 * @typedef {"idle" | "background" | "await" | "blocking" | "saved"} Mode
 */
/** @typedef {"text" | "refusal" | "reasoning" | "tool" | "logprobs" | "refusal_logprobs" | "filter" | "hosted" | "citation"} PartKind */

/**
 * Usage as the server reported it: a field it did not report is absent or null (not 0).
 * @typedef {{prompt_tokens?: number | null, completion_tokens?: number | null, reasoning_tokens?: number | null,
 *   cached_tokens?: number | null} & Record<string, unknown>} Usage
 */
/**
 * Metrics (nbstream/run/metrics.py, compact: absent values left out). Live frames carry only the
 * values that changed; the final frame all of them. The fields the frontend reads are typed.
 * @typedef {{model?: string, tokens?: number, tokens_estimated?: boolean, duration_s?: number, ttft_s?: number,
 *   tokens_per_s?: number, request_id?: string, usage?: Usage | null, thinking_s?: number,
 *   finish_reasons?: Record<string, string>} & Record<string, unknown>} Metrics
 */
/**
 * A part's meta, by kind: tool {id, name, type: "custom"?}; filter {results}; hosted {type, id?,
 * status?, name?, output?, images?}; citation {url, title?} or {file_id, filename?}.
 * @typedef {{id?: string, name?: string, type?: string, status?: string, output?: string, images?: number,
 *   results?: Record<string, any>, url?: string, title?: string, file_id?: string, filename?: string}
 *   & Record<string, unknown>} PartMeta
 */

/**
 * A frame as sent (short keys, FRAME_KEYS / PART_KEYS).
 * @typedef {{o: number, x: string, c?: number, k?: PartKind, i?: number | null, m?: PartMeta}} WirePart
 * @typedef {{t: "f", v?: number, s: number, p?: WirePart[], st?: Status, mt?: Metrics, fin?: number | boolean,
 *   r?: string | null, n?: string[], md?: Mode}} WireFrame
 */
/**
 * A frame with long names (decodeFrame; nbstream/frontend/protocol.py FrameMessage / WirePart).
 * @typedef {{choice?: number, kind?: PartKind, index?: number | null, offset: number, text: string, meta?: PartMeta}} FramePart
 * @typedef {{type: "frame", version: number, seq: number, parts: FramePart[], status?: Status, metrics?: Metrics,
 *   final?: boolean, reason?: string | null, notes?: string[], mode?: Mode}} Frame
 */
/**
 * The `snapshot` trait (nbstream/frontend/protocol.py Snapshot / VersionSnapshot / SnapshotPart). What
 * comes from the kernel is read leniently (a missing field takes its default).
 * @typedef {{choice?: number, kind?: PartKind, index?: number | null, text?: string, meta?: PartMeta}} SnapshotPart
 * @typedef {{version: number, seq?: number, status?: Status, reason?: string | null, notes?: string[],
 *   resume_blocked?: string | null, metrics?: Metrics, parts?: SnapshotPart[]}} VersionSnapshot
 * @typedef {{protocol?: number, current?: number, versions: VersionSnapshot[]}} Snapshot
 */

/**
 * Chunk log (log_page). A request asks for rows of one version; the reply has the rows, and on
 * request every chunk's arrival time, the request records and the JSONL export (or an error).
 * @typedef {{type: "log_page", id: number, version: number, start: number, count: number, raw: boolean,
 *   times: boolean, jsonl: boolean}} LogPageRequest
 * @typedef {{index: number, type: string, t?: number | null, attempt?: number | null, chunk?: number | null,
 *   delta?: string, note?: string, raw?: unknown}} LogRow
 * @typedef {{type: string, t?: number, attempt?: number, wall_time?: number, source?: string, status?: number | string,
 *   headers?: Record<string, string>, request_id?: string, message?: string, reason?: string} & Record<string, unknown>} LogRecord
 * @typedef {{type: "log_page", id: number | null, version?: number, total?: number, rows?: LogRow[], times?: number[],
 *   requests?: LogRecord[], jsonl?: string, error?: string}} LogPageReply
 */
/**
 * The other messages: an error (an unknown message, a failed action) and the widget's code for
 * js/loader.js where the shared bundle model cannot be read.
 * @typedef {{type: "error", message: string}} ErrorMessage
 * @typedef {{type: "bundle"}} BundleRequest
 * @typedef {{type: "bundle", js: string, css: string}} BundleReply
 */
/**
 * JS -> Python custom messages (nbstream/frontend/protocol.py INBOUND).
 * @typedef {{type: "ready", uids?: string[]} | {type: "stop"} | {type: "regenerate"} | {type: "resume"} | {type: "retry"}
 *   | {type: "resync", version: number} | LogPageRequest | BundleRequest} ToKernel
 */
/** Python -> JS custom messages (nbstream/frontend/protocol.py OUTBOUND). @typedef {WireFrame | LogPageReply | ErrorMessage | BundleReply} FromKernel */

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
// both ways: js/loader.js asks for the widget's code, Python answers {type: "bundle", js, css}
export const BUNDLE = "bundle";

// Short wire keys (mirrors FRAME_KEYS / PART_KEYS in nbstream/frontend/protocol.py).
/** @type {Readonly<Record<keyof WireFrame, keyof Frame>>} */
const FRAME_KEYS = Object.freeze({
  t: "type",
  v: "version",
  s: "seq",
  p: "parts",
  st: "status",
  mt: "metrics",
  fin: "final",
  r: "reason",
  n: "notes",
  md: "mode",
});
/** @type {Readonly<Record<keyof WirePart, keyof FramePart>>} */
const PART_KEYS = Object.freeze({ c: "choice", k: "kind", i: "index", o: "offset", x: "text", m: "meta" });

/**
 * The names of a message's fields. Each object given here is checked against its typedef by tsc
 * (`@satisfies {Record<keyof T, true>}`: a field missing or one too many is a type error).
 * @param {Record<string, true>} keys
 * @returns {readonly string[]}
 */
const fields = (keys) => Object.freeze(Object.keys(keys));

/**
 * The wire's keys and message types, as the typedefs above have them: tests/test_wire_keys.py
 * compares them with nbstream/frontend/protocol.py (change both together).
 */
export const WIRE = Object.freeze({
  protocol: PROTOCOL_VERSION,
  frameKeys: FRAME_KEYS,
  partKeys: PART_KEYS,
  frame: fields(
    /** @satisfies {Record<keyof Frame, true>} */ ({
      type: true,
      version: true,
      seq: true,
      parts: true,
      status: true,
      metrics: true,
      final: true,
      reason: true,
      notes: true,
      mode: true,
    }),
  ),
  part: fields(
    /** @satisfies {Record<keyof FramePart, true>} */ ({
      choice: true,
      kind: true,
      index: true,
      offset: true,
      text: true,
      meta: true,
    }),
  ),
  snapshot: fields(
    /** @satisfies {Record<keyof Snapshot, true>} */ ({ protocol: true, current: true, versions: true }),
  ),
  version: fields(
    /** @satisfies {Record<keyof VersionSnapshot, true>} */ ({
      version: true,
      seq: true,
      status: true,
      reason: true,
      notes: true,
      resume_blocked: true,
      metrics: true,
      parts: true,
    }),
  ),
  snapshotPart: fields(
    /** @satisfies {Record<keyof SnapshotPart, true>} */ ({
      choice: true,
      kind: true,
      index: true,
      text: true,
      meta: true,
    }),
  ),
  logPageRequest: fields(
    /** @satisfies {Record<keyof LogPageRequest, true>} */ ({
      type: true,
      id: true,
      version: true,
      start: true,
      count: true,
      raw: true,
      times: true,
      jsonl: true,
    }),
  ),
  logPageReply: fields(
    /** @satisfies {Record<keyof LogPageReply, true>} */ ({
      type: true,
      id: true,
      version: true,
      total: true,
      rows: true,
      times: true,
      requests: true,
      jsonl: true,
      error: true,
    }),
  ),
  logRow: fields(
    /** @satisfies {Record<keyof LogRow, true>} */ ({
      index: true,
      type: true,
      t: true,
      attempt: true,
      chunk: true,
      delta: true,
      note: true,
      raw: true,
    }),
  ),
  errorMessage: fields(/** @satisfies {Record<keyof ErrorMessage, true>} */ ({ type: true, message: true })),
  /** @type {readonly ToKernel["type"][]} */
  toKernel: Object.freeze([READY, STOP, REGENERATE, RESUME, RETRY, RESYNC, LOG_PAGE, BUNDLE]),
  /** @type {readonly (FromKernel extends infer M ? M extends {type: infer T} ? T : M extends {t: infer T} ? T : never : never)[]} */
  fromKernel: Object.freeze([FRAME_TAG, LOG_PAGE, ERROR, BUNDLE]),
});

/**
 * A wire frame with long names: {type: "frame", version, seq, parts: [{offset, text, ...}], ...}.
 * @param {WireFrame} msg
 * @returns {Frame}
 */
export function decodeFrame(msg) {
  /** @type {Record<string, unknown>} */
  const out = { type: FRAME, version: 0 };
  for (const [k, v] of Object.entries(msg))
    if (k !== "t" && k !== "p") out[FRAME_KEYS[/** @type {keyof WireFrame} */ (k)] ?? k] = v;
  out.parts = (msg.p ?? []).map((p) => {
    /** @type {Record<string, unknown>} */
    const part = {};
    for (const [k, v] of Object.entries(p)) part[PART_KEYS[/** @type {keyof WirePart} */ (k)] ?? k] = v;
    return part;
  });
  out.final = !!out.final;
  // (the keys are renamed one by one: the result has Frame's shape by FRAME_KEYS / PART_KEYS)
  return /** @type {Frame} */ (/** @type {unknown} */ (out));
}

/**
 * A `frame` custom message (wire form), as nbstream/frontend/protocol.py's is_frame.
 * @param {unknown} msg
 * @returns {msg is WireFrame}
 */
export const isFrame = (msg) =>
  typeof msg === "object" && msg !== null && /** @type {{t?: unknown}} */ (msg).t === FRAME_TAG;

/**
 * A reply to a log_page request.
 * @param {unknown} msg
 * @returns {msg is LogPageReply}
 */
export const isLogPage = (msg) =>
  typeof msg === "object" && msg !== null && /** @type {{type?: unknown}} */ (msg).type === LOG_PAGE;

export const FINAL_STATUSES = new Set(["done", "stopped", "error", "incomplete"]);

/**
 * Continue (Resume) is offered for an answer cut short: stopped, incomplete (a transport failure,
 * a stall, a token limit), or an error the server reported after some text.
 * @param {string} status
 * @param {string} text
 */
export const resumableStatus = (status, text) =>
  status === "stopped" || status === "incomplete" || (status === "error" && text.length > 0);

/**
 * Key of a part: choice, kind and (tool calls) index.
 * @param {{choice?: number, kind?: string, index?: number | null}} part
 */
export function partKey(part) {
  return `${part.choice ?? 0}:${part.kind ?? "text"}:${part.index ?? ""}`;
}

/** @returns {ToKernel} */
export const stop = () => ({ type: STOP });
/** @returns {ToKernel} */
export const regenerate = () => ({ type: REGENERATE });
/** @returns {ToKernel} */
export const resume = () => ({ type: RESUME });
/** @returns {ToKernel} */
export const retry = () => ({ type: RETRY });
/**
 * @param {number} version
 * @returns {ToKernel}
 */
export const resync = (version) => ({ type: RESYNC, version });
/**
 * A frontend holds these views' documents (`uids`: every view of the page that initialized
 * together, sent once through one of them; without it, the view that sends it).
 * @param {string[]} [uids]
 * @returns {ToKernel}
 */
export const ready = (uids) => (uids ? { type: READY, uids } : { type: READY });
/** @returns {BundleRequest} */
export const bundle = () => ({ type: BUNDLE });
/**
 * Ask for chunk-log rows of a version; `raw` adds raw JSON, `times` all arrival times, `jsonl` the export.
 * @param {{id: number, version: number, start?: number, count?: number, raw?: boolean, times?: boolean, jsonl?: boolean}} args
 * @returns {LogPageRequest}
 */
export const logPage = ({ id, version, start = 0, count = 100, raw = false, times = false, jsonl = false }) => ({
  type: LOG_PAGE,
  id,
  version,
  start,
  count,
  raw,
  times,
  jsonl,
});
