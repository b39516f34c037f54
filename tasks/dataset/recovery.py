"""What a run does first: finish or clean up after earlier runs that died (SIGKILL, a
lost machine) or failed. Their run records still saying `running` become `interrupted`,
a commit they had started is completed from its journal, and their staging is removed;
their finished shards stay in the shard cache for whoever runs the same work again."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.dataset.commit import roll_forward
from tasks.dataset.run_record import RunRecord
from tasks.dataset.staging import remove_staging, staging_root, write_parquet_atomic


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


def record_path(output_root: Path, run_id: str) -> Path | None:
    return next(iter(sorted((output_root / "runs").glob(f"run_date=*/{run_id}-run.parquet"))), None)


def read_record(path: Path) -> RunRecord:
    """A run record, whatever schema version wrote it (older ones lack host/pid)."""
    return RunRecord.from_row(pq.read_table(path).to_pylist()[0])


def still_running(record: RunRecord) -> bool:
    """A `running` record whose process is alive, or lives on another host (which this
    host cannot check): leave it alone."""
    if record.status != "running":
        return False
    if record.host != socket.gethostname():
        return True
    return record.pid is not None and process_alive(record.pid)


def abandoned(record: RunRecord, committed: list[str]) -> RunRecord | None:
    """What a dead or failed run's record says once recovered (None: nothing to add)."""
    who = f"the run's process (pid {record.pid} on {record.host})"
    if record.status == "running":
        return replace(
            record,
            status="interrupted",
            error=(
                f"{who} ended during its commit; the next run finished the commit ({len(committed)} files)"
                if committed
                else f"{who} ended before the run finished"
            ),
        )
    if committed:
        return replace(record, error=f"{record.error}; the next run finished its commit ({len(committed)} files)")
    return None


def mark_abandoned(path: Path, record: RunRecord, committed: list[str]) -> None:
    """Rewrite a dead or failed run's record to say what happened to it (in its file's own schema)."""
    updated = abandoned(record, committed)
    if updated is None:
        return
    table = pq.read_table(path)
    row = {**table.to_pylist()[0], **{k: v for k, v in updated.to_row().items() if k in ("status", "error")}}
    write_parquet_atomic(pa.Table.from_pylist([row], schema=table.schema), path, compression="zstd")


def recover_abandoned_runs(output_root: str | Path) -> list[str]:
    """Recover every earlier run under the output root that will never finish; returns
    their run ids. Runs alive on this host or on another are left alone. Call it under
    `output_lock`, the lock a run also holds while it creates its staging folder and its
    `running` record: every unfinished run has a staging folder, so only those are read,
    not the whole run history."""
    root = Path(output_root)
    folder = staging_root(root)
    recovered = []
    for staging in sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []:
        path = record_path(root, staging.name)
        record = read_record(path) if path else RunRecord(status="unknown")
        if still_running(record):
            continue
        committed = roll_forward(staging)
        if path:
            mark_abandoned(path, record, committed)
        remove_staging(staging)
        recovered.append(staging.name)
    return recovered
