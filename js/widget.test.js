// @ts-check
import { describe, expect, it } from "vitest";
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
