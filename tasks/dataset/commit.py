"""Committing a run's outputs: the shard files a run staged beside the dataset move into
it only when the run has finished every shard, under a lock on the output root.

So a run that is killed or fails adds nothing to `documents`, `stances`, `entities`, `mentions` or `sentences`
(its finished shards wait in the shard cache for the next run), and two runs that commit
over overlapping inputs cannot both add the same document: the second finds it there and
rejects its copy as a duplicate. Each file moves by rename, so readers see whole files."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tasks.dataset.output import RunContext
from tasks.dataset.staging import table_files, write_parquet_atomic
from tasks.records import Rejection, RejectReason, ShardRef

STAGE = "commit"
LOCK_FILE = "_commit.lock"


@contextmanager
def output_lock(output_root: str | Path) -> Iterator[None]:
    """An exclusive lock on the output root, held while a run reads what is there and adds to it."""
    root = Path(output_root)
    root.mkdir(parents=True, exist_ok=True)
    with (root / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def analyses_in_output(output_root: str | Path) -> dict[str, dict[str, str]]:
    """doc_id -> {analysis_sha256: run_id} for every document the output holds. Files from
    before the analysis column count as an analysis of their own ("")."""
    folder = Path(output_root) / "documents"
    held: dict[str, dict[str, str]] = {}
    for path in table_files(folder):
        columns = ["doc_id", "run_id", "analysis_sha256"] if "analysis_sha256" in pq.read_schema(path).names else ["doc_id", "run_id"]
        table = pq.read_table(path, columns=columns)
        analyses = table.column("analysis_sha256").to_pylist() if "analysis_sha256" in columns else [""] * table.num_rows
        for doc_id, run_id, analysis in zip(table.column("doc_id").to_pylist(), table.column("run_id").to_pylist(), analyses):
            held.setdefault(doc_id, {})[analysis] = run_id
    return held


def documents_in_output(output_root: str | Path, analysis_sha256: str) -> dict[str, str]:
    """doc_id -> run_id of the documents already in the output under this analysis (same
    stage settings, models and code)."""
    return {doc_id: runs[analysis_sha256] for doc_id, runs in analyses_in_output(output_root).items() if analysis_sha256 in runs}


@dataclass(frozen=True)
class Holder:
    """The run whose rows make a document a duplicate for this run, and whether they are of another analysis."""

    run_id: str
    other_analysis: bool


def holder_of(analyses: dict[str, str], analysis_sha256: str, reanalyze: bool) -> Holder | None:
    """Who already holds a document with these analyses: a run of this analysis always; a run
    of another one unless the run re-analyses (then the document is analysed again)."""
    if analysis_sha256 in analyses:
        return Holder(analyses[analysis_sha256], False)
    if reanalyze or not analyses:
        return None
    return Holder(list(analyses.values())[-1], True)


def already_in_output(origin: str, doc_id: str, holder: Holder, stage: str, when: str = "") -> Rejection:
    """The rejection of a document the output holds already."""
    again = "; under another analysis, which --reanalyze would analyse it again" if holder.other_analysis else ""
    return Rejection(origin, RejectReason.DUPLICATE, f"already in the output from run {holder.run_id} (doc_id {doc_id[:12]}){when}{again}", stage)


@dataclass
class Commit:
    paths: list[str] = field(default_factory=list)  # the dataset files the run added
    kept_origins: list[str] = field(default_factory=list)  # where the documents the run added came from
    late_duplicates: list[Rejection] = field(default_factory=list)  # committed by another run while this one worked
    added: set[str] = field(default_factory=set)  # doc_ids of the documents the run added

    @property
    def kept(self) -> int:
        return len(self.kept_origins)


JOURNAL = "commit.json"


def commit_shard_outputs(
    context: RunContext, written: list[ShardRef], also: list[str] | None = None, before_moves: Callable[[set[str]], list[str]] | None = None
) -> Commit:
    """Move every staged output file of the run into the dataset, leaving out documents
    another run committed meanwhile (and their stances and sentences), and the staged
    files `also` names as they are (what a run fetched, its archive). `before_moves` runs
    under the lock once the documents the run adds are known (given their doc_ids), and
    returns further staged files to move (the near-duplicate index's additions). The moves are
    planned under the lock and written down first (`commit.json` in the run's staging),
    so a run killed half-way through its commit is finished by the next run's recovery
    instead of leaving a document without its stances."""
    staged_root = Path(context.staging) / "output"
    commit = Commit()
    plan: list[dict] = []
    added = commit.added
    with output_lock(context.output_root):
        held = analyses_in_output(context.output_root)
        for ref in written:
            documents = pq.read_table(ref.parts["documents"], columns=["doc_id", "origin"])
            doc_ids = documents.column("doc_id").to_pylist()
            holders = {d: h for d in doc_ids if (h := holder_of(held.get(d, {}), context.analysis_sha256, context.reanalyze))}
            for origin, doc_id in zip(documents.column("origin").to_pylist(), doc_ids):
                if doc_id in holders:
                    commit.late_duplicates.append(already_in_output(origin, doc_id, holders[doc_id], STAGE, ", committed while this run worked"))
                else:
                    commit.kept_origins.append(origin)
                    added.add(doc_id)
            plan += [planned_move(staged, staged_root, context.output_root, holders) for staged in ref.parts.values()]
            for doc_id in doc_ids:
                held.setdefault(doc_id, {})[context.analysis_sha256] = context.run_id
        also = [*(also or []), *(before_moves(added) if before_moves else [])]
        plan += [planned_move(staged, staged_root, context.output_root) for staged in also]
        write_journal(Path(context.staging), plan, context.compression)
        commit.paths = apply_moves(plan, context.compression)
    return commit


def planned_move(staged: str, staged_root: Path, output_root: str, leave_out: Iterable[str] = ()) -> dict:
    """A staged file's move to its place in the dataset, leaving out these documents' rows."""
    return {"staged": staged, "target": str(Path(output_root) / Path(staged).relative_to(staged_root)), "leave_out": sorted(leave_out)}


def write_journal(staging: Path, plan: list[dict], compression: str) -> None:
    pending = staging / f".{JOURNAL}.tmp"
    pending.write_text(json.dumps({"compression": compression, "moves": plan}), encoding="utf-8")
    os.replace(pending, staging / JOURNAL)


def apply_moves(plan: list[dict], compression: str) -> list[str]:
    """Carry out planned moves; those already done are skipped, so it can run again."""
    return [path for move in plan if (path := move_into_dataset(Path(move["staged"]), Path(move["target"]), set(move["leave_out"]), compression))]


def roll_forward(staging: Path) -> list[str]:
    """Finish the commit a dead run started (call under the output lock); the files it
    added. Nothing to do without a journal: the run never reached its commit."""
    journal = staging / JOURNAL
    if not journal.exists():
        return []
    planned = json.loads(journal.read_text(encoding="utf-8"))
    return apply_moves(planned["moves"], planned["compression"])


def move_into_dataset(staged: Path, target: Path, leave_out: set[str], compression: str) -> str | None:
    """Rename a staged file into the dataset, or rewrite it without the left-out documents
    (None when nothing is left). The file's key-value metadata stays with its schema. A
    file already moved (the staged copy gone, the target there) counts as moved."""
    if not staged.exists():
        return str(target) if target.exists() else None
    target.parent.mkdir(parents=True, exist_ok=True)
    if not leave_out:
        os.replace(staged, target)
        return str(target)
    table = pq.read_table(staged)
    table = table.filter(pc.invert(pc.is_in(table.column("doc_id"), pa.array(sorted(leave_out), pa.string()))))
    kept = str(write_parquet_atomic(table, target, compression=compression)) if table.num_rows else None
    staged.unlink()  # after the target is whole: a kill in between only repeats the rewrite
    return kept
