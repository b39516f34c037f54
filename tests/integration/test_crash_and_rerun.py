"""Crash safety, resume and reruns, for real: a `newsflow run` process killed with SIGKILL
in the middle of 100 documents, then run again; a transient I/O error that a retry absorbs
and a bug that fails its stage at once. (Two runs at once: test_overlapping_runs.py, a
module of its own so that a second test worker can take it.)"""

from __future__ import annotations

import errno
import json
import random
import re
import subprocess
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tasks.dataset.shard_cache import CACHE_DIR, finished_entries
from tests.cli_runs import kill_after_finished_shards, labelled_results, log_tail, start_cli_run
from tests.conftest import SAMPLES, run_pipeline

ENGLISH_SAMPLES = [
    "imf_warns_brazil_debt.txt",
    "nato_air_defence_timeline.txt",
    "port_strike_daily_courier.txt",
    "un_adaptation_fund_record_pledges.txt",
    "who_measles_india_russia_geneva.txt",
]
CORPUS_DOCUMENTS = 100  # ten shards: a kill after three lands mid-way
SHARD_SIZE = 10
# These runs are about commits and resumes, not stance: judging the alias table's entries
# only keeps three runs over 100 documents as short as they were before every entity was judged.
JUDGED = "configured"


def sample_sentences() -> list[str]:
    text = " ".join((SAMPLES / name).read_text(encoding="utf-8") for name in ENGLISH_SAMPLES)
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 17]


def write_corpus(folder: Path, documents: int = CORPUS_DOCUMENTS, files: int = 10) -> Path:
    """`documents` short English articles (two sample sentences after a unique dateline),
    as JSON lines spread over `files` files."""
    rng = random.Random(7)
    pool = sample_sentences()
    folder.mkdir(parents=True, exist_ok=True)
    per_file = documents // files
    for f in range(files):
        with (folder / f"wire-{f:02d}.jsonl").open("w", encoding="utf-8") as handle:
            for n in range(f * per_file, (f + 1) * per_file):
                body = f"Dispatch {n} from the regional desk. " + " ".join(rng.sample(pool, 2))
                handle.write(json.dumps({"title": f"Dispatch {n}", "text": body}) + "\n")
    return folder


def start_run(corpus: Path, output: Path, prefect_home: Path) -> subprocess.Popen:
    return start_cli_run(corpus, output, prefect_home, f"run.shard_size={SHARD_SIZE}", f"stance.targets={JUDGED}")


def dataset_files(output: Path) -> list[Path]:
    """The Parquet files a reader of the dataset sees (pyarrow skips names starting with . or _)."""
    return [p for p in output.rglob("*.parquet") if not any(part.startswith((".", "_")) for part in p.relative_to(output).parts)]


def run_in_process(corpus: Path, output: Path, **overrides) -> dict:
    return run_pipeline(corpus, output, **{"run.shard_size": SHARD_SIZE, "stance.targets": JUDGED, **overrides})


@pytest.mark.slow
def test_a_run_killed_mid_way_resumes_from_its_finished_shards_and_ends_identical(prefect_harness, tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    output = tmp_path / "out"
    killed = start_run(corpus, output, tmp_path / "prefect-killed")
    try:
        finished_before_kill = kill_after_finished_shards(killed, output, shards=3)
    except RuntimeError as error:
        pytest.fail(f"{error}\n{log_tail(tmp_path / 'prefect-killed')}")
    assert 3 <= finished_before_kill < CORPUS_DOCUMENTS // SHARD_SIZE, "killed in the middle"

    # Nothing of the killed run's results is visible, and whatever a reader sees is whole.
    visible = dataset_files(output)
    assert not [p for p in visible if p.parts[len(output.parts)] in ("documents", "stances", "sentences")]
    for path in visible:
        pq.read_table(path)
    records = pd.read_parquet(output / "runs")
    assert records.status.tolist() == ["running"], "the killed run's record says it did not finish"
    killed_id = records.run_id.iloc[0]

    resumed = run_in_process(corpus, output)
    assert resumed["status"] == "completed"
    assert resumed["cache"]["stance"]["from_cache"] >= finished_before_kill
    shards = CORPUS_DOCUMENTS // SHARD_SIZE
    assert resumed["cache"]["encode"]["computed"] + resumed["cache"]["encode"]["from_cache"] == shards, "every shard encoded or taken, once"
    assert resumed["cache"]["encode"]["computed"] <= shards - finished_before_kill
    assert resumed["cache"]["encode"]["from_cache"] >= finished_before_kill, "shards finished before the kill are not encoded again"
    assert resumed["accounting"]["balanced"] and resumed["n_kept"] == CORPUS_DOCUMENTS
    records = pd.read_parquet(output / "runs").set_index("run_id")
    assert records.loc[killed_id, "status"] == "interrupted" and "ended before the run finished" in records.loc[killed_id, "error"]
    assert not (output / "_staging" / killed_id).exists()
    assert not finished_entries(output / CACHE_DIR, "encode"), "a completed run clears the cache entries it used"

    uninterrupted = run_in_process(corpus, tmp_path / "uninterrupted")
    assert uninterrupted["cache"]["encode"]["from_cache"] == 0
    for resumed_table, reference in zip(labelled_results(output), labelled_results(tmp_path / "uninterrupted")):
        pd.testing.assert_frame_equal(resumed_table, reference)


def test_a_transient_write_error_is_retried_and_the_run_completes(prefect_harness, tmp_path, monkeypatch):
    import tasks.dataset.output

    real_write, failures = tasks.dataset.output.write_parquet_atomic, []

    def flaky_write(table, path, *args, **kwargs):
        if not failures and "documents" in str(path):
            failures.append(path)
            raise OSError(errno.EIO, "Input/output error (injected once)")
        return real_write(table, path, *args, **kwargs)

    monkeypatch.setattr(tasks.dataset.output, "write_parquet_atomic", flaky_write)
    summary = run_in_process(SAMPLES / "imf_warns_brazil_debt.txt", tmp_path / "out")
    assert failures and summary["status"] == "completed" and summary["n_kept"] == 1


def test_a_stage_that_fails_for_good_fails_at_once_and_the_record_says_where(prefect_harness, tmp_path, monkeypatch):
    from dataclasses import replace

    from flows.stages import STAGE_BY_NAME

    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise ValueError("sentiment head returned 4 labels for 3 classes")

    monkeypatch.setitem(STAGE_BY_NAME, "sentiment", replace(STAGE_BY_NAME["sentiment"], compute=broken))
    from flows.pipeline import StageFailed

    with pytest.raises(StageFailed, match=r"sentiment \[shard 1\] failed: .*4 labels for 3 classes"):
        run_in_process(SAMPLES / "imf_warns_brazil_debt.txt", tmp_path / "out")
    assert len(calls) == 1, "a ValueError is not retried"
    record = pd.read_parquet(tmp_path / "out" / "runs").iloc[0]
    assert record.status == "failed" and record.failed_stage == "sentiment [shard 1]" and "4 labels" in record.error
    from prefect import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(record.run_id).state
    assert state.is_failed() and "sentiment [shard 1] failed" in state.message, "Prefect's state says where, too"
    assert not (tmp_path / "out" / "documents").exists(), "a failed run commits nothing"
    assert finished_entries(tmp_path / "out" / CACHE_DIR, "encode"), "its finished shards wait in the cache for the next run"
