"""The pieces under crash safety and reruns, one at a time: the shard cache's keys and
entries, the commit that moves staged outputs into the dataset, per-file accounting, and
which errors a stage retries."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tasks.dataset.commit as commit
import tasks.dataset.shard_cache as shard_cache
from tasks.config import CleanConfig
from tasks.dataset.accounting import accounting_summary, origin_file, per_file_counts
from tasks.dataset.commit import apply_moves, commit_shard_outputs, documents_in_output, output_lock, roll_forward
from tasks.dataset.output import RunContext, write_table
from tasks.dataset.recovery import recover_abandoned_runs
from tasks.dataset.run_record import RunRecord, read_run_records, write_run_record
from tasks.dataset.shard_cache import ShardCache, finished_entries, prune_stale_entries, through_cache
from tasks.dataset.staging import write_shard
from tasks.records import ShardRef
from tasks.retries import is_transient

# --- shard cache ---------------------------------------------------------------------------


def a_shard(staging: Path, stage: str = "clean", rows: int = 2) -> ShardRef:
    table = pa.table({"doc_id": [f"d{i}" for i in range(rows)], "origin": [f"f{i}.txt" for i in range(rows)]})
    return write_shard(staging, stage, 0, table, parts={"extra": table.slice(0, 1)})


def test_a_key_changes_with_content_settings_models_and_code(tmp_path):
    shard = a_shard(tmp_path)
    cache = ShardCache(str(tmp_path / "cache"), code="c1", models="m1")
    key = cache.key("encode", shard, CleanConfig())
    assert key == cache.key("encode", shard, CleanConfig()), "the same inputs give the same key"
    assert key != cache.key("encode", replace(shard, content_hash="other"), CleanConfig())
    assert key != cache.key("encode", shard, CleanConfig(min_words=5))
    assert key != replace(cache, models="m2").key("encode", shard, CleanConfig())
    assert key != replace(cache, code="c2").key("encode", shard, CleanConfig())
    assert key != cache.key("stance", shard, CleanConfig())
    assert cache.key("clean", shard, CleanConfig(), uses_models=False) == replace(cache, models="m2").key("clean", shard, CleanConfig(), uses_models=False)


def test_the_encode_key_follows_the_alias_table_and_targets_not_the_nli_templates(tmp_path):
    from flows.stages import STAGE_BY_NAME, declared_result_settings
    from tasks.config import load_config

    def encode_settings(config):
        return declared_result_settings(STAGE_BY_NAME["encode"], config)

    shard = a_shard(tmp_path)
    cache = ShardCache(str(tmp_path / "cache"), code="c", models="m")
    base = load_config(None)
    key = cache.key("encode", shard, encode_settings(base))
    other_templates = load_config(None, {"stance.templates": {k: f"Here, {v}" for k, v in base.stance.templates.items()}})
    assert cache.key("encode", shard, encode_settings(other_templates)) == key
    fewer_known = load_config(None, {"entities.known": [t.model_dump() for t in base.entities.known[:1]]})
    assert cache.key("encode", shard, encode_settings(fewer_known)) != key
    assert cache.key("encode", shard, encode_settings(load_config(None, {"stance.targets": "configured"}))) != key
    assert cache.key("encode", shard, encode_settings(load_config(None, {"encoder.max_length": 128}))) != key


def test_a_finished_shard_is_taken_from_the_cache_not_computed(tmp_path):
    cache = ShardCache(str(tmp_path / "cache"), code="c", models="m")
    upstream = a_shard(tmp_path / "run1")
    computed = []

    def compute(staging: Path) -> ShardRef:
        computed.append(staging)
        return a_shard(staging, "encode", rows=3)

    first = through_cache(cache, "encode", upstream, {"x": 1}, str(tmp_path / "run1"), lambda: compute(tmp_path / "run1"))
    again = through_cache(cache, "encode", upstream, {"x": 1}, str(tmp_path / "run2"), lambda: compute(tmp_path / "run2"))
    assert len(computed) == 1 and not first.cached and again.cached
    assert again.cache_key == first.cache_key and Path(again.path).is_relative_to(tmp_path / "run2")
    assert pq.read_table(again.path).equals(pq.read_table(first.path)) and set(again.parts) == {"extra"}
    assert all(Path(p).is_relative_to(tmp_path / "run2") for p in again.parts.values()), "parts are linked into the run's staging too"
    cache.remove([first], "encode")
    assert Path(again.path).exists(), "a run's own links outlive the entry"
    assert all(Path(p).exists() for p in again.parts.values())
    third = through_cache(cache, "encode", upstream, {"x": 1}, str(tmp_path / "run3"), lambda: compute(tmp_path / "run3"))
    assert not third.cached and len(computed) == 2


def test_a_half_written_entry_is_never_taken(tmp_path):
    cache = ShardCache(str(tmp_path / "cache"), code="c", models="m")
    upstream = a_shard(tmp_path / "run")
    key = cache.key("encode", upstream, {})
    cache.entry("encode", key).mkdir(parents=True)  # a folder without its ref.json: a kill mid-publish
    assert cache.fetch("encode", key, 0, str(tmp_path / "run")) is None
    (tmp_path / "cache" / "encode" / f".{key}.123.tmp").mkdir()
    assert prune_stale_entries(tmp_path / "cache", older_than_days=0) == 2


def test_only_entries_no_run_came_back_to_are_pruned(tmp_path):
    cache = ShardCache(str(tmp_path / "cache"), code="c", models="m")
    fresh, old = (
        through_cache(
            cache, "encode", a_shard(tmp_path / name, rows=n), {}, str(tmp_path / name), lambda name=name, n=n: a_shard(tmp_path / name, "encode", rows=n)
        )
        for name, n in (("fresh", 1), ("old", 2))
    )
    eight_days_ago = time.time() - 8 * 86_400
    os.utime(cache.entry("encode", old.cache_key), (eight_days_ago, eight_days_ago))
    assert prune_stale_entries(tmp_path / "cache") == 1
    assert [e.name for e in finished_entries(tmp_path / "cache", "encode")] == [fresh.cache_key]


# --- commit ----------------------------------------------------------------------------------


def context_for(tmp_path: Path, run_id: str) -> RunContext:
    return RunContext(
        run_id=run_id,
        started_at=datetime(2026, 11, 27, tzinfo=UTC),
        output_root=str(tmp_path / "out"),
        config_sha256="c",
        staging=str(tmp_path / "out" / "_staging" / run_id),
        analysis_sha256="a1",
    )


def staged_shard(context: RunContext, doc_ids: list[str], part: str = "00000") -> ShardRef:
    documents = pa.table({"doc_id": doc_ids, "origin": [f"{d}.txt" for d in doc_ids]})
    stances = pa.table({"doc_id": [d for d in doc_ids for _ in range(2)], "target": ["IMF", "EU"] * len(doc_ids)})
    paths = {name: write_table(context, name, part, table, staged=True)[0] for name, table in (("documents", documents), ("stances", stances))}
    return ShardRef(stage="write", index=0, path=paths["documents"], rows=len(doc_ids), content_hash="", parts=paths)


def test_staged_outputs_are_invisible_until_the_commit(tmp_path):
    context = context_for(tmp_path, "run-1")
    shard = staged_shard(context, ["d1", "d2"])
    assert not (tmp_path / "out" / "documents").exists()
    commit = commit_shard_outputs(context, [shard])
    assert commit.kept == 2 and not commit.late_duplicates and len(commit.paths) == 2
    assert documents_in_output(tmp_path / "out", "a1") == {"d1": "run-1", "d2": "run-1"}
    assert documents_in_output(tmp_path / "out", "another analysis") == {}
    assert not list(Path(context.staging).rglob("*.parquet")), "the files moved, not copied"


def test_a_commit_waits_for_the_output_lock_and_then_sees_what_was_committed_under_it(tmp_path):
    first, second = context_for(tmp_path, "run-1"), context_for(tmp_path, "run-2")
    early, late = staged_shard(first, ["d1", "d2"]), staged_shard(second, ["d2", "d3"])
    with ThreadPoolExecutor(1) as pool:
        with output_lock(tmp_path / "out"):
            waiting = pool.submit(commit_shard_outputs, second, [late])
            time.sleep(0.3)
            assert not waiting.done(), "a commit waits while another holds the lock"
            commit_shard_outputs_unlocked(first, [early])
        result = waiting.result(timeout=30)
    assert result.kept == 1 and [r.origin for r in result.late_duplicates] == ["d2.txt"]


def commit_shard_outputs_unlocked(context: RunContext, written: list[ShardRef]) -> None:
    """What run-1's commit does once it holds the lock (the test holds it for it)."""
    staged_root = Path(context.staging) / "output"
    plan = [
        {"staged": p, "target": str(Path(context.output_root) / Path(p).relative_to(staged_root)), "leave_out": []}
        for ref in written
        for p in ref.parts.values()
    ]
    apply_moves(plan, context.compression)


def test_a_later_commit_leaves_out_what_another_run_committed_meanwhile(tmp_path):
    first, second = context_for(tmp_path, "run-1"), context_for(tmp_path, "run-2")
    early, late = staged_shard(first, ["d1", "d2"]), staged_shard(second, ["d2", "d3"])
    commit_shard_outputs(first, [early])
    commit = commit_shard_outputs(second, [late])
    assert commit.kept == 1 and [r.origin for r in commit.late_duplicates] == ["d2.txt"]
    assert "already in the output from run run-1" in commit.late_duplicates[0].detail
    documents = pq.ParquetDataset(str(tmp_path / "out" / "documents")).read()
    stances = pq.ParquetDataset(str(tmp_path / "out" / "stances")).read()
    assert sorted(documents.column("doc_id").to_pylist()) == ["d1", "d2", "d3"]
    assert sorted(stances.column("doc_id").to_pylist()) == ["d1", "d1", "d2", "d2", "d3", "d3"], "stances follow their document"


# --- accounting -------------------------------------------------------------------------------


def test_origins_map_to_their_files_and_each_file_balances():
    files = ["/in/a.jsonl", "/in/b.csv", "/in/c:1.txt"]
    assert origin_file("/in/a.jsonl:12", set(files)) == "/in/a.jsonl"
    assert origin_file("/in/b.csv#3", set(files)) == "/in/b.csv"
    assert origin_file("/in/c:1.txt", set(files)) == "/in/c:1.txt", "a colon in a file name is not a line number"
    per_file = per_file_counts(
        read=["/in/a.jsonl:1", "/in/a.jsonl:2", "/in/b.csv#0", "/in/c:1.txt"],
        kept=["/in/a.jsonl:1", "/in/c:1.txt"],
        rejected=["/in/a.jsonl:2", "/in/b.csv#0"],
        files=files,
    )
    summary = accounting_summary(per_file)
    assert summary["balanced"] and summary["read"] == 4 and per_file["/in/a.jsonl"] == {"read": 2, "kept": 1, "rejected": 1}
    lost = accounting_summary(per_file_counts(read=["/in/a.jsonl:1", "/in/a.jsonl:2"], kept=["/in/a.jsonl:1"], rejected=[], files=files))
    assert not lost["balanced"] and lost["unbalanced_files"] == ["/in/a.jsonl"]
    assert json.loads(json.dumps(summary)) == summary, "the proof goes into the run record as JSON"


# --- retries --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error, transient",
    [
        (OSError(errno.EIO, "I/O error"), True),
        (OSError(errno.ESTALE, "stale file handle"), True),
        (TimeoutError(), True),
        (FileNotFoundError("gone"), False),
        (PermissionError("denied"), False),
        (ValueError("bad value"), False),
        (RuntimeError("model does not load"), False),
    ],
)
def test_only_passing_io_faults_are_retried(error, transient):
    assert is_transient(error) is transient


def test_shards_with_equal_content_can_publish_at_once(tmp_path, monkeypatch):
    """Empty shards (a rerun where every document is already in the output) share one key:
    the threads that compute them at once must not trip over each other's entry."""
    cache = ShardCache(str(tmp_path / "cache"), code="c", models="m")
    upstream = a_shard(tmp_path / "run", rows=0)
    link = shard_cache.link_or_copy

    def slow_link(source: Path, target: Path) -> None:  # widens the window in which publishers overlap
        time.sleep(0.02)
        link(source, target)

    monkeypatch.setattr(shard_cache, "link_or_copy", slow_link)

    def one(i: int) -> ShardRef:
        staging = tmp_path / f"staging-{i}"
        return through_cache(cache, "encode", upstream, {}, str(staging), lambda: a_shard(staging, "encode", rows=0), index=i)

    with ThreadPoolExecutor(8) as pool:
        refs = list(pool.map(one, range(32)))
    assert len({r.cache_key for r in refs}) == 1 and all(Path(r.path).exists() for r in refs)
    assert len(finished_entries(tmp_path / "cache", "encode")) == 1
    assert not [p for p in (tmp_path / "cache" / "encode").iterdir() if p.name.startswith(".")], "no publisher's temporary folder is left behind"


# --- recovery -------------------------------------------------------------------------------


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def record_run(context: RunContext, status: str, pid: int | None, host: str | None = None) -> None:
    record = RunRecord(run_id=context.run_id, status=status, pid=pid, host=host or socket.gethostname(), error=None, started_at=context.started_at)
    write_run_record(context, record)


class Killed(BaseException):
    """Stands for SIGKILL inside a commit: nothing after it in the commit runs."""


def test_a_commit_cut_short_is_finished_by_the_next_runs_recovery(tmp_path, monkeypatch):
    context = context_for(tmp_path, "run-killed")
    shard = staged_shard(context, ["d1", "d2"])
    record_run(context, "running", dead_pid())
    move, moves = commit.move_into_dataset, []

    def killed_after_the_first_move(*args, **kwargs):
        if moves:
            raise Killed()
        moves.append(args)
        return move(*args, **kwargs)

    monkeypatch.setattr(commit, "move_into_dataset", killed_after_the_first_move)
    with pytest.raises(Killed):  # the kill came after the documents file moved, before its stances
        commit_shard_outputs(context, [shard])
    monkeypatch.setattr(commit, "move_into_dataset", move)
    assert (Path(context.staging) / commit.JOURNAL).exists(), "the plan was written before the first move"
    assert not (tmp_path / "out" / "stances").exists()
    with output_lock(tmp_path / "out"):
        assert recover_abandoned_runs(tmp_path / "out") == ["run-killed"]
    stances = pq.ParquetDataset(str(tmp_path / "out" / "stances")).read()
    assert sorted(stances.column("doc_id").to_pylist()) == ["d1", "d1", "d2", "d2"], "the stances followed their documents"
    record = read_run_records(tmp_path / "out")[0]
    assert record["status"] == "interrupted" and "ended during its commit" in record["error"]
    assert not Path(context.staging).exists()
    assert roll_forward(Path(context.staging)) == [], "nothing left to do"
    with output_lock(tmp_path / "out"):
        assert recover_abandoned_runs(tmp_path / "out") == [], "a second recovery finds nothing"


def test_recovery_leaves_live_runs_alone_and_cleans_up_after_dead_and_failed_ones(tmp_path):
    live, dead, failed, elsewhere = (context_for(tmp_path, name) for name in ("run-live", "run-dead", "run-failed", "run-elsewhere"))
    record_run(live, "running", os.getpid())
    record_run(dead, "running", dead_pid())
    record_run(failed, "failed", os.getpid())
    record_run(elsewhere, "running", 1, host="another-machine")
    for context in (live, dead, failed, elsewhere):
        staged_shard(context, ["d1"])
    old_schema = tmp_path / "out" / "runs" / "run_date=2026-01-01" / "run-old-run.parquet"
    old_schema.parent.mkdir(parents=True)
    pq.write_table(pa.table({"status": ["completed"], "run_id": ["run-old"]}), old_schema)  # before host/pid existed
    with output_lock(tmp_path / "out"):
        assert sorted(recover_abandoned_runs(tmp_path / "out")) == ["run-dead", "run-failed"]
    assert Path(live.staging).exists() and Path(elsewhere.staging).exists()
    assert not Path(dead.staging).exists() and not Path(failed.staging).exists()
    statuses = {r["run_id"]: r["status"] for r in read_run_records(tmp_path / "out")}
    assert statuses == {"run-live": "running", "run-dead": "interrupted", "run-failed": "failed", "run-elsewhere": "running", "run-old": "completed"}
    assert not (tmp_path / "out" / "documents").exists(), "a run that never reached its commit adds nothing"
