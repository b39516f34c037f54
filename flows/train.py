"""The `train-heads` flow: train the stance and sentiment heads and write them, with their
model cards, under data/models/ (what `newsflow train` runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from tasks.training.finetune_stance import FinetuneSettings
from tasks.training.train_heads import load_training_data, train_linear_heads, train_tuned_stance

PROGRESS_EVERY = 0.05  # log the fine-tuning progress every 5% of its steps


def format_seconds(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def progress_logger():
    """A progress callback that logs the step, the elapsed time and the time left."""
    logger = get_run_logger()
    last = {"logged": 0}

    def report(step: int, total: int, elapsed: float) -> None:
        if step == total or step - last["logged"] >= max(1, int(total * PROGRESS_EVERY)):
            last["logged"] = step
            left = elapsed / step * (total - step)
            logger.info(
                "fine-tuning: step %d/%d (%d%%), %s elapsed, about %s left", step, total, 100 * step // total, format_seconds(elapsed), format_seconds(left)
            )

    return report


@task(name="train linear heads", cache_policy=NO_CACHE, persist_result=False)
def train_linear_task(train_path: str, dev_path: str, out_dir: str, seed: int, limit: int | None) -> dict[str, dict]:
    return train_linear_heads(load_training_data(Path(train_path), Path(dev_path), limit), Path(out_dir), seed)


@task(name="fine-tune stance layers", cache_policy=NO_CACHE, persist_result=False)
def train_tuned_task(train_path: str, dev_path: str, out_dir: str, settings: FinetuneSettings, limit: int | None) -> dict[str, dict]:
    logger = get_run_logger()
    data = load_training_data(Path(train_path), Path(dev_path), limit)
    logger.info(
        "fine-tuning %d top layers (%d member(s), augment %s, cues %s) on %d mentions for %d epochs (dev: %d); encoding the frozen layers first",
        settings.n_layers,
        len(settings.member_seeds()),
        settings.augment,
        settings.cues,
        len(data.train),
        settings.epochs,
        len(data.dev),
    )
    return {"stance-tuned": train_tuned_stance(data, Path(out_dir), settings, progress_logger())}


@flow(name="train-heads", validate_parameters=True, persist_result=False)
def train_heads_flow(
    train_path: str,
    dev_path: str,
    out_dir: str,
    finetune: bool = False,
    seed: int = 0,
    threads: int = 0,
    limit: int | None = None,
    epochs: int = 3,
    layers: int = 2,
    seeds: list[int] | None = None,
    augment: str = "none",
    cues: str = "none",
    swap_probability: float = 0.5,
    cue_repeats: int = 2,
    marking: str = "target",
) -> dict[str, Any]:
    """Linear stance and sentiment heads, or (finetune) the tuned stance head; returns dev metrics per head.

    finetune only: `seeds` (two or more) trains an ensemble with one member per seed;
    `augment="swap"` adds entity-swapped copies of the training rows; `cues="repeat"`
    repeats rows whose mention is the object of a criticism/praise verb
    `marking="all-mentions"` marks every judged mention of a sentence at once, so the
    pipeline runs the tuned layers once per sentence (see tasks/training/finetune_stance.py)."""
    if threads > 0:
        torch.set_num_threads(threads)  # results are reproducible for a given seed *and* thread count
    if finetune:
        settings = FinetuneSettings(
            n_layers=layers,
            epochs=epochs,
            seed=seeds[0] if seeds else seed,
            seeds=tuple(seeds) if seeds and len(seeds) > 1 else (),
            augment=augment,
            swap_probability=swap_probability,
            cues=cues,
            cue_repeats=cue_repeats,
            marking=marking,
        )
        report = train_tuned_task(train_path, dev_path, out_dir, settings, limit)
    else:
        report = train_linear_task(train_path, dev_path, out_dir, seed, limit)
    create_table_artifact(
        key="trained-heads",
        table=[
            {"head": name, "dev_macro_f1": m["dev_macro_f1"], "dev_accuracy": m["dev_accuracy"], "folder": str(Path(out_dir) / name)}
            for name, m in report.items()
        ],
        description=f"Heads trained on {train_path}, selected on {dev_path}",
    )
    get_run_logger().info("wrote %s under %s", ", ".join(report), out_dir)
    return report
