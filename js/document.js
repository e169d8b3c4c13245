// @ts-check
// Stream state without DOM: one document per widget model, shared by all its views.
//
// apply(frame) appends the new text of a `frame` message; reconcile(snapshot) takes the synced
// `snapshot` trait. Frames carry offsets: a frame whose offset is past what we hold means we missed
// something (anywidget drops custom messages sent before the frontend rendered), so we ask Python
// for a resync (it re-sends the snapshot) instead of showing a text with a hole.

import { FINAL_STATUSES, PROTOCOL_VERSION, partKey, resync } from "./protocol.js";

/** @typedef {import("./protocol.js").Frame} Frame
 * @typedef {import("./protocol.js").Snapshot} Snapshot
 */
/** @typedef {import("./protocol.js").SnapshotPart} SnapshotPart
 * @typedef {import("./protocol.js").ToKernel} ToKernel
 */
/**
 * One part's text so far (key: partKey).
 * @typedef {{choice: number, kind: import("./protocol.js").PartKind, index: number | null, text: string, meta: import("./protocol.js").PartMeta}} Part
 */
/**
 * One version (an answer; Regenerate and Continue add versions).
 * @typedef {{version: number, seq: number, status: import("./protocol.js").Status, reason: string | null, notes?: string[],
 *   resumeBlocked?: string | null, metrics: import("./protocol.js").Metrics, parts: Map<string, Part>}} Version
 */
/**
 * What subscribers hear: a frame or snapshot applied, or a log_page reply (for the log panel).
 * @typedef {{type: "frame" | "snapshot", version: number} | {type: "log_page", msg: import("./protocol.js").LogPageReply}} Change
 */

/**
 * @param {number} version
 * @returns {Version}
 */
function newVersion(version) {
  return { version, seq: 0, status: "pending", reason: null, metrics: {}, parts: new Map() };
}

export class StreamDocument {
  /** @param {{send?: (msg: ToKernel) => void, now?: () => number, onFinal?: (snapshot: Snapshot) => void}} opts
   * onFinal(snapshot): called after a version's final frame with the complete snapshot. */
  constructor({ send = () => {}, now = () => Date.now(), onFinal = () => {} } = {}) {
    this.send = send;
    this.onFinal = onFinal;
    this.now = now;
    /** @type {Version[]} */
    this.versions = [];
    this.current = 0;
    this.resyncPending = false;
    this.resyncAt = 0;
    this.gaps = 0;
    /** @type {Set<(change: Change) => void>} */
    this.listeners = new Set();
  }

  /**
   * Call fn(change) after each change; returns an unsubscribe function.
   * @param {(change: Change) => void} fn
   */
  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** @param {Change} change */
  emit(change) {
    for (const fn of this.listeners) fn(change);
  }

  /** @param {number} i */
  version(i) {
    while (this.versions.length <= i) this.versions.push(newVersion(this.versions.length));
    return this.versions[i];
  }

  /** Text of one part of a version ("" when absent). */
  text(version = this.current, key = "0:text:") {
    return this.versions[version]?.parts.get(key)?.text ?? "";
  }

  isStreaming() {
    const v = this.versions[this.current];
    return !!v && !FINAL_STATUSES.has(v.status);
  }

  /**
   * Take the synced snapshot. A version's snapshot wins unless we already hold newer frames.
   * @param {Snapshot | null | undefined} snapshot
   */
  reconcile(snapshot) {
    if (!snapshot || !Array.isArray(snapshot.versions)) return;
    this.resyncPending = false;
    for (const sv of snapshot.versions) {
      const v = this.version(sv.version);
      if ((sv.seq ?? 0) < v.seq) continue; // frames already brought us past this snapshot
      v.seq = sv.seq ?? 0;
      v.status = sv.status ?? v.status;
      v.reason = sv.reason ?? null;
      v.notes = sv.notes ?? [];
      v.resumeBlocked = sv.resume_blocked ?? null; // a hook stopped it: no Continue
      v.metrics = sv.metrics ?? {};
      const parts = new Map();
      for (const p of sv.parts ?? []) {
        parts.set(partKey(p), {
          choice: p.choice ?? 0,
          kind: p.kind ?? "text",
          index: p.index ?? null,
          text: p.text ?? "",
          meta: { ...(p.meta ?? {}) },
        });
      }
      v.parts = parts;
    }
    if (typeof snapshot.current === "number") this.current = snapshot.current;
    this.emit({ type: "snapshot", version: this.current });
  }

  /**
   * Append a frame. Returns false (and asks for a resync) when it found a gap.
   * @param {Frame} frame
   */
  apply(frame) {
    const v = this.version(frame.version ?? 0);
    if ((frame.seq ?? 0) <= v.seq) return true; // already included (snapshot came later)
    let ok = true;
    for (const p of frame.parts ?? []) {
      const key = partKey(p);
      let part = v.parts.get(key);
      if (!part) {
        part = { choice: p.choice ?? 0, kind: p.kind ?? "text", index: p.index ?? null, text: "", meta: {} };
        v.parts.set(key, part);
      }
      if (p.meta) Object.assign(part.meta, p.meta);
      const have = part.text.length;
      const end = p.offset + p.text.length;
      if (p.offset === have) part.text += p.text;
      else if (p.offset < have) {
        if (end > have) part.text += p.text.slice(have - p.offset); // overlap: keep the new tail
      } else ok = false; // a gap: something was lost
    }
    if (!ok) {
      this.gaps += 1;
      this.requestResync(v.version);
      return false;
    }
    v.seq = frame.seq ?? v.seq;
    if (frame.status) v.status = frame.status;
    // live frames carry only the metrics that changed; the final frame carries them all
    if (frame.metrics) v.metrics = frame.final ? frame.metrics : { ...v.metrics, ...frame.metrics };
    if (frame.final) {
      v.reason = frame.reason ?? null;
      v.notes = frame.notes ?? [];
    }
    if (v.version > this.current) this.current = v.version;
    this.emit({ type: "frame", version: v.version });
    // Python does not re-send the final snapshot: we hold the same text, so we publish it
    if (frame.final) this.onFinal(this.toSnapshot());
    return true;
  }

  /**
   * The document as the `snapshot` trait's value (nbstream/frontend/protocol.py's Snapshot shape).
   * @returns {Snapshot & {protocol: number, current: number}}
   */
  toSnapshot() {
    return {
      protocol: PROTOCOL_VERSION,
      current: this.current,
      versions: this.versions.map((v) => ({
        version: v.version,
        seq: v.seq,
        status: v.status,
        reason: v.reason ?? null,
        notes: v.notes ?? [],
        metrics: v.metrics ?? {},
        parts: [...v.parts.values()].map((p) => {
          /** @type {SnapshotPart} */
          const part = { choice: p.choice, kind: p.kind, text: p.text };
          if (p.index !== null && p.index !== undefined) part.index = p.index;
          if (p.meta && Object.keys(p.meta).length) part.meta = { ...p.meta };
          return part;
        }),
      })),
    };
  }

  /** Ask Python to re-send the snapshot (at most once per second while one is pending). */
  requestResync(version = this.current) {
    const t = this.now();
    if (this.resyncPending && t - this.resyncAt < 1000) return;
    this.resyncPending = true;
    this.resyncAt = t;
    this.send(resync(version));
  }
}
