"""What a fetch gives back: a `Response` (any status the server sent, 304 included) or a
`FetchFailure` (no usable answer: refused before sending, a network error, a body over
the size cap, robots.txt saying no), each naming the URL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tasks.records import RejectReason

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def media_type(content_type: str | None) -> str:
    """ "text/html; charset=utf-8" -> "text/html"; "" for none."""
    return (content_type or "").split(";")[0].strip().lower()


@dataclass(frozen=True)
class Response:
    url: str  # the URL asked for
    final_url: str  # where the last redirect led (== url without redirects)
    status: int
    headers: tuple[tuple[str, str], ...]  # as received, in order, names in their original case
    body: bytes  # Content-Encoding undone (gzip, deflate, br), at most fetch.max_bytes
    fetched_at: datetime  # UTC, when the response began
    seconds: float  # the whole request, redirects and retries included
    request_headers: tuple[tuple[str, str], ...] = ()  # what was sent for the final hop
    http_version: str = "HTTP/1.1"
    redirects: tuple[str, ...] = field(default_factory=tuple)  # the URLs redirected through, in order

    def header(self, name: str) -> str | None:
        """A header's value (the first, names compared without case), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    @property
    def content_type(self) -> str:
        """The media type alone, lower case ("text/html"), "" when the server sent none."""
        return media_type(self.header("content-type"))


@dataclass(frozen=True)
class FetchFailure:
    url: str
    reason: RejectReason  # blocked, robots, fetch_error, http_status, too_large
    detail: str  # names the URL and, where there was one, the status
    status: int | None = None
    transient: bool = False  # worth trying again in a later run (timeouts, 429, 5xx); not remembered as taken
