// DOM of one view: toolbar (Stop, Regenerate, Continue, Copy, versions pager), the answer (incremental
// Markdown), a status line and the chunk-log panel. Document changes only mark the view dirty; the
// paint happens once per animation frame, whatever the message rate.

import { IncrementalMarkdown } from "./markdown.js";
import { statusParts } from "./format.js";
import { FINAL_STATUSES, regenerate, resume, stop } from "./protocol.js";
import { LogPanel } from "./logpanel.js";

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "className") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  for (const c of children) el.append(c);
  return el;
}

const raf = (fn) => (globalThis.requestAnimationFrame ? requestAnimationFrame(fn) : setTimeout(fn, 16));

const STOP_TITLES = {
  background: "Stop the stream (keeps the partial answer)",
  await: "Stop the stream (keeps the partial answer)",
  blocking: "This cell holds the kernel: interrupt the kernel (■) to stop; the partial answer is kept",
  idle: "Stop the stream",
};

export class View {
  constructor(el, model, doc, { logs } = {}) {
    this.model = model;
    this.doc = doc;
    this.shown = null; // version page shown; null = follow the newest (UI-only, never synced)
    this.dirty = false;
    this.paints = 0;
    this.stopButton = h("button", { "data-testid": "stop", className: "nbstream-btn nbstream-stop", onclick: () => this.onStop() }, "■ Stop");
    this.regenButton = h("button", { "data-testid": "regenerate", className: "nbstream-btn", title: "Run the same request again; this answer stays as a version", onclick: () => this.send(regenerate()) }, "↻ Regenerate");
    this.resumeButton = h("button", { "data-testid": "resume", className: "nbstream-btn", title: "Ask the model to continue this partial answer", onclick: () => this.send(resume()) }, "→ Continue");
    this.copyButton = h("button", { "data-testid": "copy", className: "nbstream-btn", title: "Copy the answer as Markdown", onclick: () => this.copy() }, "Copy");
    this.prev = h("button", { "data-testid": "version-prev", className: "nbstream-btn nbstream-page", title: "Previous version", onclick: () => this.page(-1) }, "‹");
    this.next = h("button", { "data-testid": "version-next", className: "nbstream-btn nbstream-page", title: "Next version", onclick: () => this.page(1) }, "›");
    this.pageLabel = h("span", { "data-testid": "version-label", className: "nbstream-page-label" });
    this.pager = h("span", { "data-testid": "version-pager", className: "nbstream-pager" }, this.prev, this.pageLabel, this.next);
    this.toolbar = h("div", { className: "nbstream-toolbar" }, this.stopButton, this.regenButton, this.resumeButton, this.copyButton, this.pager);
    this.reasoning = h("details", { "data-testid": "reasoning", className: "nbstream-reasoning", open: "" }, h("summary", { text: "Thinking" }), h("div", { className: "nbstream-reasoning-text" }));
    this.refusal = h("div", { "data-testid": "refusal", className: "nbstream-refusal" });
    this.answer = h("div", { "data-testid": "answer", className: "nbstream-answer" });
    this.tools = h("div", { "data-testid": "tool-calls", className: "nbstream-tools" });
    this.error = h("div", { "data-testid": "error", className: "nbstream-error", role: "alert" });
    this.status = h("div", { "data-testid": "status", className: "nbstream-status", "aria-live": "polite" });
    this.notes = h("div", { "data-testid": "notes", className: "nbstream-notes", hidden: true }); // resilience: flags, rate limit, budget
    this.log = new LogPanel(model, doc, logs, () => this.versionShown());
    this.root = h("div", { className: "nbstream-root" }, this.toolbar, this.reasoning, this.refusal, this.answer, this.tools, this.error, this.status, this.notes, this.log.el);
    this.renderer = null;
    this.rendererVersion = null;
    el.appendChild(this.root);
    this.unsubscribe = doc.subscribe(() => this.invalidate());
    this.onTrait = () => this.invalidate();
    for (const t of ["mode", "rerunnable", "resumable", "format", "language"]) model.on(`change:${t}`, this.onTrait);
    this.paint();
  }

  send(msg) {
    this.model.send(msg);
  }

  onStop() {
    if (this.model.get("mode") === "blocking") {
      this.status.dataset.hint = "1";
      this.status.textContent = "This cell holds the kernel: use the notebook's interrupt button (■) to stop. The partial answer is kept.";
    }
    this.send(stop()); // sent anyway: delivered if the kernel can, e.g. on a subshell
  }

  versionShown() {
    const n = this.doc.versions.length;
    if (n === 0) return 0;
    return this.shown === null ? Math.min(this.doc.current, n - 1) : Math.min(this.shown, n - 1);
  }

  page(delta) {
    const n = this.doc.versions.length;
    const v = Math.max(0, Math.min(n - 1, this.versionShown() + delta));
    this.shown = v >= this.doc.current ? null : v;
    this.invalidate();
  }

  async copy() {
    const text = this.doc.text(this.versionShown());
    try {
      await navigator.clipboard.writeText(text);
      this.copyButton.textContent = "Copied";
    } catch {
      this.copyButton.textContent = "Copy failed";
    }
    setTimeout(() => { this.copyButton.textContent = "Copy"; }, 1500);
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

    if (!this.renderer || this.rendererVersion !== vi || this.renderer.format !== format) {
      this.answer.replaceChildren();
      this.renderer = new IncrementalMarkdown(this.answer, { format, language: this.model.get("language") ?? "" });
      this.rendererVersion = vi;
    }
    this.renderer.update(this.doc.text(vi, "0:text:"));

    const reasoning = this.doc.text(vi, "0:reasoning:");
    this.reasoning.hidden = !reasoning;
    this.reasoning.lastChild.textContent = reasoning;
    if (reasoning && this.doc.text(vi, "0:text:") && !this.reasoningClosed) {
      this.reasoning.open = false; // closed once the answer starts
      this.reasoningClosed = true;
    }
    const refusal = this.doc.text(vi, "0:refusal:");
    this.refusal.hidden = !refusal;
    this.refusal.textContent = refusal ? `Refused: ${refusal}` : "";
    this.paintTools(v);

    const final = FINAL_STATUSES.has(status);
    const live = !final && vi === this.doc.current;
    this.stopButton.hidden = !live;
    this.stopButton.title = STOP_TITLES[mode] ?? STOP_TITLES.idle;
    this.stopButton.textContent = mode === "blocking" ? "■ Stop (interrupt the kernel)" : "■ Stop";
    this.regenButton.hidden = !this.model.get("rerunnable");
    this.regenButton.disabled = live;
    this.resumeButton.hidden = !(this.model.get("resumable") && final && (status === "stopped" || status === "incomplete") && vi === this.doc.current);
    const n = this.doc.versions.length;
    this.pager.hidden = n < 2;
    this.pageLabel.textContent = `${vi + 1}/${n}`;
    this.prev.disabled = vi === 0;
    this.next.disabled = vi >= n - 1;

    const reason = v?.reason;
    this.error.hidden = !(reason && (status === "error" || status === "incomplete" || status === "stopped"));
    this.error.textContent = this.error.hidden ? "" : reason;
    this.error.className = `nbstream-error nbstream-${status}`;
    if (!this.status.dataset.hint || final) {
      delete this.status.dataset.hint;
      const parts = statusParts(status, v?.metrics);
      if (!final && reason) parts.push(reason); // e.g. "HTTP 503, retrying in 1.2 s (attempt 2/4)"
      this.status.textContent = parts.join(" · ");
    }
    const notes = v?.notes ?? [];
    this.notes.hidden = notes.length === 0;
    this.notes.textContent = notes.join(" · ");
    this.log.paint();
  }

  paintTools(v) {
    const tools = v ? [...v.parts.values()].filter((p) => p.kind === "tool" && p.choice === 0) : [];
    if (tools.length === 0) {
      if (this.tools.childElementCount) this.tools.replaceChildren();
      return;
    }
    this.tools.replaceChildren(...tools.map((p) => h("div", { className: "nbstream-tool", "data-testid": "tool-call" },
      h("div", { className: "nbstream-tool-name", text: `${p.meta?.name ?? "tool"}(…)` }),
      h("pre", { text: p.text }))));
  }

  destroy() {
    this.unsubscribe();
    for (const t of ["mode", "rerunnable", "resumable", "format", "language"]) this.model.off(`change:${t}`, this.onTrait);
    this.log.destroy();
    this.root.remove();
  }
}
