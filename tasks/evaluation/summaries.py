"""Summary quality: ROUGE of the pipeline's own extractive summaries against reference
summaries, side by side with Lead-3 on the same cleaned text.

Each article goes through exactly what a run does to it (clean_document, one encoder
pass, summarize_sentences), so the numbers describe the pipeline, not a re-implementation
of it. Articles that cleaning rejects are counted and listed with their reasons, never
scored and never dropped silently. Plain functions: no Prefect."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

import pyarrow as pa
from rouge_score import rouge_scorer

from tasks.config import PipelineConfig
from tasks.evaluation.data_files import read_rows, require_columns
from tasks.records import CleanDocument, RawDocument, Rejection, RejectReason
from tasks.stages.clean import clean_document, split_sentences
from tasks.stages.encode import encode_documents
from tasks.stages.summarize import METHOD, abstractive_summaries, summarize_sentences

ROUGE_TYPES = ("rouge1", "rouge2", "rougeLsum")
LEAD_SENTENCES = 3
ID_COLUMN = "id"
STAGE = "evaluate"
NO_REFERENCE = "no_reference"  # not a pipeline reject reason: only evaluation needs a reference


@dataclass(frozen=True)
class Article:
    """One evaluation record: the article as the pipeline would read it, and its reference."""

    id: str
    origin: str
    text: Any  # whatever the file holds; cleaning decides whether it is usable text
    reference: Any


@dataclass(frozen=True)
class Cleaned:
    article: Article
    document: CleanDocument


# ---------------------------------------------------------------------------------------
# Reading


def read_articles(data: Path, article_column: str, reference_column: str, limit: int | None = None) -> list[Article]:
    """The first `limit` records (all when None) of a CSV, JSONL or Parquet file."""
    data = Path(data)
    rows = read_rows(data)[:limit]
    require_columns(data, rows, (article_column, reference_column))
    return [
        Article(
            id=str(row.get(ID_COLUMN) if row.get(ID_COLUMN) is not None else index),
            origin=f"{data}#{index}",
            text=row.get(article_column),
            reference=row.get(reference_column),
        )
        for index, row in enumerate(rows)
    ]


# ---------------------------------------------------------------------------------------
# Running the pipeline's own stages


def _rejection_row(article: Article, reason: str, detail: str, stage: str) -> dict[str, str]:
    return {"id": article.id, "origin": article.origin, "reason": reason, "detail": detail, "stage": stage}


def _unusable(article: Article) -> dict[str, str] | None:
    """Why an article cannot enter cleaning or scoring at all, as ingest and ROUGE see it."""
    if not isinstance(article.text, str) or not article.text.strip():
        return _rejection_row(article, str(RejectReason.EMPTY), "no article text", STAGE)
    if not isinstance(article.reference, str) or not article.reference.strip():
        return _rejection_row(article, NO_REFERENCE, "no reference summary to score against", STAGE)
    return None


def clean_articles(articles: list[Article], config: PipelineConfig) -> tuple[list[Cleaned], list[dict[str, str]]]:
    """Articles as clean_document keeps them, and a row per article that is not kept."""
    kept: list[Cleaned] = []
    rejected: list[dict[str, str]] = []
    for article in articles:
        if problem := _unusable(article):
            rejected.append(problem)
            continue
        result = clean_document(RawDocument(origin=article.origin, text=article.text), config.clean)
        if isinstance(result, Rejection):
            rejected.append(_rejection_row(article, str(result.reason), result.detail, result.stage))
        else:
            kept.append(Cleaned(article, result))
    return kept, rejected


def pipeline_summaries(cleaned: list[Cleaned], config: PipelineConfig) -> list[tuple[list[str], list[int]]]:
    """Each document's summary as the pipeline writes it, one sentence per item, with the
    indexes of the sentences it copies: the picked sentences (extractive) or the generated
    text split into sentences, copying none (abstractive).

    Documents are keyed by position, not by doc_id: two articles with the same text would
    share a doc_id, and the summariser reads each key's rows as one document."""
    keys = [str(i) for i in range(len(cleaned))]
    documents = pa.table(
        {"doc_id": keys, "sentences": [c.document.sentences for c in cleaned]},
        schema=pa.schema([("doc_id", pa.string()), ("sentences", pa.list_(pa.string()))]),
    )
    sentences, _mentions = encode_documents(documents, config)
    if config.summary.kind == "abstractive":
        generated = abstractive_summaries(sentences, config)
        text = dict(zip(generated.column("doc_id").to_pylist(), generated.column("summary").to_pylist()))
        return [(split_sentences(text.get(key, "")), []) for key in keys]
    summaries = summarize_sentences(sentences, config.summary)
    picked = dict(zip(summaries.column("doc_id").to_pylist(), summaries.column("summary_sentences").to_pylist()))
    indexes = [list(picked.get(key, [])) for key in keys]
    return [([item.document.sentences[i] for i in chosen], chosen) for item, chosen in zip(cleaned, indexes)]


def lead_sentences(sentences: list[str], n: int = LEAD_SENTENCES) -> list[str]:
    """Lead-n: the first n sentences of the cleaned text (bylines and datelines already gone)."""
    return sentences[:n]


# ---------------------------------------------------------------------------------------
# Scoring


def reference_lines(reference: str) -> list[str]:
    """Highlights are one per line; blank lines carry nothing."""
    return [line.strip() for line in reference.splitlines() if line.strip()]


def rouge_f(scorer: rouge_scorer.RougeScorer, reference: list[str], candidate: list[str]) -> dict[str, float]:
    """F-measures ×100. Sentences go one per line: that is what rougeLsum splits on."""
    scores = scorer.score("\n".join(reference), "\n".join(candidate))
    return {name: 100 * scores[name].fmeasure for name in ROUGE_TYPES}


def mean_scores(rows: list[dict[str, Any]], prefix: str) -> dict[str, float]:
    return {name: round(fmean(row[f"{prefix}_{name}"] for row in rows), 2) if rows else 0.0 for name in ROUGE_TYPES}


def score_article(scorer: rouge_scorer.RougeScorer, item: Cleaned, summary: list[str], copied: list[int]) -> dict[str, Any]:
    """One per-article row, flat so that it goes straight into a Parquet table."""
    sentences = item.document.sentences
    reference = reference_lines(item.article.reference)
    pipeline = rouge_f(scorer, reference, summary)
    lead = rouge_f(scorer, reference, lead_sentences(sentences))
    return {
        "id": item.article.id,
        "origin": item.article.origin,
        "n_sentences": len(sentences),
        "pipeline_sentences": copied,
        "pipeline_summary": " ".join(summary),
        **{f"pipeline_{name}": round(value, 4) for name, value in pipeline.items()},
        **{f"lead3_{name}": round(value, 4) for name, value in lead.items()},
    }


def evaluate_summaries(
    data: Path,
    config: PipelineConfig,
    article_column: str = "article",
    reference_column: str = "highlights",
    limit: int | None = None,
) -> dict[str, Any]:
    """ROUGE-1/2/Lsum F (×100, stemmed) of the pipeline's summaries and of Lead-3 against
    the references in `data`. JSON-serialisable; `per_article` holds one flat row per
    scored article and `rejected` one row per article that was not scored."""
    articles = read_articles(Path(data), article_column, reference_column, limit)
    cleaned, rejected = clean_articles(articles, config)
    summaries = pipeline_summaries(cleaned, config) if cleaned else []
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    rows = [score_article(scorer, item, summary, copied) for item, (summary, copied) in zip(cleaned, summaries)]
    return {
        "data": str(data),
        "n_read": len(articles),
        "n": len(rows),
        "n_rejected": len(rejected),
        "rejected_by_reason": dict(Counter(r["reason"] for r in rejected)),
        "rejected": rejected,
        "method": f"abstractive:{config.summary.model}" if config.summary.kind == "abstractive" else METHOD,
        "summary_sentences": config.summary.sentences,
        "lead_sentences": LEAD_SENTENCES,
        "pipeline": mean_scores(rows, "pipeline"),
        "lead3": mean_scores(rows, "lead3"),
        "per_article": rows,
    }
