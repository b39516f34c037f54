"""`run.runner = "dask"`: the shards' task runs go to a LocalCluster of worker processes
(through prefect-dask) and the output is the thread runner's, row for row."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pandas as pd
import pytest

from flows.runners import local_cluster_kwargs, task_runner_for
from tasks.config import load_config
from tests.conftest import SAMPLES, run_pipeline

pytestmark = pytest.mark.slow

PROBABILITIES = {"documents": ["p_negative", "p_neutral", "p_positive"], "stances": ["p_against", "p_neutral", "p_favor", "confidence"]}
KEYS = {"documents": ["doc_id"], "stances": ["doc_id", "target"]}
EXACT = {
    "documents": ["doc_id", "title", "source", "language", "n_sentences", "summary", "sentiment"],
    "stances": ["doc_id", "target", "label", "n_mentions", "evidence_sentence"],
}


def run_with(runner: str, output: Path) -> dict:
    return run_pipeline(SAMPLES, output, **{"run.shard_size": 4, "run.runner": runner, "dask.workers": 2})


def rows(output: Path, table: str) -> pd.DataFrame:
    return pd.read_parquet(output / table).sort_values(KEYS[table]).reset_index(drop=True)


def test_the_config_picks_the_task_runner():
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    assert isinstance(task_runner_for(load_config(None)), ThreadPoolTaskRunner)
    local = task_runner_for(load_config(None, {"run.runner": "dask", "dask.workers": 3}))
    assert isinstance(local, DaskTaskRunner) and local.cluster_kwargs["n_workers"] == 3
    remote = task_runner_for(load_config(None, {"run.runner": "dask", "dask.address": "tcp://127.0.0.1:8786"}))
    assert remote.address == "tcp://127.0.0.1:8786"
    # a local cluster listens on loopback only
    assert local_cluster_kwargs(load_config(None).dask)["host"] == "127.0.0.1"


def test_a_local_dask_cluster_writes_the_thread_runners_rows(prefect_harness, tmp_path):
    threads = run_with("threads", tmp_path / "threads")
    dask = run_with("dask", tmp_path / "dask")
    assert dask["status"] == "completed" and dask["config"]["run"]["runner"] == "dask"
    here = f"{socket.gethostname()}:{os.getpid()}"
    assert threads["processes"] == [here]
    assert dask["processes"] and here not in dask["processes"], "every shard stage ran in the cluster's worker processes"
    assert (dask["n_read"], dask["n_kept"], dask["n_rejected"]) == (threads["n_read"], threads["n_kept"], threads["n_rejected"])
    shards = {o["path"] for o in dask["outputs"] if o["table"] == "documents"}
    assert len(shards) > 2  # several shards, so the cluster had work to spread
    for table in ("documents", "stances"):
        ours, theirs = rows(tmp_path / "dask", table), rows(tmp_path / "threads", table)
        assert len(ours) == len(theirs) > 0, table
        pd.testing.assert_frame_equal(ours[EXACT[table]], theirs[EXACT[table]], check_dtype=False)
        # one thread per worker against two: bf16 sums may round differently in the last place
        pd.testing.assert_frame_equal(ours[PROBABILITIES[table]], theirs[PROBABILITIES[table]], atol=2e-3, check_dtype=False)
