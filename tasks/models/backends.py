"""Which model serves each task, from the config's `kind` + `model`: the embedded heads,
or a Hugging Face summariser, sentiment classifier or NLI model (loaded once per process)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from tasks.config import PipelineConfig
from tasks.models.abstractive import GenerationSettings, Seq2SeqSummarizer
from tasks.models.classifier import SentimentClassifier, ZeroShotStance
from tasks.models.hf_runtime import LoadedModel, load_model


def _load(auto_class_name: str, model: str, revision: str | None, config: PipelineConfig) -> LoadedModel:
    import transformers

    runtime = config.runtime
    return load_model(getattr(transformers, auto_class_name), model, runtime.device, runtime.dtype, runtime.allow_downloads, revision or None)


def generation_settings(config: PipelineConfig) -> GenerationSettings:
    s = config.summary
    return GenerationSettings(
        num_beams=s.num_beams,
        max_new_tokens=s.max_new_tokens,
        min_new_tokens=s.min_new_tokens,
        no_repeat_ngram_size=s.no_repeat_ngram_size,
        length_penalty=s.length_penalty,
        prefix=s.prefix,
        max_input_tokens=s.max_input_tokens,
        batch_size=s.batch_size,
    )


def abstractive_summarizer(config: PipelineConfig) -> Seq2SeqSummarizer:
    loaded = _load("AutoModelForSeq2SeqLM", config.summary.model, config.summary.revision, config)
    return Seq2SeqSummarizer(loaded, generation_settings(config))


def sentiment_classifier(config: PipelineConfig) -> SentimentClassifier:
    loaded = _load("AutoModelForSequenceClassification", config.sentiment.model, config.sentiment.revision, config)
    return SentimentClassifier(loaded, config.sentiment.labels, config.encoder.max_length)


def nli_stance(config: PipelineConfig) -> ZeroShotStance:
    loaded = _load("AutoModelForSequenceClassification", config.stance.model, config.stance.revision, config)
    return ZeroShotStance(loaded, config.stance.templates, config.encoder.max_length)


def backend_provenance(config: PipelineConfig, tasks: tuple[str, ...] = ("summarizer", "sentiment", "stance")) -> dict[str, Any]:
    """Id, revision, weight sha256, device and dtype of every Hugging Face model the config
    uses for `tasks`, loading (and so checking) each one before any work starts."""
    models: dict[str, Any] = {}
    if "summarizer" in tasks and config.summary.kind == "abstractive":
        summarizer = abstractive_summarizer(config)
        models["summarizer"] = {
            "kind": "abstractive",
            **summarizer.loaded.provenance(),
            "generation": asdict(summarizer.settings),
            "input_window_tokens": summarizer.window,
        }
    if "sentiment" in tasks and config.sentiment.kind == "classifier":
        models["sentiment"] = {"kind": "classifier", **sentiment_classifier(config).loaded.provenance()}
    if "stance" in tasks and config.stance.kind == "nli":
        models["stance"] = {"kind": "nli", **nli_stance(config).loaded.provenance(), "templates": config.stance.templates}
    return models
