import { describe, expect, it } from "vitest";
import { IncrementalMarkdown, renderMarkdown, splitBlocks } from "./markdown.js";

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
    const text = "## Plan\n\n1. one\n2. two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nprint('hi')\n```\n\nDone with $x^2$.";
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
