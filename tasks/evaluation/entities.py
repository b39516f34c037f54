"""Named-entity quality: the entities stage's own recognition, naming and type vote against
labelled spans (precision and recall, exact and overlapping, per type), or against the proper-
name mentions of a NewsMTSC file (recall: each should fall inside an entity of its sentence)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.config import PipelineConfig
from tasks.evaluation.data_files import read_rows, require_columns
from tasks.stages.encode import find_names
from tasks.stages.entities.demonyms import country_of
from tasks.stages.entities.grouping import Entity, Mention
from tasks.stages.entities.known import AliasTable
from tasks.stages.entities.names import bare_name, without_honorifics
from tasks.stages.entities.stage import document_entities

TYPES = ("PERSON", "ORG", "GPE", "LOC")
Span = tuple[int, int, str]  # start, end (exclusive), type
PRONOUNS = frozenset("i he she it we you they him her them his hers its our their this that these those who".split())
NAME_WORD = re.compile(r"^(?:[A-Z][\w.'’&-]*|of|the|and|for|de|du|da|von|van|al|bin)$")


def trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """A span without a leading "the" or a trailing possessive, as labels are written."""
    if text[start : start + 4].lower() == "the ":
        start += 4
    if text[end - 2 : end] in ("'s", "’s"):
        end -= 2
    return start, end


def predicted_spans(texts: list[str], config: PipelineConfig) -> list[list[Span]]:
    """Each text taken as a one-sentence document through the pipeline's own code (the
    configured recogniser, naming, grouping and looking again for names found once), as a
    run does."""
    aliases = AliasTable(config.entities.known)
    found = find_names(texts, config)
    out = []
    for text, names in zip(texts, found):
        entities = document_entities([text], [names], aliases, set(config.entities.types))
        out.append([(*trimmed(text, m.start, m.end), mention_type(e, m)) for e in entities for m in e.mentions if not is_nationality(m)])
    return [[span for span in spans if span[2] in TYPES] for spans in out]


def is_nationality(mention: Mention) -> bool:
    """ "Chinese" counts as China in the pipeline, but labelled data marks no nationality."""
    return country_of(bare_name(mention.surface)) is not None


def mention_type(entity: Entity, mention: Mention) -> str:
    """The entity's voted type; for a known entity's mention, what the recogniser called it
    ("Brussels" is a place, however the alias table names it)."""
    return mention.label if entity.known and mention.label in TYPES else entity.type


def overlaps(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def scores(tp_predicted: int, n_predicted: int, tp_gold: int, n_gold: int) -> dict[str, Any]:
    precision = tp_predicted / n_predicted if n_predicted else 0.0
    recall = tp_gold / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "support": n_gold}


def span_metrics(gold: list[list[Span]], predicted: list[list[Span]]) -> dict[str, Any]:
    """Per type (exact span and type), then all types exact, then overlapping spans of any type."""
    per_class: dict[str, Any] = {}
    for t in TYPES:
        g = [{s for s in spans if s[2] == t} for spans in gold]
        p = [{s for s in spans if s[2] == t} for spans in predicted]
        hits = sum(len(a & b) for a, b in zip(g, p))
        per_class[t] = scores(hits, sum(map(len, p)), hits, sum(map(len, g)))
    g_all, p_all = [set(s) for s in gold], [set(s) for s in predicted]
    hits = sum(len(a & b) for a, b in zip(g_all, p_all))
    per_class["all (exact)"] = scores(hits, sum(map(len, p_all)), hits, sum(map(len, g_all)))
    found_gold = sum(any(overlaps(s, q) for q in p) for g, p in zip(g_all, p_all) for s in g)
    right_predicted = sum(any(overlaps(q, s) for s in g) for g, p in zip(g_all, p_all) for q in p)
    per_class["all (overlap)"] = scores(right_predicted, sum(map(len, p_all)), found_gold, sum(map(len, g_all)))
    return {"per_class": per_class, "macro_f1": round(sum(per_class[t]["f1"] for t in TYPES) / len(TYPES), 4), "accuracy": None}


def is_proper_name(mention: str) -> bool:
    """ "Donald Trump", "the Justice Department" count; "He", "the president" do not."""
    words = mention.split()
    return bool(words) and mention.lower() not in PRONOUNS and all(NAME_WORD.match(w) for w in words) and any(w[0].isupper() for w in words)


def evaluate_spans(rows: list[dict[str, Any]], config: PipelineConfig) -> tuple[dict[str, Any], pd.DataFrame]:
    texts = [r["text"] for r in rows]
    gold = [[(*trimmed(r["text"], e["start"], e["end"]), e["type"]) for e in r["entities"] if e["type"] in TYPES] for r in rows]
    predicted = predicted_spans(texts, config)
    examples = pd.DataFrame(
        {
            "text": texts,
            "gold": [[f"{t[s:e]}/{k}" for s, e, k in spans] for t, spans in zip(texts, gold)],
            "predicted": [[f"{t[s:e]}/{k}" for s, e, k in spans] for t, spans in zip(texts, predicted)],
        }
    )
    return {"format": "spans", "n": len(rows), **span_metrics(gold, predicted)}, examples


def evaluate_newsmtsc(rows: list[dict[str, Any]], config: PipelineConfig) -> tuple[dict[str, Any], pd.DataFrame]:
    """Recall of the proper-name mentions (each distinct sentence and span once); where the
    alias table knows the name, also whether the type is right."""
    aliases = AliasTable(config.entities.known)
    labels = {(r["sentence"], r["from"], r["to"]): r["sentence"][r["from"] : r["to"]] for r in rows}
    labels = {k: v for k, v in labels.items() if is_proper_name(v)}
    sentences = sorted({k[0] for k in labels})
    index = {s: i for i, s in enumerate(sentences)}
    predicted = predicted_spans(sentences, config)
    found, typed, typed_right, records = 0, 0, 0, []
    for (sentence, start, end), mention in labels.items():
        start += len(mention) - len(without_honorifics(mention))  # "President Trump": the name is what is found
        hits = [q for q in predicted[index[sentence]] if q[0] <= start and end <= q[1] + 2]  # a possessive may follow
        known = aliases.name_for(mention, "ORG")
        expected = aliases.type_of.get(known) if known else None
        found += bool(hits)
        if expected in TYPES:
            typed += 1
            typed_right += any(q[2] == expected for q in hits)
        records.append({"sentence": sentence, "mention": mention, "found": bool(hits), "types": [q[2] for q in hits], "expected_type": expected})
    per_class = {
        "proper names (inside an entity)": {"precision": None, "recall": round(found / len(labels), 4) if labels else 0.0, "f1": None, "support": len(labels)},
        "known names (right type)": {"precision": None, "recall": round(typed_right / typed, 4) if typed else 0.0, "f1": None, "support": typed},
    }
    return {"format": "newsmtsc", "n": len(labels), "per_class": per_class, "macro_f1": None, "accuracy": None}, pd.DataFrame(records)


def evaluate_entities(data: Path, config: PipelineConfig) -> tuple[dict[str, Any], pd.DataFrame]:
    """Labelled spans (rows: text, entities [{start, end, type}]) or a NewsMTSC file (rows:
    sentence, from, to, ...): (metrics, one row per example)."""
    rows = read_rows(data)
    if rows and "sentence" in rows[0] and "from" in rows[0]:
        return evaluate_newsmtsc(rows, config)
    require_columns(data, rows, ("text", "entities"))
    return evaluate_spans(rows, config)
