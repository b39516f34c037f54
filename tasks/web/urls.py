"""One spelling per article URL: `canonical_url` makes a link absolute and canonical
(http(s) only, lower-case scheme and host, IDN hosts as punycode, no default port, no
fragment, no tracking parameters), so that the same story listed twice is seen once;
`host_of` names a URL's host.

Written on urllib.parse rather than courlan.normalize_url: courlan decodes punycode to
Unicode, re-encodes and sorts the query, and drops parameters on a broad pattern
("source", "ref", "campaign", "session", ...) that some sites use to name the article."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, quote, unquote_plus, urljoin, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}

# Query parameters that say how a reader arrived, never which page it is.
_TRACKING_NAMES = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "ttclid",
        "igshid",
        "igsh",
        "li_fat_id",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "__hssc",
        "__hstc",
        "__hsfp",
        "hsctatracking",
        "mkt_tok",
        "ref_src",
        "ref_url",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "vero_conv",
        "wt.mc_id",
        "wt_mc_id",
        "s_cid",
        "ocid",
        "spm",
        "cmpid",
        "icid",
        "ncid",
        "xtor",
        "at_medium",
        "at_campaign",
        "sr_share",
        "smid",
    }
)
_TRACKING_PREFIXES = ("utm_", "mtm_", "pk_", "matomo_", "piwik_", "hmb_", "ga_", "itm_", "stm_")

_TAB_NEWLINE = str.maketrans("", "", "\t\r\n")
_STRIP = " \t\r\n\f\v\x00\"'<>"  # whitespace, NULs and quotes or brackets left over from markup
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_PERCENT_HEX = re.compile(r"%[0-9a-fA-F]{2}")
_STRAY_PERCENT = re.compile(r"%(?![0-9a-fA-F]{2})")
_HOST = re.compile(r"^[a-z0-9_\-]+(?:\.[a-z0-9_\-]+)*$")  # labels of letters, digits, '-' and '_', nothing empty
_PLAIN = re.compile(r"^[A-Za-z0-9/:@!$&'()*+,;=\-._~%?]*$")
# RFC 3986 reserved and unreserved characters stay as they are; anything else is percent-encoded.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"


def _is_tracking(name: str) -> bool:
    key = name.lower()
    return key in _TRACKING_NAMES or key.startswith(_TRACKING_PREFIXES)


def _clean_query(query: str) -> str:
    """The query without tracking parameters and empty pieces, the rest untouched and in order."""
    kept = []
    for piece in query.split("&"):
        if not piece:
            continue
        name = unquote_plus(piece.split("=", 1)[0])
        if not _is_tracking(name):
            kept.append(_quote(piece, _QUERY_SAFE))
    return "&".join(kept)


def _quote(text: str, safe: str) -> str:
    """Percent-encode what may not stand in a URL (spaces, non-ASCII), leave the rest; a '%'
    that starts no escape becomes %25, and escapes are upper-cased (%2f and %2F are one byte)."""
    if "%" in text:
        text = _PERCENT_HEX.sub(lambda m: m.group(0).upper(), _STRAY_PERCENT.sub("%25", text))
    return text if _PLAIN.match(text) else quote(text, safe=safe)  # most links need no quoting: skip the slow path


def _remove_dot_segments(path: str) -> str:
    """/a/./b/../c -> /a/c (RFC 3986 5.2.4), so two spellings of one path compare equal."""
    if "/." not in path:
        return path
    out: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == ".":
            if last:
                out.append("")
        elif segment == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result


def _host(parts: SplitResult) -> str | None:
    """The host lower-cased, IDN labels as punycode; None when there is none or it cannot be encoded."""
    host = parts.hostname  # lower-cased, userinfo and port removed, IPv6 brackets removed
    if not host:
        return None
    if ":" in host:  # an IPv6 literal
        return f"[{host}]"
    host = host.rstrip(".")  # "example.com." is example.com
    if host.isascii():
        return host if _HOST.match(host) else None
    try:
        import idna  # IDNA 2008 with UTS 46 mapping, as browsers do

        encoded = idna.encode(host, uts46=True).decode("ascii")
    except Exception:  # idna missing, or one of its several errors: the older rules below may still take it
        try:
            encoded = host.encode("idna").decode("ascii")  # IDNA 2003, the standard library's codec
        except UnicodeError:
            return None
    return encoded if _HOST.match(encoded) else None


def canonical_url(url: str, base: str | None = None) -> str | None:
    """`url` (joined on `base` when relative) in its canonical spelling, or None when it is no
    http(s) URL. Userinfo is dropped (credentials have no place in an article's address)."""
    try:
        if not isinstance(url, str):
            return None
        # As browsers do (WHATWG URL): tabs and newlines vanish anywhere, spaces inside are encoded.
        text = url.translate(_TAB_NEWLINE).strip(_STRIP)
        if not text:
            return None
        if base and not _ABSOLUTE.match(text):  # urljoin costs as much as the rest: only for relative links
            text = urljoin(base.strip(_STRIP), text)
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            return None
        host = _host(parts)
        if host is None:
            return None
        port = parts.port  # ValueError on a port that is no number or out of range
        netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
        path = _quote(_remove_dot_segments(parts.path.replace("\\", "/")), _PATH_SAFE) or "/"
        query = _clean_query(parts.query)
        return urlunsplit((scheme, netloc, path, query, ""))
    except (ValueError, TypeError, UnicodeError):
        return None


def host_of(url: str) -> str:
    """The host of `url` as `canonical_url` spells it (lower case, punycode, no port); "" when none."""
    canonical = canonical_url(url)
    if canonical is None:
        return ""
    return urlsplit(canonical).hostname or ""
