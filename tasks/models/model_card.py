"""Model cards: every trained head ships card.json (read by the pipeline) and README.md
(read by people), both written from the same dict."""

from __future__ import annotations

import json
from pathlib import Path

CARD_FILE = "card.json"
MARKDOWN_FILE = "README.md"
NEWSMTSC_CREDIT = (
    'Trained on NewsMTSC (Hamborg and Donnay, "NewsMTSC: A Dataset for (Multi-)Target-dependent '
    'Sentiment Classification in Political News Articles", EACL 2021; github.com/fhamborg/NewsMTSC, '
    "newsmtsc-rw split, MIT licence)."
)


def render_markdown(card: dict) -> str:
    metrics = card.get("metrics", {})
    lines = [
        f"# {card.get('name', 'head')}",
        "",
        f"{card.get('task', '')}",
        "",
        NEWSMTSC_CREDIT,
        "",
        "| | |",
        "| --- | --- |",
        f"| kind | {card.get('kind', '')} |",
        f"| method | {card.get('method', '')} |",
        f"| features | {card.get('features', '')} |",
        f"| labels | {', '.join(card.get('labels', []))} |",
        f"| encoder | {card.get('encoder', '')} (weights sha256 `{card.get('encoder_weights_sha256', '')}`) |",
        f"| training time | {card.get('training_seconds', '')} s on {card.get('threads', '')} threads, seed {card.get('seed', '')} |",
    ]
    for name, digest in card.get("data", {}).items():
        lines.append(f"| data: {name} | sha256 `{digest}` |")
    lines += [
        "",
        "## Hyper-parameters",
        "",
        "```json",
        json.dumps(card.get("hyperparameters", {}), indent=2),
        "```",
        "",
        "## Dev metrics (NewsMTSC dev.jsonl, used for selection)",
        "",
    ]
    lines += [f"- {key}: {value}" for key, value in metrics.items() if not isinstance(value, (dict, list))]
    per_class = metrics.get("dev_per_class")
    if per_class:
        lines += ["", "| class | precision | recall | F1 | support |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {label} | {s['precision']} | {s['recall']} | {s['f1']} | {s['support']} |" for label, s in per_class.items()]
    matrix = metrics.get("dev_confusion_matrix")
    if matrix:
        labels = card.get("labels", [])
        lines += ["", "Confusion matrix (rows true, columns predicted):", "", "| | " + " | ".join(labels) + " |", "| --- " * (len(labels) + 1) + "|"]
        lines += [f"| {label} | " + " | ".join(str(v) for v in row) + " |" for label, row in zip(labels, matrix)]
    cost = card.get("inference_cost")
    if cost:
        lines += ["", "## Inference cost (measured after training, not by it)", "", cost.get("summary", ""), "", f"Command: `{cost.get('command', '')}`"]
    lines += ["", f"Regenerate: `{card.get('command', 'newsflow train')}` (deterministic for the same seed and thread count).", ""]
    return "\n".join(lines)


def write_card(folder: Path, card: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CARD_FILE).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / MARKDOWN_FILE).write_text(render_markdown(card), encoding="utf-8")
