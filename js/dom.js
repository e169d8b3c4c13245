// @ts-check
// Small DOM helpers shared by the view (view.js), the chunk-log panel (logpanel.js) and the rich
// answer pieces (rich.js). Text only ever reaches the DOM as textContent or attribute values here:
// model output never becomes markup through these helpers (that is sanitize.js's job alone).

/**
 * Attributes of h(): `className`, `text` (textContent), `on<event>` listeners, and any other
 * attribute (set with setAttribute; a boolean or number is written as its string, so
 * `hidden: true` sets `hidden="true"`, which hides the element).
 * @typedef {{className?: string, text?: string} & Record<string, string | number | boolean | EventListener>} Attrs
 */

/**
 * An element with attributes and children: `h("button", {className: "x", onclick}, "Stop")`.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs} [attrs]
 * @param {...(Node | string)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "className") el.className = String(v);
    else if (k === "text") el.textContent = String(v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, String(v));
  }
  for (const c of children) el.append(c);
  return el;
}

/**
 * `s` with the five HTML-special characters escaped, for text put into an HTML string.
 * @param {unknown} s
 */
export function escapeHTML(s) {
  return String(s).replace(/[&<>"']/g, (ch) => HTML_ESCAPES[/** @type {keyof typeof HTML_ESCAPES} */ (ch)]);
}

const HTML_ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/**
 * Run `fn` at the next animation frame (a timer of one frame's length where there are no frames:
 * tests, a worker).
 * @param {() => void} fn
 */
export const raf = (fn) =>
  typeof requestAnimationFrame === "function" ? requestAnimationFrame(fn) : setTimeout(fn, 16);
