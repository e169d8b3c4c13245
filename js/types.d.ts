// Types of what anywidget hands the widget (no types package is installed for it): the model of
// one StreamView, with nbstream's traits (nbstream/frontend/widget.py), and the render/initialize context.
import type { FromKernel, Mode, Snapshot, ToKernel } from "./protocol.js";

/** The synced traits of a StreamView (nbstream/frontend/widget.py) that the frontend reads. */
export interface Traits {
  uid: string;
  snapshot: Snapshot | null;
  mode: Mode;
  format: string;
  language: string;
  heading: string;
  rerunnable: boolean;
  resumable: boolean;
  /** "IPY_MODEL_<id>" of the kernel's shared bundle model (js/loader.js) */
  bundle: string;
}

/** anywidget's model proxy, as nbstream uses it. */
export interface Model {
  get<K extends keyof Traits>(name: K): Traits[K];
  set<K extends keyof Traits>(name: K, value: Traits[K]): void;
  on(event: "msg:custom", fn: (msg: FromKernel) => void): void;
  on(event: string, fn: () => void): void;
  off(event: "msg:custom", fn: (msg: FromKernel) => void): void;
  off(event: string, fn: () => void): void;
  send(msg: ToKernel): void;
  save_changes(): void;
  /** ipywidgets' widget manager (absent in frontends without one, e.g. marimo) */
  widget_manager?: { get_model(id: string): Promise<{ get(name: string): string }> };
}

/** What anywidget passes to initialize() and render(). */
export interface Context {
  model: Model;
  el: HTMLElement;
}

/** The widget module's default export (js/widget.js): anywidget's lifecycle hooks. */
export interface Widget {
  initialize?(ctx: { model: Model }): (() => void) | undefined | Promise<(() => void) | undefined>;
  render?(ctx: Context): (() => void) | undefined | Promise<(() => void) | undefined>;
}
