// @ts-check
import { afterEach, describe, expect, it, vi } from "vitest";
import { GROUP_BLOCKS, IncrementalMarkdown, renderMarkdown, SPLIT_CHARS, splitBlocks } from "./markdown.js";

function grow(renderer, text, step = 3) {
  for (let i = step; i < text.length; i += step) renderer.update(text.slice(0, i));
  renderer.update(text);
}

describe("splitBlocks", () => {
  it("splits at blank lines outside fences and display math", () => {
    const text = "# Title\n\npara one\n\n```py\na = 1\n\nb = 2\n```\n\n$$\nx\n\ny\n$$\n\ntail";
    const { blocks, open } = splitBlocks(text);
    expect(blocks).toEqual(["# Title", "para one", "```py\na = 1\n\nb = 2\n```", "$$\nx\n\ny\n$$", "tail"]);
    expect(open).toEqual({ fence: null, math: null });
  });

  it("reports an unclosed fence, which keeps blank lines in the tail", () => {
    const { blocks, open } = splitBlocks("intro\n\n```js\nlet a;\n\nlet b;");
    expect(blocks).toEqual(["intro", "```js\nlet a;\n\nlet b;"]);
    expect(open.fence).toBe("```");
  });

  it("a longer closing fence closes; a shorter one or one with info does not", () => {
    expect(splitBlocks("````\nx\n```\n\ny").open.fence).toBe("````");
    expect(splitBlocks("```\nx\n````\n\ny").blocks).toEqual(["```\nx\n````", "y"]);
    expect(splitBlocks("~~~\nx\n```\n\ny").open.fence).toBe("~~~");
  });
});

describe("IncrementalMarkdown", () => {
  it("keeps finished blocks' DOM nodes while the tail grows", () => {
    const el = document.createElement("div");
    const r = new IncrementalMarkdown(el);
    r.update("# Title\n\nFirst paragraph.\n\nSecond");
    const title = el.querySelector("h1");
    const first = [...el.querySelectorAll("p")].find((p) => p.textContent === "First paragraph.");
    expect(title).not.toBeNull();
    expect(first).toBeDefined();
    const rendersBefore = r.renders;
    r.update("# Title\n\nFirst paragraph.\n\nSecond paragraph grows");
    r.update("# Title\n\nFirst paragraph.\n\nSecond paragraph grows more.");
    expect(el.querySelector("h1")).toBe(title); // same node identity
    expect([...el.querySelectorAll("p")].find((p) => p.textContent === "First paragraph.")).toBe(first);
    expect(r.renders - rendersBefore).toBe(2); // only the tail re-rendered, once per update
    expect(el.lastChild.textContent.trim()).toBe("Second paragraph grows more.");
  });

  it("renders token by token to the same result as a whole render", () => {
    const text =
      "## Plan\n\n1. one\n2. two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nprint('hi')\n```\n\nDone with $x^2$.";
    const el = document.createElement("div");
    const r = new IncrementalMarkdown(el);
    grow(r, text, 2);
    const whole = document.createElement("div");
    new IncrementalMarkdown(whole).update(text);
    expect(el.textContent).toBe(whole.textContent);
    expect(el.querySelector("table td").textContent).toBe("1");
    expect(el.querySelector("ol").children.length).toBe(2);
    expect(el.querySelector("pre code.language-python .hljs-built_in")).not.toBeNull();
    expect(el.querySelector(".katex")).not.toBeNull();
  });

  it("an unclosed fence renders as a code block while it streams", () => {
    const el = document.createElement("div");
    const r = new IncrementalMarkdown(el);
    r.update("Code:\n\n```python\ndef f():\n\n    return 1");
    const code = el.querySelector("pre code");
    expect(code).not.toBeNull();
    expect(code.textContent).toContain("def f():\n\n    return 1");
    expect(el.textContent).not.toContain("```");
  });

  it("a half-written table is plain text until its delimiter row arrives", () => {
    const el = document.createElement("div");
    const r = new IncrementalMarkdown(el);
    r.update("| a | b |");
    expect(el.querySelector("table")).toBeNull();
    expect(el.textContent).toContain("| a | b |");
    r.update("| a | b |\n|---|---|\n| 1 |");
    expect(el.querySelector("table")).not.toBeNull();
  });

  it("math in all four delimiters", () => {
    const html = renderMarkdown("inline $a+b$ and \\(c\\)\n\n$$\\int x$$\n\n\\[\\sum_i i\\]");
    const el = document.createElement("div");
    el.innerHTML = html;
    expect(el.querySelectorAll(".katex").length).toBeGreaterThanOrEqual(4);
    expect(el.querySelectorAll(".katex-display").length).toBe(2);
  });

  it("a replaced (not grown) text re-renders from scratch", () => {
    const el = document.createElement("div");
    const r = new IncrementalMarkdown(el);
    r.update("alpha\n\nbeta");
    r.update("gamma");
    expect(el.textContent.trim()).toBe("gamma");
  });

  it("text and code formats", () => {
    const el = document.createElement("div");
    const t = new IncrementalMarkdown(el, { format: "text" });
    t.update("# not a heading <b>x</b>");
    expect(el.querySelector("h1")).toBeNull();
    expect(el.querySelector("b")).toBeNull();
    expect(el.textContent).toBe("# not a heading <b>x</b>");
    const el2 = document.createElement("div");
    const c = new IncrementalMarkdown(el2, { format: "code", language: "python" });
    c.update("def f(): return 1");
    expect(el2.querySelector(".hljs-keyword").textContent).toBe("def");
  });
});

describe("splitBlocks at the growing edge", () => {
  it("an unterminated blank last line is not a boundary", () => {
    expect(splitBlocks("1. one\n").blocks).toEqual(["1. one"]);
    expect(splitBlocks("1. one\n  ").blocks).toEqual(["1. one"]);
    expect(splitBlocks("1. one\n\n").blocks).toEqual(["1. one", ""]);
  });

  it("tailOffset points where re-splitting must start", () => {
    for (const text of ["a\n\nb", "a\n\n", "a\n\n  ", "```\nx\n\ny", "a"]) {
      const { blocks, tailOffset } = splitBlocks(text);
      expect(text.slice(tailOffset).startsWith(blocks[blocks.length - 1])).toBe(true);
    }
  });

  it("growing one character at a time gives the same blocks as one split", () => {
    const text = "# T\n\n- a\n- b\n  \n  c\n\n```\n1\n\n2\n```\n\n$$\nx\n\ny\n$$\n\nend";
    const el = document.createElement("div");
    const r = new IncrementalMarkdown(el);
    for (let i = 1; i <= text.length; i++) r.update(text.slice(0, i));
    const whole = document.createElement("div");
    new IncrementalMarkdown(whole).update(text);
    expect(el.innerHTML).toBe(whole.innerHTML);
  });
});

// A clock that advances 1 ms each time it is read: flush(budget b) then does at most b pieces of
// work (a block, the tail, one math/code upgrade), deterministically, whatever the machine.
function tickingClock() {
  let t = 0;
  return () => t++;
}

const RICH = [
  "# Title",
  "Text with $x^2$ inline and \\(y\\).",
  "```python\ndef f():\n    return 1\n```",
  "| a | b |\n|---|---|\n| $1$ | 2 |",
  "$$\n\\int_0^1 x\\,dx\n$$",
  "- one\n- two with `code`",
].join("\n\n");

function reference(text) {
  const el = document.createElement("div");
  new IncrementalMarkdown(el).update(text);
  return el;
}

/** Text of the container as shown (hidden nodes left out). */
function shownText(el) {
  let out = "";
  const walk = (n) => {
    if (n.nodeType === 3) out += n.data;
    else if (n.nodeType === 1 && !n.hidden) n.childNodes.forEach(walk);
  };
  walk(el);
  return out;
}

/** The words shown are the first words of the full text (the last one may be half-written;
 * backticks left out: a half-written fence marker shows as text for a moment). */
function isPrefix(shown, full) {
  const words = (t) => t.replace(/`/g, " ").split(/\s+/).filter(Boolean);
  const a = words(shown);
  const b = words(full);
  if (a.length > b.length) return false;
  return a.every((w, i) => (i === a.length - 1 ? b[i].startsWith(w) : b[i] === w));
}

describe("IncrementalMarkdown frame budget", () => {
  it("a flush does a bounded amount of work and repeated flushes converge to the full render", () => {
    const text = Array.from({ length: 20 }, () => RICH).join("\n\n");
    const el = document.createElement("div");
    const r = new IncrementalMarkdown(el, { budget: 4, now: tickingClock() });
    let work = r.renders + r.upgrades;
    let done = r.update(text);
    let flushes = 1;
    expect(r.renders + r.upgrades - work).toBeLessThanOrEqual(5);
    expect(done).toBe(false);
    expect(/** @type {HTMLElement} */ (el.querySelector(".nbstream-tail")).hidden).toBe(true); // blocks before it still queued
    while (!done) {
      work = r.renders + r.upgrades;
      done = r.flush();
      flushes += 1;
      expect(r.renders + r.upgrades - work).toBeGreaterThan(0); // always progresses
      expect(r.renders + r.upgrades - work).toBeLessThanOrEqual(5);
      expect(flushes).toBeLessThan(1000);
    }
    expect(r.pending).toBe(false);
    expect(el.innerHTML).toBe(reference(text).innerHTML);
    expect(el.querySelectorAll(".katex-display").length).toBe(20);
    expect(el.querySelectorAll("pre code .hljs-keyword").length).toBe(40); // def, return
    expect(el.querySelector(".nbstream-tex, [data-nbstream-hl]")).toBeNull();
  });

  it("while it lags, the page shows a prefix of the answer, never the tail before its blocks", () => {
    // no math and no known code language: the shown text is comparable as it grows
    const text = Array.from(
      { length: 30 },
      (_, i) => `## Part ${i}\n\nParagraph ${i} has words.\n\n\`\`\`text\nline ${i}\n\`\`\``,
    ).join("\n\n");
    const full = shownText(reference(text));
    const el = document.createElement("div");
    const r = new IncrementalMarkdown(el, { budget: 2, now: tickingClock() });
    for (let i = 7; i < text.length; i += 7) {
      r.update(text.slice(0, i)); // one update per "animation frame" while streaming fast
      expect(isPrefix(shownText(el), full), shownText(el).slice(-60)).toBe(true);
    }
    let n = 0;
    while (!r.update(text)) {
      expect(isPrefix(shownText(el), full), shownText(el).slice(-60)).toBe(true);
      expect(n++).toBeLessThan(500);
    }
    expect(shownText(el)).toBe(full);
    expect(el.innerHTML).toBe(reference(text).innerHTML);
  });

  it("a whole answer arriving at once (a snapshot) is spread over many bounded flushes", () => {
    const text = Array.from({ length: 50 }, () => RICH).join("\n\n");
    const el = document.createElement("div");
    const r = new IncrementalMarkdown(el, { budget: 6, now: tickingClock() });
    const flushes = [r.update(text)];
    while (!flushes[flushes.length - 1]) flushes.push(r.flush());
    expect(flushes.length).toBeGreaterThan(50);
    expect(el.innerHTML).toBe(reference(text).innerHTML);
  });

  it("a long text arriving at once is split SPLIT_CHARS at a time, the page showing a prefix", () => {
    const words = "has a few words, and then a few more words to make it long enough. ".repeat(4);
    const text = Array.from({ length: 360 }, (_, i) => `Paragraph ${i} ${words}`).join("\n\n");
    expect(text.length).toBeGreaterThan(5 * SPLIT_CHARS);
    const full = shownText(reference(text));
    const el = document.createElement("div");
    const r = new IncrementalMarkdown(el, { budget: 1, now: tickingClock() });
    let done = r.update(text);
    expect(r.tailStart).toBeLessThanOrEqual(SPLIT_CHARS); // one step, not the whole text
    let flushes = 1;
    while (!done) {
      const before = r.tailStart;
      done = r.flush();
      // a budgeted step, and the last piece (<= SPLIT_CHARS) is always split at once
      expect(r.tailStart - before).toBeLessThanOrEqual(2 * SPLIT_CHARS);
      if (flushes % 10 === 0) expect(isPrefix(shownText(el), full), shownText(el).slice(-60)).toBe(true);
      expect(flushes++).toBeLessThan(5000);
    }
    expect(el.innerHTML).toBe(reference(text).innerHTML);
  });

  it("a block longer than SPLIT_CHARS (a long code block in a snapshot) is split whole", () => {
    const code = "x = 1\n".repeat(SPLIT_CHARS / 3);
    const text = `Before\n\n\`\`\`python\n${code}\`\`\`\n\nAfter\n\n${"word ".repeat(100)}`;
    const el = document.createElement("div");
    const r = new IncrementalMarkdown(el, { budget: 2, now: tickingClock() });
    let n = 0;
    while (!(n === 0 ? r.update(text) : r.flush())) expect(n++).toBeLessThan(1000);
    expect(el.innerHTML).toBe(reference(text).innerHTML);
    expect(el.querySelector("pre code").textContent).toBe(code);
  });

  it("a long open code block is not re-highlighted every frame; highlighted once it closes", () => {
    const body = "x = 1  # comment\n".repeat(1000); // 17,000 chars
    const el = document.createElement("div");
    const r = new IncrementalMarkdown(el, { budget: 50, now: tickingClock() });
    r.update(`Intro\n\n\`\`\`python\n${body}`);
    while (!r.flush());
    expect(el.querySelector(".nbstream-tail pre code").textContent.trimEnd()).toBe(body.trimEnd());
    expect(el.querySelector(".nbstream-tail .hljs-comment")).toBeNull();
    r.update(`Intro\n\n\`\`\`python\n${body}\`\`\`\n\nafter`);
    while (!r.flush());
    expect(el.querySelectorAll(".nbstream-blocks .hljs-comment").length).toBe(1000);
    expect(el.innerHTML).toBe(reference(`Intro\n\n\`\`\`python\n${body}\`\`\`\n\nafter`).innerHTML);
  });

  it("math and code are shown as escaped source first, and the upgrade is sanitized", () => {
    const text =
      "Link $\\href{javascript:alert(1)}{x}$ and <img src=x onerror=alert(1)>\n\n```html\n<img src=x onerror=alert(1)>\n```\n\nend";
    const el = document.createElement("div");
    const r = new IncrementalMarkdown(el, { budget: 1, now: tickingClock() });
    r.update(text);
    while (!r.flush());
    expect(el.querySelector("img, script")).toBeNull();
    for (const a of el.querySelectorAll("a")) expect(a.getAttribute("href") ?? "").not.toMatch(/javascript/i);
    expect(el.querySelector(".katex")).not.toBeNull();
    expect(el.querySelector("pre code").textContent).toBe("<img src=x onerror=alert(1)>\n");
  });
});

describe("IncrementalMarkdown groups of finished blocks", () => {
  afterEach(() => vi.unstubAllGlobals());

  /** An IntersectionObserver the test drives: it says which targets are on screen. */
  function fakeObserver() {
    const observers = [];
    vi.stubGlobal(
      "IntersectionObserver",
      class {
        constructor(callback) {
          this.callback = callback;
          this.targets = new Set();
          observers.push(this);
        }
        observe(el) {
          this.targets.add(el);
        }
        unobserve(el) {
          this.targets.delete(el);
        }
        disconnect() {
          this.targets.clear();
        }
        show(el, on = true) {
          this.callback([{ target: el, isIntersecting: on }]);
        }
      },
    );
    return observers;
  }

  it("keeps finished blocks in groups of GROUP_BLOCKS and watches groups with work left, not blocks", () => {
    const observers = fakeObserver();
    const n = GROUP_BLOCKS * 3 + 5;
    const text = Array.from({ length: n }, (_, i) => `Block ${i} with $x_{${i}}$.`).join("\n\n");
    const el = document.createElement("div");
    const r = new IncrementalMarkdown(el, { budget: 3, now: tickingClock() });
    r.update(`${text}\n\ntail`);
    let flushes = 0;
    while (r.queue.length) {
      r.flush();
      flushes += 1;
    } // every block shown, few upgraded
    const groups = [...el.querySelector(".nbstream-blocks").children];
    expect(groups.every((g) => g.className === "nbstream-group")).toBe(true);
    expect(groups.map((g) => g.childElementCount)).toEqual([GROUP_BLOCKS, GROUP_BLOCKS, GROUP_BLOCKS, 5]);
    const io = observers[0];
    expect([...io.targets].every((t) => groups.includes(t))).toBe(true); // groups only
    expect(io.targets.size).toBeGreaterThan(0);

    // the group on screen is upgraded first, whatever its place
    const first = groups[0];
    expect(first.querySelector(".nbstream-tex")).not.toBeNull();
    io.show(first);
    for (let i = 0; first.querySelector(".nbstream-tex") && i < 2 * GROUP_BLOCKS; i++) r.flush();
    expect(first.querySelector(".nbstream-tex")).toBeNull();
    expect(io.targets.has(first)).toBe(false); // nothing left to do there: no longer watched
    expect(groups[1].querySelector(".nbstream-tex")).not.toBeNull(); // the others wait their turn
    while (!r.flush()) expect(flushes++).toBeLessThan(2000);
    expect(io.targets.size).toBe(0);
    expect(el.innerHTML).toBe(reference(`${text}\n\ntail`).innerHTML);
  });

  it("a tail that finishes joins the open group, and a replaced text starts new groups", () => {
    fakeObserver();
    const el = document.createElement("div");
    const r = new IncrementalMarkdown(el);
    const text = Array.from({ length: GROUP_BLOCKS + 1 }, (_, i) => `p${i}`).join("\n\n");
    grow(r, `${text}\n\n`, 5);
    const groups = el.querySelectorAll(".nbstream-group");
    expect([...groups].map((g) => g.childElementCount)).toEqual([GROUP_BLOCKS, 1]);
    r.update("other");
    expect(el.querySelectorAll(".nbstream-group").length).toBe(0);
    r.update("other\n\nmore");
    expect(el.querySelectorAll(".nbstream-group").length).toBe(1);
  });
});

describe("hostile TeX", () => {
  // every size KaTeX writes in attributes (CSS and MathML), in em; the TeX source is text
  const sizes = (html) =>
    [...html.matchAll(/="([^"]*)"/g)].flatMap((a) =>
      [...a[1].matchAll(/(-?[\d.]+)em/g)].map((m) => Math.abs(Number(m[1]))),
    );
  const huge = "$\\rule{10000em}{10000em}$ $\\kern{5000em}$ $\\hspace{3000em}x$ $\\raisebox{900em}{y}$";

  it("user sizes are capped (maxSize): no 10000em box over the notebook", () => {
    const html = renderMarkdown(huge);
    expect(html).toContain("katex-rule");
    expect(Math.max(...sizes(html))).toBeLessThanOrEqual(100);
    expect(html).toMatch(/border-right-width:20em/); // the rule itself: maxSize
  });

  it("the streamed (deferred then upgraded) path is capped too", () => {
    const el = document.createElement("div");
    const r = new IncrementalMarkdown(el, { budget: 1, now: tickingClock() });
    r.update(`${huge}\n\nend`);
    while (!r.flush());
    expect(el.querySelector(".katex-rule")).not.toBeNull();
    expect(Math.max(...sizes(el.innerHTML))).toBeLessThanOrEqual(100);
  });

  it("runaway macros end in an error (maxExpand), and \\href is not trusted", () => {
    const html = renderMarkdown("$\\def\\a{\\a}\\a$ and $\\href{https://x.example}{y}$");
    expect(html).toContain("maxExpand");
    expect(html).not.toContain('href="https://x.example"');
  });
});
