"""What a feed or sitemap says of one article it lists."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ListedItem:
    """One article a feed or sitemap lists: its link, and what the listing says of it.
    `published` is ISO 8601 when the listing gives a date."""

    url: str
    guid: str | None = None
    title: str | None = None
    published: str | None = None
    authors: tuple[str, ...] = field(default_factory=tuple)
    source: str = ""  # the configured source's name that listed it
