// @ts-check
// Rich answers (issue 7): reasoning label, tool-call cards, finish notices, content-filter results
// and token confidence; hosted-tool activity and cited sources (issue 14). Model output here (tool
// arguments, tokens, filter fields, tool outputs) is untrusted: it only ever reaches the DOM through
// textContent / attributes, never as HTML; citation links go through DOMPurify (sanitize.js).

import { escapeHTML, h } from "./dom.js";
import { CHARS_PER_TOKEN } from "./format.js";
import { setSafeHTML } from "./sanitize.js";

/** @typedef {import("./protocol.js").PartMeta} PartMeta */
/** A token with its logprob and the top alternatives ([token, logprob] pairs). @typedef {{token: string, logprob: number, top: [string, number][]}} Token */
/** One content-filter result row. @typedef {{scope: string, category: string, text: string, flagged: boolean}} FilterRow */
/** A tool call's or hosted tool's part (a document part: see document.js). @typedef {{index: number | null, text: string, meta: PartMeta}} ToolPart */

// ---- pure helpers (tested in rich.test.js) ---------------------------------------------------

/** Logprob lines ("[token, logprob, [[alt, logprob], ...]]\n" each) -> tokens; a partial last
 * line (mid-frame) is left for later.
 * @param {string} text
 * @returns {Token[]}
 */
export function parseLogprobs(text) {
  /** @type {Token[]} */
  const out = [];
  if (!text) return out;
  const end = text.lastIndexOf("\n");
  for (const line of text.slice(0, end + 1).split("\n")) {
    if (!line) continue;
    try {
      const [token, logprob, top] = JSON.parse(line);
      out.push({ token: String(token), logprob: Number(logprob), top: Array.isArray(top) ? top : [] });
    } catch {
      // a malformed line: skipped, the others still show
    }
  }
  return out;
}

/** @param {number} lp */
const pct = (lp) => {
  const p = Math.exp(lp) * 100;
  return p >= 99.95 ? "100%" : p >= 10 ? `${p.toFixed(1)}%` : `${p.toPrecision(2)}%`;
};

/** Background colour for a token: red (unlikely) -> amber -> green (certain), translucent so it
 * reads on light and dark themes.
 * @param {number} logprob
 */
export function confidenceColor(logprob) {
  const p = Math.max(0, Math.min(1, Math.exp(logprob)));
  return `hsla(${Math.round(120 * p)}, 85%, 50%, ${(0.45 - 0.25 * p).toFixed(2)})`;
}

/**
 * Hover text of a token: its probability and the top alternatives.
 * @param {Token} tok
 */
export function tokenTitle(tok) {
  const lines = [`${JSON.stringify(tok.token)}  p = ${pct(tok.logprob)}  (logprob ${tok.logprob.toFixed(3)})`];
  const alts = tok.top.filter(([t]) => t !== tok.token);
  if (alts.length) lines.push("alternatives:", ...alts.map(([t, lp]) => `  ${JSON.stringify(t)}  ${pct(lp)}`));
  else if (tok.top.length === 0) lines.push("(no alternatives sent: ask with top_logprobs)");
  return lines.join("\n");
}

/** A tool call's arguments: streaming (raw text), or once complete pretty JSON / flagged invalid.
 * A custom (freeform) tool's input is plain text: shown as it is, never flagged for not being JSON.
 * @param {string} text
 * @param {boolean} complete
 * @returns {{state: "streaming" | "valid" | "invalid", shown: string, error: string | null}}
 */
export function toolArguments(text, complete, custom = false) {
  if (!complete) return { state: "streaming", shown: text, error: null };
  if (custom) return { state: "valid", shown: text, error: null };
  if (text.trim() === "") return { state: "invalid", shown: text, error: "no arguments (an empty string is not JSON)" };
  try {
    return { state: "valid", shown: JSON.stringify(JSON.parse(text), null, 2), error: null };
  } catch (e) {
    return { state: "invalid", shown: text, error: `invalid JSON: ${/** @type {Error} */ (e).message}` };
  }
}

/** @type {Record<string, {kind: "warn" | "error" | "info", text: string}>} */
const FINISH = {
  length: {
    kind: "warn",
    text: "Cut off: the answer reached the token limit (finish_reason length). Continue asks the model to go on.",
  },
  content_filter: {
    kind: "error",
    text: "Stopped by the content filter (finish_reason content_filter): the rest of the answer was withheld.",
  },
  tool_calls: {
    kind: "info",
    text: "The model asks to call the tools below (finish_reason tool_calls): run them and send the results back.",
  },
  function_call: { kind: "info", text: "The model asks to call a function (finish_reason function_call)." },
};

/**
 * What a finish reason means for the user, or null when it needs no words ("stop").
 * @param {string | null | undefined} reason
 */
export function finishNotice(reason) {
  return FINISH[reason ?? ""] ?? null;
}

/**
 * @param {any} v a result's value (Azure's shapes vary: severity, detected, filtered, citation)
 * @returns {{text: string, flagged: boolean}}
 */
function filterValue(v) {
  if (v === null || typeof v !== "object") return { text: String(v), flagged: false };
  const bits = [];
  if (typeof v.severity === "string") bits.push(v.severity);
  if (typeof v.detected === "boolean") bits.push(v.detected ? "detected" : "not detected");
  if (v.filtered === true) bits.push("filtered");
  if (v.citation && typeof v.citation === "object")
    bits.push(`citation: ${v.citation.URL || v.citation.license || "yes"}`);
  return { text: bits.join(", ") || JSON.stringify(v), flagged: v.filtered === true || v.detected === true };
}

/** Azure content-filter results (per choice, or {prompt_filter_results}, or {moderation}) ->
 * rows {scope, category, text, flagged}.
 * @param {any} results content-filter results as the server sent them (untrusted, any shape)
 * @param {string} [scope]
 * @returns {FilterRow[]}
 */
export function filterRows(results, scope = "answer") {
  /** @type {FilterRow[]} */
  const rows = [];
  if (!results || typeof results !== "object") return rows;
  if (Array.isArray(results.prompt_filter_results)) {
    for (const p of results.prompt_filter_results)
      rows.push(...filterRows(p?.content_filter_results, `prompt ${p?.prompt_index ?? 0}`));
    return rows;
  }
  if (results.moderation && typeof results.moderation === "object") {
    return filterRows(results.moderation, "moderation");
  }
  for (const [category, v] of Object.entries(results)) {
    if (category === "error" && v && typeof v === "object") {
      rows.push({ scope, category, text: `error: ${v.message ?? v.code ?? "?"}`, flagged: true });
      continue;
    }
    rows.push({ scope, category, ...filterValue(v) });
  }
  return rows;
}

/** The "Thinking" section's summary line. Tokens: the server's reasoning_tokens when reported
 * (single choice only: usage covers all choices), else estimated from the characters. */
// Hosted tools: what the server ran, by the part's meta.type (the Responses item type without
// "_call"; Groq's executed_tools type). An unknown type still shows, under its own name.
/** @type {Record<string, string>} */
const HOSTED_NAMES = {
  web_search: "Web search",
  file_search: "File search",
  code_interpreter: "Code interpreter",
  mcp: "MCP tool",
  mcp_list_tools: "MCP tools listed",
  image_generation: "Image generation",
  search: "Web search",
  local_shell: "Shell",
  computer: "Computer use",
};
// plain symbols that common UI fonts carry (emoji render as empty boxes without an emoji font)
/** @type {Record<string, string>} */
const HOSTED_ICONS = { web_search: "⚲", search: "⚲", file_search: "▤", code_interpreter: "λ", image_generation: "▣" };
const HOSTED_OUTPUT_CHARS = 2000; // a search result or MCP answer can be long: the rest is in the log

/**
 * The one-line head of a hosted tool: icon, label ("MCP tool ask_question"), status text.
 * @param {PartMeta} [meta]
 */
export function hostedLabel(meta = {}) {
  const type = String(meta.type ?? "tool");
  const base = HOSTED_NAMES[type] ?? type.replace(/_/g, " ");
  const label = meta.name ? `${base} · ${meta.name}` : base;
  const status = String(meta.status ?? "").replace(/_/g, " ");
  const extra = Number(meta.images) > 0 ? ` · ${meta.images} partial image${Number(meta.images) > 1 ? "s" : ""}` : "";
  return { icon: HOSTED_ICONS[type] ?? "⚙", label, status: status + extra };
}

/** The sources list as HTML (to go through DOMPurify: a link whose URL is not http(s) loses its
 * href there). `cites`: [{url?, title?, file_id?, filename?}] in citation order.
 * @param {PartMeta[]} cites
 */
export function citationsHTML(cites) {
  const items = cites.map((m, i) => {
    if (m.url) {
      const text = escapeHTML(m.title || m.url);
      return `<li data-testid="citation" data-index="${i}"><a href="${escapeHTML(m.url)}">${text}</a></li>`;
    }
    const name = escapeHTML(m.filename || m.file_id || "(file)");
    const id = m.file_id && m.filename ? ` <span class="nbstream-cite-id">${escapeHTML(m.file_id)}</span>` : "";
    return `<li data-testid="citation" data-index="${i}">▤ ${name}${id}</li>`;
  });
  return `<ol class="nbstream-cite-list">${items.join("")}</ol>`;
}

/**
 * @param {{streaming: boolean, seconds?: number, chars: number, reportedTokens?: number}} args
 */
export function thinkingLabel({ streaming, seconds, chars, reportedTokens }) {
  const parts = [streaming ? "Thinking…" : "Thought"];
  if (seconds !== undefined && Number.isFinite(seconds))
    parts.push(seconds < 1 ? `${Math.round(seconds * 1000)} ms` : `${seconds.toFixed(1)} s`);
  if (reportedTokens !== undefined && Number.isFinite(reportedTokens)) parts.push(`${reportedTokens} reasoning tokens`);
  else if (chars > 0) parts.push(`~${Math.max(1, Math.round(chars / CHARS_PER_TOKEN))} tokens (estimated)`);
  return parts.join(" · ");
}

// ---- DOM pieces ------------------------------------------------------------------------------

/** Tool-call cards of one choice, kept by index: a frame only touches the card whose text grew. */
export class ToolCards {
  /** @param {HTMLElement} container */
  constructor(container) {
    this.el = container;
    /** @type {Map<number, {el: HTMLElement, name: HTMLElement, id: HTMLElement, args: HTMLElement, flag: HTMLElement, text: string | null, complete: boolean | null}>} */
    this.cards = new Map(); // index -> {el, name, id, args, flag, text, complete}
  }

  /**
   * @param {ToolPart[]} calls in index order
   * @param {(index: number) => boolean} complete whether call `index` has all its arguments
   */
  update(calls, complete) {
    const seen = new Set();
    for (const call of calls) {
      const key = call.index ?? 0;
      seen.add(key);
      let card = this.cards.get(key);
      if (!card) {
        const name = h("span", { className: "nbstream-tool-name", "data-testid": "tool-name" });
        const id = h("span", { className: "nbstream-tool-id", "data-testid": "tool-id" });
        const flag = h("div", { className: "nbstream-tool-flag", "data-testid": "tool-invalid", role: "alert" });
        const args = h("pre", { className: "nbstream-tool-args", "data-testid": "tool-args" });
        const el = h(
          "div",
          { className: "nbstream-tool", "data-testid": "tool-call", "data-index": String(key) },
          h(
            "div",
            { className: "nbstream-tool-head" },
            h("span", { className: "nbstream-tool-icon", text: "ƒ" }),
            name,
            id,
          ),
          args,
          flag,
        );
        card = { el, name, id, args, flag, text: null, complete: null };
        this.cards.set(key, card);
        this.el.append(el);
      }
      const done = !!complete(key);
      if (card.text === call.text && card.complete === done) continue;
      card.text = call.text;
      card.complete = done;
      card.name.textContent = call.meta?.name ?? "(tool)";
      card.id.textContent = call.meta?.id ?? "";
      const a = toolArguments(call.text, done, call.meta?.type === "custom");
      card.args.textContent = a.shown;
      card.el.dataset.state = a.state;
      card.flag.hidden = !a.error;
      card.flag.textContent = a.error ?? "";
    }
    for (const [key, card] of this.cards) {
      if (!seen.has(key)) {
        card.el.remove();
        this.cards.delete(key);
      }
    }
  }

  clear() {
    this.cards.clear();
    this.el.replaceChildren();
  }
}

/** Hosted-tool lines of one choice, kept by index (like ToolCards): icon, name, status, the input
 * (code, query, MCP arguments) and the output folded away. */
export class HostedTools {
  /** @param {HTMLElement} container */
  constructor(container) {
    this.el = container;
    /** @type {Map<number, {el: HTMLElement, icon: HTMLElement, head: HTMLElement, status: HTMLElement, input: HTMLElement, output: HTMLElement, outputText: HTMLElement, sig: string | null}>} */
    this.lines = new Map(); // index -> {el, head, status, input, output, sig}
  }

  /** @param {ToolPart[]} parts in index order */
  update(parts) {
    const seen = new Set();
    for (const part of parts) {
      const key = part.index ?? 0;
      seen.add(key);
      let line = this.lines.get(key);
      if (!line) {
        const icon = h("span", { className: "nbstream-hosted-icon" });
        const head = h("span", { className: "nbstream-hosted-name", "data-testid": "hosted-name" });
        const status = h("span", { className: "nbstream-hosted-status", "data-testid": "hosted-status" });
        const input = h("pre", {
          className: "nbstream-tool-args nbstream-hosted-input",
          "data-testid": "hosted-input",
        });
        const outputText = h("pre", { className: "nbstream-tool-args" });
        const output = h(
          "details",
          { className: "nbstream-hosted-output", "data-testid": "hosted-output" },
          h("summary", { text: "Output" }),
          outputText,
        );
        const el = h(
          "div",
          { className: "nbstream-tool nbstream-hosted", "data-testid": "hosted-tool", "data-index": String(key) },
          h("div", { className: "nbstream-tool-head" }, icon, head, status),
          input,
          output,
        );
        line = { el, icon, head, status, input, output, outputText, sig: null };
        this.lines.set(key, line);
        this.el.append(el);
      }
      const meta = part.meta ?? {};
      const sig = `${part.text.length}|${meta.status}|${meta.name}|${meta.images}|${meta.output?.length}`;
      if (line.sig === sig) continue;
      line.sig = sig;
      const label = hostedLabel(meta);
      line.icon.textContent = label.icon;
      line.head.textContent = label.label;
      line.status.textContent = label.status;
      line.el.dataset.type = String(meta.type ?? "tool");
      line.el.dataset.status = String(meta.status ?? "");
      line.input.hidden = !part.text;
      line.input.textContent = part.text;
      const out = typeof meta.output === "string" ? meta.output : "";
      line.output.hidden = !out;
      line.outputText.textContent =
        out.length > HOSTED_OUTPUT_CHARS
          ? `${out.slice(0, HOSTED_OUTPUT_CHARS)}… (${out.length} characters: the whole output is in the log)`
          : out;
    }
    for (const [key, line] of this.lines) {
      if (!seen.has(key)) {
        line.el.remove();
        this.lines.delete(key);
      }
    }
  }
}

/**
 * Cited sources: a numbered list of links (or file names), rebuilt only when a source is added.
 * @param {HTMLElement & {nbstreamSig?: string}} container
 * @param {PartMeta[]} cites
 */
export function paintCitations(container, cites) {
  const sig = JSON.stringify(cites);
  if (container.nbstreamSig === sig) return;
  container.nbstreamSig = sig;
  const list = h("div");
  setSafeHTML(list, citationsHTML(cites));
  container.replaceChildren(h("div", { className: "nbstream-cite-label", text: "Sources" }), ...list.childNodes);
}

/** Token confidence: tokens coloured by probability, alternatives on hover. Appends only the
 * tokens not yet shown (a stream's tokens only grow). */
export class Confidence {
  /** @param {HTMLElement} container */
  constructor(container) {
    this.el = container;
    /** @type {string | null} */
    this.key = null;
    this.shown = 0; // tokens shown
    this.parsed = 0; // characters of the logprob lines parsed
    this.tokens = h("span", { className: "nbstream-tokens" });
    // a small popover (the title attribute shows the same text, but slowly and not in screenshots)
    this.popover = h("div", {
      className: "nbstream-token-popover",
      "data-testid": "token-popover",
      role: "tooltip",
      hidden: "",
    });
    this.el.append(this.tokens, this.popover);
    this.el.addEventListener("mouseover", (e) => this.hover(e.target));
    this.el.addEventListener("mouseleave", () => {
      this.popover.hidden = true;
    });
  }

  /** @param {EventTarget | null} target */
  hover(target) {
    if (!(target instanceof HTMLElement) || !target.classList.contains("nbstream-token")) return;
    this.popover.textContent = target.title;
    this.popover.style.left = `${target.offsetLeft}px`;
    this.popover.style.top = `${target.offsetTop + target.offsetHeight + 2}px`;
    this.popover.hidden = false;
  }

  /** `lines`: the part's logprob lines so far; only the lines not parsed yet are parsed (a long
   * stream must not be re-parsed on every paint).
   * @param {string} key
   * @param {string} lines
   */
  update(key, lines, { refusal = false } = {}) {
    if (key !== this.key || lines.length < this.parsed) {
      this.key = key;
      this.shown = 0;
      this.parsed = 0;
      this.tokens.replaceChildren();
      this.popover.hidden = true;
    }
    const end = lines.lastIndexOf("\n") + 1;
    if (end <= this.parsed) return;
    const tokens = parseLogprobs(lines.slice(this.parsed, end));
    this.parsed = end;
    const frag = document.createDocumentFragment();
    for (const tok of tokens) {
      const span = h("span", {
        className: `nbstream-token${refusal ? " nbstream-token-refusal" : ""}`,
        "data-testid": "token",
        "data-p": Math.exp(tok.logprob).toFixed(4),
        title: tokenTitle(tok),
        text: tok.token,
      });
      span.style.background = confidenceColor(tok.logprob);
      frag.append(span);
    }
    this.tokens.append(frag);
    this.shown += tokens.length;
  }
}

/**
 * Content-filter results as a small table (rows from filterRows).
 * @param {HTMLDetailsElement} container
 * @param {FilterRow[]} rows
 */
export function paintFilter(container, rows) {
  const flagged = rows.filter((r) => r.flagged);
  const summary = h("summary", {
    text: flagged.length
      ? `Content filter: ${flagged.map((r) => `${r.category} (${r.scope})`).join(", ")} flagged`
      : `Content filter: nothing flagged (${rows.length} checks)`,
  });
  const table = h(
    "table",
    { className: "nbstream-filter-table" },
    ...rows.map((r) =>
      h(
        "tr",
        { className: r.flagged ? "nbstream-filter-flagged" : "", "data-testid": "filter-row" },
        h("td", { text: r.scope }),
        h("td", { text: r.category }),
        h("td", { text: r.text }),
      ),
    ),
  );
  const open = container.open;
  container.replaceChildren(summary, table);
  container.open = open;
  container.dataset.flagged = String(flagged.length > 0);
}
