// Placeholder entry; replaced by the real widget.
export default {
  render({ model, el }) {
    el.textContent = model.get("text") ?? "";
    model.on("change:text", () => { el.textContent = model.get("text"); });
  },
};
