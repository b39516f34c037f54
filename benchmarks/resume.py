"""What a kill costs: `newsflow run` over a corpus is killed (SIGKILL, its whole process
group) once some shards are finished, then run again; the resumed run's wall time is
compared with an uninterrupted run's, and their results row for row. Writes JSON.

    python benchmarks/resume.py --docs 1000 --kill-after 2

Each run is a fresh CLI process with its own Prefect home (ephemeral server), default
config. Never part of the tests (tests/integration/test_crash_and_rerun.py checks the
behaviour on a small corpus)."""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tasks.shard_cache import CACHE_DIR, finished_entries  # noqa: E402


def start(corpus: Path, output: Path, home: Path) -> subprocess.Popen:
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREFECT_HOME": str(home), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "flows.cli", "run", "--input", str(corpus), "--output", str(output)]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def timed_run(corpus: Path, output: Path, home: Path) -> float:
    started = time.perf_counter()
    if start(corpus, output, home).wait() != 0:
        raise SystemExit(f"run into {output} failed")
    return time.perf_counter() - started


def kill_after(corpus: Path, output: Path, home: Path, shards: int) -> float:
    started = time.perf_counter()
    run = start(corpus, output, home)
    while len(finished_entries(output / CACHE_DIR, "stance")) < shards:
        if run.poll() is not None:
            raise SystemExit("the run finished before it could be killed: lower --kill-after")
        time.sleep(0.1)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    return time.perf_counter() - started


def results(output: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    documents = pd.read_parquet(output / "documents", columns=["doc_id", "sentiment", "summary"]).sort_values("doc_id").reset_index(drop=True)
    stances = pd.read_parquet(output / "stances", columns=["doc_id", "target", "label"]).sort_values(["doc_id", "target"]).reset_index(drop=True)
    return documents, stances


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000, help="corpus under benchmarks/corpus/<docs> (make_corpus.py)")
    parser.add_argument("--kill-after", type=int, default=2, help="finished shards (stance stage) before the kill")
    args = parser.parse_args()
    corpus = REPO / "benchmarks" / "corpus" / str(args.docs)
    work = Path(tempfile.mkdtemp(prefix="newsflow-resume-"))
    killed_at = kill_after(corpus, work / "out", work / "home-killed", args.kill_after)
    from_cache = len(finished_entries(work / "out" / CACHE_DIR, "stance"))
    resumed = timed_run(corpus, work / "out", work / "home-resumed")
    full = timed_run(corpus, work / "full", work / "home-full")
    identical = all(a.equals(b) for a, b in zip(results(work / "out"), results(work / "full")))
    record = pd.read_parquet(work / "out" / "runs")
    report = {
        "docs": args.docs, "killed_after_s": round(killed_at, 1), "shards_finished_at_kill": from_cache,
        "resumed_run_s": round(resumed, 1), "uninterrupted_run_s": round(full, 1),
        "killed_plus_resumed_over_uninterrupted": round((killed_at + resumed) / full, 3),
        "identical_results": identical, "statuses": sorted(record.status),
        "resumed_cache": json.loads(record[record.status == "completed"].cache.iloc[0]),
    }
    out = REPO / "benchmarks" / "results" / f"resume-{args.docs}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
