// Incremental Markdown: the answer is split into blocks at blank lines outside code fences and
// display math; finished blocks are rendered once and their DOM nodes kept, only the tail block is
// re-rendered as tokens arrive. Half-written Markdown renders sensibly: an unclosed fence is shown as
// a code block (closed for rendering), an unclosed $$ as plain text until it closes.

import MarkdownIt from "markdown-it";
import texmath from "markdown-it-texmath";
import katex from "katex";
import hljs from "highlight.js/lib/core";
import python from "highlight.js/lib/languages/python";
import javascript from "highlight.js/lib/languages/javascript";
import typescript from "highlight.js/lib/languages/typescript";
import json from "highlight.js/lib/languages/json";
import bash from "highlight.js/lib/languages/bash";
import shell from "highlight.js/lib/languages/shell";
import sql from "highlight.js/lib/languages/sql";
import xml from "highlight.js/lib/languages/xml";
import css from "highlight.js/lib/languages/css";
import yaml from "highlight.js/lib/languages/yaml";
import rust from "highlight.js/lib/languages/rust";
import go from "highlight.js/lib/languages/go";
import java from "highlight.js/lib/languages/java";
import cpp from "highlight.js/lib/languages/cpp";
import c from "highlight.js/lib/languages/c";
import markdownLang from "highlight.js/lib/languages/markdown";
import diff from "highlight.js/lib/languages/diff";
import { sanitize } from "./sanitize.js";

for (const [name, lang] of Object.entries({ python, javascript, typescript, json, bash, shell, sql, xml,
  css, yaml, rust, go, java, cpp, c, markdown: markdownLang, diff })) hljs.registerLanguage(name, lang);

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]);
}

/** Highlighted HTML for code (escaped; hljs output only contains spans). */
export function highlight(code, lang) {
  const name = (lang || "").trim().split(/\s+/)[0].toLowerCase();
  if (name && hljs.getLanguage(name)) {
    try {
      return hljs.highlight(code, { language: name, ignoreIllegals: true }).value;
    } catch {
      /* fall through to plain */
    }
  }
  return escapeHtml(code);
}

const md = new MarkdownIt({
  html: false, // raw HTML from the model is shown as text
  linkify: true,
  breaks: false,
  highlight: (code, lang) => `<pre class="hljs"><code class="language-${escapeHtml(lang || "text")}">${highlight(code, lang)}</code></pre>`,
});
md.use(texmath, { engine: katex, delimiters: ["dollars", "brackets"], katexOptions: { throwOnError: false, strict: "ignore", trust: false, output: "htmlAndMathml" } });
md.renderer.rules.image = (tokens, idx) => {
  // No remote images (a data leak channel): a link with the alt text instead.
  const token = tokens[idx];
  const src = token.attrGet("src") ?? "";
  const alt = escapeHtml(token.content || "image");
  return /^https?:/i.test(src) ? `<a class="nbstream-image-link" href="${escapeHtml(src)}">[image: ${alt}]</a>` : `<span class="nbstream-image-link">[image: ${alt}]</span>`;
};

/** Sanitized HTML for a Markdown string. */
export function renderMarkdown(text) {
  return sanitize(md.render(text));
}

const FENCE = /^ {0,3}(`{3,}|~{3,})(.*)$/;

/**
 * Split Markdown into blocks at blank lines that are outside fences and $$/\[ math.
 * Returns {blocks: string[], open: {fence?: string, math?: string}} where the last block is the tail
 * (still growing); every other block is finished.
 */
export function splitBlocks(text) {
  const lines = text.split("\n");
  const blocks = [];
  let cur = [];
  let curStart = 0; // offset in text of the first line of `cur`
  let pos = 0; // offset of the current line
  let fence = null; // the opening marker, e.g. "```"
  let math = null; // "$$" or "\\["
  const last = lines.length - 1;
  for (let i = 0; i <= last; i++) {
    const line = lines[i];
    // the unterminated last line is never a block boundary: "  " may become "  - item"
    if (i === last && line.trim() === "" && !fence && !math) break;
    const here = pos;
    pos += line.length + 1;
    if (cur.length === 0) curStart = here;
    if (fence) {
      cur.push(line);
      const m = FENCE.exec(line);
      if (m && m[1][0] === fence[0] && m[1].length >= fence.length && m[2].trim() === "") fence = null;
      continue;
    }
    if (math) {
      cur.push(line);
      if (math === "$$" ? line.includes("$$") : line.includes("\\]")) math = null;
      continue;
    }
    const m = FENCE.exec(line);
    if (m && !(m[1][0] === "`" && m[2].includes("`"))) {
      fence = m[1];
      cur.push(line);
      continue;
    }
    const t = line.trim();
    if (t.startsWith("$$") && !t.slice(2).includes("$$")) math = "$$";
    else if (t.startsWith("\\[") && !t.includes("\\]")) math = "\\[";
    if (t === "" && !math) {
      if (cur.length) blocks.push(cur.join("\n"));
      cur = [];
      continue;
    }
    cur.push(line);
  }
  blocks.push(cur.join("\n"));
  const tailOffset = cur.length ? curStart : Math.min(pos, text.length);
  return { blocks, open: { fence, math }, tailOffset };
}

/** Make a half-written tail block render sensibly: close an open fence. */
export function closeTail(tail, open) {
  if (open.fence) return `${tail}\n${open.fence}`;
  return tail;
}

/**
 * Renders a growing Markdown text into a container. update(text) re-renders only what changed:
 * finished blocks keep their DOM nodes (same identity) while the text only grows.
 */
export class IncrementalMarkdown {
  constructor(container, { format = "markdown", language = "" } = {}) {
    this.el = container;
    this.format = format;
    this.language = language;
    this.blocks = []; // [{src, node}] finished blocks
    this.tail = null; // {src, node}
    this.tailStart = 0; // offset in text where the unfinished tail begins
    this.text = "";
    this.renders = 0; // tail/finished block renders, for tests and the benchmark
  }

  update(text) {
    if (text === this.text) return;
    if (this.format !== "markdown") return this.renderWhole(text);
    if (!text.startsWith(this.text)) this.reset(); // replaced, not grown (version switch, resync)
    this.text = text;
    // Only the part after the last finished block is split again: O(new text) per update.
    const { blocks, open, tailOffset } = splitBlocks(text.slice(this.tailStart));
    this.tailStart += tailOffset;
    for (const src of blocks.slice(0, -1)) {
      let node;
      if (this.tail && this.tail.src === src) {
        node = this.tail.node; // the tail just finished unchanged: keep its node
        node.classList.remove("nbstream-tail");
        this.tail = null;
      } else node = this.renderBlock(src, {});
      this.finishedBox().appendChild(node);
      this.blocks.push({ src, node });
    }
    const tailSrc = blocks[blocks.length - 1];
    if (!this.tail) {
      this.tail = { src: null, node: document.createElement("div") };
      this.tail.node.className = "nbstream-block nbstream-tail";
      this.el.appendChild(this.tail.node);
    }
    if (this.tail.src !== tailSrc) {
      this.tail.src = tailSrc;
      this.fill(this.tail.node, tailSrc, open);
    }
  }

  /** Finished blocks live in their own container before the tail: appending one never moves
   * or searches among the others. */
  finishedBox() {
    if (!this.done) {
      this.done = document.createElement("div");
      this.done.className = "nbstream-blocks";
      this.el.insertBefore(this.done, this.el.firstChild);
    }
    return this.done;
  }


  renderBlock(src, open) {
    const node = document.createElement("div");
    node.className = "nbstream-block";
    this.fill(node, src, open);
    return node;
  }

  fill(node, src, open) {
    this.renders += 1;
    node.innerHTML = renderMarkdown(closeTail(src, open)); // sanitized by renderMarkdown
  }

  renderWhole(text) {
    // "text": preformatted text; "code": one highlighted block. Both re-render in full (cheap: no parse).
    this.text = text;
    this.renders += 1;
    if (!this.pre) {
      this.el.replaceChildren();
      this.pre = document.createElement("pre");
      this.pre.className = this.format === "code" ? "nbstream-code hljs" : "nbstream-text";
      this.code = document.createElement("code");
      this.pre.appendChild(this.code);
      this.el.appendChild(this.pre);
    }
    if (this.format === "code") this.code.innerHTML = sanitize(highlight(text, this.language));
    else this.code.textContent = text;
  }

  reset() {
    this.el.replaceChildren();
    this.blocks = [];
    this.tail = null;
    this.pre = null;
    this.done = null;
    this.tailStart = 0;
    this.text = "";
  }
}
