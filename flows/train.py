"""The `train-heads` flow: train the stance and sentiment heads, or the token NER head, and
write them, with their model cards, under data/models/ (what `newsflow train` runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from tasks.training.finetune_stance import FinetuneSettings
from tasks.training.token_ner_training import HEAD_NAME, NerSettings, train_token_ner
from tasks.training.train_heads import load_training_data, train_linear_heads, train_tuned_stance

# Unset seed and epochs: the stance and sentiment heads' own defaults. The token NER head uses
# NerSettings' defaults instead (seed 13, at most 14 epochs). The shipped heads used these values.
HEADS_SEED, TUNED_EPOCHS = 0, 3

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


@task(name="train token NER head", cache_policy=NO_CACHE, persist_result=False)
def train_ner_task(train_path: str, dev_path: str, out_dir: str, seed: int, epochs: int, limit: int | None) -> dict[str, dict]:
    logger = get_run_logger()
    logger.info("token NER: labelling the distinct sentences of %s with spaCy, then encoding them (the sentences of %s are left out)", train_path, dev_path)
    metrics = train_token_ner(Path(train_path), Path(out_dir), seed=seed, epochs=epochs, progress=logger.info, dev_path=Path(dev_path), limit=limit)
    return {HEAD_NAME: metrics}


def report_table(report: dict[str, dict], out_dir: str) -> list[dict[str, Any]]:
    """The artifact's rows: dev metrics for the stance and sentiment heads; for the token NER
    head, its held-out agreement with spaCy, overall and per type (it has no dev labels)."""
    rows: list[dict[str, Any]] = []
    for name, m in report.items():
        folder = str(Path(out_dir) / name)
        if "holdout_f1" not in m:
            rows.append({"head": name, "dev_macro_f1": m["dev_macro_f1"], "dev_accuracy": m["dev_accuracy"], "folder": folder})
            continue
        rows.append(
            {
                "head": name,
                "type": "all",
                "holdout_f1": m["holdout_f1"],
                "holdout_precision": m["holdout_precision"],
                "holdout_recall": m["holdout_recall"],
                "folder": folder,
            }
        )
        for kind, t in m["holdout_per_type"].items():
            rows.append(
                {"head": name, "type": kind, "holdout_f1": t["f1"], "holdout_precision": t["precision"], "holdout_recall": t["recall"], "folder": folder}
            )
    return rows


@flow(name="train-heads", validate_parameters=True, persist_result=False)
def train_heads_flow(
    train_path: str,
    dev_path: str,
    out_dir: str,
    finetune: bool = False,
    seed: int | None = None,
    threads: int = 0,
    limit: int | None = None,
    epochs: int | None = None,
    layers: int = 2,
    seeds: list[int] | None = None,
    augment: str = "none",
    cues: str = "none",
    swap_probability: float = 0.5,
    cue_repeats: int = 2,
    marking: str = "target",
    ner: bool = False,
) -> dict[str, Any]:
    """Linear stance and sentiment heads, or (finetune) the tuned stance head; returns dev metrics per head.
    Or (ner) the token NER head, trained on spaCy's labels for train's distinct sentences and
    selected on a held-out 10% of them; returns its held-out metrics. `limit` keeps the first
    rows (for ner: distinct sentences). Unset, `seed` is 0 (ner: 13) and `epochs` 3 (ner: at most 14).

    finetune only: `seeds` (two or more) trains an ensemble with one member per seed;
    `augment="swap"` adds entity-swapped copies of the training rows; `cues="repeat"`
    repeats rows whose mention is the object of a criticism/praise verb
    `marking="all-mentions"` marks every judged mention of a sentence at once, so the
    pipeline runs the tuned layers once per sentence (see tasks/training/finetune_stance.py)."""
    if threads > 0:
        torch.set_num_threads(threads)  # results are reproducible for a given seed *and* thread count
    if ner and finetune:
        raise ValueError("train either the token NER head (ner) or the tuned stance head (finetune), not both")
    if ner:
        report = train_ner_task(
            train_path, dev_path, out_dir, NerSettings.seed if seed is None else seed, NerSettings.epochs if epochs is None else epochs, limit
        )
        description = f"Token NER head trained on spaCy's labels for {train_path}'s sentences, selected on a held-out 10% of them"
    elif finetune:
        settings = FinetuneSettings(
            n_layers=layers,
            epochs=TUNED_EPOCHS if epochs is None else epochs,
            seed=seeds[0] if seeds else (HEADS_SEED if seed is None else seed),
            seeds=tuple(seeds) if seeds and len(seeds) > 1 else (),
            augment=augment,
            swap_probability=swap_probability,
            cues=cues,
            cue_repeats=cue_repeats,
            marking=marking,
        )
        report = train_tuned_task(train_path, dev_path, out_dir, settings, limit)
        description = f"Heads trained on {train_path}, selected on {dev_path}"
    else:
        report = train_linear_task(train_path, dev_path, out_dir, HEADS_SEED if seed is None else seed, limit)
        description = f"Heads trained on {train_path}, selected on {dev_path}"
    create_table_artifact(key="trained-heads", table=report_table(report, out_dir), description=description)
    get_run_logger().info("wrote %s under %s", ", ".join(report), out_dir)
    return report
