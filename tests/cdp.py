"""Headless Chromium driven over the DevTools protocol, for the browser tests.

Why the protocol itself: playwright would download a browser build of its own (not possible here,
and not the Debian ``chromium`` we test against) and selenium needs chromedriver plus a package;
both speak this protocol underneath. Chromium's ``--remote-debugging-port`` gives a WebSocket,
and aiohttp (a legrep dependency) has a WebSocket client, so a small client is enough: commands
with ids, replies matched by id, events collected.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import aiohttp  # (imported when a browser starts: 0.2 s of every test process's collection otherwise)

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--hide-scrollbars",
    "--disable-extensions", "--disable-default-apps", "--mute-audio",
]  # fmt: skip


def chromium_binary() -> str:
    """The Debian ``chromium`` (installed by .ci/run); skip when absent (never installed from here)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("headless Chromium missing (Debian package `chromium`; .ci/run installs it)")


START_TIMEOUT_S = 120.0
"""How long Chromium may take to listen: a bound that tells "starts" from "hangs" (~0.3 s idle,
seconds on a loaded machine)."""


class Browser:
    """One headless Chromium with a fresh profile; ``async with Browser() as b: page = await b.page()``."""

    def __init__(self, width: int = 390, height: int = 844) -> None:
        self.width, self.height = width, height
        self.proc: subprocess.Popen[str] | None = None
        self.profile = tempfile.TemporaryDirectory(prefix="legrep-chromium-", ignore_cleanup_errors=True)
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "Browser":
        binary = chromium_binary()
        args = [binary, *FLAGS, f"--user-data-dir={self.profile.name}", "--remote-debugging-port=0",
                f"--window-size={self.width},{self.height}", "about:blank"]  # fmt: skip
        # Its own process group: closing kills the renderer and helper processes too, so none is
        # still writing into the profile while it is removed.
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            port = await self._listening_port()
        except BaseException:
            await self.__aexit__()
            raise
        import aiohttp

        self.session = aiohttp.ClientSession()
        self.http = f"http://127.0.0.1:{port}"
        return self

    async def _listening_port(self) -> int:
        """The DevTools port, from the line Chromium prints on stderr once it listens ("DevTools
        listening on ws://127.0.0.1:PORT/..."): read as it comes, no polling for its port file."""
        assert self.proc is not None and self.proc.stderr is not None
        said: list[str] = []
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while True:
                    line = await asyncio.to_thread(self.proc.stderr.readline)
                    if not line:  # (stderr closed: Chromium exited)
                        raise RuntimeError(f"chromium exited {self.proc.wait()} before listening: {''.join(said)[-2000:]}")
                    said.append(line)
                    m = re.search(r"DevTools listening on ws://[^:/]+:(\d+)/", line)
                    if m:
                        return int(m.group(1))
        except TimeoutError:
            raise RuntimeError(f"chromium not listening after {START_TIMEOUT_S:g} s: {''.join(said)[-2000:]}") from None

    async def page(self) -> "Page":
        assert self.session is not None
        for _ in range(100):
            async with self.session.get(f"{self.http}/json/list") as resp:
                targets = await resp.json()
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                break
            await asyncio.sleep(0.05)
        ws = await self.session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        page = Page(ws)
        await page.start()
        await page.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height, deviceScaleFactor=1, mobile=True)
        return page

    async def __aexit__(self, *exc: Any) -> None:
        if self.session is not None:
            await self.session.close()
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            if self.proc.stderr is not None:
                self.proc.stderr.close()
        self.profile.cleanup()


class Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._id = 0
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._read())
        await self.send("Network.enable")
        await self.send("Page.enable")
        await self.send("Runtime.enable")

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data and data["id"] in self._waiting:
                fut = self._waiting.pop(data["id"])
                if "error" in data:
                    fut.set_exception(RuntimeError(f"DevTools error: {data['error']}"))
                else:
                    fut.set_result(data.get("result", {}))
            elif "method" in data:
                self.events.append(data)

    async def send(self, method: str, **params: Any) -> Any:
        self._id += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[self._id] = fut
        await self.ws.send_str(json.dumps({"id": self._id, "method": method, "params": params}))
        return await asyncio.wait_for(fut, 30)

    async def goto(self, url: str) -> None:
        """Navigate and wait until the new document has its root element (Page.navigate returns once
        the navigation commits: a script run at once could meet a document still without one)."""
        await self.send("Page.navigate", url=url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30.0
        probe = f"location.href === {json.dumps(url)} && document.readyState !== 'loading' && document.documentElement !== null"
        while loop.time() < deadline:
            result = await self.send("Runtime.evaluate", expression=probe, returnByValue=True)
            if result.get("result", {}).get("value") is True:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{url} did not load within 30 s")

    async def eval(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))

    def requested_urls(self) -> list[str]:
        """Every URL the page asked the network for (documents, scripts, images, event streams...)."""
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def statuses(self) -> dict[str, int]:
        return {
            e["params"]["response"]["url"]: int(e["params"]["response"]["status"])
            for e in self.events
            if e["method"] == "Network.responseReceived"
        }


def read_url(line_source: Any, timeout_s: float = 60.0) -> str:
    """The page URL from a ``legrep ... --web`` process's output (``legrep web: live page at URL``)."""
    import time

    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        line = line_source.readline()
        if not line:
            break
        seen.append(line)
        m = re.search(r"live page at (http://\S+)", line)
        if m:
            return m.group(1)
    raise AssertionError(f"no page URL printed; output was: {''.join(seen)[-2000:]}")


__all__ = ["Browser", "Page", "chromium_binary", "read_url", "os"]
