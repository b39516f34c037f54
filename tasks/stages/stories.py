"""Stories: documents about one event, from any outlet, within a few days of each other.

A document joins the story it is closest to when the two are near in time and alike: its
document vector (the mean of its sentence vectors, which the encoder already computed)
against the story's centroid, with a bonus for the named entities they share. Copies of
one wire story (one `duplicate_group`) always share a story. A story is named by the
doc_id of its first document and never renamed, so ids stay stable across runs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

# Tuned on the labelled stories in data/eval/stories.jsonl (see docs/decisions.md).
ENTITY_WEIGHT = 0.15  # added per unit of entity overlap (shared / the smaller set), at most this much
MIN_SCORE = 0.65  # cosine + entity bonus at which a document joins a story
TOP_ENTITIES = 5


@dataclass(frozen=True)
class StoryDocument:
    doc_id: str
    vector: np.ndarray  # unit length
    entities: frozenset[str]  # entity ids
    time: str  # ISO: published, else when committed
    source: str
    title: str
    duplicate_group: str


@dataclass
class Story:
    """A story's documents and what its row in `stories` reports (its centroid lives in StoryIndex's arrays)."""

    story_id: str
    entities: Counter = field(default_factory=Counter)
    times: list[str] = field(default_factory=list)
    sources: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    doc_ids: list[str] = field(default_factory=list)
    title: str = ""  # the earliest document's
    title_time: str = ""
    row: int = 0  # its row in StoryIndex's arrays

    def add(self, document: StoryDocument) -> None:
        self.entities.update(document.entities)
        self.times.append(document.time)
        if document.source:
            self.sources.add(document.source)
        self.groups.add(document.duplicate_group)
        self.doc_ids.append(document.doc_id)
        if document.title and (not self.title or document.time < self.title_time):
            self.title, self.title_time = document.title, document.time

    def top_entities(self, n: int = TOP_ENTITIES) -> list[str]:
        return [entity for entity, _ in sorted(self.entities.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def document_vector(sentence_vectors: np.ndarray) -> np.ndarray:
    """The unit mean of a document's sentence vectors (zeros for a document without any)."""
    if not len(sentence_vectors):
        return np.zeros(sentence_vectors.shape[1] if sentence_vectors.ndim == 2 else 0, np.float32)
    mean = sentence_vectors.astype(np.float32).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm else mean


def entity_overlap(a: Iterable[str], b: Iterable[str]) -> float:
    """Shared entities over the smaller set: a short piece naming two of a story's people counts fully."""
    a, b = set(a), set(b)
    return len(a & b) / min(len(a), len(b)) if a and b else 0.0


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class StoryIndex:
    """The stories seen so far, grown one document at a time, in the order documents are seen.
    Centroids and time spans are kept as arrays, so a document is scored against every
    story in one product; only the few stories that could reach MIN_SCORE get the entity bonus."""

    def __init__(self, window_days: float, documents: Iterable[tuple[StoryDocument, str]] = ()) -> None:
        self.window = timedelta(days=window_days).total_seconds()
        self.stories: dict[str, Story] = {}
        self.order: list[str] = []  # story ids by row of the arrays below
        self.sums = np.zeros((0, 0), np.float32)
        self.spans = np.zeros((0, 2), np.float64)  # earliest and latest document time (POSIX seconds)
        self.story_of_group: dict[str, str] = {}
        self.story_of_doc: dict[str, str] = {}
        for document, story_id in documents:
            self.place(document, story_id)

    def row_of(self, story_id: str, dimension: int) -> int:
        """The story's row in the arrays, added (doubling their capacity when full) if new."""
        story = self.stories.get(story_id)
        if story is not None:
            return story.row
        if not self.sums.size:
            self.sums, self.spans = np.zeros((16, dimension), np.float32), np.zeros((16, 2), np.float64)
        if len(self.order) == len(self.sums):
            self.sums = np.vstack([self.sums, np.zeros_like(self.sums)])
            self.spans = np.vstack([self.spans, np.zeros_like(self.spans)])
        row = len(self.order)
        self.order.append(story_id)
        self.stories[story_id] = Story(story_id, row=row)
        self.spans[row] = (np.inf, -np.inf)
        return row

    def place(self, document: StoryDocument, story_id: str) -> None:
        if document.doc_id in self.story_of_doc:  # a document counts once in its story
            return
        row = self.row_of(story_id, len(document.vector))
        self.stories[story_id].add(document)
        self.sums[row] += document.vector
        moment = parse_time(document.time).timestamp()
        self.spans[row] = (min(self.spans[row, 0], moment), max(self.spans[row, 1], moment))
        self.story_of_group.setdefault(document.duplicate_group, story_id)
        self.story_of_doc[document.doc_id] = story_id

    def closest(self, document: StoryDocument) -> tuple[str | None, float]:
        """The best-scoring story with a document within the window of this one."""
        n = len(self.order)
        if not n or not np.any(document.vector):
            return None, 0.0
        moment = parse_time(document.time).timestamp()
        near = (self.spans[:n, 0] - self.window <= moment) & (moment <= self.spans[:n, 1] + self.window)
        norms = np.linalg.norm(self.sums[:n], axis=1)
        similarity = np.where(near & (norms > 0), self.sums[:n] @ document.vector / np.maximum(norms, 1e-12), -1.0)
        best, best_score = None, MIN_SCORE
        for row in np.flatnonzero(similarity + ENTITY_WEIGHT >= MIN_SCORE):  # the bonus can lift only these
            story = self.stories[self.order[row]]
            score = float(similarity[row]) + ENTITY_WEIGHT * entity_overlap(document.entities, story.top_entities(TOP_ENTITIES * 2))
            if score >= best_score:
                best, best_score = story.story_id, score
        return best, best_score

    def assign(self, document: StoryDocument) -> str:
        """The story a new document belongs to: its copies' story, the closest one, or its own."""
        if document.doc_id in self.story_of_doc:
            return self.story_of_doc[document.doc_id]
        story_id = self.story_of_group.get(document.duplicate_group) or self.closest(document)[0] or document.doc_id
        self.place(document, story_id)
        return story_id
