"""A real IPython kernel for tests: start it, run code, collect what a notebook would show.

The magic's behaviour depends on the kernel (display, ``user_ns``, usage errors printed by the
shell instead of tracebacks), so tests drive a real ``ipykernel`` through ``jupyter_client``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import start_new_kernel


@dataclass
class Execution:
    """What one cell produced, as a frontend would have received it."""

    status: str
    stdout: str = ""
    stderr: str = ""
    ename: str | None = None
    evalue: str | None = None
    traceback: list[str] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)
    payloads: list[dict[str, Any]] = field(default_factory=list)

    def data(self, mime: str) -> list[str]:
        """Every value of ``mime`` in display data and execute results, in order."""
        found = []
        for message in self.outputs:
            bundle = message.get("data") or {}
            if mime in bundle:
                found.append(bundle[mime])
        return found

    @property
    def plain(self) -> str:
        """All text/plain outputs joined (what nbval compares)."""
        return "\n".join(self.data("text/plain"))


class KernelSession:
    """One running kernel, with no API key and no base URL in its environment."""

    def __init__(self, cwd: Path, extra_env: dict[str, str] | None = None) -> None:
        env = {
            k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")
        }
        env.update(extra_env or {})
        self.manager, self.client = start_new_kernel(
            kernel_name="python3", cwd=str(cwd), env=env, startup_timeout=60
        )

    def run(self, code: str, timeout: float = 60, *, cell_id: str | None = None) -> Execution:
        """Execute ``code`` and wait until the kernel is idle again.

        ``cell_id``: sent as ``metadata.cellId`` of the execute request, as JupyterLab and
        Notebook 7 do for a notebook cell (ipykernel hands it to IPython's ``pre_run_cell``).
        """
        outputs: list[dict[str, Any]] = []
        streams = {"stdout": [], "stderr": []}
        error: dict[str, Any] = {}

        def hook(msg: dict[str, Any]) -> None:
            kind = msg["header"]["msg_type"]
            content = msg["content"]
            if kind == "stream":
                streams[content["name"]].append(content["text"])
            elif kind in ("display_data", "execute_result", "update_display_data"):
                outputs.append({"type": kind, **content})
            elif kind == "error":
                error.update(content)

        session = self.client.session
        build = session.msg
        if cell_id is not None:

            def with_cell_id(msg_type: str, content: Any = None, **kwargs: Any) -> Any:
                if msg_type == "execute_request":
                    kwargs["metadata"] = {**(kwargs.get("metadata") or {}), "cellId": cell_id}
                return build(msg_type, content, **kwargs)

            session.msg = with_cell_id
        try:
            reply = self.client.execute_interactive(
                code, timeout=timeout, output_hook=hook, allow_stdin=False
            )
        finally:
            session.msg = build
        content = reply["content"]
        return Execution(
            status=content["status"],
            stdout="".join(streams["stdout"]),
            stderr="".join(streams["stderr"]),
            ename=content.get("ename") or error.get("ename"),
            evalue=content.get("evalue") or error.get("evalue"),
            traceback=error.get("traceback", []),
            outputs=outputs,
            pages=[
                p.get("data", {}).get("text/plain", "")
                for p in content.get("payload", [])
                if p.get("source") == "page"
            ],
            payloads=content.get("payload", []),
        )

    def ok(self, code: str, timeout: float = 60, *, cell_id: str | None = None) -> Execution:
        """Execute ``code`` and fail the test with the kernel's traceback if it raised."""
        result = self.run(code, timeout=timeout, cell_id=cell_id)
        if result.status != "ok":
            raise AssertionError(
                f"cell failed: {result.ename}: {result.evalue}\n" + "\n".join(result.traceback)
            )
        return result

    def value(self, expression: str) -> Any:
        """Evaluate ``expression`` in the kernel and return it (via its JSON repr)."""
        result = self.ok(f"import json as _j; print(_j.dumps({expression}))")
        import json

        return json.loads(result.stdout.strip().splitlines()[-1])

    def close(self) -> None:
        """Shut the kernel down (never leave one running on a shared machine)."""
        try:
            self.client.stop_channels()
        finally:
            self.manager.shutdown_kernel(now=True)
