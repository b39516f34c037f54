"""The run record: which run, config, code and models produced the rows, with counts
and timings, written as one row of the `runs` table."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.dataset.output import RunContext, write_table
from tasks.dataset.staging import table_files


def output_files(paths: list[str]) -> list[dict[str, Any]]:
    return [{"path": p, "table": table_of(Path(p)), "rows": pq.read_metadata(p).num_rows} for p in sorted(paths)]


def table_of(path: Path) -> str:
    """`documents` for <root>/documents/run_date=…/file; `_index/stories` for <root>/_index/stories/…"""
    if "_index" in path.parts[:-1]:
        return "/".join(path.parts[path.parts.index("_index") :][:2])
    return path.parent.parent.name


def column(arrow_type: pa.DataType, default: Any = None, json_text: bool = False) -> Any:
    """A run record field: its Arrow type in the `runs` table, and whether it is stored as JSON text."""
    factory = {"default_factory": type(default)} if isinstance(default, (dict, list)) else {"default": default}
    return field(**factory, metadata={"arrow": arrow_type, "json": json_text})


TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass
class RunRecord:
    """One run: which run, config, code and models produced its rows, with counts and
    timings. Written as one row of the `runs` table when the run starts (`running`) and
    again when it ends. Nested parts are JSON text, which DuckDB and pandas both read."""

    run_id: str = field(default="", metadata={"arrow": None})  # the `run_id` column every output file gets
    flow_run_name: str | None = column(pa.string())
    deployment: str | None = column(pa.string())
    status: str = column(pa.string(), "running")  # running | completed | failed | interrupted
    error: str | None = column(pa.string())
    failed_stage: str | None = column(pa.string())  # the task run that failed first, e.g. "encode [shard 3]"
    host: str | None = column(pa.string())
    pid: int | None = column(pa.int64())
    analysis_sha256: str | None = column(pa.string())
    started_at: datetime | None = column(TIMESTAMP)
    finished_at: datetime | None = column(TIMESTAMP)
    duration_s: float | None = column(pa.float64())
    parameters: dict[str, Any] = column(pa.string(), {}, json_text=True)
    config: dict[str, Any] = column(pa.string(), {}, json_text=True)
    config_sha256: str | None = column(pa.string())
    code_version: str | None = column(pa.string())
    models: dict[str, Any] = column(pa.string(), {}, json_text=True)
    libraries: dict[str, Any] = column(pa.string(), {}, json_text=True)
    n_read: int | None = column(pa.int64())
    n_kept: int | None = column(pa.int64())
    n_rejected: int | None = column(pa.int64())
    counts: dict[str, Any] = column(pa.string(), {}, json_text=True)
    rejected_by_reason: dict[str, Any] = column(pa.string(), {}, json_text=True)
    stage_seconds: dict[str, Any] = column(pa.string(), {}, json_text=True)
    outputs: list[dict[str, Any]] = column(pa.string(), [], json_text=True)
    accounting: dict[str, Any] = column(pa.string(), {}, json_text=True)
    cache: dict[str, Any] = column(pa.string(), {}, json_text=True)
    processes: list[str] = column(pa.string(), [], json_text=True)
    sources: dict[str, Any] = column(pa.string(), {}, json_text=True)  # web sources: listed, new, fetched, not modified, rejected, bytes, seconds

    @classmethod
    def schema(cls) -> pa.Schema:
        return pa.schema([(f.name, f.metadata["arrow"]) for f in fields(cls) if f.metadata["arrow"] is not None])

    @classmethod
    def json_columns(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls) if f.metadata.get("json"))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_row(self) -> dict[str, Any]:
        """The `runs` row: nested parts as JSON text, without run_id (written as a column of its own)."""
        json_columns = self.json_columns()
        return {
            name: json.dumps(value, sort_keys=True, default=str) if name in json_columns else value
            for name, value in self.as_dict().items()
            if name != "run_id"
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RunRecord:
        """A record from a `runs` row, whatever version wrote it: older rows lack newer columns."""
        known = {f.name for f in fields(cls)}
        json_columns = cls.json_columns()
        values = {k: json.loads(v) if k in json_columns and isinstance(v, str) else v for k, v in row.items() if k in known and v is not None}
        return cls(**values)


RUNS_SCHEMA = RunRecord.schema()
JSON_COLUMNS = RunRecord.json_columns()


def write_run_record(context: RunContext, record: RunRecord) -> str:
    """One row in `runs` (a run's later record replaces its earlier one)."""
    table = pa.Table.from_pylist([record.to_row()], schema=RUNS_SCHEMA)
    path, _ = write_table(context, "runs", "run", table)
    return path


def now_utc() -> datetime:
    return datetime.now(UTC)


def read_runs(output_root: str | Path) -> list[RunRecord]:
    """Every run recorded under an output root, newest first. Files are read one by one:
    records written by older versions lack newer columns."""
    folder = Path(output_root) / "runs"
    records = [RunRecord.from_row(row) for path in table_files(folder) for row in pq.ParquetFile(path).read().to_pylist()]  # no dataset layer: fast
    return sorted(records, key=lambda r: str(r.started_at or ""), reverse=True)  # UTC throughout: text order is time order


def read_run_records(output_root: str | Path) -> list[dict[str, Any]]:
    """Every run recorded under an output root, newest first, as dicts with their JSON parts parsed."""
    return [record.as_dict() for record in read_runs(output_root)]
