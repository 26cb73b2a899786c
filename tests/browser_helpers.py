"""Helpers for ``tests/test_browser.py``: a throwaway JupyterLab server and Playwright steps.

The server runs from the project's virtualenv with its own config, data,
runtime, settings and workspace directories, so nothing from the user's
``~/.jupyter`` leaks in, while the venv's ``share/jupyter`` (where nbgrader's
lab extension and the ``python3`` kernel live) stays on the search path
(``jupyter_path()`` always includes ``sys.prefix/share/jupyter``).

The frontend is driven through ``window.jupyterapp`` (exposed with
``--LabApp.expose_app_in_browser=True``), as JupyterLab's own Galata tests do:
commands and kernel state come from the application, while every assertion
is made on what the page actually renders.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.prefix) / "bin" if (Path(sys.prefix) / "bin" / "jupyter").exists() else REPO / ".venv" / "bin"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts" / "browser"

#: User settings written before the server starts: no news/update requests and no "fetch news?" toast
#: covering the screenshots.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def log(msg: str, t0: float | None = None) -> None:
    """One timing line on stdout (shown with ``pytest -s``)."""
    suffix = "" if t0 is None else f" ({time.monotonic() - t0:.1f}s)"
    print(f"[browser] {msg}{suffix}", flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    """``jupyter lab`` serving ``root`` on localhost, started with :meth:`start`, stopped with :meth:`stop`."""

    root: Path
    state: Path
    port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_hex(24))
    proc: subprocess.Popen | None = None
    #: More environment (a student's USER, the exchange), and a folder whose files seed the Jupyter
    #: config dir (a student's view of nbgrader, as ``make lab`` sets it up).
    extra_env: dict[str, str] = field(default_factory=dict)
    config_seed: Path | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.state / "jupyter-lab.log"

    def url(self, path: str, **query: str) -> str:
        params = "&".join([f"token={self.token}", *(f"{k}={v}" if v else k for k, v in query.items())])
        return f"{self.base}/{path.lstrip('/')}?{params}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        dirs = {
            "JUPYTER_CONFIG_DIR": "config",
            "JUPYTER_DATA_DIR": "data",
            "JUPYTER_RUNTIME_DIR": "runtime",
            "JUPYTERLAB_SETTINGS_DIR": "lab-settings",
            "JUPYTERLAB_WORKSPACES_DIR": "lab-workspaces",
            "IPYTHONDIR": "ipython",
            "MPLCONFIGDIR": "matplotlib",
        }
        for var, name in dirs.items():
            (self.state / name).mkdir(parents=True, exist_ok=True)
            env[var] = str(self.state / name)
        env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
        env["VIRTUAL_ENV"] = str(VENV_BIN.parent)
        env.pop("JUPYTER_PREFER_ENV_PATH", None)
        env.update(self.extra_env)
        return env

    def write_settings(self) -> None:
        for rel, value in LAB_SETTINGS.items():
            path = self.state / "lab-settings" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value, indent=2))

    def command(self) -> list[str]:
        return [
            str(VENV_BIN / "jupyter"), "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.allow_root=True",
            "--ServerApp.open_browser=False",
            "--LabApp.expose_app_in_browser=True",
        ]

    def start(self, timeout: float = 60.0) -> None:
        env = self.env()
        if self.config_seed is not None:
            import shutil

            shutil.copytree(self.config_seed, self.state / "config", dirs_exist_ok=True)
        self.write_settings()
        with open(self.log_path, "wb") as out:
            # cwd = root: nbgrader's validate handler loads nbgrader_config.py from the server's cwd,
            # so the course's grader config in the repository root stays out of it (as for a student).
            self.proc = subprocess.Popen(self.command(), cwd=self.root, env=env, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=2) as resp:
                    if resp.status == 200:
                        json.load(resp)
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter lab did not answer /api/status in {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.25)

    def page_config(self) -> dict:
        """The ``jupyter-config-data`` JSON embedded in ``/lab``."""
        with urllib.request.urlopen(self.url("lab"), timeout=10) as resp:
            html = resp.read().decode()
        start = html.index('id="jupyter-config-data"')
        start = html.index(">", start) + 1
        end = html.index("</script>", start)
        return json.loads(html[start:end])

    def stop(self) -> None:
        """Stop the server, then any kernel it left behind.

        On SIGTERM the server shuts its kernels down itself. Kernels run in sessions of their own
        (jupyter_client starts them with ``start_new_session``), so stragglers are found by their
        connection file, which lives in this server's private runtime directory.
        """
        if self.proc is not None and self.proc.poll() is None:
            pgid = self.proc.pid  # start_new_session: the server leads its own process group
            try:
                os.killpg(pgid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                self.proc.wait(timeout=5)
            except ProcessLookupError:
                pass
        for pid in self._kernel_pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def _kernel_pids(self) -> list[int]:
        marker = str(self.state / "runtime").encode()
        pids = []
        for proc_dir in Path("/proc").glob("[0-9]*"):
            try:
                if marker in (proc_dir / "cmdline").read_bytes():
                    pids.append(int(proc_dir.name))
            except OSError:
                continue
        return pids

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


# --------------------------------------------------------------------------- page steps

#: Finds the notebook panel of a document path among the main-area widgets.
_PANEL_JS = """
(path) => {
  const app = window.jupyterapp;
  if (!app || !app.shell) return null;
  for (const w of app.shell.widgets('main')) {
    if (w.context && w.context.path === path && w.content && w.content.model) return w;
  }
  return null;
}
"""

_KERNEL_IDLE_JS = f"""
(path) => {{
  const panel = ({_PANEL_JS})(path);
  if (!panel || !panel.context.isReady) return false;
  const s = panel.sessionContext;
  const kernel = s && s.session && s.session.kernel;
  return Boolean(s.isReady && kernel && kernel.status === 'idle' && kernel.connectionStatus === 'connected');
}}
"""

_PANEL_ID_JS = f"(path) => ({_PANEL_JS})(path).id"

#: Starts Run All Cells; ``window.__runAllDone`` turns true once every execution has replied or been
#: aborted (Run All stops at the first error). Not awaited here: ``page.evaluate`` has no timeout.
_RUN_ALL_JS = f"""
(path) => {{
  const app = window.jupyterapp;
  const panel = ({_PANEL_JS})(path);
  app.shell.activateById(panel.id);
  window.__runAllDone = false;
  window.__runAllError = null;
  app.commands.execute('notebook:run-all-cells').then(
    () => {{ window.__runAllDone = true; }},
    (err) => {{ window.__runAllError = String(err); window.__runAllDone = true; }});
}}
"""

#: JupyterLab attaches cells to the DOM progressively (windowing), so "rendered" means every cell of the
#: model has its node in the panel.
_ALL_ATTACHED_JS = f"""
([path, panelSel]) => {{
  const panel = ({_PANEL_JS})(path);
  if (!panel) return false;
  return document.querySelectorAll(panelSel + ' .jp-Notebook .jp-Cell').length === panel.content.model.cells.length;
}}
"""

#: Kernel idle, no code cell running or queued (model and rendered prompts), every cell attached.
_EXECUTION_DONE_JS = f"""
([path, panelSel]) => {{
  if (!({_KERNEL_IDLE_JS})(path) || !({_ALL_ATTACHED_JS})([path, panelSel])) return false;
  const panel = ({_PANEL_JS})(path);
  const busy = [...panel.content.model.cells].filter(c => c.type === 'code' && c.executionState === 'running');
  const prompts = [...document.querySelectorAll(panelSel + ' .jp-CodeCell .jp-InputArea-prompt')];
  return busy.length === 0 && prompts.every(p => !p.textContent.includes('*'));
}}
"""

_EXECUTED_COUNT_JS = f"""
(path) => [...({_PANEL_JS})(path).content.model.cells].filter(c => c.type === 'code' && c.executionCount).length
"""


def open_notebook(page: Page, server: LabServer, path: str, timeout_ms: float = 60_000) -> str:
    """Open ``lab/tree/<path>`` with a fresh workspace; return a CSS selector for its notebook panel."""
    page.goto(server.url(f"lab/tree/{path}", reset=""), wait_until="domcontentloaded")
    page.wait_for_function("() => Boolean(window.jupyterapp && window.jupyterapp.shell)", timeout=timeout_ms)
    page.wait_for_function(_KERNEL_IDLE_JS, arg=path, timeout=timeout_ms, polling=250)
    panel_sel = f'[id="{page.evaluate(_PANEL_ID_JS, path)}"]'
    page.wait_for_function(_ALL_ATTACHED_JS, arg=[path, panel_sel], timeout=timeout_ms, polling=250)
    return panel_sel


def run_all(page: Page, path: str, panel_sel: str, timeout_ms: float = 60_000) -> int:
    """Run All Cells, wait until no cell is queued or running and the kernel is idle; return how many ran."""
    page.evaluate(_RUN_ALL_JS, path)
    page.wait_for_function("() => window.__runAllDone === true", timeout=timeout_ms, polling=100)
    error = page.evaluate("() => window.__runAllError")
    if error:
        raise AssertionError(f"notebook:run-all-cells failed: {error}")
    # The command resolves at the first failing cell while later cells still run, and the kernel
    # reports idle between two queued requests: done means "done, and still done a moment later".
    deadline = time.monotonic() + timeout_ms / 1000
    count = -1
    while True:
        page.wait_for_function(_EXECUTION_DONE_JS, arg=[path, panel_sel], timeout=timeout_ms, polling=250)
        previous, count = count, page.evaluate(_EXECUTED_COUNT_JS, path)
        if count == previous or time.monotonic() > deadline:
            return count
        page.wait_for_timeout(1000)


def output_text(page: Page, panel_sel: str) -> str:
    """Text of every output area of the notebook (``textContent``, so off-screen cells count too)."""
    return page.eval_on_selector_all(
        f"{panel_sel} .jp-OutputArea-output", "els => els.map(e => e.textContent).join('\\n')"
    )


def markdown_images(page: Page, panel_sel: str) -> list[dict]:
    """Every ``<img>`` in rendered markdown whose src mentions ``images/``, scrolled into view and settled."""
    sel = f"{panel_sel} .jp-MarkdownCell .jp-RenderedMarkdown img"
    imgs = page.locator(sel)
    found = []
    for i in range(imgs.count()):
        img = imgs.nth(i)
        src = img.get_attribute("src") or ""
        if "images/" not in src:
            continue
        # Plain scrollIntoView: Playwright's version waits for visibility, which a broken image never gets.
        img.evaluate("im => im.scrollIntoView({block: 'center'})")
        # Wait for the load to finish either way; naturalWidth tells success from failure.
        img.evaluate("""im => im.complete ? true : new Promise(r => {
            im.addEventListener('load', () => r(true), {once: true});
            im.addEventListener('error', () => r(false), {once: true});
            setTimeout(() => r(false), 15000);
        })""")
        found.append(img.evaluate("im => ({src: im.getAttribute('src'), naturalWidth: im.naturalWidth,"
                                  " naturalHeight: im.naturalHeight})"))
    return found


def scroll_to(locator: Locator) -> None:
    """Bring an element to the top of the notebook's scroller (works with content-visibility windowing)."""
    locator.evaluate("el => el.scrollIntoView({block: 'start'})")
    locator.page.wait_for_timeout(300)


def screenshot(page: Page, name: str, **kwargs) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), **kwargs)
    return path

