// The chunk-log panel, collapsed by default. Rows are fetched from Python on demand (log_page), never
// pushed: one row per chunk (index, time, delta, raw JSON on demand), the request records, a JSONL
// download and a small timeline of chunk arrival times. Built with DOM APIs only (textContent).

import { logPage } from "./protocol.js";

const PAGE = 200;
const SVG = "http://www.w3.org/2000/svg";
let nextId = 1;

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

/** An SVG strip with one tick per chunk at its arrival time (seconds since the request). */
export function timeline(times, width = 600, height = 36) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("data-testid", "log-timeline");
  svg.setAttribute("class", "nbstream-timeline");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const ts = times.filter((t) => Number.isFinite(t));
  if (ts.length === 0) return svg;
  const t1 = Math.max(...ts, 1e-9);
  const path = ts.map((t) => `M${((t / t1) * (width - 2) + 1).toFixed(1)} 4V${height - 4}`).join("");
  const p = document.createElementNS(SVG, "path");
  p.setAttribute("d", path);
  p.setAttribute("class", "nbstream-timeline-ticks");
  svg.appendChild(p);
  const title = document.createElementNS(SVG, "title");
  let maxGap = 0;
  for (let i = 1; i < ts.length; i++) maxGap = Math.max(maxGap, ts[i] - ts[i - 1]);
  title.textContent = `${ts.length} chunks over ${t1.toFixed(2)} s; longest gap ${(maxGap * 1000).toFixed(0)} ms`;
  svg.appendChild(title);
  return svg;
}

const ms = (t) => (Number.isFinite(t) ? `${(t * 1000).toFixed(0)} ms` : "");

/** One request record (request, response, error, end) in words. */
export function describeRecord(r) {
  const a = `attempt ${r.attempt ?? 1}`;
  if (r.type === "request") {
    const when = Number.isFinite(r.wall_time) ? ` at ${new Date(r.wall_time * 1000).toLocaleTimeString()}` : "";
    return `${a}: request (${r.source ?? "?"})${when}`;
  }
  if (r.type === "response") {
    const hd = r.headers ?? {};
    const rl = (what) => hd[`x-ratelimit-remaining-${what}`] !== undefined
      ? `${hd[`x-ratelimit-remaining-${what}`]}/${hd[`x-ratelimit-limit-${what}`] ?? "?"} ${what} left` : null;
    const limits = [rl("requests"), rl("tokens")].filter(Boolean);
    return [`${a}: HTTP ${r.status ?? "?"}`, r.request_id, `headers after ${ms(r.t)}`, limits.length ? `rate limit ${limits.join(", ")}` : null]
      .filter(Boolean).join(" · ");
  }
  if (r.type === "error") return `${a}: error${r.status ? ` HTTP ${r.status}` : ""} after ${ms(r.t)}: ${r.message ?? ""}`;
  if (r.type === "end") return `${a}: ${r.status ?? "ended"} after ${ms(r.t)}${r.reason ? ` (${r.reason})` : ""}`;
  return `${a}: ${r.type}`;
}

export class LogPanel {
  constructor(model, doc, _logs, versionShown) {
    this.model = model;
    this.doc = doc;
    this.versionShown = versionShown;
    this.open = false;
    this.loadedFor = null; // {version, seq, status}
    this.rows = [];
    this.pending = new Map(); // id -> handler
    this.toggle = h("button", { "data-testid": "log-toggle", className: "nbstream-btn nbstream-log-toggle", "aria-expanded": "false", onclick: () => this.setOpen(!this.open) }, "▸ Chunk log");
    this.summary = h("span", { className: "nbstream-log-summary" });
    this.download = h("button", { "data-testid": "log-download", className: "nbstream-btn", onclick: () => this.exportJsonl() }, "Download JSONL");
    this.more = h("button", { "data-testid": "log-more", className: "nbstream-btn", onclick: () => this.fetch(this.rows.length) }, "More rows");
    this.requests = h("div", { "data-testid": "log-requests", className: "nbstream-log-requests" });
    this.timelineBox = h("div", { className: "nbstream-log-timeline" });
    this.tbody = h("tbody");
    this.table = h("table", { className: "nbstream-log-table" },
      h("thead", {}, h("tr", {}, h("th", { text: "#" }), h("th", { text: "time" }), h("th", { text: "delta" }), h("th", { text: "" }), h("th", { text: "" }))),
      this.tbody);
    this.panel = h("div", { "data-testid": "log-panel", className: "nbstream-log-panel", hidden: "" },
      h("div", { className: "nbstream-log-bar" }, this.summary, this.download), this.requests, this.timelineBox, this.table, this.more);
    this.el = h("div", { className: "nbstream-log" }, this.toggle, this.panel);
    this.unsubscribe = doc.subscribe((change) => {
      if (change.type === "log_page") this.onReply(change.msg);
    });
  }

  setOpen(open) {
    this.open = open;
    this.panel.hidden = !open;
    this.toggle.setAttribute("aria-expanded", String(open));
    this.toggle.textContent = `${open ? "▾" : "▸"} Chunk log`;
    if (open) this.refresh();
  }

  /** Called on each paint: refetch when the version shown changed or its stream ended. */
  paint() {
    if (!this.open) return;
    const vi = this.versionShown();
    const v = this.doc.versions[vi];
    const key = `${vi}:${v?.status}`;
    if (this.loadedFor !== key) this.refresh();
  }

  refresh() {
    const vi = this.versionShown();
    this.loadedFor = `${vi}:${this.doc.versions[vi]?.status}`;
    this.rows = [];
    this.tbody.replaceChildren();
    this.fetch(0, { times: true });
  }

  request(params, handler) {
    const id = nextId++;
    this.pending.set(id, handler);
    this.model.send(logPage({ id, version: this.versionShown(), ...params }));
  }

  fetch(start, extra = {}) {
    this.request({ start, count: PAGE, ...extra }, (msg) => {
      if (start !== this.rows.length) return; // a newer refresh started
      for (const row of msg.rows ?? []) this.addRow(row);
      this.summary.textContent = `${msg.times ? `${msg.times.length} chunks, ` : ""}${msg.total ?? 0} records`;
      this.more.hidden = this.rows.length >= (msg.total ?? 0);
      if (msg.times) this.timelineBox.replaceChildren(timeline(msg.times));
      if (msg.requests) this.paintRequests(msg.requests);
    });
  }

  onReply(msg) {
    const handler = this.pending.get(msg.id);
    if (!handler) return;
    this.pending.delete(msg.id);
    if (msg.error) {
      this.summary.textContent = `log unavailable: ${msg.error}`;
      return;
    }
    handler(msg);
  }

  addRow(row) {
    this.rows.push(row);
    const raw = h("td", { className: "nbstream-log-rawcell" });
    const button = h("button", { className: "nbstream-btn nbstream-small", title: "Show the raw chunk", onclick: () => this.showRaw(row.index, raw, button) }, "raw");
    raw.append(button);
    const t = Number.isFinite(row.t) ? `${(row.t * 1000).toFixed(1)} ms` : "";
    const chunk = row.type === "chunk";
    // chunk rows are [data-testid=log-row]; request/response/error/end records [data-testid=log-record]
    this.tbody.append(h("tr", { "data-testid": chunk ? "log-row" : "log-record", "data-index": String(chunk ? row.chunk : row.index), className: chunk ? "" : "nbstream-log-meta" },
      h("td", { text: chunk ? String(row.chunk ?? row.index) : row.type }), h("td", { text: t }),
      h("td", { className: "nbstream-log-delta", text: row.delta ?? "" }),
      h("td", { className: "nbstream-log-note", text: row.note ?? "" }), raw));
  }

  showRaw(index, cell, button) {
    this.request({ start: index, count: 1, raw: true }, (msg) => {
      const row = (msg.rows ?? [])[0];
      const text = row?.raw === undefined ? "(no raw data)" : typeof row.raw === "string" ? row.raw : JSON.stringify(row.raw, null, 2);
      button.remove();
      cell.append(h("pre", { "data-testid": "log-raw", className: "nbstream-log-raw", text }));
    });
  }

  paintRequests(requests) {
    this.requests.replaceChildren(...requests.map((r) => h("div", { "data-testid": "log-request", className: `nbstream-log-request nbstream-log-${r.type}`, text: describeRecord(r) })));
  }

  exportJsonl() {
    this.request({ start: 0, count: 0, jsonl: true }, (msg) => {
      const blob = new Blob([msg.jsonl ?? ""], { type: "application/x-ndjson" });
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = `nbstream-log-v${this.versionShown() + 1}.jsonl`;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    });
  }

  destroy() {
    this.unsubscribe();
  }
}
