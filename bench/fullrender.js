// The baseline of bench/bench_browser.py: nbstream's own Markdown renderer (js/markdown.js:
// markdown-it, KaTeX, highlight.js, DOMPurify) exposed to the page, so the benchmark can re-render
// the whole text on every update with the very same renderer the widget uses incrementally.
import { renderMarkdown } from "../js/markdown.js";

globalThis.__nbstreamRenderMarkdown = renderMarkdown;
