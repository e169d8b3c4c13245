"""Start a real JupyterLab / Jupyter Notebook 7 server for browser tests, and always stop it.

Everything the server writes (config, data, runtime, workspaces, user settings, IPython profile)
lives under one temporary folder, so a test run neither reads nor changes the user's Jupyter
setup. The server listens on 127.0.0.1 on a port the OS picks, with a random token. The kernel
it starts is this interpreter (``sys.executable``), so nbstream is importable in it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

App = Literal["lab", "notebook"]

# Environment variables that would make the kernel talk to a real provider or read the
# user's setup; tests pass the local server's URL explicitly.
_DROPPED_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID")


@dataclass
class JupyterServer:
    """A running Jupyter server: where it listens, how to authenticate, where its files live."""

    app: App
    base_url: str  # e.g. http://127.0.0.1:41234/
    token: str
    root_dir: Path
    process: subprocess.Popen
    log_path: Path
    home: Path
    _stopped: bool = field(default=False, repr=False)

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` on this server, with the token."""
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}{path.lstrip('/')}{sep}token={self.token}"

    def notebook_url(self, name: str) -> str:
        """The page that opens notebook ``name`` (relative to the root dir) in this app.

        In JupyterLab each notebook gets a workspace of its own: the default workspace would
        reopen every notebook of earlier tests next to it."""
        if self.app == "lab":
            workspace = "".join(c if c.isalnum() else "-" for c in name)
            return self.url(f"lab/workspaces/{workspace}/tree/{name}")
        return self.url(f"notebooks/{name}")

    def api(self, path: str, method: str = "GET") -> Any:
        """Call the server's REST API (``/api/...``) and decode the JSON answer."""
        request = urllib.request.Request(
            f"{self.base_url}{path.lstrip('/')}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def sessions(self) -> list[dict]:
        """The server's notebook sessions, each with its kernel's execution state."""
        return self.api("api/sessions")

    def kernel_for(self, notebook: str) -> dict | None:
        """The kernel (``execution_state``, ``connections``) of ``notebook``'s session."""
        for session in self.sessions():
            if session.get("path") == notebook:
                return session.get("kernel")
        return None

    def shutdown_kernels(self) -> None:
        """Shut down every kernel, so the next test starts from a quiet server."""
        for session in self.sessions():
            with contextlib.suppress(urllib.error.URLError):
                self.api(f"api/sessions/{session['id']}", method="DELETE")

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log, to explain a failure."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        """Stop the server and everything it started: SIGTERM, then SIGKILL to its process group."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        # The server runs in its own session: this reaches kernels it left behind, and only them.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def prepare_home(home: Path) -> dict[str, str]:
    """Create the throwaway Jupyter dirs under ``home`` and return the server's environment."""
    dirs = {
        "JUPYTER_CONFIG_DIR": home / "config",
        "JUPYTER_DATA_DIR": home / "data",
        "JUPYTER_RUNTIME_DIR": home / "runtime",
        "JUPYTERLAB_SETTINGS_DIR": home / "user-settings",
        "JUPYTERLAB_WORKSPACES_DIR": home / "workspaces",
        "IPYTHONDIR": home / "ipython",
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)

    # No news pop-up, no update check: they cover the notebook and fetch from the internet.
    notification = dirs["JUPYTERLAB_SETTINGS_DIR"] / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True, exist_ok=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )

    # Every cell stays rendered (no virtual scrolling): text of cells out of view stays readable.
    tracker = dirs["JUPYTERLAB_SETTINGS_DIR"] / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True, exist_ok=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))

    # The kernel must be this interpreter, where nbstream is installed: a kernelspec in the
    # throwaway data dir takes precedence over any other "python3".
    kernel_dir = dirs["JUPYTER_DATA_DIR"] / "kernels" / "python3"
    kernel_dir.mkdir(parents=True, exist_ok=True)
    (kernel_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "metadata": {"debugger": False},
            }
        )
    )

    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env.update({k: str(v) for k, v in dirs.items()})
    env["PYTHONUNBUFFERED"] = "1"
    # The venv's scripts first, as when the venv is activated.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def start_jupyter(
    app: App,
    home: Path,
    timeout: float = 90.0,
    disabled_extensions: tuple[str, ...] = (),
    extra_env: dict[str, str] | None = None,
) -> JupyterServer:
    """Start ``jupyter lab`` or ``jupyter notebook`` under ``home`` and wait until it answers.

    ``disabled_extensions``: frontend extensions turned off as ``jupyter labextension disable``
    does it (``labconfig/page_config.json`` in the throwaway config dir), e.g. the widget
    manager, to see what a person without it sees. ``extra_env``: variables for the server and
    its kernels on top of the cleaned environment (the OpenAI variables are dropped from it, so
    tests get the bundled demo server: a benchmark that points kernels at its own server passes
    them here)."""
    env = prepare_home(home)
    env.update(extra_env or {})
    if disabled_extensions:
        labconfig = Path(env["JUPYTER_CONFIG_DIR"]) / "labconfig"
        labconfig.mkdir(parents=True, exist_ok=True)
        (labconfig / "page_config.json").write_text(
            json.dumps({"disabledExtensions": {name: True for name in disabled_extensions}})
        )
    root_dir = home / "root"
    root_dir.mkdir(exist_ok=True)
    token = secrets.token_hex(16)
    module = "jupyterlab" if app == "lab" else "notebook"
    app_class = "LabApp" if app == "lab" else "JupyterNotebookApp"
    command = [
        sys.executable,
        "-m",
        module,
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        "--port=0",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        f"--{app_class}.news_url=None",
        f"--{app_class}.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--MappingKernelManager.default_kernel_name=python3",
        # Not needed here and slow to start: language servers.
        "--ServerApp.jpserver_extensions=jupyter_lsp=False",
    ]
    log_path = home / f"jupyter-{app}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        command,
        cwd=root_dir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    server = JupyterServer(
        app=app,
        base_url="",
        token=token,
        root_dir=root_dir,
        process=process,
        log_path=log_path,
        home=home,
    )
    try:
        server.base_url = _wait_until_answering(server, home / "runtime", timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_answering(server: JupyterServer, runtime_dir: Path, timeout: float) -> str:
    """Read the port from the server's info file, then poll ``/api/status`` until it answers."""
    deadline = time.monotonic() + timeout
    info_file = runtime_dir / f"jpserver-{server.process.pid}.json"
    base_url = ""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"jupyter {server.app} exited with code {server.process.returncode}:\n"
                f"{server.log_tail()}"
            )
        if not base_url and info_file.exists():
            try:
                info = json.loads(info_file.read_text())
                base_url = f"http://127.0.0.1:{info['port']}{info.get('base_url', '/')}"
            except (ValueError, KeyError):
                base_url = ""
        if base_url:
            server.base_url = base_url
            try:
                server.api("api/status")
                return base_url
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
        time.sleep(0.2)
    raise TimeoutError(
        f"jupyter {server.app} did not answer within {timeout:.0f} s:\n{server.log_tail()}"
    )


def set_lab_setting(server: JupyterServer, plugin: str, settings: dict) -> None:
    """Write a JupyterLab user setting through the server's settings API (takes effect on the
    next page load)."""
    request = urllib.request.Request(
        f"{server.base_url}lab/api/settings/{plugin}",
        method="PUT",
        data=json.dumps({"raw": json.dumps(settings)}).encode(),
        headers={"Authorization": f"token {server.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
