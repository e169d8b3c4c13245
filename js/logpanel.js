// @ts-check
// The chunk-log panel, collapsed by default. Rows are fetched from Python on demand (log_page), never
// pushed: one row per chunk (index, time, delta, raw JSON on demand), the request records, a JSONL
// download and a small timeline of chunk arrival times. Built with DOM APIs only (textContent).

import { h } from "./dom.js";
import { logPage } from "./protocol.js";

/** @typedef {import("./protocol.js").LogPageReply} LogPageReply
 * @typedef {import("./protocol.js").LogRecord} LogRecord
 * @typedef {import("./protocol.js").LogRow} LogRow
 */
/** The timeline's box; hover(fraction) shows the chunk nearest that point (for tests too). @typedef {HTMLDivElement & {hover?: (fraction: number) => void}} TimelineBox */

const PAGE = 200;
const SVG = "http://www.w3.org/2000/svg";
let nextId = 1;

/** The chunk nearest to `t` seconds (times sorted ascending): {index, t, gap} (gap: seconds
 * since the chunk before it, null for the first), or null when there are none.
 * @param {number[]} times
 * @param {number} t
 * @returns {{index: number, t: number, gap: number | null} | null}
 */
export function nearestChunk(times, t) {
  if (!times.length) return null;
  let lo = 0;
  let hi = times.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (times[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  const i = lo > 0 && Math.abs(times[lo - 1] - t) <= Math.abs(times[lo] - t) ? lo - 1 : lo;
  return { index: i, t: times[i], gap: i > 0 ? times[i] - times[i - 1] : null };
}

/**
 * Round axis steps (seconds) for a span of `t1` seconds: 0, step, 2 step... <= t1 (at most 6).
 * @param {number} t1
 */
export function axisTicks(t1) {
  if (!(t1 > 0)) return [0];
  const raw = t1 / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
  const ticks = [];
  for (let v = 0; v <= t1 + 1e-9 && ticks.length < 7; v += step) ticks.push(Number(v.toFixed(6)));
  return ticks;
}

/** @param {number} s */
const fmtAxis = (s) => (s === 0 ? "0" : s < 1 ? `${Math.round(s * 1000)} ms` : `${Number(s.toFixed(2))} s`);

/** Chunk arrival times (seconds since the request): one tick per chunk on an SVG strip, a time
 * axis under it, and on hover the chunk nearest the pointer (its number, time and the gap before
 * it, the stalls one looks for).
 * @param {(number | null)[]} times
 * @returns {TimelineBox}
 */
export function timeline(times, width = 600, height = 36) {
  /** @type {TimelineBox} */
  const box = h("div", { "data-testid": "log-timeline", className: "nbstream-timeline-box" });
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "nbstream-timeline");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  box.append(svg);
  const ts = /** @type {number[]} */ (times.filter((t) => Number.isFinite(t)));
  if (ts.length === 0) return box;
  const t1 = Math.max(...ts, 1e-9);
  /** @param {number} t */
  const x = (t) => (t / t1) * (width - 2) + 1;
  const path = ts.map((t) => `M${x(t).toFixed(1)} 4V${height - 4}`).join("");
  const p = document.createElementNS(SVG, "path");
  p.setAttribute("d", path);
  p.setAttribute("class", "nbstream-timeline-ticks");
  svg.appendChild(p);
  const marker = document.createElementNS(SVG, "path");
  marker.setAttribute("class", "nbstream-timeline-marker");
  marker.setAttribute("visibility", "hidden");
  svg.appendChild(marker);
  // the axis is HTML, not SVG text: the strip stretches to the panel's width (no aspect ratio)
  const axis = h("div", { className: "nbstream-timeline-axis", "data-testid": "log-timeline-axis" });
  for (const v of axisTicks(t1)) {
    const label = h("span", { text: fmtAxis(v) });
    label.style.left = `${(v / t1) * 100}%`;
    if (v > t1 * 0.9) label.classList.add("nbstream-axis-end");
    axis.append(label);
  }
  let maxGap = 0;
  for (let i = 1; i < ts.length; i++) maxGap = Math.max(maxGap, ts[i] - ts[i - 1]);
  const summary = `${ts.length} chunks over ${t1.toFixed(2)} s; longest gap ${(maxGap * 1000).toFixed(0)} ms`;
  const readout = h("div", {
    className: "nbstream-timeline-readout",
    "data-testid": "log-timeline-readout",
    text: summary,
  });
  box.append(axis, readout);
  box.hover = (fraction) => {
    const near = nearestChunk(ts, Math.min(1, Math.max(0, fraction)) * t1);
    if (!near) return; // (never: ts has a chunk)
    marker.setAttribute("d", `M${x(near.t).toFixed(1)} 0V${height}`);
    marker.setAttribute("visibility", "visible");
    const gap = near.gap === null ? "the first chunk" : `${(near.gap * 1000).toFixed(0)} ms after the one before`;
    readout.textContent = `chunk ${near.index} at ${(near.t * 1000).toFixed(0)} ms · ${gap}`;
  };
  svg.addEventListener("mousemove", (event) => {
    const rect = svg.getBoundingClientRect();
    if (rect.width > 0) box.hover?.((event.clientX - rect.left) / rect.width);
  });
  svg.addEventListener("mouseleave", () => {
    marker.setAttribute("visibility", "hidden");
    readout.textContent = summary;
  });
  return box;
}

/** The JSONL download's file name: nbstream-<model>-<time>-<request id>.jsonl, each part reduced
 * to safe characters (letters, digits, dot, dash, underscore), the parts not known left out.
 * @param {{model?: string, requestId?: string, wallTime?: number, version?: number}} [args]
 */
export function logFileName({ model, requestId, wallTime, version } = {}) {
  /**
   * @param {unknown} value
   * @param {number} max
   */
  const safe = (value, max) =>
    String(value ?? "")
      .replace(/[^A-Za-z0-9._-]+/g, "_")
      .replace(/^[._]+|_+$/g, "")
      .slice(0, max);
  let time = "";
  if (wallTime !== undefined && Number.isFinite(wallTime)) {
    const d = new Date(wallTime * 1000);
    /** @param {number} n */
    const two = (n) => String(n).padStart(2, "0");
    time = `${d.getFullYear()}${two(d.getMonth() + 1)}${two(d.getDate())}-${two(d.getHours())}${two(d.getMinutes())}${two(d.getSeconds())}`;
  }
  const parts = ["nbstream", safe(model, 48), time, safe(requestId, 64)].filter(Boolean);
  if (parts.length === 1 && version !== undefined && Number.isFinite(version)) parts.push(`v${version + 1}`);
  return `${parts.join("-")}.jsonl`;
}

/**
 * A raw chunk as indented JSON (a string that holds JSON too: SSE data lines arrive as text).
 * @param {unknown} raw
 * @returns {string}
 */
export function prettyJson(raw) {
  if (typeof raw !== "string") return JSON.stringify(raw, null, 2);
  try {
    return JSON.stringify(JSON.parse(raw), null, 2);
  } catch {
    return raw;
  }
}

/** @param {number | null | undefined} t */
const ms = (t) => (t != null && Number.isFinite(t) ? `${(t * 1000).toFixed(0)} ms` : "");

/**
 * One request record (request, response, error, end) in words.
 * @param {LogRecord} r
 */
export function describeRecord(r) {
  const a = `attempt ${r.attempt ?? 1}`;
  if (r.type === "request") {
    const when =
      r.wall_time !== undefined && Number.isFinite(r.wall_time)
        ? ` at ${new Date(r.wall_time * 1000).toLocaleTimeString()}`
        : "";
    return `${a}: request (${r.source ?? "?"})${when}`;
  }
  if (r.type === "response") {
    const hd = r.headers ?? {};
    /** @param {string} what */
    const rl = (what) =>
      hd[`x-ratelimit-remaining-${what}`] !== undefined
        ? `${hd[`x-ratelimit-remaining-${what}`]}/${hd[`x-ratelimit-limit-${what}`] ?? "?"} ${what} left`
        : null;
    const limits = [rl("requests"), rl("tokens")].filter(Boolean);
    return [
      `${a}: HTTP ${r.status ?? "?"}`,
      r.request_id,
      `headers after ${ms(r.t)}`,
      limits.length ? `rate limit ${limits.join(", ")}` : null,
    ]
      .filter(Boolean)
      .join(" · ");
  }
  if (r.type === "error")
    return `${a}: error${r.status ? ` HTTP ${r.status}` : ""} after ${ms(r.t)}: ${r.message ?? ""}`;
  if (r.type === "end") return `${a}: ${r.status ?? "ended"} after ${ms(r.t)}${r.reason ? ` (${r.reason})` : ""}`;
  return `${a}: ${r.type}`;
}

export class LogPanel {
  /**
   * @param {import("./types.js").Model} model
   * @param {import("./document.js").StreamDocument} doc
   * @param {unknown} _logs (unused)
   * @param {() => number} versionShown the version page the view shows
   */
  constructor(model, doc, _logs, versionShown) {
    this.model = model;
    this.doc = doc;
    this.versionShown = versionShown;
    this.open = false;
    /** @type {string | null} */
    this.loadedFor = null; // "version:status" loaded
    /** @type {LogRow[]} */
    this.rows = [];
    /** @type {LogRecord[]} */
    this.requestRecords = []; // request/response/error/end records of the version shown
    /** @type {Map<number, (msg: LogPageReply) => void>} */
    this.pending = new Map(); // id -> handler
    this.toggle = h(
      "button",
      {
        "data-testid": "log-toggle",
        className: "nbstream-btn nbstream-log-toggle",
        "aria-expanded": "false",
        onclick: () => this.setOpen(!this.open),
      },
      "▸ Chunk log",
    );
    this.summary = h("span", { className: "nbstream-log-summary" });
    this.download = h(
      "button",
      { "data-testid": "log-download", className: "nbstream-btn", onclick: () => this.exportJsonl() },
      "Download JSONL",
    );
    this.more = h(
      "button",
      { "data-testid": "log-more", className: "nbstream-btn", onclick: () => this.fetch(this.rows.length) },
      "More rows",
    );
    this.requests = h("div", { "data-testid": "log-requests", className: "nbstream-log-requests" });
    this.timelineBox = h("div", { className: "nbstream-log-timeline" });
    this.tbody = h("tbody");
    this.table = h(
      "table",
      { className: "nbstream-log-table" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { text: "#" }),
          h("th", { text: "time" }),
          h("th", { text: "delta" }),
          h("th", { text: "" }),
          h("th", { text: "" }),
        ),
      ),
      this.tbody,
    );
    this.panel = h(
      "div",
      { "data-testid": "log-panel", className: "nbstream-log-panel", hidden: "" },
      h("div", { className: "nbstream-log-bar" }, this.summary, this.download),
      this.requests,
      this.timelineBox,
      this.table,
      this.more,
    );
    this.el = h("div", { className: "nbstream-log" }, this.toggle, this.panel);
    this.unsubscribe = doc.subscribe((change) => {
      if (change.type === "log_page") this.onReply(change.msg);
    });
  }

  /** @param {boolean} open */
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

  /**
   * @param {{start: number, count: number, raw?: boolean, times?: boolean, jsonl?: boolean}} params
   * @param {(msg: LogPageReply) => void} handler
   */
  request(params, handler) {
    const id = nextId++;
    this.pending.set(id, handler);
    this.model.send(logPage({ id, version: this.versionShown(), ...params }));
  }

  /**
   * @param {number} start
   * @param {{times?: boolean}} [extra]
   */
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

  /** @param {LogPageReply} msg */
  onReply(msg) {
    const handler = msg.id === null ? undefined : this.pending.get(msg.id);
    if (!handler) return;
    this.pending.delete(/** @type {number} */ (msg.id));
    if (msg.error) {
      this.summary.textContent = `log unavailable: ${msg.error}`;
      return;
    }
    handler(msg);
  }

  /** @param {LogRow} row */
  addRow(row) {
    this.rows.push(row);
    const raw = h("td", { className: "nbstream-log-rawcell" });
    const tr = h("tr");
    const button = h(
      "button",
      {
        className: "nbstream-btn nbstream-small",
        "aria-expanded": "false",
        title: "Show the raw chunk (pretty-printed JSON)",
        onclick: () => this.toggleRaw(row.index, tr, button),
      },
      "raw",
    );
    raw.append(button);
    const t = row.t != null && Number.isFinite(row.t) ? `${(row.t * 1000).toFixed(1)} ms` : "";
    const chunk = row.type === "chunk";
    // chunk rows are [data-testid=log-row]; request/response/error/end records [data-testid=log-record]
    tr.dataset.testid = chunk ? "log-row" : "log-record";
    tr.dataset.index = String(chunk ? row.chunk : row.index);
    if (!chunk) tr.className = "nbstream-log-meta";
    tr.append(
      h("td", { text: chunk ? String(row.chunk ?? row.index) : row.type }),
      h("td", { text: t }),
      h("td", { className: "nbstream-log-delta", text: row.delta ?? "" }),
      h("td", { className: "nbstream-log-note", text: row.note ?? "" }),
      raw,
    );
    this.tbody.append(tr);
  }

  /** The raw chunk in a row of its own under its row, the panel's full width, pretty-printed
   * (the last column was ~86 px wide: JSON in it could not be read); a second click hides it.
   * @param {number} index
   * @param {HTMLTableRowElement} tr
   * @param {HTMLButtonElement} button
   */
  toggleRaw(index, tr, button) {
    const next = /** @type {HTMLElement | null} */ (tr.nextElementSibling);
    const shown = next?.dataset.rawFor === String(index) ? next : null;
    if (shown) {
      shown.hidden = !shown.hidden;
      button.setAttribute("aria-expanded", String(!shown.hidden));
      return;
    }
    this.request({ start: index, count: 1, raw: true }, (msg) => {
      const row = (msg.rows ?? [])[0];
      const text = row?.raw === undefined ? "(no raw data)" : prettyJson(row.raw);
      const rawRow = h(
        "tr",
        { className: "nbstream-log-rawrow", "data-testid": "log-raw-row" },
        h("td", { colspan: "5" }, h("pre", { "data-testid": "log-raw", className: "nbstream-log-raw", text })),
      );
      rawRow.dataset.rawFor = String(index);
      tr.after(rawRow);
      button.setAttribute("aria-expanded", "true");
    });
  }

  /** @param {LogRecord[]} requests */
  paintRequests(requests) {
    this.requestRecords = requests;
    this.requests.replaceChildren(
      ...requests.map((r) =>
        h("div", {
          "data-testid": "log-request",
          className: `nbstream-log-request nbstream-log-${r.type}`,
          text: describeRecord(r),
        }),
      ),
    );
  }

  /** nbstream-<model>-<time>-<request id>.jsonl for the version shown: ten downloads of ten
   * answers are told apart by name, not "nbstream-log-v1 (9).jsonl". */
  fileName() {
    const vi = this.versionShown();
    const metrics = this.doc.versions[vi]?.metrics ?? {};
    const request = this.requestRecords.find((r) => r.type === "request" && Number.isFinite(r.wall_time ?? Number.NaN));
    return logFileName({
      model: metrics.model,
      requestId: metrics.request_id,
      wallTime: request?.wall_time ?? Date.now() / 1000,
      version: vi,
    });
  }

  exportJsonl() {
    this.request({ start: 0, count: 0, jsonl: true }, (msg) => {
      const blob = new Blob([msg.jsonl ?? ""], { type: "application/x-ndjson" });
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = this.fileName();
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
