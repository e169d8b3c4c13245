// @ts-check
// The `_esm` of every StreamView: a few hundred bytes that find the widget's code once per page.
//
// anywidget sends and saves a widget's `_esm` with every instance (anywidget issue 613): with the
// whole bundle there (0.5 MB of JS, 32 KB of CSS), 200 views sent 112 MB and 10 saved answers made
// a 6 MB notebook. Here the code travels once:
// - JupyterLab and Notebook 7 with nbstream's extension (installed with the package) already hold
//   the same bundle (same content hash, VERSION): nothing is sent at all;
// - anywhere else (VS Code, Voila, an extension of another nbstream version, saved widget state
//   rendered by the HTML widget manager) the kernel keeps one bundle model per kernel, every view
//   refers to it (trait `bundle`), and the first view on the page imports it for all the others.
/* global __NBSTREAM_VERSION__ */
/** @typedef {import("./types.js").Model} Model
 * @typedef {import("./types.js").Context} Context
 */
/** @typedef {import("./types.js").Widget} Widget
 * @typedef {{js: string, css?: string}} Code
 */

const VERSION = __NBSTREAM_VERSION__;
// page-wide values under Symbol.for keys (shared by every copy of nbstream's code on the page):
// TypeScript has no type for symbol-keyed globals
const page = /** @type {Record<symbol, any>} */ (globalThis);
const WIDGET = Symbol.for("nbstream.widget"); // {version, widget} set by the JupyterLab extension
const LOADS = Symbol.for("nbstream.loads"); // version -> Promise<widget>, one import per page

/** @returns {Widget | null} */
function fromExtension() {
  const ext = page[WIDGET];
  return ext && ext.version === VERSION ? ext.widget : null;
}

/**
 * @param {Model} model
 * @returns {Promise<Widget>}
 */
function fromKernel(model) {
  /** @type {Map<string, Promise<Widget>>} */
  const loads = page[LOADS] ?? new Map();
  page[LOADS] = loads;
  let load = loads.get(VERSION);
  if (!load) {
    load = (async () => {
      const code = await fromBundleModel(model).catch(() => askKernel(model));
      CSS.set(VERSION, code.css ?? "");
      addStyle(document.head);
      const url = URL.createObjectURL(new Blob([code.js], { type: "text/javascript" }));
      try {
        return (await import(/* webpackIgnore: true */ /* @vite-ignore */ url)).default;
      } finally {
        URL.revokeObjectURL(url);
      }
    })();
    loads.set(VERSION, load);
    load.catch(() => loads.delete(VERSION)); // a later view may try again
  }
  return load;
}

/** @type {Map<string, string>} */
const CSS = new Map(); // version -> the bundle's styles, once loaded

/** The bundle's styles into `parent` (the page's head, or the shadow root a frontend such as
 * marimo renders each widget in: the page's styles do not reach inside), once per parent.
 * @param {ParentNode | null} parent
 */
function addStyle(parent) {
  if (!parent || !CSS.has(VERSION) || parent.querySelector?.(`style[data-nbstream="${VERSION}"]`)) return;
  const style = document.createElement("style");
  style.dataset.nbstream = VERSION;
  style.textContent = CSS.get(VERSION) ?? "";
  parent.append(style);
}

/**
 * A view rendered inside a shadow root gets the styles there (once `el` is in the page).
 * @param {HTMLElement} el
 */
function styleShadow(el, tries = 0) {
  const root = el.getRootNode?.();
  if (typeof ShadowRoot !== "undefined" && root instanceof ShadowRoot) addStyle(root);
  else if (!el.isConnected && tries < 120) requestAnimationFrame(() => styleShadow(el, tries + 1));
}

/**
 * The shared bundle model (trait `bundle` = "IPY_MODEL_<id>"), through the widget manager.
 * @param {Model} model
 * @returns {Promise<Code>}
 */
async function fromBundleModel(model) {
  const id = String(model.get("bundle") ?? "").replace(/^IPY_MODEL_/, "");
  if (!model.widget_manager) throw new Error("no widget manager");
  const bundle = await model.widget_manager.get_model(id);
  return { js: bundle.get("js"), css: bundle.get("css") };
}

/**
 * A frontend without ipywidgets' widget manager (e.g. marimo): ask the view's kernel object.
 * @param {Model} model
 * @returns {Promise<Code>}
 */
function askKernel(model) {
  return new Promise((resolve) => {
    /** @param {import("./protocol.js").FromKernel} msg */
    const onMessage = (msg) => {
      if (!msg || !("type" in msg) || msg.type !== "bundle") return;
      model.off("msg:custom", onMessage);
      resolve({ js: msg.js, css: msg.css });
    };
    model.on("msg:custom", onMessage);
    // (not protocol.js's bundle(): this file stays small, it travels with every view)
    /** @type {import("./protocol.js").BundleRequest} */
    const ask = { type: "bundle" };
    model.send(ask);
  });
}

/** @param {Model} model */
async function widget(model) {
  return fromExtension() ?? (await fromKernel(model));
}

/**
 * Without the code (no kernel to ask, no extension): the answer as plain text, never markup.
 * @param {Model} model
 * @param {HTMLElement} el
 * @param {unknown} error
 */
function fallback(model, el, error) {
  const versions = model.get("snapshot")?.versions ?? [];
  const v = versions[versions.length - 1];
  const text = (v?.parts ?? [])
    .filter((p) => (p.kind ?? "text") === "text" && !p.choice)
    .map((p) => p.text)
    .join("");
  const pre = document.createElement("pre");
  pre.className = "nbstream-fallback";
  pre.style.whiteSpace = "pre-wrap";
  pre.textContent =
    text || `nbstream: the widget's code could not be loaded (${error instanceof Error ? error.message : error})`;
  el.replaceChildren(pre);
}

/** @type {Widget} */
export default {
  /** @param {{model: Model}} ctx */
  async initialize(ctx) {
    try {
      return (await widget(ctx.model)).initialize?.(ctx);
    } catch {
      return undefined; // render() shows the fallback
    }
  },
  /** @param {Context} ctx */
  async render(ctx) {
    let w;
    try {
      w = await widget(ctx.model);
    } catch (error) {
      fallback(ctx.model, ctx.el, error);
      return undefined;
    }
    styleShadow(ctx.el);
    return w.render?.(ctx);
  },
};
