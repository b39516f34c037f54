"""Encode stage: one transformer pass over every sentence of a shard, plus pooled token
states over each mention the entities stage chose. Every head reads what this stage writes."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pyarrow as pa

from tasks.arrow import vector_column
from tasks.config import PipelineConfig, resolve_resource
from tasks.models.encoder import SentenceEncoder, Span, get_encoder
from tasks.models.heads import head_kind
from tasks.models.tuned_stance import KIND as TUNED_KIND
from tasks.models.tuned_stance import TunedStanceHead, load_tuned_stance_head
from tasks.records import StageOutput
from tasks.stages.entities.stage import MENTIONS_SCHEMA

STANCE_PROBS = "stance_probs"  # mentions column a tuned stance head fills during this stage
_TUNED_HEADS: dict[tuple[str, int], TunedStanceHead] = {}
_TUNED_LOCK = threading.Lock()


def pipeline_encoder(config: PipelineConfig) -> SentenceEncoder:
    """The encoder as the config sets it, loaded once per process."""
    from tasks.models.hf_runtime import resolve_device

    e = config.encoder
    return get_encoder(e.model, e.max_length, e.max_tokens_per_batch, e.threads, e.precision, e.backend, str(resolve_device(config.runtime.device)))


def tuned_stance_head(head_path: str, encoder: SentenceEncoder) -> TunedStanceHead | None:
    """The configured stance head when it is a tuned one (it must run inside this pass,
    on the states entering its layers); None for a linear head, which the stance stage runs."""
    folder = resolve_resource(head_path)
    if head_kind(folder) != TUNED_KIND:
        return None
    key = (str(folder), id(encoder))
    with _TUNED_LOCK:  # loaded once per process, like the encoder
        if key not in _TUNED_HEADS:
            _TUNED_HEADS[key] = load_tuned_stance_head(folder, encoder.model)
        return _TUNED_HEADS[key]


def preload_models(config: PipelineConfig) -> None:
    """Load the encoder (and a tuned stance head) into this process's cache ahead of the run,
    so loading overlaps other start-up work. A model that fails to load is left for the
    run itself to report."""
    try:
        from tasks.stages.entities.recognise import ner_pipeline

        ner_pipeline(config.entities.model)
        encoder = pipeline_encoder(config)
        if config.stance.kind == "head":
            tuned_stance_head(config.stance.head, encoder)
    except Exception:  # noqa: BLE001 - the run's model check says what is missing
        pass


@dataclass
class SentencesToEncode:
    """Sentences (grouped by document) and the mentions to judge in them."""

    doc_ids: list[str] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    mentions: dict[str, list] = field(default_factory=lambda: {k: [] for k in MENTION_KEYS})
    spans: list[Span] = field(default_factory=list)

    def add_sentence(self, doc_id: str, index: int, text: str) -> int:
        self.doc_ids.append(doc_id)
        self.indexes.append(index)
        self.texts.append(text)
        return len(self.texts) - 1

    def add_mention(self, row: int, mention: dict) -> None:
        self.spans.append(Span(row, mention["start"], mention["end"]))
        for key in MENTION_KEYS:
            self.mentions[key].append(mention[key])


MENTION_KEYS = ("doc_id", "sentence_index", "entity_id", "target", "type", "surface", "start", "end")
MENTION_TYPES = {"sentence_index": pa.int32(), "start": pa.int32(), "end": pa.int32()}  # the rest are strings


def encode_sentences(batch: SentencesToEncode, config: PipelineConfig) -> tuple[pa.Table, pa.Table]:
    """(sentences table with embeddings, mentions table with pooled states and, with a
    tuned stance head, its probabilities): what summarize, sentiment and stance read."""
    encoder = pipeline_encoder(config)
    tuned = tuned_stance_head(config.stance.head, encoder) if config.stance.kind == "head" else None
    # One shard at a time (the encoder's one inference thread): interleaved shards would
    # hold several shards' tokens in memory and delay every shard's heads and write.
    encoded = encoder.encode(batch.texts, batch.spans, tuned)
    sentences_table = pa.table(
        {
            "doc_id": pa.array(batch.doc_ids, pa.string()),
            "sentence_index": pa.array(batch.indexes, pa.int32()),
            "text": pa.array(batch.texts, pa.string()),
            "embedding": vector_column(encoded.sentence_vectors),
        }
    )
    m = batch.mentions
    mention_columns = {
        **{key: pa.array(m[key], MENTION_TYPES.get(key, pa.string())) for key in MENTION_KEYS},
        "span_embedding": vector_column(encoded.span_vectors),
        "window_embedding": vector_column(encoded.window_vectors),
    }
    if encoded.span_probs is not None:
        mention_columns[STANCE_PROBS] = vector_column(encoded.span_probs)
    return sentences_table, pa.table(mention_columns)


def sentences_to_encode(documents: pa.Table, mentions: pa.Table) -> SentencesToEncode:
    """Every sentence of the documents (doc_id, sentences), with the mentions to judge in them."""
    batch = SentencesToEncode()
    row_of: dict[tuple[str, int], int] = {}
    for doc_id, sentences in zip(documents.column("doc_id").to_pylist(), documents.column("sentences").to_pylist()):
        for index, sentence in enumerate(sentences):
            row_of[(doc_id, index)] = batch.add_sentence(doc_id, index, sentence)
    for mention in mentions.to_pylist():
        batch.add_mention(row_of[(mention["doc_id"], mention["sentence_index"])], mention)
    return batch


def encode_documents(documents: pa.Table, config: PipelineConfig, mentions: pa.Table | None = None) -> tuple[pa.Table, pa.Table]:
    """The sentences of the documents (doc_id, sentences) and the given mentions, encoded."""
    return encode_sentences(sentences_to_encode(documents, mentions if mentions is not None else MENTIONS_SCHEMA.empty_table()), config)


def encode_shard(documents: pa.Table, mentions: pa.Table, config: PipelineConfig) -> StageOutput:
    """The encode stage over a shard's documents (doc_id, sentences) and the mentions the
    entities stage chose: sentences with their embeddings, and the `mentions` part the
    stance stage reads."""
    sentences, encoded_mentions = encode_documents(documents, config, mentions)
    return StageOutput(sentences, parts={"mentions": encoded_mentions})
