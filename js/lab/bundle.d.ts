// Types of bundle.js: nbstream/static/widget.js is js/widget.js bundled by js/build.mjs, and
// version.json holds its content hash.
export { default, isLive, LIVE_EVENT, renderSaved } from "../widget.js";
export declare const version: string;
