// The widget's built code as the extension ships it (nbstream/static/, built from js/widget.js by
// js/build.mjs): the extension uses the same bundle (same content hash) as the kernel's views.
// Its types are in bundle.d.ts (from the source, js/widget.js): the type check never reads the
// minified build output, which a clean checkout does not have yet.
import "../../nbstream/static/widget.css";

export { version } from "../../nbstream/static/version.json";
export { default, isLive, LIVE_EVENT, renderSaved } from "../../nbstream/static/widget.js";
