// @ts-check
import { describe, expect, it } from "vitest";
import { StreamDocument } from "./document.js";
import { decodeFrame, resumableStatus } from "./protocol.js";

/** @returns {import("./protocol.js").FramePart} */
const part = (offset, text, extra = {}) => ({ choice: 0, kind: "text", offset, text, ...extra });
/** @returns {import("./protocol.js").Frame} */
const frame = (seq, parts, extra = {}) => ({ type: "frame", version: 0, seq, parts, ...extra });
const snap = (versions, current = 0) => ({ protocol: 1, current, versions });

function make() {
  const sent = [];
  let t = 0;
  const doc = new StreamDocument({ send: (m) => sent.push(m), now: () => t });
  return {
    doc,
    sent,
    advance: (ms) => {
      t += ms;
    },
  };
}

describe("StreamDocument.apply", () => {
  it("appends contiguous frames and takes status/metrics", () => {
    const { doc, sent } = make();
    expect(doc.apply(frame(1, [part(0, "Hel")], { status: "streaming" }))).toBe(true);
    expect(doc.apply(frame(2, [part(3, "lo")], { metrics: { chars: 5 } }))).toBe(true);
    expect(doc.text()).toBe("Hello");
    expect(doc.versions[0].status).toBe("streaming");
    expect(doc.versions[0].metrics).toEqual({ chars: 5 });
    expect(sent).toEqual([]);
  });

  it("offsets are UTF-16 units (JS length)", () => {
    const { doc } = make();
    doc.apply(frame(1, [part(0, "😀é")]));
    expect(doc.apply(frame(2, [part(3, "!")]))).toBe(true);
    expect(doc.text()).toBe("😀é!");
  });

  it("detects a gap and asks for a resync once", () => {
    const { doc, sent, advance } = make();
    doc.apply(frame(1, [part(0, "abc")]));
    expect(doc.apply(frame(3, [part(6, "ghi")]))).toBe(false);
    expect(doc.text()).toBe("abc");
    expect(sent).toEqual([{ type: "resync", version: 0 }]);
    doc.apply(frame(4, [part(9, "jkl")]));
    expect(sent.length).toBe(1); // still pending: no flood
    advance(1500);
    doc.apply(frame(5, [part(12, "m")]));
    expect(sent.length).toBe(2); // retried after a second
    expect(doc.gaps).toBe(3);
  });

  it("a resync snapshot fills the gap and later frames continue", () => {
    const { doc } = make();
    doc.apply(frame(1, [part(0, "abc")]));
    doc.apply(frame(3, [part(6, "ghi")]));
    doc.reconcile(
      snap([
        {
          version: 0,
          seq: 3,
          status: "streaming",
          reason: null,
          metrics: {},
          parts: [{ choice: 0, kind: "text", text: "abcdefghi" }],
        },
      ]),
    );
    expect(doc.resyncPending).toBe(false);
    expect(doc.apply(frame(4, [part(9, "jk")]))).toBe(true);
    expect(doc.text()).toBe("abcdefghijk");
  });

  it("skips frames already contained in a newer snapshot and trims overlaps", () => {
    const { doc } = make();
    doc.reconcile(
      snap([{ version: 0, seq: 5, status: "streaming", parts: [{ choice: 0, kind: "text", text: "hello wor" }] }]),
    );
    expect(doc.apply(frame(5, [part(5, " wor")]))).toBe(true);
    expect(doc.text()).toBe("hello wor");
    // overlapping frame (offset inside what we hold): only the new tail is appended
    expect(doc.apply(frame(6, [part(6, "world")]))).toBe(true);
    expect(doc.text()).toBe("hello world");
  });

  it("a first frame after a lost start is a gap (messages before render are dropped)", () => {
    const { doc, sent } = make();
    doc.reconcile(snap([{ version: 0, seq: 0, status: "streaming", parts: [] }]));
    expect(doc.apply(frame(7, [part(120, "tail")]))).toBe(false);
    expect(sent).toEqual([{ type: "resync", version: 0 }]);
  });

  it("keeps parts per choice and kind, and tool-call meta", () => {
    const { doc } = make();
    doc.apply(
      frame(1, [
        part(0, "a"),
        { choice: 1, kind: "text", offset: 0, text: "b" },
        { choice: 0, kind: "tool", index: 0, offset: 0, text: "{", meta: { name: "f" } },
      ]),
    );
    expect(doc.text(0, "0:text:")).toBe("a");
    expect(doc.text(0, "1:text:")).toBe("b");
    expect(doc.versions[0].parts.get("0:tool:0").meta).toEqual({ name: "f" });
  });

  it("new versions become current; notifies subscribers", () => {
    const { doc } = make();
    const changes = [];
    doc.subscribe((c) => changes.push(c));
    doc.apply(frame(1, [part(0, "v1")], { status: "done", final: true }));
    doc.apply({ type: "frame", version: 1, seq: 1, parts: [part(0, "v2")], status: "streaming" });
    expect(doc.current).toBe(1);
    expect(doc.text(0)).toBe("v1");
    expect(doc.text(1)).toBe("v2");
    expect(doc.isStreaming()).toBe(true);
    expect(changes.map((c) => c.version)).toEqual([0, 1]);
  });
});

describe("StreamDocument.reconcile", () => {
  it("an older snapshot does not roll back newer frames", () => {
    const { doc } = make();
    doc.apply(frame(1, [part(0, "abc")]));
    doc.apply(frame(2, [part(3, "def")]));
    doc.reconcile(
      snap([{ version: 0, seq: 1, status: "streaming", parts: [{ choice: 0, kind: "text", text: "abc" }] }]),
    );
    expect(doc.text()).toBe("abcdef");
  });

  it("restores every version of a saved notebook", () => {
    const { doc } = make();
    doc.reconcile(
      snap(
        [
          {
            version: 0,
            seq: 9,
            status: "stopped",
            reason: "stopped by user",
            metrics: { tokens: 3 },
            parts: [{ choice: 0, kind: "text", text: "one" }],
          },
          {
            version: 1,
            seq: 4,
            status: "done",
            reason: null,
            metrics: { tokens: 5 },
            parts: [{ choice: 0, kind: "text", text: "two" }],
          },
        ],
        1,
      ),
    );
    expect(doc.current).toBe(1);
    expect(doc.text(0)).toBe("one");
    expect(doc.versions[0].reason).toBe("stopped by user");
    expect(doc.text(1)).toBe("two");
    expect(doc.isStreaming()).toBe(false);
  });

  it("ignores a missing snapshot", () => {
    const { doc } = make();
    doc.reconcile(null);
    // @ts-expect-error: a malformed snapshot (no versions) is what this test gives
    doc.reconcile({});
    expect(doc.versions).toEqual([]);
  });
});

describe("final frame -> snapshot built locally", () => {
  it("decodeFrame expands the short wire keys with their defaults", () => {
    expect(
      decodeFrame({
        t: "f",
        s: 3,
        p: [
          { o: 5, x: "ab" },
          { c: 1, k: "tool", i: 0, o: 0, x: "{", m: { name: "f" } },
        ],
        st: "done",
        mt: { chars: 7 },
        fin: 1,
        r: "why",
        n: ["note"],
      }),
    ).toEqual({
      type: "frame",
      version: 0,
      seq: 3,
      status: "done",
      metrics: { chars: 7 },
      final: true,
      reason: "why",
      notes: ["note"],
      parts: [
        { offset: 5, text: "ab" },
        { choice: 1, kind: "tool", index: 0, offset: 0, text: "{", meta: { name: "f" } },
      ],
    });
    expect(decodeFrame({ t: "f", v: 2, s: 1, p: [] })).toMatchObject({ version: 2, final: false, parts: [] });
  });

  it("the final frame publishes the snapshot Python keeps (same shape, whole text)", () => {
    const published = [];
    const doc = new StreamDocument({ onFinal: (s) => published.push(s) });
    doc.reconcile(snap([{ version: 0, seq: 0, status: "streaming", reason: null, notes: [], metrics: {}, parts: [] }]));
    doc.apply(frame(1, [part(0, "Hel")], { status: "streaming" }));
    doc.apply(
      frame(2, [part(3, "lo"), { choice: 0, kind: "tool", index: 0, offset: 0, text: "{}", meta: { id: "c1" } }]),
    );
    expect(published).toEqual([]); // not before the end
    doc.apply(
      frame(3, [part(5, "!")], {
        status: "stopped",
        metrics: { chars: 6 },
        final: true,
        reason: "stopped by user",
        notes: ["flag"],
      }),
    );
    expect(published).toEqual([
      snap([
        {
          version: 0,
          seq: 3,
          status: "stopped",
          reason: "stopped by user",
          notes: ["flag"],
          metrics: { chars: 6 },
          parts: [
            { choice: 0, kind: "text", text: "Hello!" },
            { choice: 0, kind: "tool", index: 0, text: "{}", meta: { id: "c1" } },
          ],
        },
      ]),
    ]);
    // reconciling what we published changes nothing
    doc.reconcile(published[0]);
    expect(doc.text()).toBe("Hello!");
    expect(doc.versions[0].reason).toBe("stopped by user");
  });

  it("a final frame after a gap does not publish a text with a hole", () => {
    const published = [];
    const { doc, sent } = make();
    doc.onFinal = (s) => published.push(s);
    doc.apply(frame(1, [part(0, "abc")]));
    expect(doc.apply(frame(3, [part(9, "z")], { status: "done", final: true }))).toBe(false);
    expect(published).toEqual([]);
    expect(sent.at(-1).type).toBe("resync");
  });
});

describe("live metrics", () => {
  it("live frames merge the changed metrics, the final frame replaces them", () => {
    const doc = new StreamDocument();
    doc.apply(frame(1, [part(0, "a")], { metrics: { model: "m", chars: 1, tokens_estimated: true } }));
    doc.apply(frame(2, [part(1, "b")], { metrics: { chars: 2 } }));
    expect(doc.versions[0].metrics).toEqual({ model: "m", chars: 2, tokens_estimated: true });
    doc.apply(frame(3, [], { status: "done", final: true, metrics: { model: "m", chars: 2, tokens: 1 } }));
    expect(doc.versions[0].metrics).toEqual({ model: "m", chars: 2, tokens: 1 });
  });
});

describe("resumableStatus", () => {
  it("Continue for stopped/incomplete answers and for a server-reported error after some text", () => {
    expect(resumableStatus("stopped", "")).toBe(true);
    expect(resumableStatus("incomplete", "abc")).toBe(true);
    expect(resumableStatus("error", "abc")).toBe(true);
    expect(resumableStatus("error", "")).toBe(false); // failed before the first token: Retry only
    expect(resumableStatus("done", "abc")).toBe(false);
  });
});
