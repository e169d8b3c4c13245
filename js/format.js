// @ts-check
// Words and numbers for the status line (pure, tested).

/** @typedef {import("./protocol.js").Metrics} Metrics */

export const CHARS_PER_TOKEN = 4; // the same estimate as nbstream/run/metrics.py

/**
 * @param {number | null | undefined} s
 * @returns {string | null}
 */
export function fmtSeconds(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return null;
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/** @type {Record<string, string>} */
const STATUS_WORDS = {
  pending: "waiting for the first token…",
  streaming: "streaming",
  done: "done",
  stopped: "stopped",
  error: "error",
  incomplete: "incomplete",
};

/** The status line's pieces, in order: the essentials only (status, model, tokens, duration),
 * so one line holds them even in a compare() column. The rest is in statusDetails().
 * @param {string} status
 * @param {Metrics | null} [metrics]
 */
export function statusParts(status, metrics = {}) {
  const m = metrics ?? {};
  const parts = [STATUS_WORDS[status] ?? status];
  if (m.model) parts.push(m.model);
  if (Number.isFinite(m.tokens)) parts.push(`${m.tokens}${m.tokens_estimated ? " tokens (est.)" : " tokens"}`);
  const el = fmtSeconds(m.duration_s);
  if (el) parts.push(el);
  return parts;
}

/** The details behind the status line (its hover text): speed, request id, usage as the server
 * reported it (reasoning and cached only when reported: absent is not 0).
 * @param {string} status
 * @param {Metrics | null} [metrics]
 */
export function statusDetails(status, metrics = {}) {
  const m = metrics ?? {};
  const details = [];
  const ttft = fmtSeconds(m.ttft_s);
  if (ttft) details.push(`first token ${ttft}`);
  const tps = m.tokens_per_s ?? Number.NaN;
  if (Number.isFinite(tps) && tps > 0) details.push(`${tps.toFixed(1)} tok/s`);
  if (m.request_id) details.push(`request ${m.request_id}`);
  const u = m.usage;
  if (u && (u.prompt_tokens != null || u.completion_tokens != null)) {
    details.push(`usage ${u.prompt_tokens ?? "?"} in / ${u.completion_tokens ?? "?"} out`);
    if (u.reasoning_tokens != null) details.push(`${u.reasoning_tokens} reasoning`);
    if (u.cached_tokens != null) details.push(`${u.cached_tokens} cached`);
  } else if (status && status !== "pending" && status !== "streaming") {
    details.push("usage: not reported");
  }
  return details;
}
