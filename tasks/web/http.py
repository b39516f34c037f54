"""The one way web inputs reach the network: `PoliteClient`, a thread-safe httpx client
that says who it is, obeys robots.txt, keeps to a pace per host, refuses private addresses
(at every redirect hop, and again at connect time), caps the decoded body size, retries
what is worth retrying and turns every other problem into a `FetchFailure`. Also
`decode_html` (a page's bytes to text, charset as a browser would find it) and
`status_failure` (a 4xx/5xx `Response` as the `FetchFailure` a caller rejects it with).

Decisions: a 4xx/5xx answer (after retries for 429/503) is returned as a `Response`, as
responses.py says: the caller decides, and `status_failure` gives the uniform rejection.
Only a Retry-After longer than fetch.max_retry_after becomes a FetchFailure(HTTP_STATUS)
here, since the client gives up without the answer it waited for."""

from __future__ import annotations

import codecs
import re
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import urljoin

import charset_normalizer
import httpx

from tasks.config import FetchConfig
from tasks.records import RejectReason
from tasks.web.responses import FetchFailure, Response
from tasks.web.robots import ROBOTS_MAX_BYTES, RobotsCache, RobotsRules, origin_of, product_token, robots_url
from tasks.web.safety import BlockedAddress, check_url, pinned_transport

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RETRY_STATUSES = frozenset({429, 503})
TRANSIENT_STATUSES = frozenset({408, 425, 429})  # and every 5xx
CHUNK_BYTES = 64 * 1024
# A server dripping a byte just inside each read timeout would hold a thread for ever:
# one attempt may take at most this many read timeouts (plus the connect timeout) in all.
ATTEMPT_READ_TIMEOUTS = 4
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,application/rss+xml;q=0.9,application/atom+xml;q=0.9,*/*;q=0.8"
# Only what zlib undoes with a bounded output size: advertising br or zstd would need
# decoders that cannot be stopped mid-chunk (and may not be installed).
ACCEPT_ENCODING = "gzip, deflate"


# --- politeness ----------------------------------------------------------------------------


class _HostGate:
    """One host's share of the pace: its slots in flight and when the next start may be."""

    def __init__(self, connections: int) -> None:
        self.slots = threading.BoundedSemaphore(connections)
        self.lock = threading.Lock()
        self.last_start = float("-inf")
        self.not_before = float("-inf")  # set by Retry-After and backoff: the whole host waits

    def earliest(self, interval: float) -> float:
        return max(self.last_start + interval, self.not_before)


class Politeness:
    """Per host at most `host_connections` requests in flight and `interval` seconds between
    two starts; at most `connections` in flight overall. Shared by all threads of a client."""

    def __init__(self, host_connections: int, connections: int) -> None:
        self._host_connections = host_connections
        self._global = threading.BoundedSemaphore(connections)
        self._gates: dict[str, _HostGate] = {}
        self._lock = threading.Lock()

    def _gate(self, host: str) -> _HostGate:
        with self._lock:
            return self._gates.setdefault(host, _HostGate(self._host_connections))

    @contextmanager
    def turn(self, host: str, interval: float) -> Iterator[None]:
        """Hold a request slot for `host`, entered no earlier than the pace allows."""
        gate = self._gate(host)
        with gate.slots:
            while True:
                with gate.lock:
                    wait = gate.earliest(interval) - time.monotonic()
                if wait > 0:  # sleep holding no global slot, so other hosts go on meanwhile
                    time.sleep(wait)
                    continue
                self._global.acquire()
                with gate.lock:  # the wait for a global slot may have let another start pass
                    now = time.monotonic()
                    if now >= gate.earliest(interval):
                        gate.last_start = now
                        break
                self._global.release()
            try:
                yield
            finally:
                self._global.release()

    def hold_off(self, host: str, seconds: float) -> None:
        """No request to `host` starts within `seconds` from now (Retry-After, backoff)."""
        gate = self._gate(host)
        with gate.lock:
            gate.not_before = max(gate.not_before, time.monotonic() + seconds)


# --- bodies ----------------------------------------------------------------------------------


class _Inflater:
    """Undoes gzip/deflate with a bound on the output of every call, so a small compressed
    body that inflates to gigabytes (a decompression bomb) is stopped past the cap."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._raw_fallback = encoding == "deflate"  # "deflate" is zlib-wrapped, yet some servers send it raw
        self._inflate = self._new()

    def _new(self, raw: bool = False) -> zlib._Decompress:
        return zlib.decompressobj(-zlib.MAX_WBITS if raw else (16 + zlib.MAX_WBITS if self.encoding == "gzip" else zlib.MAX_WBITS))

    def decode(self, data: bytes, room: int) -> bytes:
        """At most `room` (>= 1) decoded bytes of `data`; more than that means over the cap."""
        try:
            return self._decode(data, room)
        except zlib.error:
            if not self._raw_fallback:
                raise
            self._raw_fallback = False
            self._inflate = self._new(raw=True)
            return self._decode(data, room)

    def _decode(self, data: bytes, room: int) -> bytes:
        out = bytearray()
        while data and len(out) < room:
            out += self._inflate.decompress(data, room - len(out))
            self._raw_fallback = False  # once something decoded, the framing is settled
            data = self._inflate.unconsumed_tail
            if self._inflate.eof:
                # A second gzip member may follow; anything else after the end is ignored, as browsers do.
                data = self._inflate.unused_data if self._inflate.unused_data.startswith(b"\x1f\x8b") else b""
                if data:
                    self._inflate = self._new()
        return bytes(out)


class _Identity:
    encoding = "identity"

    def decode(self, data: bytes, room: int) -> bytes:
        return data[:room]


def _decoder(content_encoding: str | None) -> _Inflater | _Identity | None:
    """The decoder for a Content-Encoding header, None when it is not one we undo."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip().lower() not in ("", "identity")]
    if not codings:
        return _Identity()
    if len(codings) == 1 and codings[0] in ("gzip", "x-gzip", "deflate"):
        return _Inflater("deflate" if codings[0] == "deflate" else "gzip")
    return None


# --- one exchange ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    """One HTTP exchange that came back whole."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    request_headers: tuple[tuple[str, str], ...]
    http_version: str
    started_at: datetime

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)


@dataclass(frozen=True)
class _CutOff:
    """The connection ended before a whole answer came: worth another try."""

    error: str


def _where(url: str, target: str) -> str:
    return url if target == url else f"{url} (redirected to {target})"


def _text_pairs(raw: list[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    return tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks to wait (delta-seconds or an HTTP date), None if absent or unreadable."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def status_failure(response: Response) -> FetchFailure | None:
    """A 4xx/5xx response as the rejection it leads to (transient for 408, 425, 429 and 5xx); None below 400."""
    if response.status < 400:
        return None
    transient = response.status >= 500 or response.status in TRANSIENT_STATUSES
    return FetchFailure(
        response.url, RejectReason.HTTP_STATUS, f"{_where(response.url, response.final_url)} answered {response.status}", response.status, transient
    )


# --- the client ------------------------------------------------------------------------------


class PoliteClient:
    """GET with manners, for many threads at once. Use as a context manager (or call close()).
    `backoff` is the first wait before retrying a 429/503 without Retry-After, or a cut-off
    connection; it doubles with each retry (never above fetch.max_retry_after)."""

    def __init__(self, settings: FetchConfig, *, backoff: float = 1.0, verify: bool = True) -> None:
        self.settings = settings
        self.backoff = backoff
        self.politeness = Politeness(settings.host_connections, settings.connections)
        self.robots = RobotsCache(self._fetch_robots, settings.user_agent)
        self._counts: dict[str, int] = {}
        self._count_lock = threading.Lock()
        self._client = httpx.Client(
            transport=pinned_transport(settings.allow_private, settings.connections, verify=verify),
            headers={"User-Agent": settings.user_agent, "Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING},
            timeout=httpx.Timeout(connect=settings.connect_timeout, read=settings.read_timeout, write=settings.read_timeout, pool=settings.read_timeout),
            follow_redirects=False,  # followed here, so that every hop is checked
            trust_env=False,  # no proxy from the environment: it would bypass the address check
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),  # no cookies kept between requests
        )

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # -- counters --

    @property
    def requests_sent(self) -> int:
        """Requests actually sent (each retry, redirect hop and robots.txt counts)."""
        with self._count_lock:
            return sum(self._counts.values())

    @property
    def requests_per_host(self) -> dict[str, int]:
        with self._count_lock:
            return dict(self._counts)

    def _count(self, host: str) -> None:
        with self._count_lock:
            self._counts[host] = self._counts.get(host, 0) + 1

    # -- public requests --

    def get(self, url: str, etag: str | None = None, last_modified: str | None = None) -> Response | FetchFailure:
        """GET `url`, following redirects; conditional when `etag`/`last_modified` are given
        (a 304 comes back as a Response with an empty body). Never raises for network trouble."""
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return self._follow(url, headers, self.settings.max_bytes, with_robots=self.settings.obey_robots, truncate=False)

    def robots_txt_of(self, url: str) -> RobotsRules:
        """The robots.txt rules of `url`'s origin (fetched once per run)."""
        return self.robots.rules(url)

    def _fetch_robots(self, url: str) -> Response | FetchFailure:
        # Past the first 500 KiB a robots.txt is cut, not refused (RFC 9309 section 2.5).
        return self._follow(url, {}, min(self.settings.max_bytes, ROBOTS_MAX_BYTES), with_robots=False, truncate=True)

    # -- the steps --

    def _follow(self, url: str, headers: dict[str, str], limit: int, with_robots: bool, truncate: bool) -> Response | FetchFailure:
        started = time.monotonic()
        chain = [url]  # every URL asked, the last one being asked now
        while True:
            target = chain[-1]
            refused = self._preflight(url, target, with_robots)
            if refused is not None:
                return refused
            answer = self._with_retries(url, target, headers, limit, truncate, self._interval(target, with_robots))
            if isinstance(answer, FetchFailure):
                return answer
            location = answer.header("location") if answer.status in REDIRECT_STATUSES else None
            if not location:
                return Response(
                    url=url,
                    final_url=target,
                    status=answer.status,
                    headers=answer.headers,
                    body=answer.body,
                    fetched_at=answer.started_at,
                    seconds=time.monotonic() - started,
                    request_headers=answer.request_headers,
                    http_version=answer.http_version,
                    redirects=tuple(chain[:-1]),
                )
            following = urljoin(target, location.strip())  # an invalid one is refused by the next preflight
            if following in chain:
                loop = " -> ".join([*chain[chain.index(following) :], following])
                return FetchFailure(url, RejectReason.FETCH_ERROR, f"redirect loop from {url}: {loop}", answer.status, transient=False)
            if len(chain) > self.settings.max_redirects:
                return FetchFailure(
                    url, RejectReason.FETCH_ERROR, f"more than {self.settings.max_redirects} redirects from {url} (last to {following})", answer.status
                )
            chain.append(following)

    def _preflight(self, url: str, target: str, with_robots: bool) -> FetchFailure | None:
        """Refusals before anything is sent: the address check, then robots.txt."""
        problem = check_url(target, self.settings.allow_private)
        if problem is not None:
            detail = problem if target == url else f"{url} redirected to {problem}"
            return FetchFailure(url, RejectReason.BLOCKED, detail)
        if not with_robots:
            return None
        rules = self.robots.rules(target)
        if rules.allowed(target, self.settings.user_agent):
            return None
        if rules.unreachable is not None:
            detail = (
                f"{_where(url, target)}: {robots_url(target)} could not be read ({rules.unreachable}), so nothing on {origin_of(target)} is fetched this run"
            )
            # No answer from the host at all is a fetch error, whatever path it came by.
            return FetchFailure(url, RejectReason.FETCH_ERROR if rules.host_down else RejectReason.ROBOTS, detail, transient=True)
        detail = f"{_where(url, target)} is disallowed for {product_token(self.settings.user_agent)} by {robots_url(target)}"
        return FetchFailure(url, RejectReason.ROBOTS, detail)

    def _interval(self, target: str, with_robots: bool) -> float:
        """Seconds between two starts on the target's host: host_interval, or a longer Crawl-delay."""
        delay = self.robots.crawl_delay(target) if with_robots else None
        return max(self.settings.host_interval, delay or 0.0)

    def _with_retries(self, url: str, target: str, headers: dict[str, str], limit: int, truncate: bool, interval: float) -> _Answer | FetchFailure:
        host = httpx.URL(target).host
        retries = self.settings.retries
        for attempt in range(retries + 1):
            answer = self._attempt(url, target, headers, limit, truncate, interval)
            if isinstance(answer, FetchFailure):
                return answer
            if isinstance(answer, _CutOff):
                if attempt == retries:
                    return FetchFailure(
                        url,
                        RejectReason.FETCH_ERROR,
                        f"{_where(url, target)}: connection closed before a whole answer ({answer.error}), {attempt + 1} tries",
                        transient=True,
                    )
                self.politeness.hold_off(host, self._backoff(attempt))
                continue
            if answer.status not in RETRY_STATUSES or attempt == retries:
                return answer
            wait = retry_after_seconds(answer.header("retry-after"))
            if wait is not None and wait > self.settings.max_retry_after:
                detail = f"{_where(url, target)} answered {answer.status} with Retry-After {wait:.0f} s, longer than fetch.max_retry_after ({self.settings.max_retry_after:g} s)"
                return FetchFailure(url, RejectReason.HTTP_STATUS, detail, answer.status, transient=True)
            self.politeness.hold_off(host, self._backoff(attempt) if wait is None else wait)
        raise AssertionError("unreachable: the last attempt returns")

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff * 2**attempt, self.settings.max_retry_after)

    def _attempt(self, url: str, target: str, headers: dict[str, str], limit: int, truncate: bool, interval: float) -> _Answer | FetchFailure | _CutOff:
        """One request in the host's turn; network trouble becomes a FetchFailure or a _CutOff."""
        host = httpx.URL(target).host
        where = _where(url, target)
        with self.politeness.turn(host, interval):
            self._count(host)
            started_at = datetime.now(UTC)
            deadline = time.monotonic() + self._attempt_seconds()
            try:
                response = self._client.send(self._client.build_request("GET", target, headers=headers), stream=True)
                try:
                    return self._read(url, target, response, limit, truncate, started_at, deadline)
                finally:
                    response.close()
            except BlockedAddress as blocked:  # the check at connect time disagreed with the one before (DNS rebinding)
                return FetchFailure(url, RejectReason.BLOCKED, f"{where}: {blocked}")
            except httpx.TimeoutException as error:
                return FetchFailure(url, RejectReason.FETCH_ERROR, f"{where}: timed out ({type(error).__name__}: {error})", transient=True)
            except (httpx.RemoteProtocolError, httpx.ReadError) as error:
                return _CutOff(f"{type(error).__name__}: {error}")
            except httpx.HTTPError as error:  # refused, unresolvable, TLS, ...
                return FetchFailure(url, RejectReason.FETCH_ERROR, f"{where}: {type(error).__name__}: {error}", transient=True)

    def _attempt_seconds(self) -> float:
        return self.settings.connect_timeout + ATTEMPT_READ_TIMEOUTS * self.settings.read_timeout

    def _read(
        self, url: str, target: str, response: httpx.Response, limit: int, truncate: bool, started_at: datetime, deadline: float
    ) -> _Answer | FetchFailure:
        """The body, decoded and capped at `limit` bytes (cut there when `truncate`)."""
        where = _where(url, target)
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit and not truncate:
            return FetchFailure(url, RejectReason.TOO_LARGE, f"{where}: Content-Length {declared} is over fetch.max_bytes ({limit})", response.status_code)
        decoder = _decoder(response.headers.get("content-encoding"))
        if decoder is None:
            return FetchFailure(
                url, RejectReason.FETCH_ERROR, f"{where}: unsupported Content-Encoding {response.headers['content-encoding']!r}", response.status_code
            )
        body = bytearray()
        try:
            for chunk in response.iter_raw(CHUNK_BYTES):
                body += decoder.decode(chunk, limit + 1 - len(body))
                if len(body) > limit:
                    if truncate:
                        del body[limit:]
                        break
                    return FetchFailure(url, RejectReason.TOO_LARGE, f"{where}: body over fetch.max_bytes ({limit}) after decoding", response.status_code)
                if time.monotonic() > deadline:
                    return FetchFailure(
                        url, RejectReason.FETCH_ERROR, f"{where}: timed out reading the body (over {self._attempt_seconds():g} s)", transient=True
                    )
        except zlib.error as error:
            return FetchFailure(url, RejectReason.FETCH_ERROR, f"{where}: broken {decoder.encoding} body ({error})", response.status_code)
        return _Answer(
            status=response.status_code,
            headers=_text_pairs(response.headers.raw),
            body=bytes(body),
            request_headers=_text_pairs(response.request.headers.raw),
            http_version=response.http_version,
            started_at=started_at,
        )


# --- text ------------------------------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([a-zA-Z0-9_:.\-]+)""", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# Browsers read these labels as windows-1252 (WHATWG Encoding): pages labelled latin-1 use its 0x80-0x9F.
_AS_WINDOWS_1252 = frozenset({"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "us-ascii", "ascii", "iso_8859-1", "cp819", "windows-1252", "cp1252"})


def _codec(label: str | None) -> str | None:
    """A Python codec for a charset label, None for an unknown one."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    if label in _AS_WINDOWS_1252:
        return "cp1252"
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def header_charset(content_type: str | None) -> str | None:
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return _codec(value)
    return None


def meta_charset(body: bytes) -> str | None:
    """The charset a <meta charset> or <meta http-equiv="content-type"> declares in the first 4 KB."""
    match = _META_CHARSET.search(body[:4096])
    codec = _codec(match.group(1).decode("ascii")) if match else None
    # A page that can state its charset in ASCII bytes is no UTF-16 page (WHATWG: read it as UTF-8).
    return "utf-8" if codec is not None and codec.startswith("utf-16") else codec


def decode_html(response: Response) -> str:
    """A fetched page's text (see decode_body)."""
    return decode_body(response.body, response.header("content-type"))


def decode_body(body: bytes, content_type: str | None) -> str:
    """An HTML body's text, however it reached us (fetched, or read from a WARC file): a BOM,
    else the Content-Type charset, else a <meta> charset, else UTF-8 when it decodes, else a
    guess (charset-normalizer's, leaning to windows-1252)."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body.decode(codec, errors="replace")
    declared = header_charset(content_type) or meta_charset(body)
    if declared:
        return body.decode(declared, errors="replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return _guess(body)


def _guess(body: bytes) -> str:
    """charset-normalizer's reading, except that windows-1252 (the web's usual legacy charset)
    wins over a guess about as clean and less coherent: a French page in cp1252 is otherwise
    read as Baltic cp1257, "très" as "trčs"."""
    results = charset_normalizer.from_bytes(body)
    best = results.best()
    if best is None:
        return body.decode("utf-8", errors="replace")
    western = next((match for match in results if match.encoding == "cp1252"), None)
    if western is not None and western.chaos <= best.chaos + 0.05 and western.coherence >= best.coherence:
        return str(western)
    return str(best)
