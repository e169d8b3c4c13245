// @ts-check
// Builds nbstream's JupyterLab / Notebook 7 extension (js/lab/) into nbstream/labextension/ with
// JupyterLab's own builder (webpack module federation, which a prebuilt extension needs).
//
// The builder reads the shared package versions of the JupyterLab it builds for from the
// `jupyterlab` Python package (its staging/package.json): found with $PYTHON (the hatch build
// hook sets it to the build's interpreter) or python3.
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";

const python = process.env.PYTHON || "python3";
const corePath =
  process.env.JUPYTERLAB_CORE_PATH ||
  execFileSync(
    python,
    ["-c", "import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), 'staging'))"],
    { encoding: "utf8" },
  ).trim();
const require = createRequire(import.meta.url);
const builder = path.join(
  path.dirname(require.resolve("@jupyterlab/builder/package.json")),
  "lib",
  "build-labextension.js",
);
execFileSync(process.execPath, [builder, "--core-path", corePath, "."], { stdio: "inherit" });
