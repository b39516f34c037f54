"""A real HTTP server on 127.0.0.1 for tests of web inputs: `LoopbackSite` serves routes
declared by the test (bytes, text, or a function of the request), logs every request it
sees (headers, when it arrived, when it was answered) and offers the misbehaving servers
the tests need: redirect loops and chains, slow answers, gzip bombs, lying Content-Length,
rate limits, flaky 503s, hang-ups, and PDF/PNG bodies."""

from __future__ import annotations

import gzip
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Body = bytes | str | Iterable[bytes]  # an iterable is streamed without Content-Length, then the connection closes


@dataclass(frozen=True)
class Request:
    """What a route's function is given."""

    path: str
    query: str
    headers: dict[str, str]
    hit: int  # 1 for the first request to this path


Answer = tuple[int, dict[str, str], Body] | None  # None: close the connection without answering
Handler = Callable[[Request], Answer]


@dataclass
class Route:
    body: Body | Handler = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class Hit:
    """One request as the server saw it; `answered` is set just before the answer is written
    (so a client cannot have a next request out before it)."""

    path: str
    headers: dict[str, str]
    arrived: float  # time.monotonic()
    answered: float | None = None


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# A valid 1x1 grey PNG.
PNG = (
    b"\x89PNG\r\n\x1a\n"
    + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    + _png_chunk(b"IDAT", zlib.compress(b"\0\x80"))
    + _png_chunk(b"IEND", b"")
)


class LoopbackSite:
    """`with LoopbackSite() as site:` a server on a free port; `site.url("/a")` its URLs."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency  # seconds added to every answer
        self._routes: dict[str, Route] = {}
        self._log: list[Hit] = []
        self._lock = threading.Lock()
        handler = type("LoopbackHandler", (_Handler,), {"site": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    def __enter__(self) -> LoopbackSite:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def route(
        self, path: str, body: Body | Handler = b"", status: int = 200, headers: dict[str, str] | None = None, delay: float = 0.0, **conditional: str
    ) -> str:
        """Serve `path` (`etag=`/`last_modified=` make it answer conditional GETs with 304); returns its URL."""
        self._routes[path] = Route(body, status, dict(headers or {}), delay, conditional.get("etag"), conditional.get("last_modified"))
        return self.url(path)

    def log(self, path: str | None = None) -> list[Hit]:
        with self._lock:
            return [hit for hit in self._log if path is None or hit.path == path]

    def hits(self, path: str) -> int:
        return len(self.log(path))

    def requests(self, path: str) -> list[dict[str, str]]:
        return [hit.headers for hit in self.log(path)]

    # -- misbehaving servers, ready made --

    def redirect(self, path: str, to: str, status: int = 302) -> str:
        return self.route(path, status=status, headers={"Location": to})

    def redirect_loop(self, path: str) -> str:
        return self.redirect(path, path)

    def redirect_chain(self, path: str, hops: int, body: Body = "the end") -> str:
        """`path` -> `path`/1 -> ... -> `path`/`hops`, which answers `body`."""
        steps = [path, *(f"{path}/{n}" for n in range(1, hops + 1))]
        for here, there in zip(steps, steps[1:]):
            self.redirect(here, there)
        self.route(steps[-1], body)
        return self.url(path)

    def slow(self, path: str, seconds: float, body: Body = "late") -> str:
        return self.route(path, body, delay=seconds)

    def gzip_bomb(self, path: str, inflated: int) -> str:
        """A small gzip body that inflates to `inflated` zero bytes."""
        return self.route(path, gzip.compress(b"\0" * inflated, compresslevel=9), headers={"Content-Encoding": "gzip", "Content-Type": "text/html"})

    def huge_length(self, path: str, length: int = 10**12) -> str:
        """Announces `length` bytes, sends a few, and hangs up."""
        return self.route(path, b"x" * 100, headers={"Content-Length": str(length), "Connection": "close"})

    def endless(self, path: str, total: int, chunk: int = 64 * 1024) -> str:
        """`total` bytes streamed without Content-Length."""
        return self.route(path, lambda request: (200, {"Content-Type": "text/html"}, (b"a" * min(chunk, total - sent) for sent in range(0, total, chunk))))

    def rate_limited(self, path: str, retry_after: str, body: Body = "finally", times: int = 1) -> str:
        """429 with `Retry-After: retry_after` to the first `times` requests, then `body`."""
        return self.route(path, lambda request: (429, {"Retry-After": retry_after}, "slow down") if request.hit <= times else (200, {}, body))

    def flaky(self, path: str, failures: int = 1, body: Body = "recovered", status: int = 503) -> str:
        """`status` to the first `failures` requests, then `body`."""
        return self.route(path, lambda request: (status, {}, "unavailable") if request.hit <= failures else (200, {}, body))

    def hang_up(self, path: str, times: int | None = None) -> str:
        """Close the connection without an answer (the first `times` requests, or always)."""
        return self.route(path, lambda request: None if times is None or request.hit <= times else (200, {}, "answered"))

    def pdf(self, path: str) -> str:
        return self.route(path, PDF, headers={"Content-Type": "application/pdf"})

    def png(self, path: str) -> str:
        return self.route(path, PNG, headers={"Content-Type": "image/png"})

    # -- serving --

    def _arrive(self, path: str, headers: dict[str, str]) -> tuple[Hit, int]:
        with self._lock:
            hit = Hit(path, headers, time.monotonic())
            self._log.append(hit)
            return hit, sum(1 for seen in self._log if seen.path == path)

    def answer(self, handler: BaseHTTPRequestHandler) -> Answer:
        path, _, query = handler.path.partition("?")
        headers = dict(handler.headers.items())
        hit, number = self._arrive(path, headers)
        route = self._routes.get(path)
        time.sleep(self.latency + (route.delay if route else 0.0))
        if route is None:
            answer: Answer = (404, {"Content-Type": "text/plain"}, "not found")
        elif callable(route.body):
            answer = route.body(Request(path, query, headers, number))
        elif _not_modified(route, headers):
            answer = (304, _validators(route), b"")
        else:
            answer = (route.status, {**_validators(route), **route.headers}, route.body)
        hit.answered = time.monotonic()
        return answer


def _validators(route: Route) -> dict[str, str]:
    return {name: value for name, value in (("ETag", route.etag), ("Last-Modified", route.last_modified)) if value}


def _not_modified(route: Route, headers: dict[str, str]) -> bool:
    lowered = {name.lower(): value for name, value in headers.items()}
    if route.etag and "if-none-match" in lowered:
        offered = [tag.strip().removeprefix("W/") for tag in lowered["if-none-match"].split(",")]
        return "*" in offered or route.etag.removeprefix("W/") in offered
    if route.last_modified and "if-modified-since" in lowered:
        try:
            return parsedate_to_datetime(lowered["if-modified-since"]) >= parsedate_to_datetime(route.last_modified)
        except (TypeError, ValueError):
            return False
    return False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    timeout = 10  # an idle kept-alive connection does not hold its thread for ever
    site: LoopbackSite

    def do_GET(self) -> None:
        answer = self.site.answer(self)
        if answer is None:  # hang up: the client sees the connection end with no answer
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, headers, body = answer
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if isinstance(body, bytes):
            if not any(name.lower() == "content-length" for name in headers) and status != 304:
                self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        try:
            for chunk in [body] if isinstance(body, bytes) else body:
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading (a size cap): fine
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # quiet: pytest shows what matters
        pass
