"""What earlier runs took from the web, so a run fetches each item once: the `fetched`
table (one row per item a run took: its canonical URL, guid, what came of it, where its
bytes are archived) and the `feeds` table (each feed's ETag and Last-Modified, for
conditional GETs). Both live under the output root beside the result tables, are staged
by the run that fetches and move into the dataset in the run's commit, under the same
lock and journal as the tables: a killed run leaves no trace here, so the next run takes
its items again, and a finished run's items are never fetched again."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.dataset.staging import table_files
from tasks.web.items import ListedItem

FETCHED_TABLE = "fetched"
FEEDS_TABLE = "feeds"
TIMESTAMP = pa.timestamp("us", tz="UTC")

FETCHED_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("url", pa.string()),  # the canonical URL the item was listed under
        ("final_url", pa.string()),  # where redirects led
        ("canonical_url", pa.string()),  # the page's own <link rel="canonical">, when it has one
        ("guid", pa.string()),
        ("status", pa.int32()),  # the HTTP status; null when no response came
        ("outcome", pa.string()),  # "fetched" (handed to analysis) or the reason it was rejected
        ("sha256", pa.string()),  # of the body as archived
        ("bytes", pa.int64()),
        ("seconds", pa.float64()),
        ("fetched_at", TIMESTAMP),
        ("archive", pa.string()),  # the WARC file holding the response, relative to the output root
    ]
)
FEEDS_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("url", pa.string()),
        ("etag", pa.string()),
        ("last_modified", pa.string()),
        ("status", pa.int32()),
        ("checked_at", TIMESTAMP),
    ]
)


Validators = dict[str, tuple[str | None, str | None]]  # feed URL -> (ETag, Last-Modified)


def guid_key(source: str, guid: str) -> str:
    """A guid means something only within its feed's source (feeds number their items alike)."""
    return f"guid:{source}:{guid}"


@dataclass
class FetchState:
    """What the output root says earlier runs took: item keys (canonical URLs, and
    `guid:` keys) -> the run that took them, and each feed's validators."""

    taken: dict[str, str] = field(default_factory=dict)
    validators: Validators = field(default_factory=dict)

    @classmethod
    def load(cls, output_root: str | Path) -> FetchState:
        state = cls()
        root = Path(output_root)
        for path in table_files(root / FETCHED_TABLE):
            columns = ("source", "url", "canonical_url", "guid", "run_id")
            table = pq.read_table(path, columns=list(columns))
            for source, url, canonical, guid, run_id in zip(*(table.column(c).to_pylist() for c in columns)):
                for key in (url, canonical, guid_key(source, guid) if guid else None):
                    if key:
                        state.taken.setdefault(key, run_id)
        checked: dict[str, object] = {}
        for path in table_files(root / FEEDS_TABLE):
            for row in pq.read_table(path).to_pylist():
                if row["url"] not in checked or row["checked_at"] >= checked[row["url"]]:
                    checked[row["url"]] = row["checked_at"]
                    state.validators[row["url"]] = (row["etag"], row["last_modified"])
        return state

    def taken_by(self, item: ListedItem) -> str | None:
        """The run that took this item already (by canonical URL, else by guid), or None."""
        return self.taken.get(item.url) or (self.taken.get(guid_key(item.source, item.guid)) if item.guid else None)
