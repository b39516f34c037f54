"""The run record: which run, config, code and models produced the rows, with counts
and timings, written as one row of the `runs` table."""
from __future__ import annotations

import hashlib
import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.config import PipelineConfig, resolve_resource
from tasks.versions import code_fingerprint
from tasks.encode import pipeline_encoder
from tasks.models.backends import backend_provenance
from tasks.models.encoder import model_folder, weights_sha256
from tasks.models.heads import head_kind, head_sha256, read_card
from tasks.staging import write_parquet_atomic
from tasks.write import RunContext, write_table

def model_provenance(config: PipelineConfig) -> dict[str, dict[str, str]]:
    """Ids and weight hashes of every model the run uses; fails on a missing model, or on a
    head trained over another encoder's features (its output would be noise)."""
    encoder = model_folder(config.encoder.model)
    encoder_sha = weights_sha256(encoder)
    heads = {task: resolve_resource(getattr(config, task).head) for task in ("sentiment", "stance") if getattr(config, task).kind == "head"}
    for name, path in heads.items():
        trained_on = read_card(path).get("encoder_weights_sha256")
        if trained_on and trained_on != encoder_sha:
            raise ValueError(f"the {name} head {path} was trained on another encoder than {config.encoder.model}; retrain it with `newsflow train`")
    return {
        "encoder": {"id": config.encoder.model, "path": str(encoder), "weights_sha256": encoder_sha, **pipeline_encoder(config).provenance()},
        **backend_provenance(config),  # a Hugging Face backend stands in for its task's head
        **{name: {"id": path.name, "path": str(path), "kind": head_kind(path), "weights_sha256": head_sha256(path)} for name, path in heads.items()},
    }


ANALYSIS_SECTIONS = ("clean", "encoder", "summary", "sentiment", "stance")  # config sections a row's content depends on


def analysis_fingerprint(config: PipelineConfig, models: dict[str, Any]) -> str:
    """What decides the content of a result row: the stage settings, the models' weights and
    the stage code. Rows of the same document under the same fingerprint are the same rows,
    so the output keeps one of them; a changed setting, model or code adds new rows."""
    material = {
        "settings": {name: getattr(config, name).model_dump(mode="json") for name in ANALYSIS_SECTIONS},
        "models": {name: model.get("weights_sha256") or model.get("id") for name, model in sorted(models.items())}, "code": code_fingerprint(),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def output_files(paths: list[str]) -> list[dict[str, Any]]:
    return [{"path": p, "table": Path(p).parent.parent.name, "rows": pq.read_metadata(p).num_rows} for p in sorted(paths)]


RUNS_SCHEMA = pa.schema([
    ("flow_run_name", pa.string()), ("deployment", pa.string()), ("status", pa.string()), ("error", pa.string()),
    ("failed_stage", pa.string()), ("host", pa.string()), ("pid", pa.int64()), ("analysis_sha256", pa.string()),
    ("started_at", pa.timestamp("us", tz="UTC")), ("finished_at", pa.timestamp("us", tz="UTC")), ("duration_s", pa.float64()),
    ("parameters", pa.string()), ("config", pa.string()), ("config_sha256", pa.string()),
    ("code_version", pa.string()), ("models", pa.string()), ("libraries", pa.string()),
    ("n_read", pa.int64()), ("n_kept", pa.int64()), ("n_rejected", pa.int64()),
    ("counts", pa.string()), ("rejected_by_reason", pa.string()), ("stage_seconds", pa.string()), ("outputs", pa.string()),
    ("accounting", pa.string()), ("cache", pa.string()),
])


def write_run_record(context: RunContext, record: dict[str, Any]) -> str:
    """One row in `runs` (a run's later record replaces its earlier one). Nested parts are
    JSON text, which DuckDB and pandas both read."""
    row = {key: json.dumps(value, sort_keys=True, default=str) if isinstance(value, (dict, list)) else value for key, value in record.items()}
    table = pa.Table.from_pylist([row], schema=RUNS_SCHEMA)
    path, _ = write_table(context, "runs", "run", table)
    return path


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


JSON_COLUMNS = ("parameters", "config", "models", "libraries", "counts", "rejected_by_reason", "stage_seconds", "outputs", "accounting", "cache")


def read_run_records(output_root: str | Path) -> list[dict[str, Any]]:
    """Every run recorded under an output root, newest first, with its JSON parts parsed."""
    folder = Path(output_root) / "runs"
    if not folder.is_dir():
        return []
    rows = pq.ParquetDataset(str(folder)).read().to_pylist()
    for row in rows:
        for key in JSON_COLUMNS:
            if isinstance(row.get(key), str):
                row[key] = json.loads(row[key])
    return sorted(rows, key=lambda r: r["started_at"], reverse=True)


def process_identity() -> dict[str, Any]:
    """Where a run's process lives, so a later run can tell that it died."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def interrupted_runs(output_root: str | Path) -> list[Path]:
    """Run records still saying `running` whose process on this host is gone (killed,
    or the machine stopped): those runs will never finish."""
    folder = Path(output_root) / "runs"
    found = []
    for path in sorted(folder.rglob("*.parquet")) if folder.is_dir() else []:
        if path.name.startswith((".", "_")):
            continue
        row = pq.read_table(path, columns=["status", "host", "pid"]).to_pylist()[0]
        if row["status"] == "running" and row["host"] == socket.gethostname() and row["pid"] and not process_alive(row["pid"]):
            found.append(path)
    return found


def mark_interrupted(path: Path) -> str:
    """Rewrite a dead run's record as `interrupted`; returns its run id."""
    table = pq.read_table(path)
    row = table.to_pylist()[0]
    row.update(status="interrupted", error=f"the run's process (pid {row['pid']} on {row['host']}) ended before the run finished")
    fixed = pa.Table.from_pylist([row], schema=table.schema)
    write_parquet_atomic(fixed, path, compression="zstd")
    return row["run_id"]
