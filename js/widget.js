// @ts-check
// anywidget entry. initialize() owns one StreamDocument per widget model (shared by all its views,
// keyed by the synced `uid` since anywidget hands each hook its own model proxy); render() only
// builds DOM for one view.

import { StreamDocument } from "./document.js";
import { decodeFrame, isFrame, isLogPage, ready } from "./protocol.js";
import { View } from "./view.js";
import "../node_modules/katex/dist/katex.min.css"; // fonts omitted (bundle size): system math fonts are used
import "./style.css";

/** @typedef {import("./types.js").Model} Model
 * @typedef {import("./protocol.js").Frame} Frame
 * @typedef {import("./protocol.js").Snapshot} Snapshot
 */
/**
 * A saved answer as nbstream stores it in the notebook (output metadata, js/lab/).
 * @typedef {{snapshot?: Snapshot, format?: string, language?: string, uid?: string, heading?: string}} SavedAnswer
 */

/** @type {Map<string, StreamDocument>} */
const documents = new Map(); // uid -> StreamDocument

// Live views on this page, by uid, shared with the JupyterLab extension (which may hold another
// copy of this module): the static copy of an answer hides while its live widget is on screen.
const LIVE = Symbol.for("nbstream.live");
export const LIVE_EVENT = "nbstream:live";

/** @returns {Map<string, number>} */
function liveViews() {
  // a page-wide value under a Symbol.for key: TypeScript has no type for symbol-keyed globals
  const page = /** @type {Record<symbol, any>} */ (globalThis);
  page[LIVE] ??= new Map();
  return page[LIVE];
}

/** @param {string} uid */
export function isLive(uid) {
  return (liveViews().get(uid) ?? 0) > 0;
}

/**
 * @param {string} uid
 * @param {number} delta
 */
function markLive(uid, delta) {
  const views = liveViews();
  views.set(uid, Math.max(0, (views.get(uid) ?? 0) + delta));
  globalThis.dispatchEvent?.(new CustomEvent(LIVE_EVENT, { detail: { uid } }));
}

/**
 * A model that never talks to a kernel: the values a saved answer was stored with.
 * @param {Partial<import("./types.js").Traits>} values
 * @returns {Model}
 */
function savedModel(values) {
  // (a trait not stored reads undefined, as on a model without it)
  return {
    get: (name) => /** @type {any} */ (values[name]),
    set() {},
    on() {},
    off() {},
    send() {},
    save_changes() {},
  };
}

/** Render a saved answer (no kernel, no widget model): the same view, read-only, every version
 * with its pager. `saved` = {snapshot, format, language} as nbstream stores it in the notebook.
 * @param {HTMLElement} el
 * @param {SavedAnswer | null | undefined} saved
 */
export function renderSaved(el, saved) {
  const doc = new StreamDocument({});
  doc.reconcile(saved?.snapshot ?? { versions: [] });
  const model = savedModel({
    mode: "saved",
    rerunnable: false,
    resumable: false,
    format: saved?.format ?? "markdown",
    language: saved?.language ?? "",
    uid: saved?.uid ?? "",
    heading: saved?.heading ?? "",
  });
  return new View(el, model, doc);
}

export { StreamDocument, View };

// `ready` once per page and kernel, not once per view: ipykernel handles every message from the
// page as a shell request (busy/idle status, stdout and stderr flushed through its iopub thread:
// 60-80 ms each under load), so 200 views each saying `ready` held the kernel's next cell for
// 11-16 s (BENCHMARKS.md, issue 16). The views that initialize together are named in one message
// (their uids) sent through the first of them; a single view still says it within a few ms.
const READY_QUIET_MS = 20; // send once no new view came for this long...
const READY_MAX_MS = 250; // ...or this long after the first view waiting
/** @type {Map<unknown, {models: Model[], uids: string[], first: number, timer: ReturnType<typeof setTimeout> | null}>} */
const readyBatches = new Map(); // widget manager (one per kernel connection) -> views waiting

/** @param {Model} model */
function sayReady(model) {
  const key = model.widget_manager ?? model;
  const now = Date.now();
  let batch = readyBatches.get(key);
  if (!batch) {
    batch = { models: [], uids: [], first: now, timer: null };
    readyBatches.set(key, batch);
  }
  batch.uids.push(model.get("uid") || "default");
  batch.models.push(model);
  if (batch.timer !== null) clearTimeout(batch.timer);
  const due = batch;
  const send = () => {
    readyBatches.delete(key);
    // through the first view whose comm still works (one closed meanwhile throws or drops it)
    for (const m of due.models) {
      try {
        m.send(ready(due.uids));
        return;
      } catch {
        // the next one
      }
    }
  };
  batch.timer = setTimeout(send, Math.max(0, Math.min(READY_QUIET_MS, due.first + READY_MAX_MS - now)));
}

/** @param {Model} model */
function documentFor(model) {
  const uid = model.get("uid") || "default";
  let doc = documents.get(uid);
  if (!doc) {
    doc = new StreamDocument({ send: (msg) => model.send(msg) });
    documents.set(uid, doc);
  }
  return doc;
}

/** A frame into the document; a final frame's `mode` (what the view ends in) is set on the model
 * locally, as the kernel stored it without sending a state update (no save_changes).
 * @param {Model} model
 * @param {StreamDocument} doc
 * @param {Frame} frame
 */
export function applyFrame(model, doc, frame) {
  const ok = doc.apply(frame); // (a gap asks for a resync, which brings the text, not the mode)
  if (frame.mode && model.get("mode") !== frame.mode) model.set("mode", frame.mode);
  return ok;
}

/** @type {import("./types.js").Widget} */
export default {
  /** @param {{model: Model}} ctx */
  initialize({ model }) {
    const doc = documentFor(model);
    doc.send = (msg) => model.send(msg);
    // The kernel does not re-send a version's final snapshot to us (we said `ready`): the
    // document builds it from the frames and we set it on the model locally, without
    // save_changes(), so saved widget state (and a new view) has the whole answer.
    /** @type {Snapshot | null} */
    let published = null;
    doc.onFinal = (snapshot) => {
      published = snapshot;
      model.set("snapshot", snapshot);
    };
    doc.reconcile(model.get("snapshot"));
    const onSnapshot = () => {
      const snapshot = model.get("snapshot");
      if (snapshot !== published) doc.reconcile(snapshot); // not our own local set
    };
    /** @param {import("./protocol.js").FromKernel} msg */
    const onCustom = (msg) => {
      if (isFrame(msg)) applyFrame(model, doc, decodeFrame(msg));
      else if (isLogPage(msg)) doc.emit({ type: "log_page", msg });
    };
    model.on("change:snapshot", onSnapshot);
    model.on("msg:custom", onCustom);
    sayReady(model); // frames reach a document here: the kernel may skip the final snapshot
    // A reloaded page joins a running stream with a stale snapshot: ask for the current text now.
    if (doc.isStreaming()) doc.requestResync();
    return () => {
      model.off("change:snapshot", onSnapshot);
      model.off("msg:custom", onCustom);
      documents.delete(model.get("uid") || "default");
    };
  },

  /** @param {import("./types.js").Context} ctx */
  render({ model, el }) {
    const view = new View(el, model, documentFor(model));
    const uid = model.get("uid") || "default";
    markLive(uid, 1);
    // the JupyterLab extension shows the widget renderer that holds this view only from now on;
    // the widget manager puts `el` into the page after render() returns: announce it then
    let frames = 0;
    const announce = () => {
      if (el.isConnected) el.dispatchEvent(new CustomEvent("nbstream:mounted", { bubbles: true }));
      else if (frames++ < 600) (globalThis.requestAnimationFrame ?? setTimeout)(announce);
    };
    announce();
    return () => {
      view.destroy();
      markLive(uid, -1);
    };
  },
};
