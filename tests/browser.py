"""Headless chromium over the Chrome DevTools protocol, for the tests that look at a page: the human
evaluation page and the MLflow UI. A websocket client of the system's ``chromium`` (Debian's package;
Playwright's own browser download does not work here)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

NO_BROWSER = "no chromium: apt-get install -y chromium (.ci/run installs it)"

KEYS = {"1": ("Digit1", 49), "2": ("Digit2", 50), "3": ("Digit3", 51), "Enter": ("Enter", 13)}
KEYS |= {
    k: (k, code) for k, code in (("ArrowLeft", 37), ("ArrowUp", 38), ("ArrowRight", 39), ("ArrowDown", 40))
}


class Chromium:
    """Headless chromium over the DevTools protocol: open tabs, run JavaScript, click, press keys."""

    def __init__(self, workdir: Path, ready: str = "true"):
        from websockets.sync.client import connect

        self.ready = ready  # JavaScript that is true once a page is ready
        self.downloads = workdir / "downloads"
        self.downloads.mkdir(parents=True)
        args = [shutil.which("chromium"), "--headless", "--disable-gpu", "--no-first-run"]
        args += [
            f"--user-data-dir={workdir / 'profile'}",
            "--remote-debugging-port=0",
            "--window-size=1200,1000",
        ]
        args.append("about:blank")
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")
        log = workdir / "chromium.log"  # a file, not a pipe: chromium keeps logging and a full pipe blocks it
        with log.open("w") as handle:
            self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=handle)
        deadline = time.monotonic() + 60
        # "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID"
        while not (found := re.search(r"DevTools listening on (ws://\S+)", log.read_text())):
            assert self.process.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.05)
        self.socket, self.calls = connect(found.group(1), max_size=None, open_timeout=60), 0
        self.send("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(self.downloads)})

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.calls += 1
        message = {"id": self.calls, "method": method, "params": params or {}}
        self.socket.send(json.dumps(message | ({"sessionId": session} if session else {})))
        while True:  # events and other replies are skipped
            reply = json.loads(self.socket.recv(timeout=60))
            if reply.get("id") == self.calls:
                assert "error" not in reply, f"{method}: {reply.get('error')}"
                return reply["result"]

    def open(self, url: str) -> Tab:
        target = self.send("Target.createTarget", {"url": url})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        return Tab(self, target, session)

    def close(self) -> None:
        self.send("Browser.close")
        self.socket.close()
        self.process.wait(timeout=60)


class Tab:
    def __init__(self, browser: Chromium, target: str, session: str):
        self.browser, self.target, self.session = browser, target, session
        self.wait_ready()

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.session)

    def js(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def text(self, element: str) -> str:
        return self.js(f"document.getElementById({json.dumps(element)}).textContent")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        probe = f"document.readyState === 'complete' && Boolean({self.browser.ready})"
        while not self.js(probe):
            assert time.monotonic() < deadline, "the page did not load"
            time.sleep(0.05)

    def click(self, selector: str) -> None:
        x, y = self.js(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}
            )

    def press(self, key: str) -> None:
        code, virtual = KEYS[key]
        down = {"type": "keyDown", "key": key, "code": code, "windowsVirtualKeyCode": virtual}
        self.send("Input.dispatchKeyEvent", down | ({"text": key} if len(key) == 1 else {}))
        self.send("Input.dispatchKeyEvent", down | {"type": "keyUp"})

    def reload(self) -> None:
        self.send("Page.reload")
        time.sleep(0.2)
        self.wait_ready()

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target})

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def wait_for(self, expression: str, timeout: float = 60) -> None:
        """Wait until the JavaScript ``expression`` is true (an AssertionError after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        guarded = f"(() => {{ try {{ return Boolean({expression}); }} catch (e) {{ return false; }} }})()"
        while not self.js(guarded):  # (a page still loading may have no body yet)
            assert time.monotonic() < deadline, f"not true after {timeout:.0f} s: {expression}"
            time.sleep(0.2)


def have_chromium() -> bool:
    return shutil.which("chromium") is not None
