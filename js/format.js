// Words and numbers for the status line (pure, tested).

export const CHARS_PER_TOKEN = 4; // the same estimate as nbstream/metrics.py

export function fmtSeconds(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return null;
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

const STATUS_WORDS = {
  pending: "waiting for the first token…",
  streaming: "streaming",
  done: "done",
  stopped: "stopped",
  error: "error",
  incomplete: "incomplete",
};

/** The status line's pieces, in order; usage shown as absent when the server sent none. */
export function statusParts(status, metrics = {}) {
  const m = metrics ?? {};
  const parts = [STATUS_WORDS[status] ?? status];
  const ttft = fmtSeconds(m.ttft_s);
  if (ttft) parts.push(`first token ${ttft}`);
  if (Number.isFinite(m.tokens_per_s) && m.tokens_per_s > 0) parts.push(`${m.tokens_per_s.toFixed(1)} tok/s`);
  if (Number.isFinite(m.tokens)) parts.push(`${m.tokens}${m.tokens_estimated ? " tokens (est.)" : " tokens"}`);
  const el = fmtSeconds(m.duration_s);
  if (el) parts.push(el);
  if (m.model) parts.push(m.model);
  if (m.request_id) parts.push(m.request_id);
  const u = m.usage;
  if (u && (u.prompt_tokens != null || u.completion_tokens != null)) {
    parts.push(`usage ${u.prompt_tokens ?? "?"} in / ${u.completion_tokens ?? "?"} out`);
    // details only when reported (absent is not 0)
    if (u.reasoning_tokens != null) parts.push(`${u.reasoning_tokens} reasoning`);
    if (u.cached_tokens != null) parts.push(`${u.cached_tokens} cached`);
  } else if (status && status !== "pending" && status !== "streaming") {
    parts.push("usage: not reported");
  }
  return parts;
}
