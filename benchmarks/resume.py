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
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness import ensure_corpus  # noqa: E402  (this folder, on the path as the script's own)

from tasks.dataset.run_record import read_run_records  # noqa: E402
from tests.cli_runs import kill_after_finished_shards, labelled_results, log_tail, start_cli_run  # noqa: E402


def timed_run(corpus: Path, output: Path, home: Path) -> float:
    started = time.perf_counter()
    if start_cli_run(corpus, output, home).wait() != 0:
        raise SystemExit(f"run into {output} failed:\n{log_tail(home)}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000, help="corpus under benchmarks/corpus/<docs> (make_corpus.py)")
    parser.add_argument("--kill-after", type=int, default=2, help="finished shards (stance stage) before the kill")
    args = parser.parse_args()
    corpus = ensure_corpus(args.docs, None)
    work = Path(tempfile.mkdtemp(prefix="newsflow-resume-"))
    started = time.perf_counter()
    from_cache = kill_after_finished_shards(start_cli_run(corpus, work / "out", work / "home-killed"), work / "out", args.kill_after, timeout_s=3600)
    killed_at = time.perf_counter() - started
    resumed = timed_run(corpus, work / "out", work / "home-resumed")
    full = timed_run(corpus, work / "full", work / "home-full")
    identical = all(a.equals(b) for a, b in zip(labelled_results(work / "out"), labelled_results(work / "full")))
    records = read_run_records(work / "out")
    report = {
        "docs": args.docs,
        "killed_after_s": round(killed_at, 1),
        "shards_finished_at_kill": from_cache,
        "resumed_run_s": round(resumed, 1),
        "uninterrupted_run_s": round(full, 1),
        "killed_plus_resumed_over_uninterrupted": round((killed_at + resumed) / full, 3),
        "identical_results": identical,
        "statuses": sorted(r["status"] for r in records),
        "resumed_cache": next(r["cache"] for r in records if r["status"] == "completed"),
    }
    out = REPO / "benchmarks" / "results" / f"resume-{args.docs}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
