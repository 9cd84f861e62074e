"""``--web [HOST:]PORT``: a read-only live page for a phone, served from the live loop itself.

Stack: aiohttp's server with server-sent events (SSE). The live loop is asyncio already, so the
server runs as tasks on the same loop (no second thread, no locks: a sink call only stores a
snapshot and wakes the client tasks). SSE fits a one-way stream of snapshots: the browser's
``EventSource`` reconnects by itself, it is plain HTTP (no upgrade), and the page needs nothing but
inline JS. starlette + uvicorn would bring its own server loop and more dependencies for the same
thing; a WebSocket's two-way channel is exactly what a read-only page must not have.

Access: bound to 127.0.0.1 by default. Bound to any other address, the page and its event stream
need ``?token=...`` (``secrets.token_urlsafe``, printed with the URL); without it: 403. Only GET
routes exist (``/`` and ``/events``): nothing can start, stop or change the session from the page.
The page loads nothing from the network (a Content-Security-Policy header makes the browser
enforce it).

Shutdown is bounded whatever the pages do (open, reconnecting, not reading): :meth:`WebPage.aclose`
must be awaited on the session's loop before it ends (``legrep.commands._session.with_sinks``); it
ends every stream (their connections are not kept alive), answers any later ``/events`` with 204
(an ``EventSource`` stops reconnecting on it), cuts the connection of a stream not ended within
``SHUTDOWN_S`` (a page that takes no bytes) and gives aiohttp's cleanup at most that again; while
the session runs, a client whose write stalls for ``WRITE_TIMEOUT_S`` is dropped. Left to ``asyncio.run``'s
end instead, the server was never stopped: it kept accepting the page's reconnections while the
loop cancelled its tasks, and the sockets outlived the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .page import PAGE_HTML

logger = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
WRITE_TIMEOUT_S = 2.0
"""A client whose socket takes no bytes for this long is dropped (a phone gone to sleep)."""
SHUTDOWN_S = 0.5
"""At most this long for the streams to end once told to (then their connections are cut), and
again for aiohttp's cleanup."""


@dataclass(frozen=True, slots=True)
class WebAddress:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK or self.host.startswith("127.")


def parse_web_address(text: str) -> WebAddress:
    """``PORT``, ``HOST:PORT`` or ``[V6]:PORT`` (host default 127.0.0.1; port 0: any free port).

    Raises
    ------
    InputError
        Not of that form.
    """
    raw = text.strip()
    host, _, port_text = raw.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise InputError(f"--web expects [HOST:]PORT, e.g. 8080 or 0.0.0.0:8080, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise InputError(f"--web port must be 0-65535, got {port}")
    return WebAddress(host, port)


def _lan_address() -> str:
    """An address of this machine other devices on the network can reach (best guess, no traffic)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("10.254.254.254", 9))  # UDP connect sends nothing; it only picks a route
        addr = str(s.getsockname()[0])
        if not addr.startswith("0."):
            return addr
    with contextlib.suppress(OSError):
        return socket.gethostbyname(socket.gethostname())
    return "127.0.0.1"


class WebPage:
    """The server (see module docstring). The socket is bound at construction, so a busy port is an
    error before the session starts; serving starts on the running loop at :meth:`start` (or the
    first :meth:`publish`).

    Raises
    ------
    InputError
        The address cannot be bound.
    """

    def __init__(self, address: WebAddress, token: str | None = None) -> None:
        self.address = address
        self.token = token if token is not None else (None if address.loopback else secrets.token_urlsafe(16))
        family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address.host, address.port))
            sock.listen(32)
        except OSError as exc:
            sock.close()
            raise InputError(f"--web cannot listen on {address.host}:{address.port}: {exc.strerror or exc}") from None
        sock.setblocking(False)
        self.sock = sock
        self.port = int(sock.getsockname()[1])
        self._payload = b""
        self._clients: set[asyncio.Event] = set()
        self._streams: dict[asyncio.Task[Any], Any] = {}
        """Each running event stream's task and its request."""
        self._runner: Any = None
        self._starting: asyncio.Task[None] | None = None
        self._closed = False
        self.messages = 0

    @property
    def url(self) -> str:
        """The URL to open (with the token when one is needed)."""
        host = self.address.host
        if host in ("0.0.0.0", "::", ""):
            host = _lan_address()
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    # --- serving ------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            return
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/events", self._events)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_S)
        await runner.setup()
        await web.SockSite(runner, self.sock).start()
        self._runner = runner

    def _ensure_started(self) -> None:
        if self._runner is None and self._starting is None and not self._closed:
            with contextlib.suppress(RuntimeError):  # no running loop: start() later
                self._starting = asyncio.get_running_loop().create_task(self.start())

    async def aclose(self) -> None:
        """End every event stream, close their connections and stop serving; bounded (see module
        docstring). Idempotent."""
        self._closed = True
        for ev in list(self._clients):
            ev.set()
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await self._starting
        runner, self._runner = self._runner, None
        if runner is None:
            self.sock.close()
            return
        try:
            async with asyncio.timeout(SHUTDOWN_S * 3):
                if self._streams:  # woken above: each returns at once, unless its page takes no bytes
                    _, stuck = await asyncio.wait(list(self._streams), timeout=SHUTDOWN_S)
                    for task in stuck:
                        transport = self._streams[task].transport
                        if transport is not None:
                            transport.abort()
                        task.cancel()
                await runner.cleanup()
        except TimeoutError:
            logger.warning("web page: the server did not stop within %.0f s; its sockets are closed", SHUTDOWN_S * 3)
        finally:
            self.sock.close()

    def close(self) -> None:
        """From synchronous code: end the streams; on a running loop, schedule :meth:`aclose`
        (nothing waits for it: await :meth:`aclose` where the loop may end soon)."""
        self._closed = True
        for ev in list(self._clients):
            ev.set()
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(self.aclose())
            return
        self.sock.close()

    def _allowed(self, request: Any) -> bool:
        if self.token is None:
            return True
        given = str(request.query.get("token", ""))
        return hmac.compare_digest(given.encode(), self.token.encode())

    async def _page(self, request: Any) -> Any:
        from aiohttp import web

        if not self._allowed(request):
            return web.Response(status=403, text="403: this page needs the token printed by legrep (?token=...)\n")
        return web.Response(
            text=PAGE_HTML, content_type="text/html", charset="utf-8",
            headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )  # fmt: skip

    async def _events(self, request: Any) -> Any:
        from aiohttp import web

        if not self._allowed(request):
            return web.Response(status=403, text="403: the event stream needs the token (?token=...)\n")
        if self._closed:  # the session is over: 204 tells EventSource to stop reconnecting
            resp204 = web.Response(status=204)
            resp204.force_close()
            return resp204
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )
        resp.force_close()  # when the stream ends, so does its connection (no idle keep-alive)
        task = asyncio.current_task()
        wake = asyncio.Event()
        self._clients.add(wake)
        if task is not None:
            self._streams[task] = request
        try:
            await resp.prepare(request)
            sent = self._payload
            await self._send(resp, b"retry: 1000\n\n" + sent)
            while not self._closed:
                await wake.wait()
                wake.clear()
                if self._payload is not sent:
                    sent = self._payload  # always the newest snapshot: a slow phone skips
                    await self._send(resp, sent)
            if self._payload is not sent:
                await self._send(resp, self._payload)  # the last snapshot (the session's end)
        except ConnectionResetError:  # the page went away
            pass
        except TimeoutError:  # the page takes no bytes: drop its connection, no wait for it
            if request.transport is not None:
                request.transport.abort()
        finally:
            self._clients.discard(wake)
            if task is not None:
                self._streams.pop(task, None)
        return resp

    @staticmethod
    async def _send(resp: Any, data: bytes) -> None:
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await resp.write(data)

    # --- what the sink calls ---------------------------------------------------------------------------

    def publish(self, snapshot: dict[str, Any]) -> None:
        """Send ``snapshot`` (JSON-able) to every page; stamps it with the wall clock (epoch ms)."""
        self._ensure_started()
        snapshot["wall_ms"] = time.time() * 1000.0
        self._payload = b"data: " + json.dumps(snapshot, separators=(",", ":"), allow_nan=False).encode() + b"\n\n"
        self.messages += 1
        for ev in self._clients:
            ev.set()
