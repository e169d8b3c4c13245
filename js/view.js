// @ts-check
// DOM of one view: toolbar (Stop, Regenerate, Continue, Copy, versions pager), the answer (incremental
// Markdown), a status line and the chunk-log panel. Document changes only mark the view dirty; the
// paint happens once per animation frame, whatever the message rate.

import { h, raf } from "./dom.js";
import { statusDetails, statusParts } from "./format.js";
import { LogPanel } from "./logpanel.js";
import { IncrementalMarkdown } from "./markdown.js";
import { FINAL_STATUSES, regenerate, resumableStatus, resume, stop } from "./protocol.js";
import {
  Confidence,
  filterRows,
  finishNotice,
  HostedTools,
  paintCitations,
  paintFilter,
  ToolCards,
  thinkingLabel,
} from "./rich.js";

// Script time per animation frame for the answer's Markdown (new blocks, math, highlighting); the
// rest of a 16.7 ms frame is left for the page's own work (messages, style, layout, paint).
export const FRAME_BUDGET_MS = 6;
// Once the shown version has ended no text arrives any more. 12 ms made a streamed answer's
// catch-up shorter while every block was its own content-visibility box; with blocks in groups
// (markdown.js) a 100k-token stream has nothing left to catch up at its end, and what remains is a
// whole answer at once (a reload, a second view), where 12 ms of script plus the browser's work
// made 33 ms frames: bench_browser.py at 30k tokens, second view, p50 / p95 33.3 / 83.4 ms with
// 12 ms, 16.7 / 50.0 ms with 6 ms (complete in 3.2 vs 3.4 s; load 7-8).
export const END_FRAME_BUDGET_MS = 6;

/** @type {Record<string, string>} */
const STOP_TITLES = {
  background: "Stop the stream (keeps the partial answer)",
  await: "Stop the stream (keeps the partial answer)",
  blocking: "Stop the stream (interrupts this cell; the partial answer is kept)",
  idle: "Stop the stream",
};

// DOM events between the view and the notebook around it (the JupyterLab extension, js/lab/):
// the view asks for the kernel interrupt when its cell holds the kernel (a click cannot reach a
// busy kernel, the interrupt can), and hears when the kernel is gone.
export const INTERRUPT_EVENT = "nbstream:interrupt";
export const KERNEL_EVENT = "nbstream:kernel";
// A version ended: the extension saves the answer's snapshot into the notebook (output metadata).
export const FINAL_EVENT = "nbstream:final";
/** @type {Record<string, string>} */
const KERNEL_GONE = {
  restarting: "The kernel restarted",
  autorestarting: "The kernel restarted",
  dead: "The kernel died",
  terminating: "The kernel was shut down",
  unknown: "The kernel is gone",
};

const TRAITS = ["mode", "rerunnable", "resumable", "format", "language", "heading"]; // repaint on change

/** @typedef {import("./document.js").Version} Version */

export class View {
  /**
   * @param {HTMLElement} el where the view goes
   * @param {import("./types.js").Model} model
   * @param {import("./document.js").StreamDocument} doc
   * @param {{logs?: unknown, now?: () => number, budget?: number, endBudget?: number}} [options]
   */
  constructor(
    el,
    model,
    doc,
    { logs, now = () => performance.now(), budget = FRAME_BUDGET_MS, endBudget = END_FRAME_BUDGET_MS } = {},
  ) {
    this.model = model;
    this.now = now;
    this.budget = budget;
    this.endBudget = endBudget;
    this.catchingUp = false; // a catch-up frame is scheduled
    this.doc = doc;
    this.shown = null; // version page shown; null = follow the newest (UI-only, never synced)
    this.dirty = false;
    this.paints = 0;
    this.stopButton = h(
      "button",
      { "data-testid": "stop", className: "nbstream-btn nbstream-stop", onclick: () => this.onStop() },
      "■ Stop",
    );
    this.regenButton = h(
      "button",
      {
        "data-testid": "regenerate",
        className: "nbstream-btn",
        title: "Run the same request again; this answer stays as a version",
        onclick: () => this.send(regenerate()),
      },
      "↻ Regenerate",
    );
    this.resumeButton = h(
      "button",
      {
        "data-testid": "resume",
        className: "nbstream-btn",
        title: "Ask the model to continue this partial answer",
        onclick: () => this.send(resume()),
      },
      "→ Continue",
    );
    this.copyButton = h(
      "button",
      {
        "data-testid": "copy",
        className: "nbstream-btn",
        title: "Copy the answer as Markdown",
        onclick: () => this.copy(),
      },
      "Copy",
    );
    this.prev = h(
      "button",
      {
        "data-testid": "version-prev",
        className: "nbstream-btn nbstream-page",
        title: "Previous version",
        onclick: () => this.page(-1),
      },
      "‹",
    );
    this.next = h(
      "button",
      {
        "data-testid": "version-next",
        className: "nbstream-btn nbstream-page",
        title: "Next version",
        onclick: () => this.page(1),
      },
      "›",
    );
    this.pageLabel = h("span", { "data-testid": "version-label", className: "nbstream-page-label" });
    this.pager = h(
      "span",
      { "data-testid": "version-pager", className: "nbstream-pager" },
      this.prev,
      this.pageLabel,
      this.next,
    );
    this.showConfidence = false; // UI-only
    this.confidenceButton = h(
      "button",
      {
        "data-testid": "confidence-toggle",
        className: "nbstream-btn",
        "aria-pressed": "false",
        title: "Colour each token by its probability (hover a token for the alternatives)",
        onclick: () => {
          this.showConfidence = !this.showConfidence;
          this.invalidate();
        },
      },
      "Token confidence",
    );
    this.toolbar = h(
      "div",
      { className: "nbstream-toolbar" },
      this.stopButton,
      this.regenButton,
      this.resumeButton,
      this.copyButton,
      this.confidenceButton,
      this.pager,
    );
    this.tabs = h("div", { "data-testid": "choice-tabs", className: "nbstream-tabs", role: "tablist", hidden: true });
    this.reasoningLabel = h("summary", { "data-testid": "reasoning-label", text: "Thinking" });
    this.reasoning = h(
      "details",
      { "data-testid": "reasoning", className: "nbstream-reasoning", open: "" },
      this.reasoningLabel,
      h("div", { className: "nbstream-reasoning-text", "data-testid": "reasoning-text" }),
    );
    this.refusalText = h("div", { className: "nbstream-refusal-text", "data-testid": "refusal-text" });
    this.refusal = h(
      "div",
      { "data-testid": "refusal", className: "nbstream-refusal", role: "note" },
      h("div", { className: "nbstream-refusal-label", text: "⊘ The model refused" }),
      this.refusalText,
    );
    this.answer = h("div", { "data-testid": "answer", className: "nbstream-answer" });
    this.confidence = h("div", { "data-testid": "confidence", className: "nbstream-confidence", hidden: true });
    this.tools = h("div", { "data-testid": "tool-calls", className: "nbstream-tools" });
    this.finish = h("div", { "data-testid": "finish", className: "nbstream-finish", hidden: true });
    this.filter = h("details", { "data-testid": "content-filter", className: "nbstream-filter", hidden: true });
    this.toolCards = new ToolCards(this.tools);
    this.hosted = h("div", {
      "data-testid": "hosted-tools",
      className: "nbstream-tools nbstream-hosted-tools",
      hidden: true,
    });
    this.hostedTools = new HostedTools(this.hosted);
    this.sources = h("div", { "data-testid": "citations", className: "nbstream-citations", hidden: true });
    this.tokens = new Confidence(this.confidence);
    this.choice = 0; // choice tab shown (UI-only, never synced)
    this.error = h("div", { "data-testid": "error", className: "nbstream-error", role: "status" });
    this.status = h("div", { "data-testid": "status", className: "nbstream-status", "aria-live": "polite" });
    this.notes = h("div", { "data-testid": "notes", className: "nbstream-notes", hidden: true }); // resilience: flags, rate limit, budget
    this.log = new LogPanel(model, doc, logs, () => this.versionShown());
    // which answer this is, when several stack in one output (background answers in a loop)
    this.heading = h("div", { "data-testid": "heading", className: "nbstream-heading", hidden: "" });
    this.root = h(
      "div",
      { className: "nbstream-root" },
      this.heading,
      this.toolbar,
      this.tabs,
      this.reasoning,
      this.hosted,
      this.refusal,
      this.answer,
      this.sources,
      this.confidence,
      this.tools,
      this.finish,
      this.filter,
      this.error,
      this.status,
      this.notes,
      this.log.el,
    );
    /** @type {IncrementalMarkdown | null} */
    this.renderer = null;
    /** @type {string | null} */
    this.rendererVersion = null;
    el.appendChild(this.root);
    this.kernelGone = null; // why the kernel behind this view is gone (the extension tells)
    /** @param {Event & {detail?: {status?: string}}} event */
    this.onKernel = (event) => this.kernelChanged(event.detail?.status);
    this.root.addEventListener(KERNEL_EVENT, this.onKernel);
    this.unsubscribe = doc.subscribe(() => this.invalidate());
    this.onTrait = () => this.invalidate();
    for (const t of TRAITS) model.on(`change:${t}`, this.onTrait);
    this.paint();
  }

  /** @param {import("./protocol.js").ToKernel} msg */
  send(msg) {
    this.model.send(msg);
  }

  onStop() {
    // (not once the document has the version's end: a late click must not interrupt the kernel,
    // which may be running the next cell by now)
    if (this.model.get("mode") === "blocking" && this.doc.isStreaming()) {
      // The cell runs the stream synchronously: the kernel reads no message until it ends, but
      // its interrupt arrives at once and nbstream turns it into a clean Stop (partial text kept,
      // no traceback, Run All goes on). The notebook's extension sends it for us.
      const detail = { uid: this.model.get("uid"), handled: false };
      this.root.dispatchEvent(new CustomEvent(INTERRUPT_EVENT, { bubbles: true, detail }));
      this.status.dataset.hint = "1";
      this.status.textContent = detail.handled
        ? "Stopping…"
        : "This cell holds the kernel: use the notebook's interrupt button (■) to stop. The partial answer is kept.";
    }
    this.send(stop()); // sent anyway: delivered if the kernel can, e.g. on a subshell
  }

  /** The kernel behind this view restarted or died: say so, keep the text, disable what needs it.
   * @param {string | undefined} status
   */
  kernelChanged(status) {
    const gone = KERNEL_GONE[status ?? ""] ?? null;
    if (!gone || this.kernelGone) return;
    this.kernelGone = gone;
    this.invalidate();
  }

  versionShown() {
    const n = this.doc.versions.length;
    if (n === 0) return 0;
    return this.shown === null ? Math.min(this.doc.current, n - 1) : Math.min(this.shown, n - 1);
  }

  /** @param {number} delta */
  page(delta) {
    const n = this.doc.versions.length;
    const v = Math.max(0, Math.min(n - 1, this.versionShown() + delta));
    this.shown = v >= this.doc.current ? null : v;
    this.invalidate();
  }

  async copy() {
    const text = this.doc.text(this.versionShown(), `${this.choice}:text:`);
    try {
      await navigator.clipboard.writeText(text);
      this.copyButton.textContent = "Copied";
    } catch {
      this.copyButton.textContent = "Copy failed";
    }
    setTimeout(() => {
      this.copyButton.textContent = "Copy";
    }, 1500);
  }

  invalidate() {
    if (this.dirty) return;
    if (!this.firstTextShown && this.doc.text(this.versionShown(), "0:text:")) {
      // the first token is painted at once, not at the next animation frame (up to 16 ms later)
      this.firstTextShown = true;
      this.paint();
      return;
    }
    this.dirty = true;
    raf(() => this.paint());
  }

  paint() {
    this.dirty = false;
    this.paints += 1;
    const vi = this.versionShown();
    const v = this.doc.versions[vi];
    const status = v?.status ?? "pending";
    const mode = this.model.get("mode") ?? "idle";
    const format = this.model.get("format") ?? "markdown";
    this.root.dataset.status = status;
    this.root.dataset.mode = mode;
    this.root.dataset.version = String(vi);
    const gaps = String(this.doc.gaps); // frames found missing (each asks for a resync): diagnostics
    if (this.root.dataset.gaps !== gaps) this.root.dataset.gaps = gaps;

    const c = this.paintTabs(v);
    const shownKey = `${vi}:${c}`;
    if (!this.renderer || this.rendererVersion !== shownKey || this.renderer.format !== format) {
      this.answer.replaceChildren();
      this.renderer?.destroy();
      this.renderer = new IncrementalMarkdown(this.answer, {
        format,
        language: this.model.get("language") ?? "",
        budget: this.budget,
        now: this.now,
      });
      this.rendererVersion = shownKey;
    }
    const text = this.doc.text(vi, `${c}:text:`);
    this.renderer.budget = FINAL_STATUSES.has(status) ? this.endBudget : this.budget;
    this.renderedState(this.renderer.update(text));
    this.paintRich(v, vi, c, text, shownKey);

    const heading = this.model.get("heading") ?? "";
    if (this.heading.textContent !== heading) {
      this.heading.textContent = heading;
      this.heading.title = heading;
    }
    this.heading.hidden = !heading;

    const saved = mode === "saved"; // a stored answer without a kernel (js/lab/ renders it)
    const gone = this.kernelGone;
    const final = FINAL_STATUSES.has(status) || saved || !!gone;
    const live = !final && vi === this.doc.current;
    this.root.dataset.kernel = gone ? "gone" : saved ? "none" : "live";
    this.log.el.hidden = saved || !!gone; // the chunk log lives in the kernel
    this.stopButton.hidden = !live;
    this.stopButton.title = STOP_TITLES[mode] ?? STOP_TITLES.idle;
    this.regenButton.hidden = !this.model.get("rerunnable") || !!gone;
    this.regenButton.disabled = live;
    this.resumeButton.hidden =
      !!gone ||
      !(
        this.model.get("resumable") &&
        final &&
        resumableStatus(status, this.doc.text(vi)) &&
        vi === this.doc.current &&
        !v?.resumeBlocked
      );
    const n = this.doc.versions.length;
    this.pager.hidden = n < 2;
    this.pageLabel.textContent = `${vi + 1}/${n}`;
    this.prev.disabled = vi === 0;
    this.next.disabled = vi >= n - 1;

    let reason = v?.reason;
    let shownStatus = status;
    if (!FINAL_STATUSES.has(status) && (saved || gone)) {
      // it never ended here: the text up to then is all there is
      shownStatus = "stopped";
      this.root.dataset.status = shownStatus; // no "streaming" (a pulsing dot) for a dead stream
      reason = gone
        ? `${gone} while this answer streamed: the text up to then is kept`
        : "The notebook was saved while this answer streamed: the text up to then is kept";
    } else if (gone) {
      reason = reason ?? `${gone}: this answer is kept; run the cell again to ask again`;
    }
    // a finish-reason notice (cut off, filtered) already says it: no second box
    const saidByNotice = !this.finish.hidden && typeof reason === "string" && reason.startsWith("finish_reason ");
    this.error.hidden =
      saidByNotice ||
      !(reason && (gone || shownStatus === "error" || shownStatus === "incomplete" || shownStatus === "stopped"));
    this.error.textContent = this.error.hidden ? "" : reason;
    // the banner's kind sets its look: an error is an alert; a Stop the user chose, a cut
    // connection or a gone kernel are notices (a calm grey or amber, not red)
    const kind = gone ? "kernel" : shownStatus;
    if (this.error.dataset.kind !== kind) {
      this.error.dataset.kind = kind;
      this.error.setAttribute("role", kind === "error" ? "alert" : "status");
    }
    if (!this.status.dataset.hint || final) {
      delete this.status.dataset.hint;
      const parts = statusParts(shownStatus, v?.metrics);
      if (!final && reason) parts.push(reason); // e.g. "HTTP 503, retrying in 1.2 s (attempt 2/4)"
      this.status.textContent = parts.join(" · ");
      // request id, speed and usage on hover; the chunk log has the rest (headers, rate limits)
      const details = statusDetails(shownStatus, v?.metrics).join(" · ");
      if (this.status.title !== details) this.status.title = details;
    }
    const notes = v?.notes ?? [];
    this.notes.hidden = notes.length === 0;
    this.notes.textContent = notes.join(" · ");
    this.log.paint();
    this.reportFinal();
  }

  /** Tell the notebook around (js/lab/) that the newest version ended, once per version and seq:
   * it stores the snapshot with the notebook, so the answer is there when it is reopened. */
  reportFinal() {
    const n = this.doc.versions.length;
    const v = this.doc.versions[n - 1];
    if (!v || !FINAL_STATUSES.has(v.status) || this.model.get("mode") === "saved") return;
    const key = `${n}:${v.seq}`;
    if (this.reported === key) return;
    /** @type {string | undefined} */
    this.reported = key;
    const detail = {
      uid: this.model.get("uid"),
      snapshot: this.doc.toSnapshot(),
      format: this.model.get("format"),
      language: this.model.get("language"),
      heading: this.model.get("heading") ?? "",
    };
    this.root.dispatchEvent(new CustomEvent(FINAL_EVENT, { bubbles: true, detail }));
  }

  /** The renderer has more to do than one frame's budget: keep painting the answer (only) on
   * the next frames until it shows the whole text, even when no new message arrives.
   * @param {boolean} complete
   */
  renderedState(complete) {
    const state = complete ? "complete" : "partial";
    if (this.answer.dataset.rendered !== state) this.answer.dataset.rendered = state; // a DOM hook for tests
    if (complete || this.catchingUp) return;
    this.catchingUp = true;
    raf(() => {
      this.catchingUp = false;
      if (this.dirty || !this.renderer) return; // a full paint comes in this frame: it continues
      this.renderedState(this.renderer.flush());
    });
  }

  /** Tabs when the version has several choices (n > 1); returns the choice shown.
   * @param {Version | undefined} v
   */
  paintTabs(v) {
    const choices = v
      ? [...new Set([...v.parts.values()].map((p) => p.choice).filter((i) => i >= 0))].sort((a, b) => a - b)
      : [];
    const finishes = v?.metrics?.finish_reasons ?? {};
    if (!choices.includes(this.choice)) this.choice = choices[0] ?? 0;
    this.tabs.hidden = choices.length < 2;
    if (choices.length < 2) {
      if (this.tabs.childElementCount) this.tabs.replaceChildren();
      return this.choice;
    }
    const labels = choices.map((i) => `Choice ${i + 1}${finishes[i] ? ` · ${finishes[i]}` : " · …"}`);
    const sig = `${this.choice}|${labels.join("|")}`;
    if (this.tabsSig !== sig) {
      /** @type {string | undefined} */
      this.tabsSig = sig;
      this.tabs.replaceChildren(
        ...choices.map((i, k) =>
          h(
            "button",
            {
              className: `nbstream-tab${i === this.choice ? " nbstream-tab-active" : ""}`,
              role: "tab",
              "data-testid": "choice-tab",
              "data-choice": String(i),
              "aria-selected": String(i === this.choice),
              "data-finish": finishes[i] ?? "",
              onclick: () => {
                this.choice = i;
                this.invalidate();
              },
            },
            labels[k],
          ),
        ),
      );
    }
    return this.choice;
  }

  /** The reasoning text grows by appended text nodes (not rebuilt each frame) and follows the
   * end while it streams, unless the user scrolled up to read. */
  /**
   * @param {string} text
   * @param {string} key
   */
  paintReasoningText(text, key) {
    const box = /** @type {HTMLElement} */ (this.reasoning.lastChild);
    const shown = this.reasoningShown ?? "";
    if (this.reasoningTextKey === key && text === shown) return;
    const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 24;
    if (this.reasoningTextKey === key && text.startsWith(shown)) box.append(text.slice(shown.length));
    else box.textContent = text;
    /** @type {string | undefined} */
    this.reasoningTextKey = key;
    this.reasoningShown = text;
    if (atEnd) box.scrollTop = box.scrollHeight;
  }

  /** Reasoning, refusal, tool calls, finish notice, content filter and token confidence of the
   * choice shown. */
  /**
   * @param {Version | undefined} v
   * @param {number} vi
   * @param {number} c
   * @param {string} text
   * @param {string} shownKey
   */
  paintRich(v, vi, c, text, shownKey) {
    const status = v?.status ?? "pending";
    const final = FINAL_STATUSES.has(status);
    const metrics = v?.metrics ?? {};
    const finishReason = metrics.finish_reasons?.[c] ?? null;
    const single = [...(v?.parts.values() ?? [])].every((p) => p.choice <= 0);
    const usage = metrics.usage ?? null;

    // Thinking: open while it streams, closed once the answer starts (the user can reopen it)
    const reasoning = this.doc.text(vi, `${c}:reasoning:`);
    const tools = v
      ? [...v.parts.values()]
          .filter((p) => p.kind === "tool" && p.choice === c)
          .sort((a, b) => (a.index ?? 0) - (b.index ?? 0))
      : [];
    const refusal = this.doc.text(vi, `${c}:refusal:`);
    const answerStarted = !!(text || refusal || tools.length);
    const reported =
      single && usage && Number.isFinite(usage.reasoning_tokens) && /** @type {number} */ (usage.reasoning_tokens) > 0
        ? usage.reasoning_tokens
        : null;
    this.reasoning.hidden = !reasoning && reported === null;
    if (this.reasoningKey !== shownKey) {
      /** @type {string | undefined} */
      this.reasoningKey = shownKey;
      this.reasoningClosed = false;
      this.reasoning.open = !answerStarted;
    }
    this.paintReasoningText(reasoning || "(the server reported reasoning tokens but sent no reasoning text)", shownKey);
    this.reasoningLabel.textContent = thinkingLabel({
      streaming: !final && !answerStarted,
      seconds: c === 0 ? metrics.thinking_s : undefined,
      chars: reasoning.length,
      reportedTokens: reported ?? undefined,
    });
    if (answerStarted && !this.reasoningClosed) {
      this.reasoning.open = false;
      this.reasoningClosed = true;
    }

    this.refusal.hidden = !refusal;
    this.refusalText.textContent = refusal;

    this.toolCards.update(tools, (index) => final || !!finishReason || tools.some((t) => (t.index ?? 0) > index));

    // what the server ran itself (web search, code interpreter, MCP...) and the sources cited
    /** @param {string} kind */
    const ofKind = (kind) =>
      v
        ? [...v.parts.values()]
            .filter((p) => p.kind === kind && p.choice === c)
            .sort((a, b) => (a.index ?? 0) - (b.index ?? 0))
        : [];
    const hosted = ofKind("hosted");
    this.hosted.hidden = hosted.length === 0;
    this.hostedTools.update(hosted);
    const cites = ofKind("citation").map((p) => p.meta ?? {});
    this.sources.hidden = cites.length === 0;
    if (cites.length) paintCitations(this.sources, cites);

    const notice = finishNotice(finishReason);
    this.finish.hidden = !notice;
    this.finish.textContent = notice?.text ?? "";
    this.finish.dataset.reason = finishReason ?? "";
    this.finish.className = `nbstream-finish nbstream-finish-${notice?.kind ?? "none"}`;

    const rows = [
      ...filterRows(v?.parts.get("-1:filter:")?.meta?.results),
      ...filterRows(v?.parts.get(`${c}:filter:`)?.meta?.results),
    ];
    this.filter.hidden = rows.length === 0;
    const filterSig = JSON.stringify(rows);
    if (rows.length && filterSig !== this.filterSig) {
      /** @type {string | undefined} */
      this.filterSig = filterSig;
      paintFilter(this.filter, rows);
    }

    // token confidence: only offered when the stream has logprobs
    const lp = this.doc.text(vi, `${c}:logprobs:`);
    const rlp = this.doc.text(vi, `${c}:refusal_logprobs:`);
    this.confidenceButton.hidden = !(lp || rlp);
    const on = this.showConfidence && !this.confidenceButton.hidden;
    this.confidenceButton.setAttribute("aria-pressed", String(on));
    this.confidence.hidden = !on;
    // a refusal or a tool call is the answer: no empty answer box under it
    this.answer.hidden = (on && !!lp) || (!text && !!(refusal || tools.length || hosted.length));
    if (on) {
      const refusalTokens = !lp;
      this.tokens.update(`${shownKey}:${refusalTokens}`, lp || rlp, { refusal: refusalTokens });
    }
  }

  destroy() {
    this.root.removeEventListener(KERNEL_EVENT, this.onKernel);
    this.unsubscribe();
    for (const t of TRAITS) this.model.off(`change:${t}`, this.onTrait);
    this.log.destroy();
    this.renderer?.destroy();
    this.root.remove();
  }
}
