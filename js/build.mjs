// @ts-check
// Builds the widget: `node js/build.mjs [--watch]`.
//
// nbstream/static/widget.js + widget.css  the widget's code (esbuild, one ES module)
// nbstream/static/version.json            its content hash: the kernel and the JupyterLab
//                                         extension use the same code only when hashes match
// nbstream/static/loader.js               the `_esm` each view carries (js/loader.js), which
//                                         finds the code once per page (see there)
// The JupyterLab extension (js/lab/) is built after this by @jupyterlab/builder
// (`npm run build:lab`), from these files.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import * as esbuild from "esbuild";

const out = "nbstream/static";
/** @type {import("esbuild").BuildOptions} */
const common = { bundle: true, format: "esm", minify: true, logLevel: "warning" };

await esbuild.build({
  ...common,
  entryPoints: ["js/widget.js"],
  outfile: `${out}/widget.js`,
  loader: { ".woff2": "empty", ".woff": "empty", ".ttf": "empty" },
  alias: { katex: "./node_modules/katex/dist/katex.mjs" },
});
// KaTeX's @font-face rules point at fonts left out of the bundle (size): drop them, the system's
// math fonts are used
const css = readFileSync(`${out}/widget.css`, "utf8").replace(/@font-face\s*\{[^}]*\}/g, "");
writeFileSync(`${out}/widget.css`, css);
const hash = createHash("sha256");
hash.update(readFileSync(`${out}/widget.js`));
hash.update(readFileSync(`${out}/widget.css`));
const version = hash.digest("hex").slice(0, 16);
writeFileSync(`${out}/version.json`, `${JSON.stringify({ version })}\n`);
await esbuild.build({
  ...common,
  entryPoints: ["js/loader.js"],
  outfile: `${out}/loader.js`,
  define: { __NBSTREAM_VERSION__: JSON.stringify(version) },
});
console.log(`nbstream widget ${version}`);
