"""Encode stage: one transformer pass over every sentence of a shard, and what needs that
pass's token states: the names in each sentence (a token head on the pass, or spaCy's NER),
grouped into the documents' entities, and the chosen mentions pooled and judged by a tuned
stance head. Every later head reads what this stage writes."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from types import SimpleNamespace

import pyarrow as pa

from tasks.arrow import vector_column
from tasks.config import PipelineConfig, resolve_resource
from tasks.models.encoder import Encoded, SentenceEncoder, Span, get_encoder
from tasks.models.heads import head_kind
from tasks.models.tuned_stance import KIND as TUNED_KIND
from tasks.models.tuned_stance import TunedStanceHead, load_tuned_stance_head
from tasks.records import StageOutput
from tasks.stages.entities.recognise import Found, kept_layers, ner_pipeline, recognise, recognise_in_pass, token_ner
from tasks.stages.entities.stage import MENTIONS_SCHEMA, name_entities

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
        if config.entities.recogniser == "spacy":
            ner_pipeline(config.entities.model)
        else:
            token_ner(config.entities.head)
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
    tuned stance head, its probabilities) for the given mentions: what summarize,
    sentiment and stance read."""
    encoder = pipeline_encoder(config)
    tuned = tuned_stance_head(config.stance.head, encoder) if config.stance.kind == "head" else None
    # One shard at a time (the encoder's one inference thread): interleaved shards would
    # hold several shards' tokens in memory and delay every shard's heads and write.
    return encoded_tables(batch, encoder.encode(batch.texts, batch.spans, tuned))


def encoded_tables(batch: SentencesToEncode, encoded: Encoded) -> tuple[pa.Table, pa.Table]:
    """The sentences and mentions tables from what the encoder computed for the batch."""
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


CHUNK_DOCUMENTS = 32  # documents per group of passes: bounds the token states held for the heads (~100 MB)
FIND_SENTENCES = 1024  # sentences per group of passes when only names are wanted (evaluation, training)


def pass_layers(settings: SimpleNamespace, encoder: SentenceEncoder, tuned: TunedStanceHead | None) -> tuple[int, ...]:
    """The layers whose states the token-level heads read, besides the final one."""
    layers = {tuned.split_layer} if tuned else set()
    if settings.entities.recogniser == "encoder":
        layers.update(kept_layers(settings.entities.head, encoder.n_layers))
    return tuple(sorted(layers))


def find_names(sentences: list[str], settings: SimpleNamespace) -> list[list[Found]]:
    """The names the configured recogniser finds in each sentence (the encoder recogniser
    runs an encoder pass for them): what evaluation and training see of this stage."""
    if settings.entities.recogniser == "spacy":
        return recognise(sentences, settings.entities.model, settings.entities.batch_size)
    encoder = pipeline_encoder(settings)
    layers = pass_layers(settings, encoder, None)
    found: list[list[Found]] = []
    for start in range(0, len(sentences), FIND_SENTENCES):  # a training set's token states would not fit at once
        part = sentences[start : start + FIND_SENTENCES]
        _, passes = encoder.forward_passes(part, layers)
        found.extend(recognise_in_pass(part, passes, settings.entities.head, encoder.n_layers))
    return found


def encode_chunk(documents: pa.Table, settings: SimpleNamespace) -> StageOutput:
    """Encode a few documents (doc_id, sentences): pass, names, entities, judged mentions."""
    encoder = pipeline_encoder(settings)
    tuned = tuned_stance_head(settings.stance.head, encoder) if settings.stance.kind == "head" else None
    batch = sentences_to_encode(documents, MENTIONS_SCHEMA.empty_table())
    by_spacy = settings.entities.recogniser == "spacy"
    found = recognise(batch.texts, settings.entities.model, settings.entities.batch_size) if by_spacy else None
    vectors, passes = encoder.forward_passes(batch.texts, pass_layers(settings, encoder, tuned))
    if found is None:
        found = recognise_in_pass(batch.texts, passes, settings.entities.head, encoder.n_layers)
    named = name_entities(documents, found, settings)
    row_of = {(d, i): row for row, (d, i) in enumerate(zip(batch.doc_ids, batch.indexes))}
    for mention in named.parts["mentions"].to_pylist():
        batch.add_mention(row_of[(mention["doc_id"], mention["sentence_index"])], mention)
    sentences, mentions = encoded_tables(batch, encoder.judge(vectors, passes, batch.spans, tuned))
    return StageOutput(sentences, parts={"mentions": mentions, "entities": named.table, "capped": named.parts["capped"]})


def encode_shard(documents: pa.Table, settings: SimpleNamespace) -> StageOutput:
    """The encode stage over a shard's documents (doc_id, sentences): sentences with their
    embeddings; as parts, the `entities` table, the `mentions` the stance stage reads (pooled
    states and, with a tuned head, probabilities) and the documents `capped` at
    entities.max_per_document. Documents go through in small groups, whose token states are
    dropped once their heads have read them."""
    chunks = [encode_chunk(documents.slice(start, CHUNK_DOCUMENTS), settings) for start in range(0, documents.num_rows, CHUNK_DOCUMENTS)]
    if not chunks:
        chunks = [encode_chunk(documents, settings)]
    parts = {name: pa.concat_tables([c.parts[name] for c in chunks]) for name in chunks[0].parts}
    return StageOutput(pa.concat_tables([c.table for c in chunks]), parts=parts)
