"""Entities: the names each document mentions, grouped and named, and the mentions whose
stance is judged. The encode stage runs this on the names its recogniser found (recognition
reads the encoder's own pass, so it lives with that pass)."""

from __future__ import annotations

from types import SimpleNamespace

import pyarrow as pa

from tasks.records import StageOutput
from tasks.stages.entities.demonyms import country_of
from tasks.stages.entities.grouping import Entity, Mention, group_mentions, propagate
from tasks.stages.entities.known import AliasMatch, AliasTable
from tasks.stages.entities.names import bare_name, visible_text, without_honorifics
from tasks.stages.entities.recognise import Found, recognise
from tasks.stages.entities.spans import tidied

ENTITIES_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("entity_id", pa.string()),
        ("name", pa.string()),
        ("type", pa.string()),
        ("configured", pa.bool_()),  # an entry of the alias table
        ("n_mentions", pa.int32()),
        ("surfaces", pa.list_(pa.string())),
        ("first_sentence", pa.int32()),
    ]
)
# The mentions the stance of which is judged (the encode stage pools them, the stance stage
# reads their probabilities): `target` is the entity's name.
MENTIONS_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("sentence_index", pa.int32()),
        ("entity_id", pa.string()),
        ("target", pa.string()),
        ("type", pa.string()),
        ("surface", pa.string()),
        ("start", pa.int32()),
        ("end", pa.int32()),
    ]
)
CAPPED_SCHEMA = pa.schema([("doc_id", pa.string()), ("entities_found", pa.int32()), ("entities_kept", pa.int32())])


def found_mention(sentence: str, index: int, found: Found, aliases: AliasTable, types: set[str]) -> Mention | None:
    """A recognised name as a mention, or None for a type the run does not keep."""
    surface = visible_text(sentence[found.start : found.end])
    name, label = bare_name(surface), found.label
    if label == "NORP":  # a nationality counts as its country, where it names one
        country = country_of(name)
        if country is None:
            return None
        name, label = country, "GPE"
    elif label == "PERSON":
        name = without_honorifics(name)
    known = aliases.name_for(name, label)
    if known is None and label not in types:
        return None
    return Mention(index, found.start, found.end, surface, name, label, known)


def inside(inner: tuple[int, int], outer: tuple[int, int]) -> bool:
    return outer[0] <= inner[0] and inner[1] <= outer[1]


def sentence_mentions(sentence: str, index: int, found: list[Found], aliases: AliasTable, types: set[str]) -> list[Mention]:
    """The recogniser's mentions of a sentence, plus the alias table's matches that no
    recognised name covers: "China" inside "the Permanent Mission of China" is no China mention."""
    found = tidied(sentence, found)
    spans = [(f.start, f.end) for f in found]
    mentions = [m for f in found if (m := found_mention(sentence, index, f, aliases, types))]
    for match in aliases.find(sentence):
        span = (match.start, match.end)
        if any(inside(span, other) for other in spans):
            continue
        mentions = [m for m in mentions if not inside((m.start, m.end), span)]  # "Western" inside "Western countries"
        mentions.append(alias_mention(index, match))
    return mentions


def alias_mention(index: int, match: AliasMatch) -> Mention:
    return Mention(index, match.start, match.end, match.surface, match.name, "", match.name, found=False)


def kept_entities(entities: list[Entity], cap: int) -> list[Entity]:
    """At most `cap` entities: configured ones first, then the most mentioned, then the earliest."""
    if len(entities) <= cap:
        return entities
    ranked = sorted(range(len(entities)), key=lambda k: (not entities[k].known, -len(entities[k].mentions), k))
    keep = set(ranked[:cap])
    return [e for k, e in enumerate(entities) if k in keep]


def judged(entity: Entity, mention: Mention, targets: str, min_mentions: int) -> bool:
    """Whether a mention's stance is judged, by stance.targets and stance.min_mentions."""
    if entity.known:  # configured: judged at any count; "entities" judges only what the recogniser found
        return targets != "entities" or mention.found
    return targets != "configured" and len(entity.mentions) >= min_mentions


def document_entities(sentences: list[str], found: list[list[Found]], aliases: AliasTable, types: set[str]) -> list[Entity]:
    mentions = [m for index, sentence in enumerate(sentences) for m in sentence_mentions(sentence, index, found[index], aliases, types)]
    entities = group_mentions(mentions, sentences, aliases.type_of)
    propagate(entities, sentences)
    return entities


def lone_sentence_mentions(sentences: list[str], found: list[list[Found]], settings: SimpleNamespace) -> list[list[tuple[int, int]]]:
    """The character spans of the mentions that would be judged in each sentence read as a
    document of its own, from the names found in it: what an "all-mentions" stance head is
    trained and evaluated with."""
    config = settings.entities
    aliases = AliasTable(config.known)
    spans: list[list[tuple[int, int]]] = []
    for sentence, sentence_found in zip(sentences, found):
        entities = document_entities([sentence], [sentence_found], aliases, set(config.types))
        judged_here = [m for e in entities for m in e.mentions if judged(e, m, settings.stance.targets, settings.stance.min_mentions)]
        spans.append(sorted((m.start, m.end) for m in judged_here))
    return spans


def entities_shard(documents: pa.Table, settings: SimpleNamespace) -> StageOutput:
    """The entities of a shard's documents (doc_id, sentences) with spaCy's recogniser, for
    tools that have no encoder pass at hand; the pipeline names entities inside its encode
    stage (`name_entities`), from whichever recogniser the config sets."""
    flat = [s for sentences in documents.column("sentences").to_pylist() for s in sentences]
    return name_entities(documents, recognise(flat, settings.entities.model, settings.entities.batch_size), settings)


def name_entities(documents: pa.Table, found: list[list[Found]], settings: SimpleNamespace) -> StageOutput:
    """The documents' (doc_id, sentences) entities from the names found in each of their
    sentences (in order): the `entities` table, and as parts the `mentions` whose stance is
    judged and the documents `capped` at entities.max_per_document."""
    config = settings.entities
    aliases = AliasTable(config.known)
    doc_ids = documents.column("doc_id").to_pylist()
    texts = documents.column("sentences").to_pylist()
    rows: list[dict] = []
    mention_rows: list[dict] = []
    capped: list[dict] = []
    offset = 0
    for doc_id, sentences in zip(doc_ids, texts):
        entities = document_entities(sentences, found[offset : offset + len(sentences)], aliases, set(config.types))
        offset += len(sentences)
        kept = kept_entities(entities, config.max_per_document)
        if len(kept) < len(entities):
            capped.append({"doc_id": doc_id, "entities_found": len(entities), "entities_kept": len(kept)})
        for e in kept:
            first = e.mentions[0]
            rows.append(
                {
                    "doc_id": doc_id,
                    "entity_id": e.entity_id,
                    "name": e.name,
                    "type": e.type,
                    "configured": e.known,
                    "n_mentions": len(e.mentions),
                    "surfaces": e.surfaces,
                    "first_sentence": first.sentence,
                }
            )
            for m in e.mentions:
                if judged(e, m, settings.stance.targets, settings.stance.min_mentions):
                    mention_rows.append(
                        {
                            "doc_id": doc_id,
                            "sentence_index": m.sentence,
                            "entity_id": e.entity_id,
                            "target": e.name,
                            "type": e.type,
                            "surface": m.surface,
                            "start": m.start,
                            "end": m.end,
                        }
                    )
    parts = {"mentions": pa.Table.from_pylist(mention_rows, schema=MENTIONS_SCHEMA), "capped": pa.Table.from_pylist(capped, schema=CAPPED_SCHEMA)}
    return StageOutput(pa.Table.from_pylist(rows, schema=ENTITIES_SCHEMA), parts=parts)
