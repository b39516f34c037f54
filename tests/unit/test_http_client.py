"""`PoliteClient` against a real server on 127.0.0.1 (`tests.loopback`): every way a fetch
fails gives its reason and a detail naming the URL; conditional GETs, retries, the pace per
host, robots.txt, the address check (before the request and at connect time) and the
charset of pages."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from tasks.config import FetchConfig
from tasks.records import RejectReason
from tasks.web import safety
from tasks.web.http import PoliteClient, decode_html, retry_after_seconds, status_failure
from tasks.web.responses import FetchFailure, Response
from tests.loopback import PDF, PNG, LoopbackSite


def fetch_settings(**overrides) -> FetchConfig:
    """Fast settings for loopback: private addresses allowed, short pace and timeouts."""
    values = dict(
        allow_private=True, obey_robots=False, host_interval=0.05, connect_timeout=1.0, read_timeout=0.5, retries=2, max_retry_after=2.0, max_bytes=100_000
    )
    return FetchConfig(**{**values, **overrides})


def client(**overrides) -> PoliteClient:
    return PoliteClient(fetch_settings(**overrides), backoff=0.05)


def failure(outcome: Response | FetchFailure, reason: RejectReason, url: str) -> FetchFailure:
    """`outcome` as a FetchFailure with `reason` whose detail names `url`."""
    assert isinstance(outcome, FetchFailure), outcome
    assert outcome.reason == reason, outcome
    assert outcome.url == url and url in outcome.detail, outcome
    return outcome


def starts(site: LoopbackSite, path: str | None = None) -> list[float]:
    return sorted(hit.arrived for hit in site.log(path))


# --- plain answers ---------------------------------------------------------------------------


def test_get_names_itself_and_keeps_headers_as_received(site):
    url = site.route("/page", "<p>hello</p>", headers={"Content-Type": "text/html; charset=utf-8", "X-Odd-Case": "yes"})
    with client() as web:
        response = web.get(url)
    assert isinstance(response, Response)
    assert (response.status, response.body, response.final_url, response.redirects) == (200, b"<p>hello</p>", url, ())
    assert ("X-Odd-Case", "yes") in response.headers and response.content_type == "text/html"
    assert dict(response.request_headers)["User-Agent"] == fetch_settings().user_agent
    assert site.requests("/page")[0]["User-Agent"] == fetch_settings().user_agent
    assert response.fetched_at.tzinfo == UTC and abs(datetime.now(UTC) - response.fetched_at) < timedelta(seconds=5)


def test_gzip_bodies_are_decoded_and_binary_bodies_kept(site):
    import gzip

    page = site.route("/zipped", gzip.compress(b"<p>squeezed</p>"), headers={"Content-Encoding": "gzip"})
    with client() as web:
        assert web.get(page).body == b"<p>squeezed</p>"
        assert web.get(site.pdf("/paper.pdf")).body == PDF
        png = web.get(site.png("/picture.png"))
    assert png.body == PNG and png.content_type == "image/png"


def test_errors_come_back_as_responses_and_status_failure_rejects_them(site):
    site.route("/gone", "gone", status=410)
    with client(retries=1) as web:
        missing, gone, down = web.get(site.url("/missing")), web.get(site.url("/gone")), web.get(site.flaky("/down", failures=5))
    assert (missing.status, gone.status, down.status) == (404, 410, 503)
    assert site.hits("/down") == 2  # one retry
    for response, transient in ((missing, False), (gone, False), (down, True)):
        rejected = failure(status_failure(response), RejectReason.HTTP_STATUS, response.url)
        assert str(response.status) in rejected.detail and rejected.transient is transient and rejected.status == response.status
    assert status_failure(Response("u", "u", 200, (), b"", datetime.now(UTC), 0.0)) is None


# --- conditional GET -------------------------------------------------------------------------


def test_a_304_costs_one_request(site):
    url = site.route("/feed", "<rss/>", etag='"v7"', last_modified="Wed, 01 Jan 2025 00:00:00 GMT")
    with client() as web:
        response = web.get(url, etag='"v7"')
        assert isinstance(response, Response) and response.status == 304 and response.body == b""
        assert web.requests_sent == 1 and web.requests_per_host == {"127.0.0.1": 1}
    assert site.hits("/feed") == 1 and site.requests("/feed")[0]["If-None-Match"] == '"v7"'


def test_if_modified_since_and_a_changed_etag(site):
    url = site.route("/feed", "<rss/>", etag='"v8"', last_modified="Wed, 01 Jan 2025 00:00:00 GMT")
    with client() as web:
        assert web.get(url, etag='"v7"').status == 200  # changed since: the whole body
        assert web.get(url, last_modified="Thu, 02 Jan 2025 00:00:00 GMT").status == 304
    assert site.requests("/feed")[1]["If-Modified-Since"] == "Thu, 02 Jan 2025 00:00:00 GMT"


# --- redirects -------------------------------------------------------------------------------


def test_a_redirect_chain_is_followed_and_recorded(site):
    url = site.redirect_chain("/old", hops=2)
    with client(max_redirects=2) as web:
        response = web.get(url)
    assert (response.status, response.body, response.final_url) == (200, b"the end", site.url("/old/2"))
    assert response.redirects == (url, site.url("/old/1"))


def test_too_many_redirects(site):
    url = site.redirect_chain("/old", hops=3)
    with client(max_redirects=2) as web:
        rejected = failure(web.get(url), RejectReason.FETCH_ERROR, url)
    assert "more than 2 redirects" in rejected.detail and site.hits("/old/3") == 0


def test_a_redirect_loop(site):
    url = site.redirect_loop("/self")
    site.redirect("/ping", "/pong")
    site.redirect("/pong", "/ping")
    with client(max_redirects=10) as web:
        assert "redirect loop" in failure(web.get(url), RejectReason.FETCH_ERROR, url).detail
        assert "redirect loop" in failure(web.get(site.url("/ping")), RejectReason.FETCH_ERROR, site.url("/ping")).detail
    assert site.hits("/self") == 1 and site.hits("/ping") == 1


def test_a_redirect_to_another_scheme_is_blocked(site):
    url = site.redirect("/leave", "file:///etc/passwd")
    with client() as web:
        rejected = failure(web.get(url), RejectReason.BLOCKED, url)
    assert "redirected to file:///etc/passwd" in rejected.detail


def test_every_hop_is_checked_like_the_first(site, monkeypatch):
    """A redirect to a metadata address is refused, naming both URLs: the loopback server is
    let through (it is private too), so the check that refuses is the redirect hop's."""
    import tasks.web.http

    real_check = tasks.web.http.check_url
    monkeypatch.setattr(tasks.web.http, "check_url", lambda url, allow: None if url.startswith(site.url("/")) else real_check(url, False))
    url = site.redirect("/leave", "http://169.254.169.254/latest/meta-data/")
    with client() as web:
        rejected = failure(web.get(url), RejectReason.BLOCKED, url)
    assert "redirected to http://169.254.169.254/latest/meta-data/" in rejected.detail and "metadata" in rejected.detail
    assert site.hits("/leave") == 1


# --- size cap --------------------------------------------------------------------------------


@pytest.mark.parametrize("make", ["gzip_bomb", "huge_length", "endless"])
def test_bodies_over_the_cap_are_too_large(site, make):
    url = {
        "gzip_bomb": lambda: site.gzip_bomb("/big", 5_000_000),
        "huge_length": lambda: site.huge_length("/big"),
        "endless": lambda: site.endless("/big", 5_000_000),
    }[make]()
    with client(max_bytes=100_000) as web:
        started = time.monotonic()
        rejected = failure(web.get(url), RejectReason.TOO_LARGE, url)
    assert "100000" in rejected.detail and time.monotonic() - started < 2


def test_a_body_at_the_cap_is_kept(site):
    with client(max_bytes=1000) as web:
        assert len(web.get(site.route("/just", b"x" * 1000)).body) == 1000


# --- network trouble and retries -------------------------------------------------------------


def test_a_slow_server_times_out(site):
    url = site.slow("/slow", seconds=1.5)
    with client(read_timeout=0.3) as web:
        rejected = failure(web.get(url), RejectReason.FETCH_ERROR, url)
    assert "timed out" in rejected.detail and rejected.transient


def test_a_refused_connection_is_a_transient_fetch_error():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    with client() as web:
        rejected = failure(web.get(url), RejectReason.FETCH_ERROR, url)
    assert rejected.transient and "ConnectError" in rejected.detail


def test_a_tls_failure_is_a_transient_fetch_error(site):
    url = f"https://127.0.0.1:{site.port}/"  # TLS spoken to a plain HTTP server
    with client() as web:
        rejected = failure(web.get(url), RejectReason.FETCH_ERROR, url)
    assert rejected.transient and "SSL" in rejected.detail


def test_cookies_are_not_kept(site):
    url = site.route("/cookie", "hi", headers={"Set-Cookie": "session=abc; Path=/"})
    with client() as web:
        web.get(url)
        web.get(url)
    assert all("Cookie" not in headers for headers in site.requests("/cookie"))


def test_an_unresolvable_host_is_a_fetch_error_not_blocked(monkeypatch):
    real = socket.getaddrinfo

    def resolver(host, *args, **kwargs):
        if host == "nowhere.test":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    assert safety.check_url("http://nowhere.test/", allow_private=False) is None
    with client(allow_private=False) as web:
        rejected = failure(web.get("http://nowhere.test/"), RejectReason.FETCH_ERROR, "http://nowhere.test/")
    assert rejected.transient and "cannot resolve nowhere.test" in rejected.detail


def test_a_connection_cut_off_is_retried_then_given_up(site):
    with client(retries=2) as web:
        assert web.get(site.hang_up("/once", times=1)).body == b"answered"
        rejected = failure(web.get(site.hang_up("/never")), RejectReason.FETCH_ERROR, site.url("/never"))
    assert rejected.transient and "closed" in rejected.detail and "3 tries" in rejected.detail
    assert site.hits("/once") == 2 and site.hits("/never") == 3


def test_503_then_200(site):
    with client() as web:
        response = web.get(site.flaky("/busy", failures=1))
    assert (response.status, response.body, site.hits("/busy")) == (200, b"recovered", 2)


def test_retry_after_is_waited_for(site):
    url = site.rate_limited("/limited", retry_after="1")
    with client() as web:
        response = web.get(url)
        assert response.status == 200 and web.requests_sent == 2
    first, second = starts(site, "/limited")
    assert second - first >= 0.95


def test_a_retry_after_too_long_gives_up_at_once(site):
    url = site.rate_limited("/limited", retry_after="3600")
    with client(max_retry_after=2.0) as web:
        rejected = failure(web.get(url), RejectReason.HTTP_STATUS, url)
    assert rejected.transient and rejected.status == 429 and "429" in rejected.detail and "3600" in rejected.detail
    assert site.hits("/limited") == 1


def test_retry_after_as_seconds_or_a_date():
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0.0
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None, now) is None


# --- pace ------------------------------------------------------------------------------------


def run_threads(count: int, work) -> list:
    """`work(n)` for n in range(count), each in a thread of its own; their results, in order.
    A thread that raised or did not end within 20 s fails the test."""
    results: list = [None] * count
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            results[n] = work(n)
        except BaseException as error:  # noqa: BLE001 - handed to the test below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert not any(thread.is_alive() for thread in threads), "a request did not end within 20 s"
    if errors:
        raise errors[0]
    return results


def test_requests_to_one_host_start_an_interval_apart(site):
    for n in range(4):
        site.route(f"/p{n}", "page")
    with client(host_interval=0.25, host_connections=2) as web:
        run_threads(4, lambda n: web.get(site.url(f"/p{n}")))
    arrivals = starts(site)
    # The client spaces its starts exactly; what the server sees varies by a few ms (a new
    # connection or a kept-alive one, thread scheduling), and without the pace the gaps would be ~0.
    assert len(arrivals) == 4 and min(b - a for a, b in zip(arrivals, arrivals[1:])) >= 0.2 and arrivals[-1] - arrivals[0] >= 0.7


def test_one_connection_per_host_means_no_overlap(site):
    for n in range(5):
        site.route(f"/p{n}", "page", delay=0.1)
    with client(host_interval=0.0, host_connections=1) as web:
        run_threads(5, lambda n: web.get(site.url(f"/p{n}")))
    hits = sorted(site.log(), key=lambda hit: hit.arrived)
    assert len(hits) == 5 and all(later.arrived >= earlier.answered for earlier, later in zip(hits, hits[1:]))


def test_all_hosts_together_keep_to_the_global_limit(site):
    """Two host names for one server: two per host allowed, one overall."""
    site.route("/p", "page", delay=0.1)
    urls = [site.url("/p", host) for host in ("127.0.0.1", "localhost")] * 2
    with client(host_interval=0.0, host_connections=2, connections=1) as web:
        run_threads(4, lambda n: web.get(urls[n]))
        assert web.requests_per_host == {"127.0.0.1": 2, "localhost": 2}
    hits = sorted(site.log(), key=lambda hit: hit.arrived)
    assert len(hits) == 4 and all(later.arrived >= earlier.answered for earlier, later in zip(hits, hits[1:]))


# --- robots.txt ------------------------------------------------------------------------------


def test_robots_disallow_is_obeyed_and_read_once(site):
    site.route("/robots.txt", "User-agent: newsflow\nDisallow: /private\n\nUser-agent: *\nDisallow: /\n")
    site.route("/private/a", "secret")
    site.route("/public", "hello")
    with client(obey_robots=True) as web:
        rejected = failure(web.get(site.url("/private/a")), RejectReason.ROBOTS, site.url("/private/a"))
        pages = run_threads(3, lambda n: web.get(site.url("/public")))  # our group allows it, though * does not
        assert all(isinstance(page, Response) and page.status == 200 for page in pages)
        assert web.requests_sent == 4  # robots.txt once, then the three allowed pages
    assert "robots.txt" in rejected.detail and not rejected.transient
    assert site.hits("/private/a") == 0 and site.hits("/robots.txt") == 1 and site.hits("/public") == 3


def test_crawl_delay_wins_over_a_shorter_interval(site):
    site.route("/robots.txt", "User-agent: *\nCrawl-delay: 0.3\n")
    for n in range(3):
        site.route(f"/p{n}", "page")
    with client(obey_robots=True, host_interval=0.05) as web:
        assert web.robots.crawl_delay(site.url("/")) == 0.3
        for n in range(3):
            web.get(site.url(f"/p{n}"))
    pages = [hit.arrived for hit in site.log() if hit.path != "/robots.txt"]
    assert min(b - a for a, b in zip(pages, pages[1:])) >= 0.25  # host_interval alone would give 0.05


@pytest.mark.parametrize(("status", "allowed"), [(404, True), (410, True), (401, True), (403, True), (500, False), (503, False), (429, False)])
def test_robots_status_follows_rfc_9309(site, status, allowed):
    site.route("/robots.txt", "User-agent: *\nDisallow: /\n", status=status)
    url = site.route("/page", "hello")
    with client(obey_robots=True, retries=0) as web:
        outcome = web.get(url)
    assert site.hits("/robots.txt") == 1  # read, whatever its answer says
    if allowed:
        assert isinstance(outcome, Response) and outcome.status == 200
    else:
        rejected = failure(outcome, RejectReason.ROBOTS, url)
        assert rejected.transient and str(status) in rejected.detail and site.hits("/page") == 0


def test_a_host_that_does_not_answer_robots_txt_is_a_fetch_error(site):
    site.hang_up("/robots.txt")
    url = site.route("/page", "hello")
    with client(obey_robots=True, retries=0) as web:
        assert failure(web.get(url), RejectReason.FETCH_ERROR, url).transient


# --- addresses and schemes -------------------------------------------------------------------


@pytest.mark.parametrize(
    "where", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "[::1]", "localhost", "metadata.google.internal", "[::ffff:127.0.0.1]", "100.64.0.1"]
)
def test_private_addresses_are_blocked_before_any_request(site, where):
    url = f"http://{where}:{site.port}/latest/meta-data/"
    with client(allow_private=False, obey_robots=True) as web:
        rejected = failure(web.get(url), RejectReason.BLOCKED, url)
        assert web.requests_sent == 0 and not rejected.transient
    assert site.log() == []


@pytest.mark.parametrize("url", ["ftp://example.com/file", "file:///etc/passwd", "gopher://example.com/", "javascript:alert(1)"])
def test_other_schemes_are_blocked(url):
    with client() as web:
        rejected = failure(web.get(url), RejectReason.BLOCKED, url)
    assert "scheme" in rejected.detail


def test_the_address_is_checked_again_when_connecting(site, monkeypatch):
    """DNS rebinding: a name that looks public when checked and points at 127.0.0.1 a moment
    later is refused at connect time, and nothing reaches the server."""
    real = socket.getaddrinfo
    answers = iter([[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", site.port))]])

    def resolver(host, port, *args, **kwargs):
        if host == "rebind.test":
            return next(answers, None) or real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    url = f"http://rebind.test:{site.port}/"
    with client(allow_private=False) as web:
        rejected = failure(web.get(url), RejectReason.BLOCKED, url)
    assert "127.0.0.1" in rejected.detail and site.log() == []


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("8.8.8.8", None),
        ("2606:4700::1111", None),
        ("fd00:ec2::254", "metadata"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("fe80::1", "link-local"),
    ],
)
def test_address_problems(address, problem):
    import ipaddress

    found = safety.address_problem(ipaddress.ip_address(address))
    assert found is None if problem is None else problem in found


# --- charsets --------------------------------------------------------------------------------

QUOTED = "“Déjà vu” – café"


def test_charset_from_the_header(site):
    url = site.route("/cp", QUOTED.encode("cp1252"), headers={"Content-Type": "text/html; charset=windows-1252"})
    with client() as web:
        assert decode_html(web.get(url)) == QUOTED


@pytest.mark.parametrize(
    "head", ['<meta charset="iso-8859-1">', '<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">', "<meta charset=windows-1252>"]
)
def test_charset_from_meta(site, head):
    # Labelled latin-1, yet with cp1252's curly quotes, as such pages are: read as browsers do.
    url = site.route("/meta", f"<html><head>{head}</head><body>{QUOTED}</body></html>".encode("cp1252"), headers={"Content-Type": "text/html"})
    with client() as web:
        assert QUOTED in decode_html(web.get(url))


def test_undeclared_charsets_utf8_first_then_a_guess():
    def page(body: bytes) -> Response:
        return Response("u", "u", 200, (("Content-Type", "text/html"),), body, datetime.now(UTC), 0.0)

    assert decode_html(page(QUOTED.encode("utf-8"))) == QUOTED
    french = "Le gouvernement a annoncé mercredi une réforme très attendue des retraites, déjà critiquée par les syndicats. " * 3
    assert decode_html(page(french.encode("cp1252"))) == french
    russian = "Правительство объявило в среду о давно ожидаемой пенсионной реформе, которую уже критикуют профсоюзы. " * 3
    assert decode_html(page(russian.encode("cp1251"))) == russian
