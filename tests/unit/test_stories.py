"""Stories from document vectors, shared entities and time: who joins which story, and why
ids stay put. Vectors here are built by hand so each case shows one rule."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.stages.stories import ENTITY_WEIGHT, MIN_SCORE, StoryDocument, StoryIndex, document_vector, entity_overlap

DIM = 8


def unit(*weights: float) -> np.ndarray:
    v = np.zeros(DIM, np.float32)
    v[: len(weights)] = weights
    return v / np.linalg.norm(v)


def cosine_of(similarity: float) -> np.ndarray:
    """A unit vector whose cosine with unit(1) is `similarity`."""
    return unit(similarity, float(np.sqrt(1 - similarity**2)))


def doc(doc_id: str, vector: np.ndarray, time: str, entities: tuple[str, ...] = (), group: str = "", source: str = "Outlet") -> StoryDocument:
    return StoryDocument(doc_id, vector, frozenset(entities), time, source, f"title of {doc_id}", group or doc_id)


def test_a_close_document_within_the_window_joins_and_the_story_keeps_its_first_id():
    index = StoryIndex(3)
    assert index.assign(doc("first", unit(1), "2026-03-03T07:00:00+00:00")) == "first"
    assert index.assign(doc("second", cosine_of(0.9), "2026-03-04T07:00:00+00:00")) == "first"
    assert index.assign(doc("unrelated", unit(0, 0, 1), "2026-03-04T08:00:00+00:00")) == "unrelated"
    story = index.stories["first"]
    assert story.doc_ids == ["first", "second"] and story.title == "title of first"


def test_the_same_event_later_than_the_window_is_a_new_story():
    index = StoryIndex(3)
    index.assign(doc("monday", unit(1), "2026-03-02T07:00:00+00:00"))
    assert index.assign(doc("next-week", unit(1), "2026-03-09T07:00:00+00:00")) == "next-week"
    # the window runs both ways: an article dated before the story's first is still near it
    assert index.assign(doc("the-day-before", unit(1), "2026-03-01T07:00:00+00:00")) == "monday"


def test_shared_entities_lift_a_borderline_document_into_the_story():
    borderline = MIN_SCORE - ENTITY_WEIGHT / 2  # below the bar on its vector, above it with the full bonus
    for entities, joins in ((("harlow-bay", "miriam-osei"), True), (("selmouth",), False)):
        index = StoryIndex(3)
        index.assign(doc("story", unit(1), "2026-03-03T07:00:00+00:00", ("harlow-bay", "miriam-osei")))
        assert (index.assign(doc("newcomer", cosine_of(borderline), "2026-03-03T09:00:00+00:00", entities)) == "story") is joins, entities


def test_copies_share_a_story_whatever_their_vectors():
    index = StoryIndex(3)
    index.assign(doc("wire", unit(1), "2026-03-03T07:00:00+00:00"))
    assert index.assign(doc("trimmed-copy", unit(0, 1), "2026-03-03T08:00:00+00:00", group="wire")) == "wire"


def test_an_index_rebuilt_from_its_members_places_new_documents_as_the_first_did():
    """Runs rebuild the index from what was committed: the stories must come back the same."""
    first = StoryIndex(3)
    members = [
        doc("a", unit(1), "2026-03-03T07:00:00+00:00"),
        doc("b", cosine_of(0.8), "2026-03-03T08:00:00+00:00"),
        doc("c", unit(0, 0, 1), "2026-03-03T09:00:00+00:00"),
    ]
    placed = [(m, first.assign(m)) for m in members]
    rebuilt = StoryIndex(3, placed)
    newcomer = doc("d", cosine_of(0.85), "2026-03-04T07:00:00+00:00")
    assert rebuilt.assign(newcomer) == first.assign(newcomer) == "a"
    assert rebuilt.assign(members[2]) == "c", "a document already placed keeps its story"


def test_document_vector_and_entity_overlap():
    assert np.allclose(document_vector(np.array([[1, 0], [0, 1]], np.float32)), [2**-0.5, 2**-0.5])
    assert document_vector(np.zeros((0, 4), np.float32)).shape == (4,)
    assert entity_overlap({"a", "b"}, {"a", "b", "c", "d"}) == 1.0 and entity_overlap(set(), {"a"}) == 0.0


def test_story_metrics_against_labels():
    from tasks.evaluation.stories import story_metrics

    perfect = story_metrics(["s1", "s1", "s2"], ["strike", "strike", "quake"])
    assert (perfect["purity"], perfect["inverse_purity"], perfect["bcubed_f1"]) == (1.0, 1.0, 1.0)
    merged = story_metrics(["s1", "s1", "s1"], ["strike", "strike", "quake"])  # two events in one story
    assert merged["purity"] == pytest.approx(2 / 3, abs=1e-4) and merged["inverse_purity"] == 1.0 and merged["bcubed_recall"] == 1.0
    assert merged["bcubed_precision"] == pytest.approx((2 / 3 + 2 / 3 + 1 / 3) / 3, abs=1e-4)
    split = story_metrics(["s1", "s2", "s3"], ["strike", "strike", "quake"])  # one event in two stories
    assert split["purity"] == 1.0 and split["inverse_purity"] == pytest.approx(2 / 3, abs=1e-4) and split["n_stories"] == 3
