// @ts-check
// Stand-ins for the unit tests (vitest, jsdom): imported by tests only, never by the widget.

import { vi } from "vitest";
import { StreamDocument } from "./document.js";
import { View } from "./view.js";

/**
 * A minimal anywidget model: traits (`get`/`set`, with `change:<trait>` events), `on`/`off`, and
 * `send`, which records the messages in `sent`.
 * @param {Partial<import("./types.js").Traits>} [traits] on top of a background, re-runnable answer
 * @returns {import("./types.js").Model & {sent: import("./protocol.js").ToKernel[]}}
 */
export function fakeModel(traits = {}) {
  /** @type {Map<string, Function[]>} */
  const handlers = new Map();
  /** @type {Record<string, unknown>} */
  const state = { mode: "background", rerunnable: true, resumable: false, format: "markdown", language: "", ...traits };
  /** @type {import("./protocol.js").ToKernel[]} */
  const sent = [];
  return {
    sent,
    get: (k) => /** @type {any} */ (state[k]),
    set(k, v) {
      state[k] = v;
      for (const fn of handlers.get(`change:${k}`) ?? []) fn();
    },
    /** @param {string} name @param {Function} fn */
    on(name, fn) {
      handlers.set(name, [...(handlers.get(name) ?? []), fn]);
    },
    /** @param {string} name @param {Function} fn */
    off(name, fn) {
      handlers.set(
        name,
        (handlers.get(name) ?? []).filter((f) => f !== fn),
      );
    },
    send(msg) {
      sent.push(msg);
    },
    save_changes() {},
  };
}

/**
 * Animation frames the test runs itself (call it in beforeEach; vi.unstubAllGlobals() after):
 * flush() runs the frames queued so far.
 */
export function stubFrames() {
  /** @type {(() => void)[]} */
  let queued = [];
  vi.stubGlobal("requestAnimationFrame", (/** @type {() => void} */ fn) => queued.push(fn));
  return {
    flush() {
      const fns = queued;
      queued = [];
      for (const f of fns) f();
    },
  };
}

/**
 * A View of a fresh document on `model`, in a detached element; q(id) / qa(id) find elements by
 * data-testid (typed `any`: the tests read any element's properties, hidden, open, dataset...).
 * @param {import("./types.js").Model} model
 */
export function mountView(model) {
  const doc = new StreamDocument({ send: (m) => model.send(m) });
  const el = document.createElement("div");
  const view = new View(el, model, doc);
  /** @type {(id: string) => any} */
  const q = (id) => el.querySelector(`[data-testid=${id}]`);
  /** @type {(id: string) => any[]} */
  const qa = (id) => [...el.querySelectorAll(`[data-testid=${id}]`)];
  return { model, doc, el, view, q, qa };
}
