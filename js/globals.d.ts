// Ambient declarations for the type check (tsconfig.json).

// Styles are bundled by esbuild (js/build.mjs) and JupyterLab's builder: imported for effect only.
declare module "*.css";

// The widget bundle's content hash, set by esbuild's `define` when js/build.mjs builds js/loader.js.
declare const __NBSTREAM_VERSION__: string;

// markdown-it-texmath ships no types: a markdown-it plugin (options as js/markdown.js passes them).
declare module "markdown-it-texmath" {
  import type { PluginWithOptions } from "markdown-it";

  const texmath: PluginWithOptions<{
    engine: { renderToString(tex: string, options: import("katex").KatexOptions): string };
    delimiters?: string | string[];
    katexOptions?: import("katex").KatexOptions;
  }>;
  export default texmath;
}
