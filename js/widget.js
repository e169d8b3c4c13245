// anywidget entry. initialize() owns one StreamDocument per widget model (shared by all its views,
// keyed by the synced `uid` since anywidget hands each hook its own model proxy); render() only
// builds DOM for one view.

import { StreamDocument } from "./document.js";
import { View } from "./view.js";
import { FRAME, LOG_PAGE } from "./protocol.js";
import "../node_modules/katex/dist/katex.min.css"; // fonts omitted (bundle size): system math fonts are used
import "./style.css";

const documents = new Map(); // uid -> StreamDocument

function documentFor(model) {
  const uid = model.get("uid") || "default";
  let doc = documents.get(uid);
  if (!doc) {
    doc = new StreamDocument({ send: (msg) => model.send(msg) });
    documents.set(uid, doc);
  }
  return doc;
}

export default {
  initialize({ model }) {
    const doc = documentFor(model);
    doc.send = (msg) => model.send(msg);
    doc.reconcile(model.get("snapshot"));
    const onSnapshot = () => doc.reconcile(model.get("snapshot"));
    const onCustom = (msg) => {
      if (msg?.type === FRAME) doc.apply(msg);
      else if (msg?.type === LOG_PAGE) doc.emit({ type: "log_page", msg });
    };
    model.on("change:snapshot", onSnapshot);
    model.on("msg:custom", onCustom);
    // A reloaded page joins a running stream with a stale snapshot: ask for the current text now.
    if (doc.isStreaming()) doc.requestResync();
    return () => {
      model.off("change:snapshot", onSnapshot);
      model.off("msg:custom", onCustom);
      documents.delete(model.get("uid") || "default");
    };
  },

  render({ model, el }) {
    const view = new View(el, model, documentFor(model));
    return () => view.destroy();
  },
};
