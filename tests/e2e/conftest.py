"""End-to-end tests in a real JupyterLab driven through headless Chromium (Playwright).

Chromium comes from Debian (`apt-get install -y chromium chromium-driver`), never from
`playwright install` (no downloads here). A missing Chromium FAILS these tests with the
install command, unless RLHF_LAB_SKIP_E2E=1 says to skip them on purpose.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("RLHF_LAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]


def require_chromium() -> str:
    """Chromium's path. Call it first in a browser test's body, so that a missing Chromium is a
    test FAILURE (not a skip, not a fixture error), unless RLHF_LAB_SKIP_E2E=1."""
    if os.environ.get("RLHF_LAB_SKIP_E2E") == "1":
        pytest.skip("RLHF_LAB_SKIP_E2E=1: browser tests skipped on purpose")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}, so the browser test cannot run. Install it with "
            f"`apt-get update && apt-get install -y chromium chromium-driver` (not `playwright install`), "
            f"or set RLHF_LAB_SKIP_E2E=1 to skip the browser tests on purpose.",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture
def chromium_path() -> str:
    return require_chromium()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SHIPPED_LAB_SETTINGS = Path(__file__).resolve().parents[2] / "jupyter" / "overrides.json"
INSTALLED_LAB_SETTINGS = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"


def require_course_lab_settings() -> None:
    """The course's JupyterLab settings must be installed in this environment (course.sh setup does it)."""
    if not (INSTALLED_LAB_SETTINGS.exists()
            and json.loads(INSTALLED_LAB_SETTINGS.read_text()) == json.loads(SHIPPED_LAB_SETTINGS.read_text())):
        pytest.fail(f"{INSTALLED_LAB_SETTINGS} is missing or differs from {SHIPPED_LAB_SETTINGS}: run "
                    f"`bash course.sh setup` (it installs the course's JupyterLab settings).", pytrace=False)


class JupyterLabServer:
    """A JupyterLab server on a free port with a random token, rooted at `root`."""

    def __init__(self, root: Path, state_dir: Path):
        self.root = root
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.base_url = f"http://127.0.0.1:{self.port}"
        # A fresh learner: empty user settings and workspaces. No news pop-up and no update
        # check come from the course's own overrides.json in the environment (course.sh setup).
        settings = state_dir / "lab-settings"
        settings.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ,
                   JUPYTERLAB_SETTINGS_DIR=str(settings),
                   JUPYTERLAB_WORKSPACES_DIR=str(state_dir / "lab-workspaces"),
                   JUPYTER_RUNTIME_DIR=str(state_dir / "runtime"),
                   PYTHONUNBUFFERED="1")
        env.pop("RLHF_LAB_AUTOLABEL", None)  # a learner's session: no scripted labeller in the kernel
        self.log_path = state_dir / "jupyter.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
             "--ip", "127.0.0.1", "--port", str(self.port), "--ServerApp.port_retries=0",
             f"--ServerApp.token={self.token}", f"--ServerApp.root_dir={root}"],
            cwd=root, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )

    def wait_until_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/api/status?token={self.token}", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log()}")

    def url(self, notebook_name: str) -> str:
        return f"{self.base_url}/lab/tree/{notebook_name}?reset&token={self.token}"

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """Stop the server by its PID (it shuts its kernels down); SIGKILL if it hangs."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self._log.close()


@pytest.fixture
def jupyter_workdir(tmp_path) -> Path:
    workdir = tmp_path / "lab"
    workdir.mkdir()
    return workdir


@pytest.fixture
def jupyterlab(jupyter_workdir, tmp_path, chromium_path):
    require_course_lab_settings()
    server = JupyterLabServer(jupyter_workdir, tmp_path / "jupyter-state")
    try:
        server.wait_until_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser_page(chromium_path, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium_path,
            args=CHROMIUM_FLAGS,  # Playwright gives each launch a fresh temporary profile
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            yield page
        finally:
            browser.close()
