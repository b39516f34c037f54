"""`newsflow run` as a process of its own, for the tests and benchmarks that kill one or
run several at once: each with its own Prefect home (so its own ephemeral server), its
own process group (so a kill takes the server too), and its output in a log file (a pipe
nobody drains while the run is watched would stall it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from tasks.dataset.shard_cache import CACHE_DIR, finished_entries

REPO_ROOT = Path(__file__).resolve().parent.parent


def start_cli_run(inputs: Path, output: Path, prefect_home: Path, *settings: str, api_url: str | None = None) -> subprocess.Popen:
    """`newsflow run --input inputs --output output [--set ...]`, started, not awaited; against
    the Prefect API at `api_url` when given, else its own ephemeral one."""
    prefect_home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PREFECT_HOME": str(prefect_home), **({"PREFECT_API_URL": api_url} if api_url else {})}
    command = [sys.executable, "-m", "flows.cli", "run", "--input", str(inputs), "--output", str(output), *(a for s in settings for a in ("--set", s))]
    log = log_path(prefect_home).open("w")
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def log_path(prefect_home: Path) -> Path:
    return prefect_home.parent / f"{prefect_home.name}.log"


def log_tail(prefect_home: Path) -> str:
    return log_path(prefect_home).read_text(errors="replace")[-3000:]


def kill_after_finished_shards(run: subprocess.Popen, output: Path, shards: int, timeout_s: float = 300) -> int:
    """SIGKILL the run's process group once `shards` shards have finished their last stage
    (stance) in the shard cache; returns how many had. Raises if the run ends first."""
    deadline = time.monotonic() + timeout_s
    while len(finished_entries(output / CACHE_DIR, "stance")) < shards and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if run.poll() is not None:
        raise RuntimeError(f"the run ended before {shards} shards were finished: it could not be killed mid-way")
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    return len(finished_entries(output / CACHE_DIR, "stance"))


def labelled_results(output: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What two runs over the same input must agree on, row for row: each document's id,
    sentiment and summary, and each stance's document, target and label."""
    documents = pd.read_parquet(output / "documents", columns=["doc_id", "sentiment", "summary"])
    stances = pd.read_parquet(output / "stances", columns=["doc_id", "target", "label"])
    return (documents.sort_values("doc_id").reset_index(drop=True), stances.sort_values(["doc_id", "target"]).reset_index(drop=True))
