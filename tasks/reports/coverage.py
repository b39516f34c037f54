"""The coverage report's data: documents per source and day, sentiment per day, the most
mentioned entities' stance per day with its evidence, and the largest stories, from the
output root's `documents`, `stances` and `stories` tables. One function per chart, pure
pandas over the tables as read; html_page.py only draws what they return.

Every aggregate counts a group of copies (`documents.duplicate_group`) once: a wire story
that five outlets print is one document here, not five. A document's day is its
publication date (UTC), else the date of the run that read it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from tasks.dataset.committed import UNKNOWN_SOURCE, commit_order, document_days, latest_analysis, one_per_group, read_table

SENTIMENTS = ("negative", "neutral", "positive")
STANCE_LABELS = ("against", "neutral", "favor")
TOP_ENTITIES = 5
EVIDENCE_PER_ENTITY = 3

DOCUMENT_COLUMNS = [
    "doc_id",
    "origin",
    "source",
    "title",
    "published",
    "sentiment",
    "run_id",
    "analysis_sha256",
    "duplicate_group",
    "canonical_doc_id",
    "story_id",
]
STANCE_COLUMNS = [
    "doc_id",
    "entity_id",
    "target",
    "type",
    "label",
    "confidence",
    "p_against",
    "p_neutral",
    "p_favor",
    "n_mentions",
    "evidence",
    "analysis_sha256",
]
STORY_COLUMNS = ["story_id", "first_seen", "last_seen", "n_documents", "n_sources", "title", "top_entities", "updated_at"]


class UnknownRun(ValueError):
    """A RUN_ID that names no run, or more than one, under the output root."""


@dataclass(frozen=True)
class Scope:
    """Which documents the report covers: one run's, those on or after a day, or all."""

    run_id: str | None = None
    since: date | None = None

    def describe(self) -> str:
        if self.run_id:
            return f"run {self.run_id}"
        if self.since:
            return f"documents published on or after {self.since.isoformat()}"
        return "all documents"


def resolve_run(run_ids: list[str], prefix: str) -> str:
    """The one run id that starts with `prefix` (ids are long: `newsflow runs` users type the start)."""
    matches = sorted({r for r in run_ids if r.startswith(prefix)})
    if len(matches) != 1:
        raise UnknownRun(f"{'no run' if not matches else f'{len(matches)} runs'} matching {prefix!r}")
    return matches[0]


def in_scope(documents: pd.DataFrame, scope: Scope) -> pd.DataFrame:
    if scope.run_id:
        documents = documents[documents["run_id"] == scope.run_id]
    if scope.since:
        documents = documents[documents["day"] >= scope.since.isoformat()]  # ISO dates: text order is time order
    return documents


def kept_documents(documents: pd.DataFrame, runs: pd.DataFrame, scope: Scope) -> pd.DataFrame:
    """The documents the report counts: in scope, each in its latest analysis, one per group
    of copies; with their `day`, sorted by day."""
    if documents.empty:
        return documents.assign(day=pd.Series(dtype=object), order=pd.Series(dtype=object))
    documents = documents.assign(day=document_days(documents), order=commit_order(documents, runs))
    kept = one_per_group(latest_analysis(in_scope(documents, scope)))
    return kept.sort_values(["day", "order", "origin"], kind="stable").reset_index(drop=True)


def documents_per_source_day(documents: pd.DataFrame) -> pd.DataFrame:
    """Chart 1: (day, source, n_documents), a row per day and source with documents."""
    if documents.empty:
        return pd.DataFrame({"day": [], "source": [], "n_documents": []})
    sources = documents["source"].fillna(UNKNOWN_SOURCE).replace("", UNKNOWN_SOURCE)
    counts = documents.assign(source=sources).groupby(["day", "source"]).size().reset_index(name="n_documents")
    return counts.sort_values(["day", "source"], kind="stable").reset_index(drop=True)


def sentiment_per_day(documents: pd.DataFrame) -> pd.DataFrame:
    """Chart 2: (day, negative, neutral, positive, n_documents): documents of each sentiment per day."""
    if documents.empty:
        return pd.DataFrame({"day": [], **{s: [] for s in SENTIMENTS}, "n_documents": []})
    counts = pd.crosstab(documents["day"], documents["sentiment"]).reindex(columns=list(SENTIMENTS), fill_value=0)
    counts.columns.name = None
    counts["n_documents"] = counts.sum(axis=1)
    return counts.rename_axis("day").reset_index().sort_values("day").reset_index(drop=True)


def kept_stances(stances: pd.DataFrame, documents: pd.DataFrame) -> pd.DataFrame:
    """The stance rows of the kept documents, in the analysis kept, with the document's day,
    title and source. Rows of older outputs without entity ids are keyed by their target."""
    columns = [*STANCE_COLUMNS, "day", "title", "source"]
    if stances.empty or documents.empty:
        return pd.DataFrame(columns=columns)
    kept = documents[["doc_id", "analysis_sha256", "day", "title", "source"]].rename(columns={"analysis_sha256": "document_analysis"})
    joined = stances.drop(columns=["run_date"], errors="ignore").merge(kept, on="doc_id", how="inner")
    same = joined["analysis_sha256"].isna() | joined["document_analysis"].isna() | (joined["analysis_sha256"] == joined["document_analysis"])
    joined = joined[same].drop(columns=["document_analysis"])
    joined["entity_id"] = joined["entity_id"].fillna("target:" + joined["target"].fillna(""))
    return joined.reset_index(drop=True)[columns]


def top_entities(stances: pd.DataFrame, limit: int = TOP_ENTITIES) -> pd.DataFrame:
    """The `limit` entities with the most judged mentions in the kept documents: entity_id,
    name (its most frequent form), type, n_mentions, n_documents and a count of each stance label."""
    columns = ["entity_id", "name", "type", "n_mentions", "n_documents", *STANCE_LABELS]
    if stances.empty:
        return pd.DataFrame(columns=columns)
    grouped = stances.groupby("entity_id")
    table = pd.DataFrame(
        {
            "name": grouped["target"].agg(lambda names: names.value_counts().index[0] if names.notna().any() else ""),
            "type": grouped["type"].first(),
            "n_mentions": grouped["n_mentions"].sum().astype(int),
            "n_documents": grouped["doc_id"].nunique(),
        }
    )
    labels = pd.crosstab(stances["entity_id"], stances["label"]).reindex(columns=list(STANCE_LABELS), fill_value=0)
    table = table.join(labels).fillna(dict.fromkeys(STANCE_LABELS, 0)).rename_axis("entity_id").reset_index()
    table = table.sort_values(["n_mentions", "n_documents", "name"], ascending=[False, False, True], kind="stable")
    return table.head(limit).reset_index(drop=True)[columns]


def stance_per_day(stances: pd.DataFrame, entities: pd.DataFrame) -> pd.DataFrame:
    """Chart 3: (entity_id, name, day, n_documents, mean p_against, p_neutral, p_favor) for
    each of `entities` on each day it is judged: the mean over its documents of that day."""
    probabilities = [f"p_{label}" for label in STANCE_LABELS]
    if stances.empty or entities.empty:
        return pd.DataFrame(columns=["entity_id", "name", "day", "n_documents", *probabilities])
    rows = stances[stances["entity_id"].isin(entities["entity_id"])]
    daily = rows.groupby(["entity_id", "day"]).agg(n_documents=("doc_id", "nunique"), **{p: (p, "mean") for p in probabilities}).reset_index()
    daily = daily.merge(entities[["entity_id", "name"]], on="entity_id")
    rank = {entity: n for n, entity in enumerate(entities["entity_id"])}  # most mentioned first, as the legend lists them
    daily = daily.assign(_rank=daily["entity_id"].map(rank)).sort_values(["_rank", "day"], kind="stable")
    return daily.reset_index(drop=True)[["entity_id", "name", "day", "n_documents", *probabilities]]


def stance_evidence(stances: pd.DataFrame, entities: pd.DataFrame, per_entity: int = EVIDENCE_PER_ENTITY) -> pd.DataFrame:
    """The evidence under chart 3: for each of `entities`, its `per_entity` most confident
    stances (one per distinct sentence), with the label, the document's title, source and day."""
    columns = ["entity_id", "name", "label", "confidence", "evidence", "title", "source", "day", "doc_id"]
    if stances.empty or entities.empty:
        return pd.DataFrame(columns=columns)
    rows = stances[stances["entity_id"].isin(entities["entity_id"]) & stances["evidence"].fillna("").str.strip().ne("")]
    rows = rows.sort_values("confidence", ascending=False, kind="stable").drop_duplicates(["entity_id", "evidence"])
    rows = rows.groupby("entity_id", sort=False).head(per_entity).merge(entities[["entity_id", "name"]], on="entity_id")
    rank = {entity: n for n, entity in enumerate(entities["entity_id"])}
    rows = rows.assign(_rank=rows["entity_id"].map(rank)).sort_values(["_rank", "confidence"], ascending=[True, False], kind="stable")
    return rows.reset_index(drop=True)[columns]


def current_stories(stories: pd.DataFrame, story_ids: set[str] | None = None) -> pd.DataFrame:
    """Chart 4: each story's current state (its newest row by `updated_at`), largest first;
    only `story_ids` when given (the stories of the documents in scope)."""
    if stories.empty:
        return pd.DataFrame(columns=STORY_COLUMNS)
    newest = stories.sort_values("updated_at", kind="stable").drop_duplicates("story_id", keep="last")  # ISO 8601 UTC: text order is time order
    if story_ids is not None:
        newest = newest[newest["story_id"].isin(story_ids)]
    newest = newest.assign(
        title=newest["title"].fillna(newest["story_id"].str[:12]),
        top_entities=[list(names) if names is not None and not isinstance(names, float) else [] for names in newest["top_entities"]],
    )
    newest = newest.sort_values(["n_documents", "n_sources", "last_seen"], ascending=[False, False, False], kind="stable")
    return newest.reset_index(drop=True)[STORY_COLUMNS]


@dataclass
class Coverage:
    """What the report shows, computed once from the output root."""

    root: str
    scope: Scope
    documents: pd.DataFrame  # the kept documents: in scope, latest analysis, one per group of copies
    n_rows: int  # document rows in scope before that: copies and other analyses included
    per_source_day: pd.DataFrame
    sentiment: pd.DataFrame
    entities: pd.DataFrame
    stance: pd.DataFrame
    evidence: pd.DataFrame
    stories: pd.DataFrame

    @property
    def days(self) -> list[str]:
        """Every day a chart has a point on, in order: the charts share one axis."""
        return sorted({*self.per_source_day["day"], *self.sentiment["day"], *self.stance["day"]})

    @property
    def sources(self) -> list[str]:
        """The named outlets (documents without one are charted, not counted as a source)."""
        return sorted(set(self.per_source_day["source"]) - {UNKNOWN_SOURCE})

    @property
    def empty(self) -> bool:
        return self.documents.empty and self.stories.empty


def coverage_of(documents: pd.DataFrame, runs: pd.DataFrame, stances: pd.DataFrame, stories: pd.DataFrame, root: str, scope: Scope) -> Coverage:
    """Every chart's data from the tables as read."""
    if scope.run_id:  # an unknown id is the caller's mistake, not an empty report
        scope = Scope(resolve_run([*runs["run_id"].dropna(), *documents["run_id"].dropna()], scope.run_id), scope.since)
    kept = kept_documents(documents, runs, scope)
    judged = kept_stances(stances, kept)
    entities = top_entities(judged)
    scoped = bool(scope.run_id or scope.since)
    return Coverage(
        root=root,
        scope=scope,
        documents=kept,
        n_rows=len(in_scope(documents.assign(day=document_days(documents)), scope)) if not documents.empty else 0,
        per_source_day=documents_per_source_day(kept),
        sentiment=sentiment_per_day(kept),
        entities=entities,
        stance=stance_per_day(judged, entities),
        evidence=stance_evidence(judged, entities),
        stories=current_stories(stories, set(kept["story_id"].dropna()) if scoped else None),
    )


def read_coverage(root: str | Path, scope: Scope) -> Coverage:
    """Read the output root's tables and compute the report's data (missing tables read as empty)."""
    root = Path(root)
    return coverage_of(
        read_table(root, "documents", DOCUMENT_COLUMNS),
        read_table(root, "runs", ["run_id", "started_at"]),
        read_table(root, "stances", STANCE_COLUMNS),
        read_table(root, "stories", STORY_COLUMNS),
        str(root),
        scope,
    )


def run_ids(root: str | Path) -> list[str]:
    """The runs an output root knows: recorded in `runs`, or named by a document row (a
    RUN_ID is checked against them before any flow starts)."""
    root = Path(root)
    return [*read_table(root, "runs", ["run_id"])["run_id"].dropna(), *read_table(root, "documents", ["run_id"])["run_id"].dropna()]
