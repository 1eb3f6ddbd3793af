"""A headless Chromium driven over the DevTools protocol (CDP): open a page, screenshot it.

For the viewer's end-to-end test and README screenshots; needs Debian's ``chromium`` (or any
Chrome) binary. Flags per the machine notes: no sandbox (root), no GPU (WebGL through
SwiftShader), no background networking (the closed network refuses it).
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from PIL import Image
from websockets.sync.client import ClientConnection, connect

from splatent_viewer.errors import SplatentError

BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--mute-audio",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary on PATH, or None."""
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


class HeadlessChromium:
    """One headless browser with one page; use as a context manager."""

    def __init__(
        self, *, width: int = 960, height: int = 640, binary: str | None = None, timeout: float = 30.0
    ) -> None:
        binary = binary or find_chromium()
        if binary is None:
            raise SplatentError(
                f"No Chromium found (tried {', '.join(BINARIES)}); on Debian: apt-get install chromium."
            )
        self._profile = Path(tempfile.mkdtemp(prefix="splatent-chromium-"))
        self._proc = subprocess.Popen(
            [
                binary,
                *FLAGS,
                "--remote-debugging-port=0",
                f"--user-data-dir={self._profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._ids = itertools.count(1)
        self._call_lock = threading.Lock()
        self._ws: ClientConnection | None = None
        self._stack = ExitStack()
        try:
            port = self._wait_port(timeout)
            self._ws = self._stack.enter_context(
                connect(self._page_ws_url(port, timeout), max_size=64 * 2**20, open_timeout=timeout)
            )
            self.call("Page.enable")
            self.call(
                "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
            )
        except Exception:
            self.close()
            raise

    def _wait_port(self, timeout: float) -> int:
        marker = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise SplatentError(f"Chromium exited with code {self._proc.returncode} before opening its debug port.")
            if marker.is_file():
                lines = marker.read_text().splitlines()
                if lines and lines[0].strip().isdigit():
                    return int(lines[0])
            time.sleep(0.05)
        raise SplatentError(f"Chromium did not open its debug port within {timeout:.0f} s.")

    @staticmethod
    def _page_ws_url(port: int, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.05)
        raise SplatentError("Chromium has no page target.")

    def call(self, method: str, *, timeout: float = 30.0, **params: object) -> dict:
        """Sends one CDP command and returns its result (events in between are dropped). Thread-safe: one command
        at a time (e.g. a thread driving the mouse while another reads the page)."""
        with self._call_lock:
            assert self._ws is not None
            msg_id = next(self._ids)
            self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
            deadline = time.monotonic() + timeout
            while True:
                reply = json.loads(self._ws.recv(timeout=max(0.01, deadline - time.monotonic())))
                if reply.get("id") == msg_id:
                    if "error" in reply:
                        raise SplatentError(f"CDP {method} failed: {reply['error']}")
                    return reply.get("result", {})

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> object:
        """Value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def screenshot(self) -> np.ndarray:
        """The page as ``uint8`` HxWx3."""
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    def kill(self) -> None:
        """Ends the browser abruptly (SIGKILL), as a crash or a killed tab would: its connections drop without a
        goodbye. :meth:`close` still cleans up afterwards."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def close(self) -> None:
        """Closes the connection, ends the browser process (only ours) and removes its profile."""
        try:
            self._stack.close()
        except Exception:  # noqa: BLE001 - the browser may be gone already; closing anyway
            pass
        self._ws = None
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> HeadlessChromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
