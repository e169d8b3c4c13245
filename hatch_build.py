"""Hatch build hook: bundle ``js/`` with esbuild into ``nbstream/static/`` at build time.

The bundle is build output, never committed. ``NBSTREAM_SKIP_JS=1`` skips the step when a
bundle is already there (e.g. during quick re-installs).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class JsBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel":  # editable installs are wheel builds too
            return
        root = Path(self.root)
        bundle = root / "nbstream" / "static" / "widget.js"
        if os.environ.get("NBSTREAM_SKIP_JS") == "1" and bundle.exists():
            return
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(
                "nbstream's widget is built with npm (Node.js >= 18), which was not found. "
                "Install Node.js, then run `pip install .` again."
            )
        install = "ci" if (root / "package-lock.json").exists() else "install"
        subprocess.run([npm, install, "--no-audit", "--no-fund"], cwd=root, check=True)
        subprocess.run([npm, "run", "build"], cwd=root, check=True)
        if not bundle.exists():
            raise RuntimeError(f"the JS build did not produce {bundle}")
