// @ts-check
// nbstream's JupyterLab / Notebook 7 extension: a prebuilt MIME renderer shipped in the wheel.
//
// An answer writes two outputs into its cell (see nbstream/frontend/output.py for why):
// - the live output {MIME: {output: "live"}, widget view, text/plain: ""}, metadata {MIME:
//   {answers: [{uid, label, snapshot?}]}};
// - the answer output {MIME: {output: "answer"}, hidden widget view, text/html (a safe static
//   copy), text/plain}, metadata {MIME: {answers: [{uid, label, snapshot, format, language}]}}.
// Ranked before the widget renderer, this renderer turns them into one answer on screen:
// - live output: the widget, mounted through the notebook's own widget renderer, when the kernel
//   has the model. Each time a version ends the widget hands us its snapshot and we store it in
//   this output's metadata: the saved notebook keeps every version. When the kernel has no such
//   model (the notebook reopened tomorrow, the kernel restarted) it renders the stored snapshot
//   with the widget's own view, read-only: never "Error displaying widget: model not found".
// - answer output: the same read-only view, shown only when no live output on the page shows
//   this answer (a notebook executed headless, then opened).
// It also gives the widget what a widget cannot reach: the kernel's interrupt (Stop while the
// cell holds the kernel) and the kernel's restarts and death.
//
// Without this extension (another frontend, the kernel in another environment) the outputs
// degrade to what they hold: the widget view, and the static copy as sanitized HTML.

import { Panel } from "@lumino/widgets";
import widget, { isLive, LIVE_EVENT, renderSaved, version } from "./bundle.js";

// What this renderer finds around it (JupyterLab's own objects, of packages not installed here for
// their types): only the members it uses.
/** @typedef {import("@jupyterlab/rendermime-interfaces").IRenderMime.IMimeModel} MimeModel
 * @typedef {import("@jupyterlab/rendermime-interfaces").IRenderMime.IRendererOptions} RendererOptions
 * @typedef {{connect(fn: () => void): unknown, disconnect(fn: () => void): unknown}} Signal
 */
/** ipywidgets' widget manager. @typedef {{restoredStatus: boolean, has_model(id: string): boolean, restored?: Signal}} WidgetManager */
/**
 * ipywidgets' renderer (it keeps its manager private: `_manager`).
 * @typedef {import("@jupyterlab/rendermime-interfaces").IRenderMime.IRenderer & {_manager?: {promise: Promise<WidgetManager>}}} WidgetRenderer
 */
/** An output area's rendermime registry. @typedef {{mimeTypes: readonly string[], getFactory(mime: string): unknown, createRenderer(mime: string): WidgetRenderer}} RenderMime
 * @typedef {{status: string, interrupt(): Promise<void>}} Kernel
 */
/** A notebook panel's session. @typedef {{session?: {kernel?: Kernel | null} | null, ready?: Promise<void>, statusChanged: Signal, kernelChanged: Signal}} SessionContext */
/** An output area's execution (a kernel future). @typedef {{done: Promise<unknown>, isDisposed: boolean}} Future
 * @typedef {{rendermime: RenderMime, sessionContext: SessionContext, future: Future}} Ancestors
 */
/** An answer stored in an output's metadata. @typedef {import("../widget.js").SavedAnswer & {uid: string, label?: string}} StoredAnswer */
/** What the live view reports when a version ends (view.js FINAL_EVENT). @typedef {{uid: string, snapshot: import("../protocol.js").Snapshot, format: string, language: string, heading: string}} FinalDetail */

const MIME = "application/vnd.nbstream.output+json";
const WIDGET_MIME = "application/vnd.jupyter.widget-view+json";
const INTERRUPT_EVENT = "nbstream:interrupt";
const KERNEL_EVENT = "nbstream:kernel";
const FINAL_EVENT = "nbstream:final";
const MOUNTED_EVENT = "nbstream:mounted";
// How long a live output may stay empty before it says why (a busy kernel), and how long it
// waits for the notebook's widget manager after the kernel is ready.
const PENDING_AFTER_MS = 1000;
const MANAGER_WAIT_MS = 60_000;
const PENDING_TEXT =
  "This answer is still streaming in the kernel, which is busy running a cell: " +
  "it shows here when the cell ends. Interrupt the kernel (■) to stop it now; the text so far is kept.";

/** Whether `promise` settles (resolves or rejects) by the next task: a manager given at the
 * renderer's construction has, one that never comes has not.
 * @param {Promise<unknown>} promise
 */
async function settled(promise) {
  let done = false;
  promise.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await new Promise((resolve) => setTimeout(resolve, 0));
  return done;
}

/** `jupyter labextension disable nbstream`: JupyterLab still loads this module (it skips only
 * the plugin), so the page's config is asked here. */
function disabled() {
  try {
    const config = JSON.parse(document.getElementById("jupyter-config-data")?.textContent || "{}");
    return (config.disabledExtensions ?? []).some(
      (/** @type {string} */ name) => name === "nbstream" || name === "nbstream:output",
    );
  } catch {
    return false;
  }
}

// The widget's `_esm` (js/loader.js) takes this code instead of asking the kernel for it when the
// kernel's nbstream built the same bundle; not from a disabled extension (the kernel's copy is
// the one that is wanted then).
// (page-wide values under Symbol.for keys: TypeScript has no type for symbol-keyed globals)
const page = /** @type {Record<symbol, any>} */ (globalThis);
if (!disabled()) page[Symbol.for("nbstream.widget")] = { version, widget };

// Answers a live output shows read-only (no model in the kernel), by uid: their answer outputs
// stay hidden (one copy on screen).
const SHOWN = Symbol.for("nbstream.shown");
/** @returns {Map<string, number>} */
const shownSaved = () => (page[SHOWN] ??= new Map());
/**
 * @param {string[]} uids
 * @param {number} delta
 */
function markShown(uids, delta) {
  const shown = shownSaved();
  for (const uid of uids) shown.set(uid, Math.max(0, (shown.get(uid) ?? 0) + delta));
  globalThis.dispatchEvent(new CustomEvent(LIVE_EVENT, { detail: {} }));
}

/** The nearest lumino ancestor that has `key` (the output area's rendermime, the panel's
 * sessionContext): the renderer is told neither, but it is mounted inside both.
 * @template {keyof Ancestors} K
 * @param {import("@lumino/widgets").Widget} start
 * @param {K} key
 * @returns {Ancestors[K] | null}
 */
function ancestorWith(start, key) {
  // (output areas and notebook panels carry these members; lumino's Widget type does not)
  for (let w = start.parent; w; w = w.parent) if (/** @type {any} */ (w)[key]) return /** @type {any} */ (w)[key];
  return null;
}

// Executions (kernel futures of output areas) whose reply and idle came back. JupyterLab keeps an
// output area's future after it is done (it asks the kernel with disposeOnDone = false), so
// done-ness is noted here from the future's `done` promise, watched as soon as an output mounts.
/** @type {WeakSet<Future>} */
const FINISHED = new WeakSet();
/** @type {WeakSet<Future>} */
const WATCHED = new WeakSet();
/** @param {Future | null} future */
function watchExecution(future) {
  if (!future || WATCHED.has(future)) return;
  WATCHED.add(future);
  future.done.catch(() => {}).finally(() => FINISHED.add(future));
}

class NbstreamOutput extends Panel {
  /** @param {RendererOptions} options */
  constructor(options) {
    super();
    this.mimeType = options.mimeType;
    this.addClass("nbstream-output");
    /** @type {MimeModel | null} */
    this.mime = null;
    /** @type {string} */
    this.role = "";
    /** @type {StoredAnswer[]} */
    this.answers = [];
    /** @type {WidgetRenderer | null} */
    this.liveRenderer = null;
    this.mounted = false;
    /** @type {HTMLDivElement | null} */
    this.savedBox = null; // read-only views of stored answers
    /** @type {HTMLDivElement | null} */
    this.pendingNote = null; // "still streaming in the busy kernel" while the widget cannot come
    /** @type {WidgetManager | null} */
    this.manager = null; // the notebook's widget manager, once our renderer has it
    this.waitedLong = false; // PENDING_AFTER_MS have passed since the widget was asked for
    /** @type {{destroy(): void}[]} */
    this.savedViews = [];
    /** @type {string[]} */
    this.savedUids = [];
    /** @type {SessionContext | null} */
    this.sessionContext = null;
    this.onLive = () => this.updateVisibility();
    this.onInterrupt = (/** @type {Event} */ event) =>
      this.interrupt(/** @type {CustomEvent<{handled: boolean}>} */ (event));
    this.onFinal = (/** @type {Event} */ event) => this.persist(/** @type {CustomEvent<FinalDetail>} */ (event).detail);
    /** @type {() => void} */
    this.onStatus = () => {};
    /** @type {() => void} */
    this.onKernelChanged = () => {};
    this.node.addEventListener(INTERRUPT_EVENT, this.onInterrupt);
    this.node.addEventListener(FINAL_EVENT, this.onFinal);
    globalThis.addEventListener(LIVE_EVENT, this.onLive);
  }

  /** @param {MimeModel} model */
  async renderModel(model) {
    this.mime = model;
    // (nbstream's own JSON: nbstream/frontend/output.py writes these shapes)
    this.role = /** @type {{output?: string} | undefined} */ (model.data[MIME])?.output ?? "";
    this.answers = /** @type {{answers?: StoredAnswer[]} | undefined} */ (model.metadata?.[MIME])?.answers ?? [];
    this.node.dataset.output = this.role;
    if (this.role === "answer") {
      this.clearSaved(); // (re)built by updateVisibility only if this copy is the one shown
      this.updateVisibility();
    } else if (this.role === "live") {
      this.node.dataset.mounted = this.mounted ? "yes" : "no";
      this.updateVisibility();
      if (this.isAttached) this.mountLive();
    }
  }

  /** @param {import("@lumino/messaging").Message} msg */
  onAfterAttach(msg) {
    super.onAfterAttach(msg);
    this.updateVisibility(); // the output area's row exists now
    if (this.role === "live") this.mountLive();
  }

  /** The widget view, through the notebook's widget renderer (it knows the kernel's models),
   * hidden until nbstream's view is mounted in it: "Loading widget..." and "model not found"
   * never show; the stored answer shows instead while there is no live model. */
  async mountLive() {
    if (this.liveRenderer || !this.mime) return;
    const rendermime = ancestorWith(this, "rendermime");
    if (!this.mime.trusted || !rendermime?.mimeTypes.includes(WIDGET_MIME)) {
      this.showSaved(); // an untrusted notebook, or no widget manager: the stored answer only
      return;
    }
    const sessionContext = ancestorWith(this, "sessionContext");
    this.watchKernel(sessionContext);
    watchExecution(ancestorWith(this, "future"));
    const factory = rendermime.getFactory(WIDGET_MIME);
    const renderer = this.startRenderer(rendermime);
    // A busy kernel answers the widget manager only when the running cell ends (its requests
    // wait on the kernel's shell): say so rather than nothing, once the wait is noticeable.
    setTimeout(() => {
      this.waitedLong = true;
      this.updatePending();
    }, PENDING_AFTER_MS);
    if (renderer._manager && !(await settled(renderer._manager.promise))) {
      // ipywidgets hands its widget manager (once the kernel is ready) only to the widget
      // renderers it finds directly in output areas, and from then on builds renderers with it.
      // Ours is nested in this panel: after a page (re)load it would wait for a manager forever
      // ("Loading widget..."). Take a renderer from the new factory instead.
      await sessionContext?.ready?.catch(() => null);
      for (let waited = 0; waited < MANAGER_WAIT_MS && !this.isDisposed; waited += 50) {
        if (rendermime.getFactory(WIDGET_MIME) !== factory) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      if (this.isDisposed || this.mounted || rendermime.getFactory(WIDGET_MIME) === factory) return;
      renderer.dispose();
      this.startRenderer(rendermime);
    }
  }

  /** @param {RenderMime} rendermime */
  startRenderer(rendermime) {
    const renderer = rendermime.createRenderer(WIDGET_MIME);
    this.liveRenderer = renderer;
    renderer.hide();
    this.addWidget(renderer);
    renderer.node.addEventListener(MOUNTED_EVENT, () => {
      if (this.liveRenderer !== renderer) return;
      this.mounted = true;
      this.node.dataset.mounted = "yes";
      this.clearSaved();
      renderer.show();
      this.updatePending();
      this.updateVisibility();
    });
    renderer
      .renderModel(/** @type {MimeModel} */ (this.mime))
      .catch((/** @type {unknown} */ error) => console.warn("nbstream:", error));
    this.watchManager(renderer);
    return renderer;
  }

  /** ipywidgets' renderer keeps its manager private; when it is there, ask it whether the
   * kernel has the model once the widget state is restored (else the stored answer stays).
   * @param {WidgetRenderer} renderer
   */
  async watchManager(renderer) {
    const manager = await renderer._manager?.promise?.catch(() => null);
    if (this.liveRenderer !== renderer) return;
    this.manager = manager ?? null;
    const mime = /** @type {MimeModel} */ (this.mime); // (rendered before its renderer starts)
    const modelId = /** @type {{model_id?: string} | undefined} */ (mime.data[WIDGET_MIME])?.model_id;
    if (!this.mounted) this.showSaved();
    if (!manager || !modelId) return;
    const check = () => {
      if (!this.mounted && manager.restoredStatus && !manager.has_model(modelId)) this.showSaved();
      this.updatePending();
    };
    manager.restored?.connect(check);
    check();
  }

  /** A note in place of the widget while the kernel is too busy to give it: the stream goes on
   * in the kernel; the widget shows up (with all the text so far) as soon as the kernel answers. */
  updatePending() {
    // The page's idea of the kernel status is no help here: after a reload it says "idle" while
    // the kernel runs the cell. A widget manager still without the kernel's widgets a second
    // after the page asked for them is the sign: the kernel cannot answer yet.
    const waiting =
      this.role === "live" &&
      !!this.liveRenderer &&
      !this.mounted &&
      !this.savedBox &&
      !this.isDisposed &&
      this.waitedLong &&
      !this.manager?.restoredStatus;
    if (waiting && !this.pendingNote) {
      this.pendingNote = document.createElement("div");
      this.pendingNote.className = "nbstream-pending";
      this.pendingNote.dataset.testid = "live-pending";
      this.pendingNote.setAttribute("role", "status");
      this.pendingNote.textContent = PENDING_TEXT;
      this.node.prepend(this.pendingNote);
    } else if (!waiting && this.pendingNote) {
      this.pendingNote.remove();
      this.pendingNote = null;
    }
    this.updateVisibility();
  }

  showSaved() {
    this.buildSaved();
    this.updateVisibility();
  }

  /** The stored answers, read-only (renderSaved: the widget's own view without a kernel). */
  buildSaved() {
    const stored = this.answers.filter((a) => a?.snapshot?.versions?.length);
    if (this.savedBox || !stored.length || this.mounted) return;
    this.savedBox = document.createElement("div");
    this.savedBox.className = "nbstream-saved";
    this.savedBox.dataset.testid = "saved-answer";
    for (const answer of stored) {
      const cell = document.createElement("div");
      if (answer.label) {
        const title = document.createElement("div");
        title.className = "nbstream-saved-label";
        title.textContent = answer.label;
        cell.append(title);
      }
      this.savedViews.push(renderSaved(cell, answer));
      this.savedBox.append(cell);
    }
    if (stored.length > 1) this.savedBox.classList.add("nbstream-saved-grid");
    this.node.prepend(this.savedBox);
    if (this.role === "live") {
      this.savedUids = stored.map((a) => a.uid);
      markShown(this.savedUids, 1);
    }
  }

  clearSaved() {
    for (const view of this.savedViews) view.destroy();
    this.savedViews = [];
    this.savedBox?.remove();
    this.savedBox = null;
    if (this.savedUids.length) markShown(this.savedUids, -1);
    this.savedUids = [];
  }

  /** A version ended in the live widget: store its snapshot in this output's metadata.
   * @param {FinalDetail | undefined} detail
   */
  persist(detail) {
    if (this.role !== "live" || !detail?.uid || !this.mime?.setData) return;
    const meta = /** @type {{answers?: StoredAnswer[]}} */ (this.mime.metadata?.[MIME] ?? {});
    const answers = (meta.answers ?? []).slice();
    const i = answers.findIndex((a) => a.uid === detail.uid);
    const answer = {
      ...(i >= 0 ? answers[i] : { uid: detail.uid }),
      snapshot: detail.snapshot,
      format: detail.format,
      language: detail.language,
      heading: detail.heading,
    };
    if (i >= 0) answers[i] = answer;
    else answers.push(answer);
    this.answers = answers;
    // (the answers are JSON: a snapshot as the kernel sent it, strings)
    const metadata = /** @type {import("@lumino/coreutils").ReadonlyPartialJSONObject} */ ({
      ...this.mime.metadata,
      [MIME]: { ...meta, answers },
    });
    this.mime.setData({ metadata });
  }

  /** @param {SessionContext | null} sessionContext */
  watchKernel(sessionContext) {
    if (!sessionContext || this.sessionContext) return;
    this.sessionContext = sessionContext;
    this.onStatus = () => {
      this.tellViews(sessionContext.session?.kernel?.status ?? "unknown");
      this.updatePending();
    };
    this.onKernelChanged = () => this.tellViews("restarting");
    sessionContext.statusChanged.connect(this.onStatus);
    sessionContext.kernelChanged.connect(this.onKernelChanged);
  }

  /** @param {string} status */
  tellViews(status) {
    if (!this.liveRenderer) return;
    for (const root of this.liveRenderer.node.querySelectorAll(".nbstream-root")) {
      root.dispatchEvent(new CustomEvent(KERNEL_EVENT, { detail: { status } }));
    }
  }

  /** Stop clicked while the cell holds the kernel: interrupt it, which nbstream turns into a
   * clean Stop of this stream (partial text kept, no traceback, Run All goes on).
   * Only while this output's own cell runs: the output area's execution (its `future`, set when
   * the cell is sent, which also clears the old outputs; done once the kernel's reply and idle
   * came back) is still open, so this output came from the execution running now. Not the
   * kernel's status: with JupyterLab >= 4.4 the widget's comm messages run on a subshell whose
   * busy/idle messages make `kernel.status` read "idle" while the cell holds the main shell; and
   * "busy" alone would also be true while a later cell of a Run All runs (a late Stop would
   * interrupt that cell). What remains is the network's window: the kernel ended this cell and
   * began the next one, and the page has not heard it yet (about a millisecond on one machine).
   * @param {CustomEvent<{handled: boolean}>} event
   */
  interrupt(event) {
    const kernel = this.sessionContext?.session?.kernel;
    const future = ancestorWith(this, "future");
    if (!kernel || !future || future.isDisposed || !WATCHED.has(future) || FINISHED.has(future)) {
      return;
    }
    event.detail.handled = true;
    kernel.interrupt().catch((/** @type {unknown} */ error) => console.warn("nbstream: interrupt failed", error));
  }

  /** One copy of an answer on screen: an answer output hides while a live output shows that
   * answer (live or stored); a live output with nothing to show (no model, nothing stored) hides
   * too. The output area's row (prompt and padding) goes with it. */
  updateVisibility() {
    let hidden = false;
    if (this.role === "answer") {
      const shown = shownSaved();
      const elsewhere = this.answers.some((a) => isLive(a.uid) || (shown.get(a.uid) ?? 0) > 0);
      // a hidden copy holds no view: rendering every answer twice would double the page's work
      if (elsewhere) this.clearSaved();
      else this.buildSaved();
      hidden = !this.savedBox; // shown elsewhere, or nothing stored yet (a background placeholder)
    } else if (this.role === "live") {
      hidden = !this.mounted && !this.savedBox && !this.pendingNote;
    }
    this.node.dataset.hidden = hidden ? "yes" : "no";
    this.setHidden(hidden);
    this.node.closest(".jp-OutputArea-child")?.classList.toggle("nbstream-hidden-output", hidden);
  }

  dispose() {
    if (this.isDisposed) return;
    globalThis.removeEventListener(LIVE_EVENT, this.onLive);
    this.node.removeEventListener(INTERRUPT_EVENT, this.onInterrupt);
    this.node.removeEventListener(FINAL_EVENT, this.onFinal);
    if (this.sessionContext) {
      this.sessionContext.statusChanged.disconnect(this.onStatus);
      this.sessionContext.kernelChanged.disconnect(this.onKernelChanged);
    }
    this.clearSaved();
    super.dispose();
  }
}

/** Voila renders outputs outside a notebook's widget tree, where the live output could not reach
 * the widget renderer: there the outputs are left to the widget renderer (live output) and hidden
 * by it (answer output, empty model id), as without this extension. */
function inVoila() {
  try {
    return JSON.parse(document.getElementById("jupyter-config-data")?.textContent || "{}").appUrl === "voila/";
  } catch {
    return false;
  }
}

const rendererFactory = {
  safe: true, // what it puts on the page went through the widget's sanitizer (DOMPurify)
  mimeTypes: inVoila() ? [] : [MIME],
  createRenderer: (/** @type {RendererOptions} */ options) => new NbstreamOutput(options),
};

export default {
  id: "nbstream:output",
  rendererFactory,
  rank: -20, // before the widget renderer (-10): the live output is ours to mount
  dataType: "json",
};
