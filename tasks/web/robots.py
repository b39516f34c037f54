"""robots.txt for one run: each origin's file fetched once (through the polite client, so
the same address check, size cap and politeness apply, and it counts as a request), parsed
with Protego, then asked whether a URL may be fetched and which Crawl-delay applies.

What a fetch of robots.txt means follows RFC 9309: a 2xx body is parsed; any other 4xx
(none there, or none for us: 401/403 included) allows everything; a 5xx, a 429 or no
answer at all (DNS, timeout, refused, a redirect loop) disallows everything for the rest of
the run, and the next run asks again."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from protego import Protego

from tasks.records import RejectReason
from tasks.web.responses import FetchFailure, Response

ROBOTS_MAX_BYTES = 500 * 1024  # RFC 9309: a crawler parses at least the first 500 KiB
MAX_CRAWL_DELAY = 600.0  # a Crawl-delay of a day would stall the run; host_interval has the same ceiling


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, the scope of one robots.txt (the default port left out)."""
    parsed = httpx.URL(url)
    default = {"http": 80, "https": 443}.get(parsed.scheme)
    port = f":{parsed.port}" if parsed.port not in (None, default) else ""
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    return f"{parsed.scheme}://{host}{port}"


def robots_url(url: str) -> str:
    return origin_of(url) + "/robots.txt"


def product_token(user_agent: str) -> str:
    """The name robots.txt groups are matched against: "newsflow" of "newsflow/0.1 (+https://...)".
    Matching the whole header would also match groups named after words in the comment."""
    return user_agent.strip().split("/")[0].split()[0] if user_agent.strip() else user_agent


@dataclass(frozen=True)
class RobotsRules:
    """What one origin's robots.txt says. `unreachable` (why it could not be read) means
    disallow all; no parser and nothing unreachable means allow all."""

    origin: str
    parser: Protego | None = None
    unreachable: str | None = None
    host_down: bool = False  # robots.txt got no answer at all (DNS, refused, timeout): the host's pages would not either

    def allowed(self, url: str, user_agent: str) -> bool:
        if self.unreachable is not None:
            return False
        return self.parser is None or self.parser.can_fetch(url, product_token(user_agent))

    def crawl_delay(self, user_agent: str) -> float | None:
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(product_token(user_agent))
        return None if delay is None else min(max(float(delay), 0.0), MAX_CRAWL_DELAY)


def rules_from(origin: str, outcome: Response | FetchFailure) -> RobotsRules:
    """The rules an answer to GET /robots.txt gives (RFC 9309 section 2.3.1)."""
    if isinstance(outcome, FetchFailure):
        return RobotsRules(origin, unreachable=outcome.detail, host_down=outcome.reason == RejectReason.FETCH_ERROR)
    if 200 <= outcome.status < 300:
        return RobotsRules(origin, parser=Protego.parse(outcome.body.decode("utf-8", errors="replace")))
    if outcome.status == 429 or outcome.status >= 500:
        return RobotsRules(origin, unreachable=f"{outcome.final_url} answered {outcome.status}")
    return RobotsRules(origin)  # 4xx (and a 3xx left unfollowed): no rules for us


class RobotsCache:
    """Each origin's rules, fetched on first use with `fetch(robots_url)` and kept for the run.
    Thread-safe: threads asking for one origin at once wait for a single fetch."""

    def __init__(self, fetch: Callable[[str], Response | FetchFailure], user_agent: str) -> None:
        self._fetch = fetch
        self.user_agent = user_agent
        self._rules: dict[str, RobotsRules] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def rules(self, url: str) -> RobotsRules:
        origin = origin_of(url)
        with self._guard:
            if origin in self._rules:
                return self._rules[origin]
            lock = self._locks.setdefault(origin, threading.Lock())
        with lock:  # one fetch per origin; others wait for it, other origins do not
            with self._guard:
                if origin in self._rules:
                    return self._rules[origin]
            rules = rules_from(origin, self._fetch(robots_url(origin)))
            with self._guard:
                self._rules[origin] = rules
            return rules

    def crawl_delay(self, host: str) -> float | None:
        """The Crawl-delay for our user agent on the origin of `host` (a URL or origin)."""
        return self.rules(host).crawl_delay(self.user_agent)
