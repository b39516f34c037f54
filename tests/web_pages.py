"""Article pages and feeds written for the web tests, served by tests/loopback.py."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

from tests.loopback import LoopbackSite

# Invented stories for the project: enough words to pass cleaning, distinct enough not to be duplicates.
STORIES = {
    "harbour-dredging": (
        "Harbour council approves dredging plan",
        "Mara Quill",
        "The Lowmere harbour council voted on Tuesday to deepen the main shipping channel, ending a two-year dispute with "
        "fishing cooperatives. Council chair Ines Varga said the project would let larger cargo ships dock without waiting for "
        "high tide. Fishermen warned that silt from the works could damage oyster beds along the northern shore, and asked for "
        "independent monitoring. The council promised quarterly water reports and a fund for affected crews.",
    ),
    "rail-strike": (
        "Rail workers extend strike over pay",
        "Tobias Renn",
        "Rail workers in the Kestrel valley extended their strike for a second week after talks with the operator broke down "
        "late on Sunday. Union leader Asha Pell accused management of refusing to discuss overtime rules, while the company "
        "said its offer was the largest in a decade. Commuters faced packed buses and long queues at the few stations still "
        "served by replacement coaches, and local shops reported falling trade in the town centre.",
    ),
    "solar-farm": (
        "Solar farm opens on former airfield",
        "Lena Okafor",
        "A solar farm built on the former Brackwater airfield began feeding power into the regional grid this week. The "
        "developer said the panels would supply about nine thousand homes, and that sheep would graze between the rows to keep "
        "the grass short. Residents who had opposed the plan over glare from the panels said the screening hedges had worked "
        "better than expected. The county now plans a second site near the old quarry.",
    ),
    "library-reopens": (
        "Town library reopens after flood repairs",
        "Priya Sandoval",
        "The Fennick town library reopened on Saturday, eleven months after spring floods ruined its ground floor and most of "
        "its children's collection. Volunteers catalogued more than four thousand donated books during the closure. Head "
        "librarian Otto Brandt thanked residents and said the new shelving stands on raised plinths in case the river rises "
        "again. Reading groups, homework clubs and the weekly film night resume next month.",
    ),
}


def article_page(slug: str) -> str:
    title, author, body = STORIES[slug]
    paragraphs = "".join(f"<p>{sentence.strip()}.</p>" for sentence in body.split(". ") if sentence.strip())
    return (
        f"<html><head><title>{title} | Lowmere Ledger</title><meta name='author' content='By {author}, Staff Writer'>"
        f"<meta property='og:site_name' content='Lowmere Ledger'></head><body><nav>Home News Sport</nav>"
        f"<article><h1>{title}</h1>{paragraphs.replace('..', '.')}</article><footer>Contact us</footer></body></html>"
    )


def rss(site: LoopbackSite, slugs: list[str], extra: str = "") -> str:
    items = "".join(
        f"<item><title>{STORIES[s][0]}</title><link>{site.url('/news/' + s)}?utm_source=feed</link><guid>{s}</guid>"
        f"<pubDate>{format_datetime(datetime(2026, 11, 20 + i, 8, tzinfo=UTC))}</pubDate></item>"
        for i, s in enumerate(slugs)
    )
    return f"<?xml version='1.0'?><rss version='2.0'><channel><title>Lowmere Ledger</title>{items}{extra}</channel></rss>"


def serve_articles(site: LoopbackSite) -> None:
    for slug in STORIES:
        site.route(f"/news/{slug}", article_page(slug), headers={"Content-Type": "text/html; charset=utf-8"})
