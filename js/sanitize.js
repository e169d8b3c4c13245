// The one place model output becomes HTML for the DOM: everything goes through DOMPurify.
//
// Model output is untrusted. Links open in a new tab with rel="noopener noreferrer"; only http(s),
// mailto and in-page (#) links survive. No <img> at all: loading a remote image is a known way to leak
// data to a URL chosen by the model (markdown.js renders Markdown images as links instead).

import DOMPurify from "dompurify";

const SAFE_URL = /^(?:https?:|mailto:|#)/i;

let purifier = null;

function getPurifier() {
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
  return purifier;
}

const CONFIG = {
  USE_PROFILES: { html: true, mathMl: true, svg: true }, // KaTeX draws some glyphs as SVG
  FORBID_TAGS: ["img", "style", "form", "input", "button", "textarea", "select", "iframe", "object", "embed"],
  FORBID_ATTR: ["srcset"],
};

/** Sanitized HTML string. */
export function sanitize(html) {
  return getPurifier().sanitize(html, CONFIG);
}

/** Set el's content to sanitized HTML. The only innerHTML assignment of the widget. */
export function setSafeHTML(el, html) {
  el.innerHTML = sanitize(html);
}
