"""Two `newsflow run` processes started at once over overlapping inputs, into one output
root: each document is kept once, both runs' counts balance, and the later run rejects
what the first kept."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from prefect.settings import get_current_settings

from tests.cli_runs import log_tail, start_cli_run
from tests.conftest import SAMPLES, run_pipeline


@pytest.mark.slow
def test_two_runs_at_once_over_overlapping_inputs_leave_each_document_once(prefect_harness, tmp_path):
    names = sorted(p.name for p in SAMPLES.iterdir() if p.name != "README.md")
    first_inputs, second_inputs = tmp_path / "a", tmp_path / "b"
    for folder, chosen in ((first_inputs, names[:10]), (second_inputs, names[5:])):
        folder.mkdir()
        for name in chosen:
            (folder / name).write_bytes((SAMPLES / name).read_bytes())
    output = tmp_path / "out"
    homes = [tmp_path / f"prefect-{folder.name}" for folder in (first_inputs, second_inputs)]
    # Both processes report to the session's Prefect server, as two runs of one deployment
    # would: two ephemeral servers booting beside them only slowed a loaded machine down.
    api_url = get_current_settings().api.url
    runs = [start_cli_run(folder, output, home, api_url=api_url) for folder, home in zip((first_inputs, second_inputs), homes)]
    for run, home in zip(runs, homes):
        assert run.wait(timeout=600) == 0, log_tail(home)

    records = pd.read_parquet(output / "runs")
    assert records.status.eq("completed").all() and len(records) == 2
    first, second = records.sort_values("started_at").itertuples()
    assert second.started_at < first.finished_at, "the two runs overlapped in time"
    for record in records.itertuples():
        accounting = json.loads(record.accounting)
        assert accounting["balanced"] and record.n_read == record.n_kept + record.n_rejected
    documents = pd.read_parquet(output / "documents")
    assert documents.doc_id.is_unique, "an overlapping document is kept once"
    alone = kept_by_one_run(SAMPLES, tmp_path / "alone")
    assert set(documents.doc_id) == set(alone.doc_id) and records.n_kept.sum() == len(alone)
    rejected = pd.read_parquet(output / "rejected")
    assert rejected.detail.str.contains("already in the output").any(), "the later run rejected the documents the first one kept"


def kept_by_one_run(folder: Path, output: Path) -> pd.DataFrame:
    """The documents one run over `folder` keeps: the reference runs in this process (under
    the session's Prefect server), as what a run keeps does not depend on how it was started;
    that spares a third process its imports and its own Prefect server's start-up."""
    assert run_pipeline(folder, output)["status"] == "completed"
    return pd.read_parquet(output / "documents")
