"""NewsMTSC-format data: one target mention per row (`sentence`, `mention`, `polarity`
-1/0/1, `from`/`to` character offsets, end exclusive), as training and evaluation read it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

# Where `newsflow train` and `newsflow evaluate` look for NewsMTSC's train.jsonl and
# dev.jsonl when not given paths: $NEWSFLOW_NEWSMTSC, else data/newsmtsc in the working folder.
NEWSMTSC = Path(os.environ.get("NEWSFLOW_NEWSMTSC", "data/newsmtsc"))
REQUIRED_KEYS = ("sentence", "mention", "polarity", "from", "to")


def read_newsmtsc(path: Path) -> list[dict]:
    """NewsMTSC-format rows; a row without the keys or with a bad span is an error naming its line."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        missing = [k for k in REQUIRED_KEYS if k not in row]
        if missing or row["polarity"] not in (-1, 0, 1) or not 0 <= row["from"] < row["to"] <= len(row["sentence"]):
            raise ValueError(f"{path}:{number}: not a NewsMTSC row (needs {', '.join(REQUIRED_KEYS)}; polarity -1/0/1; 0 <= from < to <= len(sentence))")
        rows.append(row)
    return rows


def distinct_sentences(rows: list[dict]) -> tuple[list[str], np.ndarray]:
    """(the rows' distinct sentences, sorted; for each row, the index of its sentence):
    a sentence with several labelled mentions is encoded once."""
    sentences = sorted({r["sentence"] for r in rows})
    index = {s: i for i, s in enumerate(sentences)}
    return sentences, np.array([index[r["sentence"]] for r in rows], dtype=np.int64)


def sentence_polarity_labels(sentence_of: np.ndarray, mention_labels: np.ndarray, n_sentences: int) -> np.ndarray:
    """A sentence's overall tone (0 negative, 1 neutral, 2 positive): the rounded mean
    polarity toward the targets it mentions. NewsMTSC labels targets, not sentences; this
    is the closest sentence label it gives."""
    polarity_sum = np.zeros(n_sentences)
    np.add.at(polarity_sum, sentence_of, mention_labels - 1)
    mean_polarity = polarity_sum / np.maximum(np.bincount(sentence_of, minlength=n_sentences), 1)
    return np.where(mean_polarity >= 0.5, 2, np.where(mean_polarity <= -0.5, 0, 1))
