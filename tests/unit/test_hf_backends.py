"""Hugging Face backends with tiny random models the tests build (never downloaded):
loading, batching, label mapping, map-reduce summaries, determinism and the errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

from tasks.config import ConfigError, load_config
from tasks.models.abstractive import GenerationSettings, Seq2SeqSummarizer, SummaryLengthError
from tasks.models.classifier import LabelMappingError, SentimentClassifier, ZeroShotStance
from tasks.models.hf_runtime import ModelLoadError, load_model, resolve_device, resolve_dtype

SETTINGS = GenerationSettings(num_beams=2, max_new_tokens=12, min_new_tokens=2, no_repeat_ngram_size=3)
SENTENCES = [f"Sentence number {i} tells how the harbour council voted on the new ferry timetable for the winter." for i in range(40)]


def summarizer(folder, settings: GenerationSettings = SETTINGS) -> Seq2SeqSummarizer:
    return Seq2SeqSummarizer(load_model(AutoModelForSeq2SeqLM, str(folder), "cpu", "fp32"), settings)


def test_models_load_once_from_a_folder(tiny_models):
    first = load_model(AutoModelForSequenceClassification, str(tiny_models.nli), "cpu", "fp32")
    again = load_model(AutoModelForSequenceClassification, str(tiny_models.nli), "cpu", "fp32")
    assert first is again and not first.model.training
    provenance = first.provenance()
    assert provenance["device"] == "cpu" and provenance["dtype"] == "fp32" and len(provenance["weights_sha256"]) == 64


def test_a_missing_folder_or_pickled_weights_are_clear_errors(tmp_path, tiny_models):
    with pytest.raises(ModelLoadError, match="model folder not found"):
        load_model(AutoModelForSequenceClassification, str(tmp_path / "nowhere"), "cpu", "fp32")
    with pytest.raises(ModelLoadError, match="not in the Hugging Face cache.*allow_downloads"):
        load_model(AutoModelForSequenceClassification, "no-such-org/no-such-model", "cpu", "fp32")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((tiny_models.nli / "config.json").read_text())
    with pytest.raises(ModelLoadError, match="no .safetensors"):
        load_model(AutoModelForSequenceClassification, str(pickled), "cpu", "fp32")


def test_device_and_precision_resolve_for_this_machine():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_dtype("auto", torch.device("cpu")) == "fp32"
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(ModelLoadError, match="no CUDA device"):
            resolve_device("cuda:0")


def test_sentiment_classifier_maps_model_labels(tiny_models):
    loaded = load_model(AutoModelForSequenceClassification, str(tiny_models.sentiment), "cpu", "fp32")
    with pytest.raises(LabelMappingError, match="'NEG' is not mapped.*sentiment.labels"):
        SentimentClassifier(loaded, {})
    classifier = SentimentClassifier(loaded, {"NEG": "negative", "NEU": "neutral", "POS": "positive"})
    texts = ["A calm day.", "The storm wrecked the pier and flooded every street near the harbour.", ""]
    probs = classifier.predict_proba(texts)
    raw = torch.softmax(loaded.model(**loaded.tokenizer(texts[:1], return_tensors="pt")).logits, -1).detach().numpy()[0]
    assert probs.shape == (3, 3) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(probs[0], raw, atol=1e-5)  # NEG, NEU, POS land in negative, neutral, positive
    one_by_one = np.vstack([classifier.predict_proba([t]) for t in texts])
    assert np.allclose(probs, one_by_one, atol=1e-5)  # padding in a batch changes nothing


def test_a_two_label_classifier_leaves_neutral_empty(tiny_models):
    loaded = load_model(AutoModelForSequenceClassification, str(tiny_models.two_label_sentiment), "cpu", "fp32")
    probs = SentimentClassifier(loaded, {}).predict_proba(["Fine.", "Awful."])
    assert np.all(probs[:, 1] == 0) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_zero_shot_stance_scores_every_mention_with_every_hypothesis(tiny_models):
    loaded = load_model(AutoModelForSequenceClassification, str(tiny_models.nli), "cpu", "fp32")
    templates = load_config().stance.templates
    model = ZeroShotStance(loaded, templates)
    sentences = ["Ministers praised Norway for the deal.", "Ministers praised Norway for the deal.", "Critics attacked Chile."]
    targets = ["Norway", "Chile", "Chile"]
    probs = model.predict_proba(sentences, targets)
    assert probs.shape == (3, 3) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(probs[0], probs[1])  # same sentence, other target: other hypotheses
    one_by_one = np.vstack([model.predict_proba([s], [t]) for s, t in zip(sentences, targets)])
    assert np.allclose(probs, one_by_one, atol=1e-5)
    # The score of "favor" is the entailment-vs-contradiction log-odds of its hypothesis.
    encoded = loaded.tokenizer([sentences[0]] * 3, [templates[label].format(target="Norway") for label in model.labels], return_tensors="pt", padding=True)
    logits = loaded.model(**encoded).logits.detach().numpy()
    scores = logits[:, model.entailment] - logits[:, model.contradiction]
    assert np.allclose(probs[0], np.exp(scores) / np.exp(scores).sum(), atol=1e-5)


def test_a_sentiment_model_is_not_an_nli_model(tiny_models):
    loaded = load_model(AutoModelForSequenceClassification, str(tiny_models.sentiment), "cpu", "fp32")
    with pytest.raises(LabelMappingError, match="not an NLI model"):
        ZeroShotStance(loaded, load_config().stance.templates)


def test_long_article_is_cut_into_windows_that_drop_no_token(tiny_models):
    model = summarizer(tiny_models.bart)
    ids = model.tokenizer(SENTENCES, add_special_tokens=False)["input_ids"]
    windows = model.windows(SENTENCES)
    assert model.window == 128 - 2  # position embeddings 128, [CLS] and [SEP]
    assert [t for w in windows for t in w] == [t for s in ids for t in s]  # every token, in order
    assert all(len(w) <= model.window for w in windows)
    per_window = model.window // len(ids[0])  # whole sentences per window (all are the same length)
    assert len(windows) == -(-len(ids) // per_window)


def test_a_sentence_longer_than_a_window_is_split_not_truncated(tiny_models):
    model = summarizer(tiny_models.bart)
    long_sentence = " ".join(["harbour"] * 300)
    windows = model.windows([long_sentence])
    assert sum(len(w) for w in windows) == 300 and len(windows) == 3


def test_map_reduce_summaries_are_deterministic(tiny_models):
    model = summarizer(tiny_models.bart)
    documents = [SENTENCES, SENTENCES[:2], []]
    first, second = model.summarize_many(documents), model.summarize_many(documents)
    assert [s.text for s in first] == [s.text for s in second]
    assert first[0].chunks == len(model.windows(SENTENCES)) > 1 and first[0].rounds >= 2  # mapped, then reduced
    assert first[1].chunks == 1 and first[1].rounds == 1 and first[1].text
    assert first[2].text == "" and first[2].rounds == 0


def test_summary_length_that_cannot_shrink_is_refused(tiny_models):
    with pytest.raises(SummaryLengthError, match="at most half"):
        summarizer(tiny_models.bart, GenerationSettings(max_new_tokens=100))


def test_t5_style_prefix_is_counted_in_the_window(tiny_models):
    plain = summarizer(tiny_models.bart)
    prefixed = summarizer(tiny_models.bart, GenerationSettings(num_beams=1, max_new_tokens=12, min_new_tokens=1, prefix="summarize: "))
    assert prefixed.window == plain.window - len(prefixed.prefix_ids) and prefixed.prefix_ids


def test_config_requires_a_model_for_each_backend():
    for key in ("summary.kind=abstractive", "sentiment.kind=classifier", "stance.kind=nli"):
        with pytest.raises(ConfigError, match="needs"):
            load_config(None, dict([key.split("=")]))
    with pytest.raises(ConfigError, match="cuda"):
        load_config(None, {"runtime.device": "gpu0"})
    with pytest.raises(ConfigError, match="negative, neutral or positive"):
        load_config(None, {"sentiment.labels": {"LABEL_0": "bad"}})


def test_evaluate_summary_scores_an_abstractive_model(tmp_path, tiny_models):
    import json

    from tasks.evaluation.summaries import evaluate_summaries

    article = " ".join(SENTENCES[:12])
    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps({"article": article, "highlights": "The harbour council voted on the ferry timetable."}) + "\n")
    config = load_config(
        None,
        {
            "summary.kind": "abstractive",
            "summary.model": str(tiny_models.bart),
            "summary.num_beams": 1,
            "summary.max_new_tokens": 12,
            "summary.min_new_tokens": 2,
            "runtime.device": "cpu",
        },
    )
    result = evaluate_summaries(data, config)
    assert result["n"] == 1 and result["method"] == f"abstractive:{tiny_models.bart}"
    row = result["per_article"][0]
    assert row["pipeline_sentences"] == [] and row["pipeline_summary"]
    assert 0 <= result["pipeline"]["rouge1"] <= 100 and result["lead3"]["rouge1"] > 0


def test_byte_level_bpe_windows_keep_the_spaces_between_sentences(tmp_path):
    """BART's tokenizer codes a word with its leading space: windows must hold the running
    text's tokens, not each sentence's tokens glued together."""
    from tests.tiny_models import tiny_byte_level_bart

    folder = tiny_byte_level_bart(tmp_path / "bpe-bart", SENTENCES)
    model = summarizer(folder)
    assert (model.head_ids, model.tail_ids) == ([0], [2])  # <s> ... </s>
    windows = model.windows(SENTENCES[:3])
    assert len(windows) == 1 and model.tokenizer.decode(windows[0]) == " ".join(SENTENCES[:3])
    assert model.summarize_many([SENTENCES[:3]])[0].rounds == 1


def test_generate_batches_hold_at_most_batch_size_windows(tiny_models, monkeypatch):
    model = summarizer(tiny_models.bart, GenerationSettings(num_beams=1, max_new_tokens=4, min_new_tokens=1, batch_size=3))
    rows = []
    original = model.loaded.model.generate
    monkeypatch.setattr(model.loaded.model, "generate", lambda **kw: rows.append(len(kw["input_ids"])) or original(**kw))
    outputs = model.generate([[1000 + i] * (5 + i) for i in range(8)])
    assert len(outputs) == 8 and rows == [3, 3, 2]


def test_an_input_limit_above_the_model_s_is_capped(tiny_models):
    model = summarizer(tiny_models.bart, GenerationSettings(num_beams=1, max_new_tokens=12, min_new_tokens=1, max_input_tokens=400))
    assert model.input_limit() == 128
    assert model.summarize_many([SENTENCES])[0].text  # no index error past the position embeddings


def test_shipped_generation_defaults_cannot_leak_in(tiny_models):
    """A repetition penalty or length limit in the model's own generation config changes nothing:
    every decoding setting comes from the newsflow config."""
    model = summarizer(tiny_models.bart)
    before = model.summarize_many([SENTENCES[:4]])[0].text
    model.loaded.model.generation_config.repetition_penalty = 5.0
    model.loaded.model.generation_config.max_length = 3
    assert model.summarize_many([SENTENCES[:4]])[0].text == before


def test_two_way_nli_models_score_entailment_against_not_entailment(tmp_path):
    from tests.tiny_models import tiny_classifier

    folder = tiny_classifier(tmp_path / "two-way-nli", ["entailment", "not_entailment"])
    model = ZeroShotStance(load_model(AutoModelForSequenceClassification, str(folder), "cpu", "fp32"), load_config().stance.templates)
    assert (model.entailment, model.contradiction) == (0, 1)
    assert np.allclose(model.predict_proba(["Critics attacked Chile."], ["Chile"]).sum(), 1.0, atol=1e-5)
