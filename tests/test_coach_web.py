"""The phone page in a real headless Chromium against the running demo (``legrep demo --web``).

The demo streams the bundled session through the BLE stack in a child process, bound beyond
loopback (0.0.0.0) so the token is required; the browser (DevTools protocol, see tests/cdp.py)
opens the page at a phone's width and reads the DOM while the demo streams.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from cdp import Browser, chromium_binary, read_url
from legrep.commands.demo import RECORDINGS_DIR
from legrep.coach.web import parse_web_address
from legrep.errors import InputError

REPO = Path(__file__).resolve().parents[1]
WEB_SPEED = 32
"""The demo's speed: its session streams in ~4 s, the page sampled every 50 ms."""
SESSION = "bent_knee_raise"
"""The shorter bundled session (116 s: two sets of 8 reps per leg, one leg after the other, then
alternating); every state the page is checked for (counts rising, a raised angle, reps to go,
the balance, the end) comes in its first set, the longer default session only adds more of it."""
END_BOUND_S = 90.0
"""The demo must have exited this long after the page opened, the page open throughout (a bound
that tells "ends" from "hangs", no speed figure: ~6 s idle, ~20 s on a loaded machine)."""
TRUTH = RECORDINGS_DIR / SESSION / "truth.json"

STATE_JS = """(() => {
  const t = (id) => { const e = document.getElementById(id); return e ? e.textContent : null; };
  const n = document.getElementById('needle-left');
  return {left: t('count-left'), right: t('count-right'), angle_left: t('angle-left'), angle_right: t('angle-right'),
          remain_left: t('remain-left'), set: t('set'), balance: t('balance'), last_left: t('last-left'),
          needle: n ? n.getAttribute('x2') + ',' + n.getAttribute('y2') : null,
          scroll: document.documentElement.scrollWidth, view: document.documentElement.clientWidth,
          log: window.legrepLog ? window.legrepLog.length : 0,
          small: [...document.querySelectorAll('body *')].filter(e => e.childNodes.length && [...e.childNodes].some(c => c.nodeType === 3 && c.textContent.trim())
                 && parseFloat(getComputedStyle(e).fontSize) < 11).length};
})()"""


END_JS = """new Promise((resolve) => {
  const status = document.getElementById('status');
  const read = () => {
    const log = window.legrepLog || [];
    resolve({status: status.textContent, last_ended: log.length ? log[log.length - 1].ended : null,
             stream: typeof es === 'undefined' ? null : ['connecting', 'open', 'closed'][es.readyState]});
  };
  const settled = () => requestAnimationFrame(() => requestAnimationFrame(read));  // (the log entry comes a frame after)
  if (status.textContent === 'session ended') { settled(); return; }
  const watch = new MutationObserver(() => { if (status.textContent === 'session ended') { watch.disconnect(); settled(); } });
  watch.observe(status, {childList: true, characterData: true, subtree: true});
  setTimeout(() => { watch.disconnect(); read(); }, 20000);  // (never ended: what it shows then)
})"""
"""What the page shows once the demo has exited, and the state of its ``EventSource`` (the page's
top-level ``es``), read when the page says the session ended (the last snapshot may still be on
its way to the page when the demo exits; at most 20 s): "closed" only when the page closed the
stream itself, as it must on the session's end (a stream the server ends is "connecting" again,
the browser retrying after the 1 s ``retry``)."""


def status_of(url: str, method: str = "GET") -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as resp:
            if "/events" in url:
                resp.read(10)  # the stream is open: that is enough
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.skipif(not TRUTH.exists(), reason="bundled recordings not present")
def test_phone_page_follows_the_running_demo(tmp_path: Path) -> None:
    chromium_binary()
    cmd = [sys.executable, "-m", "legrep", "demo", "--session", SESSION, "--speed", str(WEB_SPEED), "--quiet",
           "--web", "0.0.0.0:0", "--reps-per-leg", "10", "--sets", "2"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        url = read_url(proc.stdout)
        m = re.match(r"http://[^/]+:(\d+)/\?token=([\w-]+)$", url)
        assert m, f"bound beyond loopback, the URL must carry a token: {url}"
        port, token = int(m.group(1)), m.group(2)
        base = f"http://127.0.0.1:{port}"
        # without the token (or with a wrong one) the page and its event stream are refused
        assert status_of(f"{base}/") == 403
        assert status_of(f"{base}/events") == 403
        assert status_of(f"{base}/?token={token[:-1]}x") == 403
        assert status_of(f"{base}/events?token=") == 403
        assert status_of(f"{base}/?token={token}") == 200
        # read-only: nothing but GET
        assert status_of(f"{base}/?token={token}", "POST") == 405
        assert status_of(f"{base}/events?token={token}", "PUT") == 405
        # the page stays open until the demo has exited: the demo must end anyway (it could hang)
        samples, urls, statuses, shot, end = asyncio.run(_watch(f"{base}/?token={token}", tmp_path / "page.png", proc))
    finally:
        try:
            out, err = proc.communicate(timeout=5 if proc.poll() is None else None)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    assert end["exited"], f"the demo did not end within {END_BOUND_S:g} s with its page open: {err[-2000:]}"
    assert proc.returncode == 0, err[-2000:]
    # the page got the session's last snapshot, closed its stream (it never reconnects) and says
    # it is over, the server gone
    assert end["last_ended"] and end["stream"] == "closed" and end["status"] == "session ended", end

    # the counts and the angle change while the demo streams
    lefts = [int(s["left"]) for s in samples if s["left"] is not None]
    rights = [int(s["right"]) for s in samples if s["right"] is not None]
    assert len(set(lefts)) >= 4, lefts  # the left count went up several times
    angles = [s["angle_left"] for s in samples if s["angle_left"] not in (None, "--")]
    values = [int(a.rstrip("°")) for a in angles]
    assert len(set(values)) >= 10 and max(values) >= 50 and min(values) <= 10, values
    assert len({s["needle"] for s in samples}) >= 10  # the gauge's needle moves too
    assert any(s["remain_left"] and "to go of 10" in s["remain_left"] for s in samples)
    assert any("normal" in (s["balance"] or "") for s in samples)  # left first is not a warning
    assert all(s["scroll"] <= s["view"] == 390 for s in samples)  # no sideways scrolling on a phone
    assert all(s["small"] == 0 for s in samples)  # no text under 11 px
    # nothing fetched from outside: every request went to the page's own origin
    assert urls and all(u.startswith(f"{base}/") for u in urls), urls
    assert statuses.get(f"{base}/?token={token}") == 200
    # the screenshot has the page drawn (dark background, light text, the green target zone)
    from PIL import Image

    with Image.open(shot) as img:
        rgb = np.asarray(img.convert("RGB"))
    assert rgb.shape[1] == 390
    green = (np.abs(rgb.astype(int) - np.array([0x2E, 0x7D, 0x4F])).sum(axis=2) < 40).sum()
    colours = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    assert green > 300 and np.unique(colours).size > 50  # distinct colours (np.unique of rows: 5x slower)
    if os.environ.get("LEGREP_UPDATE_SCREENSHOT"):
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, REPO / "docs" / "phone-page.png")


async def _watch(url: str, shot: Path, proc: subprocess.Popen) -> tuple[list[dict], list[str], dict[str, int], Path, dict]:  # type: ignore[type-arg]
    """The page's state every 50 ms while the demo runs, the page left open until the demo exits
    (or ``END_BOUND_S`` passed); then what the page shows after the end."""
    async with Browser(390, 844) as browser:
        page = await browser.page()
        await page.goto(url)
        samples = []
        took = False
        deadline = time.monotonic() + END_BOUND_S
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            state = await page.eval(STATE_JS)
            samples.append(state)
            try:
                raised = int((state["angle_left"] or "0").rstrip("°")) >= 45
            except ValueError:
                raised = False
            if not took and raised and state["left"] and int(state["left"]) >= 3 and state["last_left"] != "no rep yet":
                await page.screenshot(shot)
                took = True
        if not took:
            await page.screenshot(shot)
        exited = proc.poll() is not None
        # what it shows once the server is gone and the last snapshot is in; a stream still open
        # would be retrying (END_JS)
        end = await page.eval(END_JS)
        return samples, page.requested_urls(), page.statuses(), shot, {"exited": exited, **end}


def test_web_address_forms() -> None:
    assert (parse_web_address("8080").host, parse_web_address("8080").port) == ("127.0.0.1", 8080)
    a = parse_web_address("0.0.0.0:9000")
    assert (a.host, a.port, a.loopback) == ("0.0.0.0", 9000, False)
    assert parse_web_address("[::1]:80").loopback
    with pytest.raises(InputError, match=r"--web expects \[HOST:\]PORT, e.g. 8080 or 0.0.0.0:8080, got 'abc'"):
        parse_web_address("abc")
    with pytest.raises(InputError, match="--web port must be 0-65535, got 70000"):
        parse_web_address("70000")


def test_busy_port_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    from legrep.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        code = main(["demo", "--quiet", "--web", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"--web cannot listen on 127.0.0.1:{port}" in err[0]


def test_shutdown_ends_streams_of_pages_that_do_not_read() -> None:
    """Pages that take no bytes (a phone asleep) and one that reads: ``aclose`` ends every stream
    (the reader gets the last snapshot, then EOF) and stops serving, within a bound that tells
    "ends" from "hangs" (it hung before: nothing stopped the server before the loop ended)."""
    import socket

    from legrep.coach.web import WebAddress, WebPage

    request = b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n"

    async def go() -> tuple[bytes, int]:
        page = WebPage(WebAddress("127.0.0.1", 0))
        await page.start()
        stalled = []
        for _ in range(3):
            c = socket.create_connection(("127.0.0.1", page.port))
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.sendall(request)
            stalled.append(c)
        reader, writer = await asyncio.open_connection("127.0.0.1", page.port)
        writer.write(request)
        got = asyncio.ensure_future(reader.read())  # to EOF
        for i in range(30):  # ~6 MB per stream: the stalled ones fill their sockets
            page.publish({"i": i, "pad": "x" * 200_000})
            await asyncio.sleep(0.01)
        page.publish({"i": "last"})
        try:
            async with asyncio.timeout(30):
                await page.aclose()
                body = await got
        finally:
            writer.close()
            for c in stalled:
                c.close()
        return body, page.port

    body, port = asyncio.run(go())
    assert b'"i":"last"' in body[-200:], body[-200:]
    with pytest.raises(OSError):  # nothing listens any more
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
