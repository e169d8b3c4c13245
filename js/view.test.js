// @ts-check
// The view in jsdom with a minimal stand-in for the anywidget model (get/on/off/send): what a
// frontend sees after frames and snapshots, and what the buttons send.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { StreamDocument } from "./document.js";
import { fakeModel } from "./testing.js";
import { View } from "./view.js";

const makeModel = fakeModel;

/** @returns {import("./protocol.js").FramePart} */
const text = (/** @type {number} */ offset, /** @type {string} */ t) => ({ choice: 0, kind: "text", offset, text: t });

/** The element a query finds, typed as the HTML element the test uses (null if none).
 * @param {ParentNode} root @param {string} selector */
const find = (root, selector) => /** @type {HTMLElement} */ (root.querySelector(selector));

describe("View", () => {
  let rafs;
  beforeEach(() => {
    rafs = [];
    vi.stubGlobal("requestAnimationFrame", (fn) => rafs.push(fn));
  });
  afterEach(() => vi.unstubAllGlobals());
  const flush = () => {
    const fns = rafs;
    rafs = [];
    for (const f of fns) f();
  };

  it("paints once per animation frame however many frames arrive", () => {
    const model = makeModel();
    const doc = new StreamDocument({ send: (m) => model.send(m) });
    const el = document.createElement("div");
    const view = new View(el, model, doc);
    const paints = view.paints;
    let offset = 0;
    for (let i = 0; i < 100; i++) {
      doc.apply({ type: "frame", version: 0, seq: i + 1, parts: [text(offset, "w ")], status: "streaming" });
      offset += 2;
    }
    expect(rafs.length).toBe(1); // the first token painted at once, the other 99 frames: one rAF
    flush();
    expect(view.paints).toBe(paints + 2);
    const root = find(el, ".nbstream-root");
    expect(root.dataset.status).toBe("streaming");
    expect(find(el, "[data-testid=answer]").textContent.trim()).toBe("w ".repeat(100).trim());
    expect(find(el, "[data-testid=stop]").hidden).toBe(false);
    expect(/** @type {HTMLButtonElement} */ (find(el, "[data-testid=regenerate]")).disabled).toBe(true);
  });

  it("a background answer shows its heading; none without one", () => {
    const model = makeModel({ heading: "Explain SSE in one line" });
    const el = document.createElement("div");
    new View(el, model, new StreamDocument());
    const heading = find(el, "[data-testid=heading]");
    expect(heading.hidden).toBe(false);
    expect(heading.textContent).toBe("Explain SSE in one line");
    model.set("heading", "");
    flush();
    expect(heading.hidden).toBe(true);
  });

  it("banners by kind: a Stop is a calm notice, an error an alert", () => {
    const model = makeModel();
    const doc = new StreamDocument();
    const el = document.createElement("div");
    new View(el, model, doc);
    doc.apply({
      type: "frame",
      version: 0,
      seq: 1,
      parts: [text(0, "Hi")],
      status: "stopped",
      reason: "stopped by user",
      final: true,
    });
    flush();
    const banner = find(el, "[data-testid=error]");
    expect([banner.textContent, banner.dataset.kind, banner.getAttribute("role")]).toEqual([
      "stopped by user",
      "stopped",
      "status",
    ]);
    doc.apply({
      type: "frame",
      version: 1,
      seq: 1,
      parts: [text(0, "Hi")],
      status: "error",
      reason: "HTTP 500",
      final: true,
    });
    flush();
    expect([banner.dataset.kind, banner.getAttribute("role")]).toEqual(["error", "alert"]);
  });

  it("a kernel restart mid-stream: said, text kept, no streaming, no buttons that need the kernel", () => {
    const model = makeModel({ resumable: true });
    const doc = new StreamDocument();
    const el = document.createElement("div");
    new View(el, model, doc);
    doc.apply({ type: "frame", version: 0, seq: 1, parts: [text(0, "Partial")], status: "streaming" });
    flush();
    const root = find(el, ".nbstream-root");
    root.dispatchEvent(new CustomEvent("nbstream:kernel", { detail: { status: "restarting" } }));
    flush();
    expect(root.dataset.kernel).toBe("gone");
    expect(root.dataset.status).toBe("stopped");
    expect(find(el, "[data-testid=answer]").textContent.trim()).toBe("Partial");
    expect(find(el, "[data-testid=error]").textContent).toMatch(/^The kernel restarted while this answer streamed/);
    expect(find(el, "[data-testid=error]").dataset.kind).toBe("kernel");
    expect(find(el, "[data-testid=status]").textContent).not.toContain("streaming");
    for (const id of ["stop", "regenerate", "resume"]) expect(find(el, `[data-testid=${id}]`).hidden).toBe(true);
    expect(find(el, ".nbstream-log").hidden).toBe(true); // the chunk log was in the kernel
  });

  it("the first token is painted at once, later ones at the next animation frame", () => {
    const model = makeModel();
    const doc = new StreamDocument();
    const el = document.createElement("div");
    new View(el, model, doc);
    doc.apply({ type: "frame", version: 0, seq: 1, parts: [text(0, "Hi")], status: "streaming" });
    expect(find(el, "[data-testid=answer]").textContent.trim()).toBe("Hi");
    expect(rafs.length).toBe(0);
    doc.apply({ type: "frame", version: 0, seq: 2, parts: [text(2, " there")] });
    expect(find(el, "[data-testid=answer]").textContent.trim()).toBe("Hi");
    flush();
    expect(find(el, "[data-testid=answer]").textContent.trim()).toBe("Hi there");
  });

  it("Stop sends stop; in blocking mode with no notebook to interrupt the kernel it says to use ■", () => {
    const model = makeModel({ mode: "blocking" });
    const doc = new StreamDocument();
    const el = document.createElement("div");
    new View(el, model, doc);
    doc.apply({ type: "frame", version: 0, seq: 1, parts: [text(0, "partial")], status: "streaming" });
    flush();
    const stop = find(el, "[data-testid=stop]");
    expect(stop.title).toContain("interrupts this cell");
    stop.click();
    expect(model.sent).toEqual([{ type: "stop" }]);
    expect(find(el, "[data-testid=status]").textContent).toContain("interrupt button (■)");
  });

  it("Stop in blocking mode asks the notebook around for the kernel interrupt", () => {
    const model = makeModel({ mode: "blocking", uid: "u1" });
    const doc = new StreamDocument();
    const el = document.createElement("div");
    const asked = [];
    el.addEventListener("nbstream:interrupt", (event) => {
      const { detail } = /** @type {CustomEvent} */ (event);
      asked.push(detail.uid);
      detail.handled = true;
    });
    new View(el, model, doc);
    doc.apply({ type: "frame", version: 0, seq: 1, parts: [text(0, "partial")], status: "streaming" });
    flush();
    find(el, "[data-testid=stop]").click();
    expect(asked).toEqual(["u1"]);
    expect(find(el, "[data-testid=status]").textContent).toBe("Stopping…");
  });

  it("a Stop click after the version ended asks for no interrupt (the kernel may run another cell)", () => {
    const model = makeModel({ mode: "blocking", uid: "u1" });
    const doc = new StreamDocument();
    const el = document.createElement("div");
    const asked = [];
    el.addEventListener("nbstream:interrupt", (event) => asked.push(/** @type {CustomEvent} */ (event).detail.uid));
    const view = new View(el, model, doc);
    doc.apply({ type: "frame", version: 0, seq: 1, parts: [text(0, "all")], status: "streaming" });
    doc.apply({ type: "frame", version: 0, seq: 2, parts: [], status: "done", final: true });
    flush();
    view.onStop(); // the click landed as the end arrived (the mode still says blocking)
    expect(asked).toEqual([]);
  });

  it("a kernel that restarted: the text stays, Stop and Regenerate go, the view says why", () => {
    const model = makeModel({ mode: "background", rerunnable: true });
    const doc = new StreamDocument();
    const el = document.createElement("div");
    new View(el, model, doc);
    doc.apply({ type: "frame", version: 0, seq: 1, parts: [text(0, "partial")], status: "streaming" });
    flush();
    find(el, ".nbstream-root").dispatchEvent(new CustomEvent("nbstream:kernel", { detail: { status: "restarting" } }));
    flush();
    const q = (id) => find(el, `[data-testid=${id}]`);
    expect(q("answer").textContent).toContain("partial");
    expect(q("stop").hidden).toBe(true);
    expect(q("regenerate").hidden).toBe(true);
    expect(q("error").textContent).toContain("The kernel restarted");
    expect(find(el, ".nbstream-root").dataset.kernel).toBe("gone");
  });

  it("done: status line, usage shown as absent, Regenerate enabled, pager across versions", () => {
    const model = makeModel();
    const doc = new StreamDocument();
    const el = document.createElement("div");
    new View(el, model, doc);
    doc.reconcile({
      protocol: 1,
      current: 1,
      versions: [
        {
          version: 0,
          seq: 3,
          status: "stopped",
          reason: "stopped by user",
          metrics: {
            ttft_s: 0.25,
            tokens: 12,
            tokens_estimated: true,
            duration_s: 1.5,
            model: "demo",
            request_id: "req_1",
          },
          parts: [{ choice: 0, kind: "text", text: "first" }],
        },
        {
          version: 1,
          seq: 9,
          status: "done",
          reason: null,
          metrics: {
            tokens: 30,
            tokens_per_s: 42.5,
            usage: { prompt_tokens: 5, completion_tokens: 30 },
            request_id: "req_2",
          },
          parts: [{ choice: 0, kind: "text", text: "second" }],
        },
      ],
    });
    flush();
    const q = (id) => find(el, `[data-testid=${id}]`);
    expect(q("stop").hidden).toBe(true);
    expect(/** @type {HTMLButtonElement} */ (q("regenerate")).disabled).toBe(false);
    expect(q("version-label").textContent).toBe("2/2");
    expect(q("status").title).toContain("req_2");
    expect(q("status").title).toContain("usage 5 in / 30 out");
    q("version-prev").click();
    flush();
    expect(q("answer").textContent.trim()).toBe("first");
    expect(q("version-label").textContent).toBe("1/2");
    expect(q("status").title).toContain("usage: not reported");
    expect(q("status").textContent).toContain("12 tokens (est.)");
    expect(q("error").textContent).toBe("stopped by user");
    q("regenerate").click();
    expect(model.sent).toEqual([{ type: "regenerate" }]);
  });

  it("Regenerate hidden for one-shot sources; Continue shown for a resumable stopped answer", () => {
    const model = makeModel({ rerunnable: false, resumable: true });
    const doc = new StreamDocument();
    const el = document.createElement("div");
    new View(el, model, doc);
    doc.apply({ type: "frame", version: 0, seq: 1, parts: [text(0, "cut")], status: "stopped", final: true });
    flush();
    expect(find(el, "[data-testid=regenerate]").hidden).toBe(true);
    const resume = find(el, "[data-testid=resume]");
    expect(resume.hidden).toBe(false);
    resume.click();
    expect(model.sent).toEqual([{ type: "resume" }]);
  });

  it("a whole answer at once (a snapshot) is painted over bounded frames until complete", () => {
    // a clock that advances 1 ms per read: each frame's answer work is bounded by the budget,
    // deterministically (the invariant behind "never one 8 s task for a late snapshot")
    let t = 0;
    const now = () => t++;
    const block = "## Part\n\nMath $x^2$ and code:\n\n```python\ndef f():\n    return 1\n```";
    const answer = Array.from({ length: 40 }, () => block).join("\n\n");
    const model = makeModel();
    const doc = new StreamDocument();
    const el = document.createElement("div");
    const view = new View(el, model, doc, { now, budget: 5, endBudget: 5 });
    doc.reconcile({
      protocol: 1,
      current: 0,
      versions: [
        {
          version: 0,
          seq: 5,
          status: "done",
          reason: null,
          metrics: {},
          parts: [{ choice: 0, kind: "text", text: answer }],
        },
      ],
    });
    const answerEl = find(el, "[data-testid=answer]");
    let frames = 0;
    while (rafs.length) {
      const before = view.renderer.renders + view.renderer.upgrades;
      flush();
      frames += 1;
      expect(view.renderer.renders + view.renderer.upgrades - before).toBeLessThanOrEqual(6);
      expect(frames).toBeLessThan(500);
    }
    expect(frames).toBeGreaterThan(20); // spread over many frames, not one long task
    expect(answerEl.dataset.rendered).toBe("complete");
    expect(find(el, "[data-testid=status]").textContent).toContain("done");
    expect(answerEl.querySelectorAll("h2").length).toBe(40);
    expect(answerEl.querySelectorAll(".katex").length).toBe(40);
    expect(answerEl.querySelectorAll(".hljs-keyword").length).toBe(80);
    expect(find(answerEl, ".nbstream-tex, [data-nbstream-hl]")).toBeNull();
  });

  it("once the version has ended, catch-up frames may use the larger end budget", () => {
    let t = 0;
    const now = () => t++; // 1 ms per read: pieces of work per frame follow the budget
    const block = "## Part\n\nMath $x^2$ and code:\n\n```python\ndef f():\n    return 1\n```";
    const answer = Array.from({ length: 40 }, () => block).join("\n\n");
    const perFrame = (status) => {
      const model = makeModel();
      const doc = new StreamDocument();
      const el = document.createElement("div");
      const view = new View(el, model, doc, { now, budget: 2, endBudget: 8 });
      doc.reconcile({
        protocol: 1,
        current: 0,
        versions: [
          { version: 0, seq: 5, status, reason: null, metrics: {}, parts: [{ choice: 0, kind: "text", text: answer }] },
        ],
      });
      const counts = [];
      for (let i = 0; i < 10 && rafs.length; i++) {
        const before = view.renderer.renders + view.renderer.upgrades;
        flush();
        counts.push(view.renderer.renders + view.renderer.upgrades - before);
      }
      rafs = [];
      return counts;
    };
    const streaming = perFrame("streaming");
    const ended = perFrame("done");
    expect(Math.max(...streaming)).toBeLessThanOrEqual(3);
    expect(Math.max(...ended)).toBeLessThanOrEqual(9);
    expect(Math.max(...ended)).toBeGreaterThan(3);
  });

  it("the log panel fetches rows on demand and renders them as text", () => {
    const model = makeModel();
    const doc = new StreamDocument();
    const el = document.createElement("div");
    new View(el, model, doc);
    doc.apply({ type: "frame", version: 0, seq: 1, parts: [text(0, "x")], status: "done", final: true });
    flush();
    expect(find(el, "[data-testid=log-panel]").hidden).toBe(true);
    expect(model.sent).toEqual([]); // nothing fetched while collapsed
    find(el, "[data-testid=log-toggle]").click();
    const req = /** @type {import("./protocol.js").LogPageRequest} */ (model.sent.at(-1));
    expect(req).toMatchObject({ type: "log_page", version: 0, start: 0, times: true });
    doc.emit({
      type: "log_page",
      msg: {
        type: "log_page",
        id: req.id,
        total: 3,
        times: [0.01],
        rows: [
          { index: 0, type: "request", t: 0, delta: "source=chat" },
          { index: 1, type: "chunk", chunk: 0, t: 0.01, delta: "<img src=x onerror=alert(1)>", note: "" },
          { index: 2, type: "end", t: 0.02, delta: "status=done" },
        ],
        requests: [{ type: "response", request_id: "req_9", status: 200 }],
      },
    });
    const rows = /** @type {NodeListOf<HTMLElement>} */ (el.querySelectorAll("[data-testid=log-row]"));
    expect(rows.length).toBe(1);
    expect(rows[0].dataset.index).toBe("0");
    expect(rows[0].querySelector("img")).toBeNull(); // deltas are text, never HTML
    expect(rows[0].textContent).toContain("<img src=x onerror=alert(1)>");
    expect(el.querySelectorAll("[data-testid=log-record]").length).toBe(2);
    expect(find(el, "[data-testid=log-requests]").textContent).toContain("req_9");
    expect(find(el, "[data-testid=log-timeline]")).not.toBeNull();
  });
});

import { describeRecord } from "./logpanel.js";

describe("describeRecord", () => {
  it("puts request records in words", () => {
    expect(
      describeRecord({
        type: "response",
        attempt: 2,
        t: 0.078,
        status: 200,
        request_id: "req_1",
        headers: { "x-ratelimit-remaining-requests": "9", "x-ratelimit-limit-requests": "10" },
      }),
    ).toBe("attempt 2: HTTP 200 · req_1 · headers after 78 ms · rate limit 9/10 requests left");
    expect(describeRecord({ type: "end", attempt: 1, t: 1.5, status: "stopped", reason: "stopped by user" })).toBe(
      "attempt 1: stopped after 1500 ms (stopped by user)",
    );
    expect(describeRecord({ type: "error", attempt: 1, t: 0.01, status: 429, message: "slow down" })).toBe(
      "attempt 1: error HTTP 429 after 10 ms: slow down",
    );
  });
});

import { axisTicks, logFileName, nearestChunk, prettyJson, timeline } from "./logpanel.js";

describe("chunk log pieces", () => {
  it("names the JSONL download after the model, the time and the request id, in safe characters", () => {
    const wallTime = new Date(2026, 11, 6, 1, 2, 3).getTime() / 1000;
    expect(logFileName({ model: "gpt-4o-mini", requestId: "req_abc123", wallTime })).toBe(
      "nbstream-gpt-4o-mini-20261206-010203-req_abc123.jsonl",
    );
    expect(logFileName({ model: "org/model:latest ../../x", requestId: "a b\\c", wallTime })).toBe(
      "nbstream-org_model_latest_.._.._x-20261206-010203-a_b_c.jsonl",
    );
    expect(logFileName({ version: 1 })).toBe("nbstream-v2.jsonl"); // nothing known: still unique per version
  });

  it("finds the chunk nearest the pointer and the gap before it", () => {
    const times = [0.1, 0.2, 0.9, 1.0];
    expect(nearestChunk(times, 0)).toEqual({ index: 0, t: 0.1, gap: null });
    expect(nearestChunk(times, 0.7)).toMatchObject({ index: 2, t: 0.9 });
    expect(nearestChunk(times, 0.7).gap).toBeCloseTo(0.7);
    expect(nearestChunk(times, 5)).toMatchObject({ index: 3 });
    expect(nearestChunk([], 1)).toBeNull();
  });

  it("puts round seconds on the axis", () => {
    expect(axisTicks(1.0)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(axisTicks(7.3)).toEqual([0, 2, 4, 6]);
    expect(axisTicks(0)).toEqual([0]);
  });

  it("draws an axis and says which chunk the pointer is on", () => {
    const box = timeline([0.1, 0.2, 0.9, 1.0]);
    const axis = find(box, "[data-testid=log-timeline-axis]");
    expect([...axis.children].map((s) => s.textContent)).toEqual(["0", "200 ms", "400 ms", "600 ms", "800 ms", "1 s"]);
    const readout = find(box, "[data-testid=log-timeline-readout]");
    expect(readout.textContent).toBe("4 chunks over 1.00 s; longest gap 700 ms");
    box.hover(0.85);
    expect(readout.textContent).toBe("chunk 2 at 900 ms · 700 ms after the one before");
  });

  it("pretty-prints raw chunks, JSON text included", () => {
    expect(prettyJson({ a: [1] })).toBe('{\n  "a": [\n    1\n  ]\n}');
    expect(prettyJson('{"b":1}')).toBe('{\n  "b": 1\n}');
    expect(prettyJson(": keep-alive")).toBe(": keep-alive");
  });
});
