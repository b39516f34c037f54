"""Sequence-classification backends: sentence sentiment from any classifier, and zero-shot
stance from any NLI model. Both return probabilities over the pipeline's own labels, so
the document aggregation downstream is the same whichever model produced them."""

from __future__ import annotations

import numpy as np
import torch

from tasks.models.encoder import token_budget_batches
from tasks.models.heads import softmax
from tasks.models.hf_runtime import LoadedModel

SENTIMENT_LABELS = ["negative", "neutral", "positive"]
STANCE_LABELS = ["against", "neutral", "favor"]


class LabelMappingError(ValueError):
    """A model label the config does not say how to read."""


def model_labels(loaded: LoadedModel) -> list[str]:
    id2label = loaded.model.config.id2label
    return [str(id2label[i]) for i in range(len(id2label))]


def label_columns(names: list[str], mapping: dict[str, str], targets: list[str], key: str) -> list[int]:
    """For each model label, the column of the pipeline label it means: the config mapping
    first, then the label itself when it already is one (case-insensitive)."""
    lowered = {k.lower(): v for k, v in mapping.items()}
    columns = []
    for name in names:
        target = lowered.get(name.lower(), name.lower())
        if target not in targets:
            raise LabelMappingError(
                f'the model\'s label {name!r} is not mapped: set {key} = {{ {name} = "one of {", ".join(targets)}" }} (model labels: {", ".join(names)})'
            )
        columns.append(targets.index(target))
    return columns


def batched_logits(loaded: LoadedModel, encodings: list[list[int]], max_tokens_per_batch: int, token_type_ids: list[list[int]] | None = None) -> np.ndarray:
    """Logits for pre-tokenised inputs, in length-sorted batches within a token budget."""
    n_labels = int(loaded.model.config.num_labels)
    out = np.zeros((len(encodings), n_labels), dtype=np.float32)
    pad = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0
    for batch in token_budget_batches([len(x) for x in encodings], max_tokens_per_batch):
        width = max(len(encodings[i]) for i in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        types = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            input_ids[row, : len(encodings[i])] = torch.tensor(encodings[i])
            attention[row, : len(encodings[i])] = 1
            if token_type_ids is not None:
                types[row, : len(encodings[i])] = torch.tensor(token_type_ids[i])
        inputs = {"input_ids": input_ids, "attention_mask": attention}
        if token_type_ids is not None and "token_type_ids" in loaded.tokenizer.model_input_names:
            inputs["token_type_ids"] = types
        with loaded.lock, torch.inference_mode():
            logits = loaded.model(**{k: v.to(loaded.device) for k, v in inputs.items()}).logits
        out[batch] = logits.float().cpu().numpy()
    return out


class SentimentClassifier:
    """Any sequence classifier; its labels fold into negative / neutral / positive (a
    two-label model leaves neutral at 0)."""

    labels = SENTIMENT_LABELS

    def __init__(self, loaded: LoadedModel, mapping: dict[str, str], max_length: int = 256, max_tokens_per_batch: int = 4096):
        self.loaded = loaded
        self.columns = label_columns(model_labels(loaded), mapping, self.labels, "sentiment.labels")
        self.max_length = max_length
        self.max_tokens_per_batch = max_tokens_per_batch

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        ids = self.loaded.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        model_probs = softmax(batched_logits(self.loaded, ids, self.max_tokens_per_batch))
        probs = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for model_column, column in enumerate(self.columns):
            probs[:, column] += model_probs[:, model_column]
        return probs


class ZeroShotStance:
    """Stance from an NLI model: the sentence is the premise and each label has a hypothesis
    about the target ("This text is in favor of {target}."). A label's score is its
    hypothesis's entailment-vs-contradiction log-odds; the scores are softmaxed over labels."""

    labels = STANCE_LABELS

    def __init__(self, loaded: LoadedModel, templates: dict[str, str], max_length: int = 256, max_tokens_per_batch: int = 4096):
        missing = [label for label in self.labels if label not in templates]
        if missing:
            raise LabelMappingError(f"stance.templates needs a hypothesis for {', '.join(missing)}")
        self.loaded = loaded
        self.templates = templates
        names = [name.lower() for name in model_labels(loaded)]
        entailment = [i for i, name in enumerate(names) if name.startswith("entail")]
        # Three-way NLI models say contradiction; two-way ones (entailment / not_entailment) the complement.
        against = [i for i, name in enumerate(names) if name.startswith("contra")] or [i for i, name in enumerate(names) if name.startswith("not_entail")]
        if not entailment or not against:
            raise LabelMappingError(
                f"{loaded.model_id} is not an NLI model: its labels are {', '.join(model_labels(loaded))}, "
                "need 'entailment' and 'contradiction' (or 'not_entailment')"
            )
        self.entailment, self.contradiction = entailment[0], against[0]
        self.max_length = max_length
        self.max_tokens_per_batch = max_tokens_per_batch

    def predict_proba(self, sentences: list[str], targets: list[str]) -> np.ndarray:
        """One row per (sentence, target) mention: every hypothesis of every mention goes
        through the model in shared batches."""
        if not sentences:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        premises = [s for s in sentences for _ in self.labels]
        hypotheses = [self.templates[label].format(target=t) for t in targets for label in self.labels]
        encoded = self.loaded.tokenizer(premises, hypotheses, truncation="only_first", max_length=self.max_length)
        logits = batched_logits(self.loaded, encoded["input_ids"], self.max_tokens_per_batch, encoded.get("token_type_ids"))
        scores = (logits[:, self.entailment] - logits[:, self.contradiction]).reshape(len(sentences), len(self.labels))
        return softmax(scores).astype(np.float32)
