// @ts-check
// The one place model output becomes HTML for the DOM: everything goes through DOMPurify.
//
// Model output is untrusted. Links open in a new tab with rel="noopener noreferrer"; only http(s),
// mailto and in-page (#) links survive. No <img> at all: loading a remote image is a known way to leak
// data to a URL chosen by the model (markdown.js renders Markdown images as links instead).
//
// Speed (a 100k-token answer sanitizes thousands of blocks while it streams): each purifier gets
// its configuration once (setConfig) instead of re-parsing it on every call, and the DOM path
// hands back DOMPurify's own sanitized fragment instead of serializing it to a string that
// innerHTML would parse a second time.

import DOMPurify from "dompurify";

const SAFE_URL = /^(?:https?:|mailto:|#)/i;

const CONFIG = {
  USE_PROFILES: { html: true, mathMl: true, svg: true }, // KaTeX draws some glyphs as SVG
  FORBID_TAGS: ["img", "style", "form", "input", "button", "textarea", "select", "iframe", "object", "embed"],
  FORBID_ATTR: ["srcset"],
};

/** @type {Map<"string" | "fragment", import("dompurify").DOMPurify>} */
const purifiers = new Map(); // "string" | "fragment" -> configured DOMPurify instance

/** @param {"string" | "fragment"} kind */
function getPurifier(kind) {
  let purifier = purifiers.get(kind);
  if (purifier) return purifier;
  purifier = DOMPurify(globalThis.window ?? window);
  purifier.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A") {
      const href = node.getAttribute("href");
      if (href !== null && !SAFE_URL.test(href.trim())) node.removeAttribute("href");
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer");
    }
  });
  purifier.setConfig(kind === "fragment" ? { ...CONFIG, RETURN_DOM_FRAGMENT: true } : CONFIG);
  purifiers.set(kind, purifier);
  return purifier;
}

/**
 * Sanitized HTML string.
 * @param {string} html
 * @returns {string}
 */
export function sanitize(html) {
  return getPurifier("string").sanitize(html);
}

/**
 * Sanitized DOM fragment of an HTML string (owned by the page's document).
 * @param {string} html
 * @returns {DocumentFragment}
 */
export function sanitizeToFragment(html) {
  // setConfig gave this purifier RETURN_DOM_FRAGMENT; DOMPurify's types only see per-call configs
  return /** @type {DocumentFragment} */ (/** @type {unknown} */ (getPurifier("fragment").sanitize(html)));
}

/**
 * Set el's content to sanitized HTML. The only way model HTML reaches the widget's DOM.
 * @param {Element} el
 * @param {string} html
 */
export function setSafeHTML(el, html) {
  el.replaceChildren(sanitizeToFragment(html));
}
