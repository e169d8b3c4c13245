"""Hatch build hook: build the widget (``js/`` -> ``nbstream/static/``, esbuild) and the
JupyterLab / Notebook 7 extension (``js/lab/`` -> ``nbstream/labextension/``, JupyterLab's
builder) at build time. The wheel installs the extension into
``share/jupyter/labextensions/nbstream`` (pyproject's shared-data).

Both are build output, never committed. ``NBSTREAM_SKIP_JS=1`` skips the step when they are
already there (e.g. during quick re-installs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class JsBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel":  # editable installs are wheel builds too
            return
        root = Path(self.root)
        bundle = root / "nbstream" / "static" / "widget.js"
        extension = root / "nbstream" / "labextension" / "package.json"
        if os.environ.get("NBSTREAM_SKIP_JS") == "1" and bundle.exists() and extension.exists():
            return
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(
                "nbstream's widget is built with npm (Node.js >= 18), which was not found. "
                "Install Node.js, then run `pip install .` again."
            )
        install = "ci" if (root / "package-lock.json").exists() else "install"
        subprocess.run([npm, install, "--no-audit", "--no-fund"], cwd=root, check=True)
        # the extension's builder reads JupyterLab's shared package versions from the
        # `jupyterlab` package of this build's Python (a build requirement, see pyproject.toml)
        env = {**os.environ, "PYTHON": sys.executable}
        subprocess.run([npm, "run", "build"], cwd=root, check=True, env=env)
        for built in (bundle, extension):
            if not built.exists():
                raise RuntimeError(f"the JS build did not produce {built}")
        # what `jupyter labextension list` says about where the extension comes from
        (extension.parent / "install.json").write_text(
            json.dumps(
                {
                    "packageManager": "python",
                    "packageName": "nbstream",
                    "uninstallInstructions": "Use your Python package manager (pip, conda, etc.) "
                    "to uninstall the package nbstream",
                }
            )
            + "\n"
        )
