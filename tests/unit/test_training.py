"""Training the heads: small slices of NewsMTSC, real encoder, real files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tasks.evaluation.classification import classification_report
from tasks.models.heads import load_linear_head, read_card
from tasks.training.finetune_stance import FinetuneSettings, expected_calibration_error
from tasks.training.newsmtsc import read_newsmtsc
from tasks.training.train_heads import (
    featurise,
    load_training_data,
    pipeline_encoder,
    select_and_fit,
    train_linear_heads,
    train_tuned_stance,
)
from tests.conftest import NEWSMTSC

pytestmark = pytest.mark.skipif(not NEWSMTSC.is_dir(), reason="NewsMTSC is read from ../shared/data/newsmtsc")


@pytest.fixture(scope="module")
def small_dev(tmp_path_factory):
    """The first 60 dev rows: enough to select on, quick to encode."""
    path = tmp_path_factory.mktemp("dev") / "dev.jsonl"
    path.write_text("\n".join((NEWSMTSC / "dev.jsonl").read_text(encoding="utf-8").splitlines()[:60]) + "\n", encoding="utf-8")
    return path


def test_linear_training_on_a_slice_is_deterministic_and_writes_cards(tmp_path, small_dev):
    data = load_training_data(NEWSMTSC / "train.jsonl", small_dev, limit=250)
    first = train_linear_heads(data, tmp_path / "a", seed=3)
    train_linear_heads(data, tmp_path / "b", seed=3)
    for name in ("stance-linear", "sentiment-linear"):
        assert (tmp_path / "a" / name / "head.safetensors").read_bytes() == (tmp_path / "b" / name / "head.safetensors").read_bytes()
        card = read_card(tmp_path / "a" / name)
        assert card["kind"] == "linear" and card["seed"] == 3 and card["n_train_rows"] == 250
        assert set(card["data"]) == {"train.jsonl", "dev.jsonl"} and all(len(h) == 64 for h in card["data"].values())
        assert len(card["encoder_weights_sha256"]) == 64 and card["hyperparameters"]["l2"] > 0
        assert card["metrics"] == first[name]
        assert np.array(card["metrics"]["dev_confusion_matrix"]).sum() == card["metrics"]["n_dev"]
        markdown = (tmp_path / "a" / name / "README.md").read_text(encoding="utf-8")
        assert "NewsMTSC" in markdown and card["data"]["train.jsonl"] in markdown and "dev_macro_f1" in markdown


def test_a_trained_head_beats_the_majority_class_on_held_back_train_rows():
    rows = read_newsmtsc(NEWSMTSC / "train.jsonl")
    # Held-back rows come from the far end of train and never share a sentence with the training slice.
    train_rows, held_rows = rows[:1500], rows[-400:]
    held_rows = [r for r in held_rows if r["sentence"] not in {t["sentence"] for t in train_rows}]
    encoder = pipeline_encoder()
    train, held = featurise(train_rows, encoder), featurise(held_rows, encoder)
    head, _, _ = select_and_fit(train.features, train.labels, held.features[:150], held.labels[:150], ["against", "neutral", "favor"], "sentence+span+window")
    test_x, test_y = held.features[150:], held.labels[150:]
    ours = classification_report(test_y, head.predict_proba(test_x).argmax(axis=1), head.labels)
    majority = classification_report(test_y, np.full_like(test_y, np.bincount(train.labels).argmax()), head.labels)
    assert ours["macro_f1"] > majority["macro_f1"] + 0.2
    assert ours["accuracy"] > majority["accuracy"] + 0.1


def test_finetuning_a_slice_is_deterministic_small_and_loadable(tmp_path, small_dev):
    data = load_training_data(NEWSMTSC / "train.jsonl", small_dev, limit=48)
    settings = FinetuneSettings(n_layers=1, epochs=1, batch_size=16, seed=1)
    metrics = train_tuned_stance(data, tmp_path / "a", settings)
    train_tuned_stance(data, tmp_path / "b", settings)
    weights = tmp_path / "a" / "stance-tuned" / "head.safetensors"
    assert weights.read_bytes() == (tmp_path / "b" / "stance-tuned" / "head.safetensors").read_bytes()
    assert weights.stat().st_size < 25 * 2**20
    raw = weights.read_bytes()  # safetensors: an 8-byte length, a JSON header, raw tensors; never a pickle
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    assert header["layers.0.attention.self.query.weight"]["dtype"] == "F16" and header["marker"]["dtype"] == "F32"
    card = json.loads((tmp_path / "a" / "stance-tuned" / "card.json").read_text())
    assert card["kind"] == "tuned-top-layers" and card["tuned_layers"] == 1 and card["metrics"]["n_train"] == 48
    assert card["metrics"]["temperature"] > 0 and card["hyperparameters"]["epochs"] == 1
    assert metrics["dev_macro_f1"] == card["metrics"]["dev_macro_f1"]


def test_linear_head_loader_refuses_a_tuned_head(tmp_path, small_dev):
    data = load_training_data(NEWSMTSC / "train.jsonl", small_dev, limit=16)
    train_tuned_stance(data, tmp_path, FinetuneSettings(n_layers=1, epochs=1, batch_size=16))
    with pytest.raises(ValueError, match="tuned-top-layers"):
        load_linear_head(tmp_path / "stance-tuned")


def test_newsmtsc_rows_with_a_bad_span_are_named_by_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"sentence": "Ann left.", "mention": "Ann", "polarity": 0, "from": 0, "to": 3}\n'
        '{"sentence": "Bo left.", "mention": "Bo", "polarity": 0, "from": 2, "to": 40}\n'
    )
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        read_newsmtsc(path)


def test_calibration_error_is_zero_when_confidence_matches_accuracy():
    probs = np.array([[0.75, 0.25, 0.0]] * 4)
    assert expected_calibration_error(probs, np.array([0, 0, 0, 1])) == pytest.approx(0.0)
    assert expected_calibration_error(probs, np.array([1, 1, 1, 1])) == pytest.approx(0.75)
