"""Where a run's shard tasks execute: threads in this process (the default) or a Dask
cluster through prefect-dask, chosen by `run.runner` in the config, so the same code
and the same config file serve a laptop and a cluster."""

from __future__ import annotations

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from tasks.config import DaskConfig, PipelineConfig


def local_cluster_kwargs(dask: DaskConfig) -> dict:
    """A LocalCluster of worker processes on loopback, with no dashboard: nothing listens
    beyond this machine unless the user points `dask.address` at a cluster."""
    return {"n_workers": dask.workers, "threads_per_worker": dask.threads_per_worker, "processes": True, "host": "127.0.0.1", "dashboard_address": None}


# Prefect's thread runner starts a thread per waiting task by default. Threads that call
# numpy/torch keep native buffers for their lifetime, so a fixed pool keeps memory flat;
# 8 is enough for the shards in flight to overlap (a task only waits on tasks submitted
# before it, so a FIFO pool of any size cannot deadlock).
THREAD_POOL_SIZE = 8


def task_runner_for(config: PipelineConfig) -> TaskRunner:
    if config.run.runner == "threads":
        return ThreadPoolTaskRunner(max_workers=THREAD_POOL_SIZE)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:  # an optional dependency: say how to get it
        raise RuntimeError("run.runner = 'dask' needs prefect-dask: pip install -e '.[dask]'") from exc
    if config.dask.address:
        return DaskTaskRunner(address=config.dask.address)
    return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=local_cluster_kwargs(config.dask))
