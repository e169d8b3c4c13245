// @ts-check
// Rich answers (issue 7): the pure helpers, and the view fed frames the way Python sends them.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { statusDetails, statusParts } from "./format.js";
import {
  confidenceColor,
  filterRows,
  finishNotice,
  parseLogprobs,
  thinkingLabel,
  tokenTitle,
  toolArguments,
} from "./rich.js";
import { fakeModel, mountView, stubFrames } from "./testing.js";

/** @param {Partial<import("./types.js").Traits>} [traits] */
const makeModel = (traits = {}) => fakeModel({ resumable: true, ...traits });

describe("rich helpers", () => {
  it("parses logprob lines and leaves a partial last line for later", () => {
    const text = '["Hel",-0.01,[["Hel",-0.01],["Hi",-4.6]]]\n["lo\\n",-1.2,[]]\n["x",-0';
    const toks = parseLogprobs(text);
    expect(toks.map((t) => t.token)).toEqual(["Hel", "lo\n"]);
    expect(toks[0].top).toEqual([
      ["Hel", -0.01],
      ["Hi", -4.6],
    ]);
    expect(parseLogprobs("")).toEqual([]);
  });

  it("token title gives the probability and the alternatives; colour goes red to green", () => {
    const title = tokenTitle({
      token: "Hel",
      logprob: Math.log(0.5),
      top: [
        ["Hel", Math.log(0.5)],
        ["Hi", Math.log(0.25)],
      ],
    });
    expect(title).toContain("p = 50.0%");
    expect(title).toContain('"Hi"  25.0%');
    expect(confidenceColor(0)).toMatch(/^hsla\(120,/);
    expect(confidenceColor(-20)).toMatch(/^hsla\(0,/);
  });

  it("tool arguments: raw while streaming, pretty when complete, invalid flagged", () => {
    expect(toolArguments('{"a":', false)).toEqual({ state: "streaming", shown: '{"a":', error: null });
    expect(toolArguments('{"a":1}', true).shown).toBe('{\n  "a": 1\n}');
    const bad = toolArguments('{"a":', true);
    expect(bad.state).toBe("invalid");
    expect(bad.error).toMatch(/^invalid JSON/);
    expect(toolArguments("", true).state).toBe("invalid");
  });

  it("finish notices only for the reasons that matter", () => {
    expect(finishNotice("stop")).toBeNull();
    expect(finishNotice("length").text).toMatch(/Cut off/);
    expect(finishNotice("content_filter").kind).toBe("error");
    expect(finishNotice("tool_calls").text).toMatch(/tool/);
  });

  it("content-filter rows from Azure's choice and prompt results", () => {
    const rows = filterRows({
      hate: { filtered: false, severity: "safe" },
      protected_material_code: { filtered: false, detected: true, citation: { URL: "https://x", license: "MIT" } },
    });
    expect(rows).toEqual([
      { scope: "answer", category: "hate", text: "safe", flagged: false },
      { scope: "answer", category: "protected_material_code", text: "detected, citation: https://x", flagged: true },
    ]);
    const prompt = filterRows({
      prompt_filter_results: [
        { prompt_index: 0, content_filter_results: { jailbreak: { filtered: true, detected: true } } },
      ],
    });
    expect(prompt).toEqual([{ scope: "prompt 0", category: "jailbreak", text: "detected, filtered", flagged: true }]);
  });

  it("thinking label: reported tokens, else an estimate that says so", () => {
    expect(thinkingLabel({ streaming: true, seconds: undefined, chars: 40 })).toBe(
      "Thinking… · ~10 tokens (estimated)",
    );
    expect(thinkingLabel({ streaming: false, seconds: 2.25, chars: 40, reportedTokens: 23 })).toBe(
      "Thought · 2.3 s · 23 reasoning tokens",
    );
  });

  it("usage detail: reasoning and cached only when reported (absent is not 0)", () => {
    const withDetail = statusDetails("done", {
      usage: { prompt_tokens: 10, completion_tokens: 5, reasoning_tokens: 3, cached_tokens: 0 },
    });
    expect(withDetail).toContain("3 reasoning");
    expect(withDetail).toContain("0 cached");
    const without = statusDetails("done", { usage: { prompt_tokens: 10, completion_tokens: 5 } }).join(" · ");
    expect(without).not.toMatch(/reasoning|cached/);
  });

  it("status line: the essentials on one line, the rest on hover", () => {
    const metrics = {
      model: "gpt-x",
      tokens: 40,
      duration_s: 2.5,
      ttft_s: 0.2,
      tokens_per_s: 16,
      request_id: "req_1",
      usage: { prompt_tokens: 4, completion_tokens: 40, cached_tokens: 0 },
    };
    expect(statusParts("done", metrics)).toEqual(["done", "gpt-x", "40 tokens", "2.5 s"]);
    expect(statusDetails("done", metrics)).toEqual([
      "first token 200 ms",
      "16.0 tok/s",
      "request req_1",
      "usage 4 in / 40 out",
      "0 cached",
    ]);
    expect(statusDetails("done", {})).toEqual(["usage: not reported"]);
  });
});

describe("View with rich parts", () => {
  /** @type {{flush: () => void}} */
  let frames;
  beforeEach(() => {
    frames = stubFrames();
  });
  afterEach(() => vi.unstubAllGlobals());
  const flush = () => frames.flush();
  const setup = () => mountView(makeModel());

  it("Thinking is open while it streams and closes when the answer starts", () => {
    const { doc, q } = setup();
    doc.apply({
      type: "frame",
      version: 0,
      seq: 1,
      parts: [{ kind: "reasoning", offset: 0, text: "Let me think <b>x</b>" }],
      status: "streaming",
    });
    flush();
    expect(q("reasoning").hidden).toBe(false);
    expect(q("reasoning").open).toBe(true);
    expect(q("reasoning-text").textContent).toBe("Let me think <b>x</b>"); // text, not HTML
    expect(q("reasoning-text").querySelector("b")).toBeNull();
    expect(q("reasoning-label").textContent).toMatch(/^Thinking…/);
    doc.apply({ type: "frame", version: 0, seq: 2, parts: [{ kind: "reasoning", offset: 21, text: " & more" }] });
    flush();
    expect(q("reasoning-text").textContent).toBe("Let me think <b>x</b> & more"); // appended
    expect(q("reasoning").open).toBe(true);
    doc.apply({
      type: "frame",
      version: 0,
      seq: 3,
      parts: [{ offset: 0, text: "Answer" }],
      metrics: { thinking_s: 1.5 },
    });
    flush();
    expect(q("reasoning").open).toBe(false);
    expect(q("reasoning-label").textContent).toBe("Thought · 1.5 s · ~7 tokens (estimated)");
  });

  it("tool calls: one card each, arguments streaming, then pretty JSON or flagged", () => {
    const { doc, q, qa } = setup();
    doc.apply({
      type: "frame",
      version: 0,
      seq: 1,
      status: "streaming",
      parts: [{ kind: "tool", index: 0, offset: 0, text: '{"city":', meta: { id: "call_1", name: "get_weather" } }],
    });
    flush();
    expect(qa("tool-call")).toHaveLength(1);
    expect(q("tool-name").textContent).toBe("get_weather");
    expect(q("tool-call").dataset.state).toBe("streaming");
    expect(q("tool-args").textContent).toBe('{"city":');
    doc.apply({
      type: "frame",
      version: 0,
      seq: 2,
      parts: [
        { kind: "tool", index: 0, offset: 8, text: '"Paris"}' },
        {
          kind: "tool",
          index: 1,
          offset: 0,
          text: '{"broken"',
          meta: { id: "call_2", name: "<img src=x onerror=alert(1)>" },
        },
      ],
    });
    flush();
    const cards = qa("tool-call");
    expect(cards).toHaveLength(2);
    expect(cards[0].dataset.state).toBe("valid"); // a later call started: the first is complete
    expect(cards[0].querySelector("[data-testid=tool-args]").textContent).toBe('{\n  "city": "Paris"\n}');
    expect(cards[1].querySelector("[data-testid=tool-name]").textContent).toBe("<img src=x onerror=alert(1)>");
    expect(cards[1].querySelector("img")).toBeNull();
    doc.apply({
      type: "frame",
      version: 0,
      seq: 3,
      parts: [],
      status: "done",
      final: true,
      metrics: { finish_reasons: { 0: "tool_calls" } },
    });
    flush();
    expect(cards[1].dataset.state).toBe("invalid");
    expect(cards[1].querySelector("[data-testid=tool-invalid]").textContent).toMatch(/^invalid JSON/);
    expect(q("finish").dataset.reason).toBe("tool_calls");
    expect(q("answer").hidden).toBe(true); // no empty answer box under tool calls
  });

  it("a refusal is shown as a refusal, not as an empty answer", () => {
    const { doc, q } = setup();
    doc.apply({
      type: "frame",
      version: 0,
      seq: 1,
      status: "done",
      final: true,
      parts: [{ kind: "refusal", offset: 0, text: "I can't help with that." }],
    });
    flush();
    expect(q("refusal").hidden).toBe(false);
    expect(q("refusal-text").textContent).toBe("I can't help with that.");
    expect(q("refusal").textContent).toContain("refused");
    expect(q("answer").hidden).toBe(true);
  });

  it("several choices: a tab each with its finish reason; Copy copies the tab shown", () => {
    const { doc, q, qa } = setup();
    doc.apply({
      type: "frame",
      version: 0,
      seq: 1,
      status: "streaming",
      parts: [
        { offset: 0, text: "zero" },
        { choice: 1, offset: 0, text: "one" },
        { choice: 2, offset: 0, text: "two" },
      ],
    });
    flush();
    expect(q("choice-tabs").hidden).toBe(false);
    expect(qa("choice-tab").map((t) => t.textContent)).toEqual(["Choice 1 · …", "Choice 2 · …", "Choice 3 · …"]);
    expect(q("answer").textContent.trim()).toBe("zero");
    qa("choice-tab")[2].click();
    flush();
    expect(q("answer").textContent.trim()).toBe("two");
    doc.apply({
      type: "frame",
      version: 0,
      seq: 2,
      status: "done",
      final: true,
      parts: [{ choice: 2, offset: 3, text: "!" }],
      metrics: { finish_reasons: { 0: "stop", 1: "length", 2: "stop" } },
    });
    flush();
    expect(q("answer").textContent.trim()).toBe("two!");
    expect(qa("choice-tab").map((t) => t.dataset.finish)).toEqual(["stop", "length", "stop"]);
    qa("choice-tab")[1].click();
    flush();
    expect(q("finish").textContent).toMatch(/Cut off/);
  });

  it("content_filter finish: said once by the notice, not again in the error box", () => {
    const { doc, q } = setup();
    doc.reconcile({
      protocol: 1,
      current: 0,
      versions: [
        {
          version: 0,
          seq: 3,
          status: "incomplete",
          reason: "finish_reason content_filter: the answer was filtered",
          metrics: { finish_reasons: { 0: "content_filter" } },
          parts: [
            { choice: 0, kind: "text", text: "Once upon" },
            {
              choice: 0,
              kind: "filter",
              text: "",
              meta: { results: { violence: { filtered: true, severity: "high" } } },
            },
          ],
        },
      ],
    });
    flush();
    expect(q("finish").dataset.reason).toBe("content_filter");
    expect(q("finish").textContent).toMatch(/content filter/);
    expect(q("error").hidden).toBe(true);
    expect(q("content-filter").dataset.flagged).toBe("true");
    expect(q("content-filter").querySelector("summary").textContent).toBe("Content filter: violence (answer) flagged");
  });

  it("token confidence: offered only with logprobs, colours tokens with alternatives on hover", () => {
    const { doc, q, qa } = setup();
    doc.apply({ type: "frame", version: 0, seq: 1, status: "streaming", parts: [{ offset: 0, text: "Hi there" }] });
    flush();
    expect(q("confidence-toggle").hidden).toBe(true);
    doc.apply({
      type: "frame",
      version: 0,
      seq: 2,
      status: "done",
      final: true,
      parts: [
        { kind: "logprobs", offset: 0, text: '["Hi",-0.001,[["Hi",-0.001],["Hello",-7.2]]]\n[" there",-2.3,[]]\n' },
      ],
    });
    flush();
    expect(q("confidence-toggle").hidden).toBe(false);
    expect(q("confidence").hidden).toBe(true);
    q("confidence-toggle").click();
    flush();
    expect(q("confidence").hidden).toBe(false);
    expect(q("answer").hidden).toBe(true);
    const toks = qa("token");
    expect(toks.map((t) => t.textContent)).toEqual(["Hi", " there"]);
    expect(Number(toks[0].dataset.p)).toBeGreaterThan(0.99);
    expect(toks[0].title).toContain('"Hello"');
    expect(toks[0].style.background).not.toBe("");
    // more tokens stream in while the view is on: appended, the earlier spans kept
    doc.apply({
      type: "frame",
      version: 0,
      seq: 3,
      parts: [{ kind: "logprobs", offset: 64, text: '["!",-0.5,[]]\n' }],
    });
    flush();
    expect(qa("token").map((t) => t.textContent)).toEqual(["Hi", " there", "!"]);
    expect(qa("token")[0]).toBe(toks[0]);
    toks[0].dispatchEvent(new MouseEvent("mouseover", { bubbles: true }));
    expect(q("token-popover").hidden).toBe(false);
    expect(q("token-popover").textContent).toContain('"Hello"');
  });

  it("content-filter results from Azure, for the prompt and the answer", () => {
    const { doc, q, qa } = setup();
    doc.apply({
      type: "frame",
      version: 0,
      seq: 1,
      status: "done",
      final: true,
      parts: [
        {
          choice: -1,
          kind: "filter",
          offset: 0,
          text: "",
          meta: {
            results: {
              prompt_filter_results: [
                { prompt_index: 0, content_filter_results: { hate: { filtered: false, severity: "safe" } } },
              ],
            },
          },
        },
        { offset: 0, text: "A story" },
        { kind: "filter", offset: 0, text: "", meta: { results: { violence: { filtered: false, severity: "low" } } } },
      ],
    });
    flush();
    expect(q("content-filter").hidden).toBe(false);
    expect(qa("filter-row").map((r) => r.textContent)).toEqual(["prompt 0hatesafe", "answerviolencelow"]);
    expect(q("choice-tabs").hidden).toBe(true); // the prompt's filter part is not a choice
  });
});

// ---- issue 14: hosted tools, citations, custom tools -------------------------------------------
import { citationsHTML, hostedLabel } from "./rich.js";

describe("hosted tools and citations", () => {
  /** @type {{flush: () => void}} */
  let frames;
  beforeEach(() => {
    frames = stubFrames();
  });
  afterEach(() => vi.unstubAllGlobals());
  const flush = () => frames.flush();
  const setup = () => mountView(makeModel());

  it("labels: known types by name, MCP with its tool, partial images counted, unknown by type", () => {
    expect(hostedLabel({ type: "web_search", status: "searching" })).toEqual({
      icon: "⚲",
      label: "Web search",
      status: "searching",
    });
    expect(hostedLabel({ type: "mcp", name: "ask_question", status: "completed" }).label).toBe(
      "MCP tool · ask_question",
    );
    expect(hostedLabel({ type: "image_generation", status: "generating", images: 2 }).status).toBe(
      "generating · 2 partial images",
    );
    expect(hostedLabel({ type: "future_thing_call", status: "in_progress" })).toEqual({
      icon: "⚙",
      label: "future thing call",
      status: "in progress",
    });
  });

  it("citations HTML escapes titles and URLs (the DOMPurify path drops unsafe hrefs)", () => {
    const html = citationsHTML([
      { url: 'https://a.test/?q="x"', title: "<b>A</b>" },
      { file_id: "file-1", filename: "notes.txt" },
    ]);
    expect(html).toContain('href="https://a.test/?q=&quot;x&quot;"');
    expect(html).toContain("&lt;b&gt;A&lt;/b&gt;");
    expect(html).toContain("notes.txt");
  });

  it("a hosted tool is a line with its status and input; its output folded away", () => {
    const { doc, q, qa } = setup();
    doc.apply({
      type: "frame",
      version: 0,
      seq: 1,
      status: "streaming",
      parts: [
        {
          kind: "hosted",
          index: 0,
          offset: 0,
          text: "",
          meta: { type: "code_interpreter", id: "ci_1", status: "in_progress" },
        },
      ],
    });
    flush();
    expect(q("hosted-tools").hidden).toBe(false);
    expect(qa("hosted-tool")).toHaveLength(1);
    expect(q("hosted-tool").dataset.status).toBe("in_progress");
    expect(q("hosted-input").hidden).toBe(true);
    doc.apply({
      type: "frame",
      version: 0,
      seq: 2,
      parts: [
        { kind: "hosted", index: 0, offset: 0, text: "print(<b>1</b>)", meta: { status: "completed" } },
        {
          kind: "hosted",
          index: 1,
          offset: 0,
          text: "",
          meta: { type: "mcp", name: "ask", status: "completed", output: "x".repeat(2500) },
        },
      ],
    });
    flush();
    const lines = qa("hosted-tool");
    expect(lines.map((l) => l.dataset.type)).toEqual(["code_interpreter", "mcp"]);
    expect(lines[0].querySelector("[data-testid=hosted-input]").textContent).toBe("print(<b>1</b>)"); // text, not HTML
    expect(lines[0].querySelector("b")).toBeNull();
    expect(lines[0].querySelector("[data-testid=hosted-status]").textContent).toBe("completed");
    const out = lines[1].querySelector("[data-testid=hosted-output]");
    expect(out.hidden).toBe(false);
    expect(out.open).toBe(false);
    expect(out.textContent).toContain("2500 characters");
  });

  it("sources: links kept only for http(s), opened in a new tab; file citations as names", () => {
    const { doc, q, qa, el } = setup();
    doc.apply({
      type: "frame",
      version: 0,
      seq: 1,
      status: "done",
      final: true,
      parts: [
        { offset: 0, text: "Paris." },
        {
          kind: "citation",
          index: 0,
          offset: 0,
          text: "",
          meta: { url: "https://example.test/a", title: "Example <i>A</i>" },
        },
        { kind: "citation", index: 1, offset: 0, text: "", meta: { url: "javascript:alert(1)", title: "evil" } },
        { kind: "citation", index: 2, offset: 0, text: "", meta: { file_id: "file-9", filename: "capitals.txt" } },
      ],
    });
    flush();
    expect(q("citations").hidden).toBe(false);
    const items = qa("citation");
    expect(items).toHaveLength(3);
    const links = [...q("citations").querySelectorAll("a")];
    expect(links[0].getAttribute("href")).toBe("https://example.test/a");
    expect(links[0].getAttribute("rel")).toBe("noopener noreferrer");
    expect(links[0].textContent).toBe("Example <i>A</i>");
    expect(links[1].hasAttribute("href")).toBe(false); // javascript: dropped by DOMPurify's hook
    expect(items[2].textContent).toContain("capitals.txt");
    expect(el.querySelector("i")).toBeNull();
  });

  it("a custom tool's freeform input is shown as it is, not flagged as invalid JSON", () => {
    const { doc, q } = setup();
    doc.apply({
      type: "frame",
      version: 0,
      seq: 1,
      status: "done",
      final: true,
      metrics: { finish_reasons: { 0: "tool_calls" } },
      parts: [
        {
          kind: "tool",
          index: 0,
          offset: 0,
          text: "SELECT * FROM users",
          meta: { id: "call_1", name: "write_sql", type: "custom" },
        },
      ],
    });
    flush();
    expect(q("tool-call").dataset.state).toBe("valid");
    expect(q("tool-args").textContent).toBe("SELECT * FROM users");
    expect(q("tool-invalid").hidden).toBe(true);
  });
});
