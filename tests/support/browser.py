"""A headless Chromium for tests and benchmarks of the explorer: Debian's ``chromium`` driven by
playwright-core (``explorer/tests/driver.mjs``), one JSON command and answer a line. The one
launcher of browsers for every test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests.support.procs import REPO

DRIVER = REPO / "explorer" / "tests" / "driver.mjs"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))


def missing() -> str | None:
    """Why a browser cannot start here (what scripts/install.sh installs), or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: scripts/install.sh installs Debian's chromium (apt-get install chromium)"
    if not (REPO / "explorer" / "node_modules" / "playwright-core").is_dir():
        return "explorer/node_modules lacks playwright-core: run scripts/install.sh (npm ci --prefix explorer)"
    if shutil.which("node") is None:
        return "node is not on PATH"
    return None


class BrowserError(RuntimeError):
    """The driver refused a command (a timeout, a missing element)."""


class Browser:
    """One page in a headless Chromium; every method is one command to the driver."""

    def __init__(self, timeout_ms: int = 15000) -> None:
        why = missing()
        if why:
            raise RuntimeError(f"cannot start a browser: {why}")
        env = {**os.environ, "CHROMIUM": str(CHROMIUM), "EXPLORER_TIMEOUT_MS": str(timeout_ms)}
        # stderr to a file: a pipe nobody reads could fill and stall the driver.
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(["node", str(DRIVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, env=env, cwd=REPO / "explorer",
                                     start_new_session=True)
        hello = self._read()
        self.version = hello.get("version")

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.stderr.seek(0)
            err = self.stderr.read()
            raise RuntimeError(f"the browser driver exited: {err[-3000:]}")
        return dict(json.loads(line))

    def command(self, op: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        if not answer.get("ok"):
            raise BrowserError(f"{op} {args}: {answer.get('error')}")
        return answer

    def open(self, url: str, ready: bool = True) -> dict[str, Any]:
        """Load ``url``; with ``ready``, wait until the page marks itself ready. Returns
        ``readyMs`` (navigation start to ready, the page's own clock) and ``wallMs``."""
        return self.command("open", url=url, ready=ready)

    def go(self, path: str) -> dict[str, Any]:
        """Navigate inside the app (no reload) and wait until the new page is ready."""
        return self.command("go", path=path)

    def wait(self, selector: str, timeout_ms: int | None = None) -> None:
        self.command("wait", selector=selector, **({"timeout": timeout_ms} if timeout_ms else {}))

    def eval(self, js: str) -> Any:
        return self.command("eval", js=js)["value"]

    def click(self, selector: str) -> None:
        self.command("click", selector=selector)

    def fill(self, selector: str, text: str, enter: bool = False) -> None:
        self.command("fill", selector=selector, text=text, enter=enter)

    def screenshot(self, path: Path, full: bool = False) -> None:
        self.command("screenshot", path=str(path), full=full)

    def messages(self) -> list[dict[str, str]]:
        """Console errors and warnings, page errors and failed requests since the last call."""
        return list(self.command("messages")["messages"])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.command("close")
            except (BrowserError, RuntimeError, BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
