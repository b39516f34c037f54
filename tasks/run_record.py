"""The run record: which run, config, code and models produced the rows, with counts
and timings, written as one row of the `runs` table."""
from __future__ import annotations

import hashlib
import json
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
SPEED_ONLY = {"encoder": ("threads", "max_tokens_per_batch")}  # keys of those sections that change speed, not rows


def analysis_fingerprint(config: PipelineConfig, models: dict[str, Any]) -> str:
    """What decides the content of a result row: the stage settings, the models' weights and
    the stage code. Rows of the same document under the same fingerprint are the same rows,
    so the output keeps one of them; a changed setting, model or code adds new rows."""
    material = {
        "settings": {name: getattr(config, name).model_dump(mode="json", exclude=set(SPEED_ONLY.get(name, ()))) for name in ANALYSIS_SECTIONS},
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
    ("accounting", pa.string()), ("cache", pa.string()), ("processes", pa.string()),
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


JSON_COLUMNS = ("parameters", "config", "models", "libraries", "counts", "rejected_by_reason", "stage_seconds", "outputs", "accounting", "cache", "processes")


def read_run_records(output_root: str | Path) -> list[dict[str, Any]]:
    """Every run recorded under an output root, newest first, with its JSON parts parsed.
    Files are read one by one: records written by older versions lack newer columns."""
    folder = Path(output_root) / "runs"
    files = sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith((".", "_"))) if folder.is_dir() else []
    rows = [row for path in files for row in pq.read_table(path).to_pylist()]
    for row in rows:
        for key in JSON_COLUMNS:
            if isinstance(row.get(key), str):
                row[key] = json.loads(row[key])
    return sorted(rows, key=lambda r: str(r.get("started_at") or ""), reverse=True)  # UTC throughout: text order is time order

