"""Per-file accounting: every record read from an input file is either kept or rejected,
and the run record proves it file by file (read = kept + rejected)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tasks.records import ShardRef
from tasks.stages.ingest import STAGE as INGEST_STAGE

RECORD_SUFFIX = re.compile(r"(?::\d+|#\d+)$")  # `file:line` (JSON lines), `file#row` (tables)


def origin_file(origin: str, files: set[str]) -> str:
    """The input file an origin points into."""
    if origin in files:
        return origin
    stripped = RECORD_SUFFIX.sub("", origin)
    return stripped if stripped in files else origin


def per_file_counts(read: Iterable[str], kept: Iterable[str], rejected: Iterable[str], files: Iterable[str]) -> dict[str, dict[str, int]]:
    """{file: {read, kept, rejected}} from the origins of what was read, kept and rejected."""
    known = set(files)
    counts = {name: Counter(origin_file(o, known) for o in origins) for name, origins in (("read", read), ("kept", kept), ("rejected", rejected))}
    every = sorted(set().union(*counts.values()) | known)
    return {f: {name: counts[name][f] for name in ("read", "kept", "rejected")} for f in every}


def accounting_summary(per_file: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Totals, whether every file balances, and the files that do not (a run that stopped early)."""
    unbalanced = [f for f, c in per_file.items() if c["read"] != c["kept"] + c["rejected"]]
    totals = {name: sum(c[name] for c in per_file.values()) for name in ("read", "kept", "rejected")}
    return {**totals, "files": len(per_file), "balanced": not unbalanced, "unbalanced_files": unbalanced[:20], "per_file": per_file}


def read_origins(ingested: list[ShardRef], rejected: pa.Table) -> list[str]:
    """Where every record the run read came from: the rows ingest passed on (one column
    of its staging files) and what listing and reading rejected (stage `ingest` in the
    run's rejected table, which is in hand already)."""
    passed_on = [o for ref in ingested for o in pq.read_table(ref.path, columns=["origin"]).column("origin").to_pylist()]
    at_ingest = rejected.filter(pc.equal(rejected.column("stage"), INGEST_STAGE)).column("origin").to_pylist()
    return passed_on + at_ingest
