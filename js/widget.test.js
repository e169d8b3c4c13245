// @ts-check
import { describe, expect, it, vi } from "vitest";
import { StreamDocument } from "./document.js";
import { decodeFrame } from "./protocol.js";
import { applyFrame } from "./widget.js";

/** The part of an anywidget model the widget uses: get/set with change events, no kernel. */
/** @returns {any} a stand-in for anywidget's model: only what applyFrame uses */
function fakeModel(state) {
  const changes = [];
  return {
    changes,
    get: (k) => state[k],
    set: (k, v) => {
      state[k] = v;
      changes.push([k, v]);
    },
    save_changes: () => {
      throw new Error("the end's state must not be sent back to the kernel");
    },
  };
}

describe("the end of a version in one message", () => {
  it("decodeFrame reads the final frame's mode", () => {
    expect(decodeFrame({ t: "f", s: 2, p: [], st: "done", fin: 1, md: "idle" })).toMatchObject({
      final: true,
      status: "done",
      mode: "idle",
    });
  });

  it("a final frame sets the mode on the model locally, and the document publishes the whole snapshot", () => {
    const model = fakeModel({ mode: "background" });
    const published = [];
    const doc = new StreamDocument({ onFinal: (s) => published.push(s) });
    applyFrame(model, doc, decodeFrame({ t: "f", s: 1, p: [{ o: 0, x: "Hello " }], st: "streaming" }));
    expect(model.get("mode")).toBe("background");
    applyFrame(
      model,
      doc,
      decodeFrame({ t: "f", s: 2, p: [{ o: 6, x: "world" }], st: "done", mt: { chars: 11 }, fin: 1, md: "idle" }),
    );
    expect(model.get("mode")).toBe("idle");
    expect(model.changes).toEqual([["mode", "idle"]]);
    expect(published.at(-1).versions[0]).toMatchObject({ status: "done", seq: 2, parts: [{ text: "Hello world" }] });
  });

  it("a final frame after a gap still sets the mode (the resync brings the text)", () => {
    const model = fakeModel({ mode: "background" });
    const sent = [];
    const doc = new StreamDocument({ send: (m) => sent.push(m) });
    const ok = applyFrame(
      model,
      doc,
      decodeFrame({ t: "f", s: 3, p: [{ o: 40, x: "tail" }], st: "done", fin: 1, md: "idle" }),
    );
    expect(ok).toBe(false);
    expect(sent).toEqual([{ type: "resync", version: 0 }]);
    expect(model.get("mode")).toBe("idle");
  });

  it("frames without a mode leave the model alone", () => {
    const model = fakeModel({ mode: "await" });
    const doc = new StreamDocument();
    applyFrame(model, doc, decodeFrame({ t: "f", s: 1, p: [{ o: 0, x: "a" }], st: "stopped", fin: 1 }));
    expect(model.changes).toEqual([]);
  });
});

describe("ready, once per page", () => {
  /** @returns {any} an anywidget model of one view: what initialize() uses */
  function viewModel(uid, manager, sent) {
    return {
      get: (k) => ({ uid, snapshot: { versions: [] }, mode: "background" })[k],
      set() {},
      on() {},
      off() {},
      send: (msg) => sent.push([uid, msg]),
      widget_manager: manager,
    };
  }

  it("views initialized together say ready in one message naming them all", async () => {
    vi.useFakeTimers();
    try {
      const { default: widget } = await import("./widget.js");
      const sent = [];
      const manager = {};
      for (const uid of ["a", "b", "c"]) widget.initialize({ model: viewModel(uid, manager, sent) });
      widget.initialize({ model: viewModel("other-kernel", {}, sent) });
      expect(sent).toEqual([]);
      vi.advanceTimersByTime(25);
      expect(sent).toEqual([
        ["a", { type: "ready", uids: ["a", "b", "c"] }],
        ["other-kernel", { type: "ready", uids: ["other-kernel"] }],
      ]);
      widget.initialize({ model: viewModel("d", manager, sent) }); // a later view: a new message
      vi.advanceTimersByTime(25);
      expect(sent.at(-1)).toEqual(["d", { type: "ready", uids: ["d"] }]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("a first view whose comm closed meanwhile: the next one carries the message", async () => {
    vi.useFakeTimers();
    try {
      const { default: widget } = await import("./widget.js");
      const sent = [];
      const manager = {};
      const closed = viewModel("gone", manager, sent);
      closed.send = () => {
        throw new Error("comm closed");
      };
      widget.initialize({ model: closed });
      widget.initialize({ model: viewModel("kept", manager, sent) });
      vi.advanceTimersByTime(25);
      expect(sent).toEqual([["kept", { type: "ready", uids: ["gone", "kept"] }]]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("a steady flow of views is named at most 250 ms after the first waited", async () => {
    vi.useFakeTimers();
    try {
      const { default: widget } = await import("./widget.js");
      const sent = [];
      const manager = {};
      for (let i = 0; i < 30; i++) {
        widget.initialize({ model: viewModel(`v${i}`, manager, sent) });
        vi.advanceTimersByTime(10);
      }
      expect(sent.length).toBe(1);
      expect(sent[0][1].uids.length).toBeGreaterThanOrEqual(24);
    } finally {
      vi.useRealTimers();
    }
  });
});
