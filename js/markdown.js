// @ts-check
// Incremental Markdown: the answer is split into blocks at blank lines outside code fences and
// display math; finished blocks are rendered once and their DOM nodes kept, only the tail block is
// re-rendered as tokens arrive. Half-written Markdown renders sensibly: an unclosed fence is shown as
// a code block (closed for rendering), an unclosed $$ as plain text until it closes.
//
// Frame budget (a 100k-token answer at full speed finishes several blocks per animation frame):
// update() only takes the text; the work (new finished blocks, the tail, then math and code
// highlighting) runs until `budget` ms of the injected clock `now()` are used, and the rest waits
// for the next flush(). Blocks are first rendered with math and code as plain (escaped) text,
// which is cheap; KaTeX and highlight.js "upgrade" them afterwards, the blocks on screen first.
// The page always shows a prefix of the answer (the tail waits while finished blocks are queued),
// and repeated flush() calls converge to the complete render: same DOM as an unbudgeted render.

import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import c from "highlight.js/lib/languages/c";
import cpp from "highlight.js/lib/languages/cpp";
import css from "highlight.js/lib/languages/css";
import diff from "highlight.js/lib/languages/diff";
import go from "highlight.js/lib/languages/go";
import java from "highlight.js/lib/languages/java";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import markdownLang from "highlight.js/lib/languages/markdown";
import python from "highlight.js/lib/languages/python";
import rust from "highlight.js/lib/languages/rust";
import shell from "highlight.js/lib/languages/shell";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";
import katex from "katex";
import MarkdownIt from "markdown-it";
import texmath from "markdown-it-texmath";
import { sanitize, setSafeHTML } from "./sanitize.js";

for (const [name, lang] of Object.entries({
  python,
  javascript,
  typescript,
  json,
  bash,
  shell,
  sql,
  xml,
  css,
  yaml,
  rust,
  go,
  java,
  cpp,
  c,
  markdown: markdownLang,
  diff,
}))
  hljs.registerLanguage(name, lang);

/** @param {string} s */
function escapeHtml(s) {
  return s.replace(
    /[&<>"']/g,
    (ch) =>
      /** @type {Record<string, string>} */ ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[
        ch
      ],
  );
}

/**
 * Highlighted HTML for code (escaped; hljs output only contains spans).
 * @param {string} code
 * @param {string | null | undefined} lang
 */
export function highlight(code, lang) {
  const name = langName(lang);
  if (name && hljs.getLanguage(name)) {
    try {
      return hljs.highlight(code, { language: name, ignoreIllegals: true }).value;
    } catch {
      /* fall through to plain */
    }
  }
  return escapeHtml(code);
}

// Model output is untrusted TeX: `trust: false` refuses \href/\url/\includegraphics/\htmlClass...;
// `maxSize` caps every user-given size (a `\rule{10000em}{10000em}` would draw a box 169,400 px
// wide over the notebook); `maxExpand` bounds macro expansion (`\def\a{\a}\a` ends in an error).
/** @type {import("katex").KatexOptions} */
const KATEX_OPTIONS = {
  throwOnError: false,
  strict: "ignore",
  trust: false,
  maxSize: 20, // em: a display formula's tallest honest delimiters fit
  maxExpand: 1000,
  output: "htmlAndMathml",
};

// maxSize does not cover every size (\raisebox{900em}{x} still makes a 900em strut): any em
// length KaTeX writes into an attribute is clamped. 100em (~1,700 px) is taller than any honest
// formula short of a 90-row matrix, which then overlaps a little instead of filling the page.
const MAX_EM = 100;
/** @param {string} html */
function clampEm(html) {
  return html.replace(/(<[^>]*>)/g, (tag) =>
    tag.replace(
      /(-?)(\d+(?:\.\d+)?|\.\d+)em/g,
      (/** @type {string} */ m, /** @type {string} */ sign, /** @type {string} */ n) =>
        Number(n) > MAX_EM ? `${sign}${MAX_EM}em` : m,
    ),
  );
}

/**
 * @param {string} tex
 * @param {import("katex").KatexOptions} options
 */
function renderTex(tex, options) {
  return clampEm(katex.renderToString(tex, options));
}

// While `deferred` is set (the incremental renderer's first pass), math and highlighted code are
// emitted as escaped source in marked elements, upgraded later by upgradeElement().
let deferred = false;

/** @param {string | null | undefined} lang */
function langName(lang) {
  return (lang || "").trim().split(/\s+/)[0].toLowerCase();
}

const mathEngine = {
  /**
   * @param {string} tex
   * @param {import("katex").KatexOptions} options
   */
  renderToString(tex, options) {
    if (deferred)
      return `<span class="nbstream-tex" data-display="${options.displayMode ? 1 : 0}">${escapeHtml(tex)}</span>`;
    return renderTex(tex, options);
  },
};

const md = new MarkdownIt({
  html: false, // raw HTML from the model is shown as text
  linkify: true,
  breaks: false,
  highlight: (code, lang) => {
    const cls = `language-${escapeHtml(lang || "text")}`;
    const name = langName(lang);
    if (deferred && name && hljs.getLanguage(name)) {
      return `<pre class="hljs"><code class="${cls}" data-nbstream-hl="${escapeHtml(name)}">${escapeHtml(code)}</code></pre>`;
    }
    return `<pre class="hljs"><code class="${cls}">${highlight(code, lang)}</code></pre>`;
  },
});
md.use(texmath, { engine: mathEngine, delimiters: ["dollars", "brackets"], katexOptions: KATEX_OPTIONS });
md.renderer.rules.image = (tokens, idx) => {
  // No remote images (a data leak channel): a link with the alt text instead.
  const token = tokens[idx];
  const src = /** @type {string} */ (token.attrGet("src") ?? ""); // (an attribute's value is a string)
  const alt = escapeHtml(token.content || "image");
  return /^https?:/i.test(src)
    ? `<a class="nbstream-image-link" href="${escapeHtml(src)}">[image: ${alt}]</a>`
    : `<span class="nbstream-image-link">[image: ${alt}]</span>`;
};

/**
 * Sanitized HTML for a Markdown string (math and code fully rendered).
 * @param {string} text
 */
export function renderMarkdown(text) {
  return sanitize(md.render(text));
}

/** Render Markdown into `node` (sanitized) with math and code left for upgradeElement().
 * Returns the elements waiting for an upgrade, in document order.
 * @param {Element} node
 * @param {string} text
 * @returns {HTMLElement[]}
 */
export function renderDeferred(node, text) {
  deferred = true;
  let html;
  try {
    html = md.render(text);
  } finally {
    deferred = false;
  }
  setSafeHTML(node, html);
  return [.../** @type {NodeListOf<HTMLElement>} */ (node.querySelectorAll(UPGRADABLE))];
}

const UPGRADABLE = "span.nbstream-tex, code[data-nbstream-hl]";

/**
 * Size of an upgrade's input (characters of TeX or code).
 * @param {Element} el
 */
export function upgradeSize(el) {
  return /** @type {string} */ (el.textContent).length;
}

/**
 * Replace a deferred element's source by KaTeX / highlight.js output (sanitized).
 * @param {HTMLElement} el
 */
export function upgradeElement(el) {
  const src = /** @type {string} */ (el.textContent);
  if (el.classList.contains("nbstream-tex")) {
    const displayMode = el.dataset.display === "1";
    let html;
    try {
      html = renderTex(src, { ...KATEX_OPTIONS, displayMode });
    } catch (err) {
      html = escapeHtml(`${src}:${/** @type {Error} */ (err).message}`);
    }
    setSafeHTML(el, html);
    el.classList.replace("nbstream-tex", "nbstream-math");
  } else {
    const name = el.dataset.nbstreamHl;
    delete el.dataset.nbstreamHl;
    setSafeHTML(el, highlight(src, name));
  }
}

/** What the tail leaves open: a code fence (its marker) or display math ("$$" or "\\["). @typedef {{fence?: string | null, math?: string | null}} Open */

const FENCE = /^ {0,3}(`{3,}|~{3,})(.*)$/;

/**
 * Split Markdown into blocks at blank lines that are outside fences and $$/\[ math.
 * Returns {blocks: string[], open: {fence?: string, math?: string}} where the last block is the tail
 * (still growing); every other block is finished.
 * @param {string} text
 * @returns {{blocks: string[], open: Open, tailOffset: number}}
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

/**
 * Make a half-written tail block render sensibly: close an open fence.
 * @param {string} tail
 * @param {Open} open
 */
export function closeTail(tail, open) {
  if (open.fence) return `${tail}\n${open.fence}`;
  return tail;
}

// A tail code block longer than this is not highlighted while it grows (highlight.js would redo
// all of it every frame); it is highlighted once finished.
const TAIL_HIGHLIGHT_MAX = 8000;

// Height of rendered Markdown per character of source: the 100k-token demo answer (text, lists,
// code, a table, math) is 419k px for 597k characters at 14 px in a 1280 px page (0.70 px).
const EM_PER_CHAR = 0.05;

// Characters split into blocks per splitMore() call (~1 ms).
export const SPLIT_CHARS = 16384;

// Finished blocks per group (see openGroup). 100k tokens of the demo answer: 6,994 blocks, 219 groups.
export const GROUP_BLOCKS = 32;

const defaultNow = () => (globalThis.performance ? performance.now() : Date.now());

/**
 * Renders a growing Markdown text into a container. update(text) takes the new text and does as
 * much of the work as `budget` (ms of `now()`) allows; flush() continues; both return true once
 * the container shows the whole text fully rendered. Finished blocks keep their DOM nodes (same
 * identity) while the text only grows. The default budget is unlimited (everything at once).
 */
export class IncrementalMarkdown {
  // The state reset() sets, declared for the type check (no initializer: reset() gives the values).
  /** @type {string[]} */ queue;
  /** @type {Map<Element, HTMLElement[]>} */ upgradeQueue;
  /** @type {{src: string | null, node: HTMLElement} | null} */ tail;
  /** @type {string | null} */ tailSrc;
  /** @type {Open} */ tailOpen;
  /** @type {boolean} */ tailDirty;
  /** @type {boolean} */ tailHidden;
  /** @type {HTMLElement[]} */ tailUpgrades;
  /** @type {number} */ tailStart;
  /** @type {HTMLPreElement | null} */ pre;
  /** @type {HTMLElement} */ code; // (set with pre)
  /** @type {HTMLElement | null} */ done;
  /** @type {Map<Element, number>} */ groupPending;
  /** @type {HTMLElement | null} */ group;
  /** @type {number} */ groupChars;
  /** @type {boolean} */ unsplit;
  /** @type {string} */ text;
  /** @type {string} */ wholeText;
  /** @type {boolean} */ worked;

  /**
   * @param {HTMLElement} container
   * @param {{format?: string, language?: string, budget?: number, now?: () => number}} [options]
   */
  constructor(container, { format = "markdown", language = "", budget = Infinity, now = defaultNow } = {}) {
    this.el = container;
    this.format = format;
    this.language = language;
    this.budget = budget;
    this.now = now;
    this.renders = 0; // tail/finished block renders, for tests and the benchmark
    this.upgrades = 0; // math/code upgrades done
    this.visible = new Set(); // groups of finished blocks in (or near) the viewport
    this.observer =
      typeof IntersectionObserver === "function"
        ? new IntersectionObserver(
            (entries) => {
              for (const e of entries) {
                if (e.isIntersecting) this.visible.add(e.target);
                else this.visible.delete(e.target);
              }
            },
            { rootMargin: "200px 0px" },
          )
        : null;
    this.reset();
  }

  /** True while something is not shown or not fully rendered yet. */
  get pending() {
    return (
      this.unsplit ||
      this.queue.length > 0 ||
      this.tailDirty ||
      this.tailUpgrades.length > 0 ||
      this.upgradeQueue.size > 0
    );
  }

  /** @param {string} text */
  update(text) {
    if (text !== this.text) {
      if (this.format !== "markdown") this.wholeText = text;
      else this.take(text);
    }
    return this.flush();
  }

  /** Take the new text; flush() splits it.
   * @param {string} text
   */
  take(text) {
    if (!text.startsWith(this.text)) this.reset(); // replaced, not grown (version switch, resync)
    this.text = text;
    this.unsplit = true;
  }

  /** Split some of the text not split yet: newly finished blocks join the queue; once the end is
   * reached the tail is marked dirty. Only the part after the last finished block is split again
   * (O(new text) per update), and at most SPLIT_CHARS of it per call: a whole answer arriving at
   * once (a reload, a late snapshot: 600 kB at 100k tokens) is split over several frames, not in
   * one (splitBlocks takes ~30-50 ms for 600 kB in V8 on this machine). Finished blocks of a
   * prefix of the text are finished blocks of the text: the same holds for every streamed text. */
  splitMore() {
    let end = Math.min(this.text.length, this.tailStart + SPLIT_CHARS);
    let { blocks, open, tailOffset } = splitBlocks(this.text.slice(this.tailStart, end));
    if (end < this.text.length && blocks.length < 2) {
      // one block longer than SPLIT_CHARS
      end = this.text.length;
      ({ blocks, open, tailOffset } = splitBlocks(this.text.slice(this.tailStart)));
    }
    this.tailStart += tailOffset;
    for (const src of blocks.slice(0, -1)) this.queue.push(src);
    if (end < this.text.length) return; // the tail is further on
    this.unsplit = false;
    const tailSrc = blocks[blocks.length - 1];
    if (tailSrc !== this.tailSrc || open.fence !== this.tailOpen.fence) {
      this.tailSrc = tailSrc;
      this.tailOpen = open;
      this.tailDirty = true;
    }
  }

  /** Do queued work until the budget is used; true when nothing is left. Every call makes
   * progress (at least one block or upgrade), so repeated calls always converge. */
  flush() {
    const deadline = this.now() + this.budget;
    this.worked = false; // every call does at least one piece of work
    const over = () => this.worked && this.now() >= deadline;
    if (this.format !== "markdown") {
      if (this.wholeText !== this.text) this.renderWhole(this.wholeText);
      return true;
    }
    // 1. math and code of the finished blocks on screen (a few: then they are done)
    this.upgradeQueued(over, true);
    // 2a. the text not split yet: a frame's new text while streaming, always (a tail that waits
    // would flicker); a long text in SPLIT_CHARS steps within the budget
    while (this.unsplit && (!over() || this.text.length - this.tailStart <= SPLIT_CHARS)) {
      this.splitMore();
      this.worked = true;
    }
    // 2. finished blocks, oldest first
    while (this.queue.length && !over()) {
      const src = /** @type {string} */ (this.queue.shift()); // (the queue is not empty)
      let node;
      if (this.tail && this.tail.src === src) {
        node = this.tail.node; // the tail just finished unchanged: keep its node
        node.classList.remove("nbstream-tail");
        node.hidden = false;
        this.tail = null;
        this.tailHidden = false;
        this.tailUpgrades = [];
        this.openGroup(src).appendChild(node);
        this.pendingIn(node, [.../** @type {NodeListOf<HTMLElement>} */ (node.querySelectorAll(UPGRADABLE))]); // incl. a long code block
      } else {
        node = document.createElement("div");
        node.className = "nbstream-block";
        this.renders += 1;
        const els = renderDeferred(node, src);
        this.openGroup(src).appendChild(node);
        this.pendingIn(node, els);
      }
      this.worked = true;
    }
    // 3. the tail, once every finished block before it is shown (the page shows a prefix)
    if (!this.tail) {
      this.tail = { src: null, node: document.createElement("div") };
      this.tail.node.className = "nbstream-block nbstream-tail";
      this.el.appendChild(this.tail.node);
      this.tailDirty = this.tailSrc !== null;
    }
    if (!this.queue.length && this.tailDirty && !over()) {
      this.tailDirty = false;
      if (this.tail.src !== this.tailSrc) {
        this.tail.src = this.tailSrc;
        this.renders += 1;
        this.tailUpgrades = renderDeferred(
          this.tail.node,
          closeTail(/** @type {string} */ (this.tailSrc), this.tailOpen),
        ).filter((el) => !(this.tailOpen.fence && el.dataset.nbstreamHl && upgradeSize(el) > TAIL_HIGHLIGHT_MAX));
      }
      this.worked = true;
    }
    // a tail not re-rendered this time still shows if it only lags behind (its block grew)
    const stale = this.tailDirty && !(this.tail.src !== null && this.tailSrc?.startsWith(this.tail.src));
    this.setTailHidden(this.queue.length > 0 || this.unsplit || stale);
    // 4. the tail's math and code (where the text grows), then the other blocks' (newest first)
    while (!this.tailHidden && this.tailUpgrades.length && !over()) {
      this.upgrade(/** @type {HTMLElement} */ (this.tailUpgrades.shift()));
      this.worked = true;
    }
    this.upgradeQueued(over, false);
    return !this.pending;
  }

  /** Upgrade queued elements (of the blocks on screen only, or of all, newest block first: an
   * upgrade changes its block's height, and the page must re-position everything below) until
   * over(). */
  /**
   * @param {() => boolean} over
   * @param {boolean} visibleOnly
   */
  upgradeQueued(over, visibleOnly) {
    if (visibleOnly && !this.visible.size) return;
    const nodes = visibleOnly
      ? [...this.visible].flatMap((group) => [...group.children])
      : [...this.upgradeQueue.keys()].reverse();
    for (const node of nodes) {
      const els = this.upgradeQueue.get(node);
      if (!els) continue;
      if (over()) return;
      while (els.length && !over()) {
        this.upgrade(/** @type {HTMLElement} */ (els.shift()));
        this.worked = true;
      }
      if (!els.length) this.doneUpgrading(node);
    }
  }

  /** @param {HTMLElement} el */
  upgrade(el) {
    this.upgrades += 1;
    upgradeElement(el);
  }

  /** Remember a finished block's elements still to upgrade (the block is in its group). The
   * page watches its group, not the block: each observed element costs the browser an
   * intersection computation on every frame that changes layout, and observing thousands of
   * blocks took 6.4 s of the main thread in a 100k-token stream (trace, bench_browser.py).
   * @param {Element} node
   * @param {HTMLElement[]} els
   */
  pendingIn(node, els) {
    if (!els.length) return;
    this.upgradeQueue.set(node, els);
    const group = /** @type {Element} */ (node.parentNode); // (its group)
    const n = this.groupPending.get(group) ?? 0;
    this.groupPending.set(group, n + 1);
    if (n === 0) this.observer?.observe(group);
  }

  /** @param {Element} node */
  doneUpgrading(node) {
    this.upgradeQueue.delete(node);
    const group = /** @type {Element} */ (node.parentNode); // (its group)
    const n = (this.groupPending.get(group) ?? 1) - 1;
    if (n > 0) {
      this.groupPending.set(group, n);
      return;
    }
    this.groupPending.delete(group);
    this.visible.delete(group);
    this.observer?.unobserve(group);
  }

  /** @param {boolean} hidden */
  setTailHidden(hidden) {
    if (this.tailHidden === hidden) return;
    this.tailHidden = hidden;
    /** @type {{node: HTMLElement}} */ (this.tail).node.hidden = hidden; // (the tail exists by now)
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

  /** The group that takes the next finished block. Finished blocks are kept in groups of
   * GROUP_BLOCKS, and the groups (not the blocks) have `content-visibility: auto` (style.css):
   * the browser's per-frame work (its own visibility observer, layout, pre-paint and hit-test
   * walks) scales with the number of boxes directly in the answer, and a 100k-token answer has
   * ~7,000 blocks. A group off screen is skipped whole; everything stays in the DOM (find in
   * page, selection and copy see all of it).
   * @param {string} src
   * @returns {HTMLElement}
   */
  openGroup(src) {
    let group = this.group;
    if (!group || group.childElementCount >= GROUP_BLOCKS) {
      group = this.group = document.createElement("div");
      group.className = "nbstream-group";
      this.groupChars = 0;
      this.finishedBox().appendChild(group);
    }
    this.groupChars += src.length + 2;
    if (group.childElementCount === GROUP_BLOCKS - 1) {
      // The group is full: its height until the browser first renders it, from its length (a
      // group never on screen, e.g. while the user reads the start). A good guess keeps a jump
      // into the answer (find, scrollbar) where it lands: with a fixed 96em the part jumped to
      // moved 646 px once the groups above it were rendered (tests/browser/test_long_answer.py).
      group.style.containIntrinsicSize = `auto ${Math.round(this.groupChars * EM_PER_CHAR)}em`;
    }
    return group;
  }

  /** @param {string} text */
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
    if (this.format === "code") setSafeHTML(this.code, highlight(text, this.language));
    else this.code.textContent = text;
  }

  reset() {
    this.el.replaceChildren();
    this.observer?.disconnect();
    this.visible = new Set();
    this.queue = []; // finished blocks (sources) not shown yet
    this.upgradeQueue = new Map(); // finished block node -> its elements still to upgrade
    this.groupPending = new Map(); // group -> its blocks in upgradeQueue (observed while > 0)
    this.group = null; // the group that takes the next finished block
    this.tail = null; // {src, node}
    this.tailSrc = null;
    this.tailOpen = {};
    this.tailDirty = false;
    this.tailHidden = false;
    this.tailUpgrades = [];
    this.tailStart = 0; // offset in text where the unfinished tail begins
    this.unsplit = false; // text after tailStart still to split (splitMore)
    this.pre = null;
    this.done = null;
    this.text = "";
    this.wholeText = "";
  }

  /** Stop observing the page (the view is gone). */
  destroy() {
    this.observer?.disconnect();
  }
}
