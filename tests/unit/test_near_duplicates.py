"""Near-duplicates over the project's sample articles: the edits a wire story goes through
between outlets keep it one story; distinct articles on one topic stay apart; groups and
canonical members behave as documented, and signatures compare across processes."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from tasks.config import DuplicatesConfig
from tasks.stages.near_duplicates import Known, NearDuplicateIndex, estimated_containment, is_copy, shingles, signatures
from tests.conftest import REPO_ROOT, SAMPLES

SETTINGS = DuplicatesConfig()


def sentences_of(name: str) -> list[str]:
    """A sample's body sentences (its title and byline lines left out)."""
    body = [line for line in (SAMPLES / name).read_text(encoding="utf-8").splitlines()[1:] if line.strip() and not line.startswith("By ")]
    return [s for line in body for s in re.split(r"(?<=[.!?])\s+", line.strip()) if s]


def known(doc_id: str, sentences: list[str], published: str = "", order: int = 0, group: str = "") -> Known:
    found, counts = signatures([sentences], SETTINGS)
    return Known(doc_id, found[0], int(counts[0]), group or doc_id, published, order)


STORY = sentences_of("imf_warns_brazil_debt.txt")
EDITS = {
    "dateline prefixed": ["BRASÍLIA (AP) — " + STORY[0], *STORY[1:]],
    "paragraphs reordered": STORY[len(STORY) // 2 :] + STORY[: len(STORY) // 2],
    "a sentence changed": [*STORY[:3], "The finance ministry did not reply to a request for comment on Friday.", *STORY[4:]],
    "case and typography": [s.upper().replace("'", "\u2019") for s in STORY],
    "trimmed to its first two thirds": STORY[: 2 * len(STORY) // 3],
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edited_copy_of_a_story_is_a_copy(edit):
    copy, similarity = is_copy(known("original", STORY), known("copy", EDITS[edit]), SETTINGS)
    assert copy, f"{edit}: estimated Jaccard {similarity:.2f}"


@pytest.mark.parametrize(
    "first, second",
    [
        ("imf_warns_brazil_debt.txt", "nato_air_defence_timeline.txt"),
        ("who_measles_india_russia_geneva.txt", "un_adaptation_fund_record_pledges.txt"),
    ],
)
def test_distinct_articles_are_not_copies(first, second):
    copy, similarity = is_copy(known("a", sentences_of(first)), known("b", sentences_of(second)), SETTINGS)
    assert not copy and similarity < 0.1


def test_an_article_that_shares_some_sentences_is_not_a_copy():
    """A follow-up that quotes three of the story's sentences in a new article of its own."""
    follow_up = sentences_of("nato_air_defence_timeline.txt") + STORY[:3]
    assert not is_copy(known("story", STORY), known("follow-up", follow_up), SETTINGS)[0]


def test_shingles_stay_within_sentences_and_ignore_case():
    assert shingles(["One two three four five six.", "Seven eight"], 5) == {b"one two three four five", b"two three four five six", b"seven eight"}
    assert shingles(["ONE TWO three four five"], 5) == shingles(["one two Three Four Five"], 5)


def test_containment_estimate_from_jaccard_and_sizes():
    # A is wholly inside B, |A| = 50, |B| = 100: J = 0.5 and all of A lies in B.
    assert estimated_containment(0.5, 50, 100) == pytest.approx(1.0)
    assert estimated_containment(0.0, 50, 100) == 0.0


def test_groups_are_named_by_their_first_member_and_led_by_the_earliest_published():
    index = NearDuplicateIndex(SETTINGS)
    first = index.assign(known("first-seen", STORY, published="2026-03-02T09:00:00+00:00", order=0))
    other = index.assign(known("other-story", sentences_of("nato_air_defence_timeline.txt"), order=1))
    earlier = index.assign(known("wire-original", EDITS["dateline prefixed"], published="2026-03-01T22:00:00+00:00", order=2))
    undated = index.assign(known("undated-copy", EDITS["trimmed to its first two thirds"], order=3))
    assert (first.duplicate_group, first.canonical_doc_id) == ("first-seen", "first-seen")
    assert (other.duplicate_group, other.canonical_doc_id) == ("other-story", "other-story")
    assert (earlier.duplicate_group, earlier.canonical_doc_id) == ("first-seen", "wire-original")
    assert (undated.duplicate_group, undated.canonical_doc_id) == ("first-seen", "wire-original")
    assert earlier.similarity > 0.9
    again = index.assign(known("first-seen", STORY, order=4))  # held already: a rerun keeps its group
    assert (again.duplicate_group, again.canonical_doc_id) == ("first-seen", "wire-original")


def test_an_empty_body_is_no_ones_copy():
    index = NearDuplicateIndex(SETTINGS)
    index.assign(known("empty-a", []))
    assert index.assign(known("empty-b", [])).duplicate_group == "empty-b"


def test_signatures_are_the_same_in_another_process():
    """The index outlives the process: a signature made tomorrow must compare with today's."""
    script = "import sys; from tasks.config import DuplicatesConfig; from tasks.stages.near_duplicates import signatures; sys.stdout.write(signatures([['A wire story about the debt of Brazil and its budget.']], DuplicatesConfig())[0][0].tobytes().hex())"
    other = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, env={"PYTHONHASHSEED": "123", "PATH": ""}, check=True)
    here = signatures([["A wire story about the debt of Brazil and its budget."]], SETTINGS)[0][0]
    assert np.array_equal(np.frombuffer(bytes.fromhex(other.stdout), np.uint32), here)


def test_the_index_read_at_a_commit_holds_only_the_window(tmp_path):
    """A copy is looked for among the documents committed in the last window_days, in the
    order they were first seen."""
    from tasks.dataset.near_duplicate_index import RunSignatures, group_documents, index_folder, index_rows, read_index
    from tasks.dataset.staging import write_parquet_atomic

    def commit(day: str, doc_ids: list[str], bodies: list[list[str]]) -> None:
        found, counts = signatures(bodies, SETTINGS)
        run = RunSignatures(doc_ids, [""] * len(doc_ids), found, counts, 0.0)
        assigned = group_documents(run, set(doc_ids), read_index(tmp_path, SETTINGS), SETTINGS)
        write_parquet_atomic(index_rows(run, assigned, f"{day}T09:00:00+00:00", SETTINGS), index_folder(tmp_path, SETTINGS) / f"{day}.parquet")

    commit("2026-03-01", ["old-story"], [STORY])
    commit("2026-03-20", ["other", "newer"], [sentences_of("nato_air_defence_timeline.txt"), sentences_of("who_measles_india_russia_geneva.txt")])
    assert [k.doc_id for k in read_index(tmp_path, SETTINGS)] == ["old-story", "other", "newer"]
    assert [k.doc_id for k in read_index(tmp_path, SETTINGS, since="2026-03-10T00:00:00+00:00")] == ["other", "newer"]
    window = read_index(tmp_path, SETTINGS, since="2026-03-10T00:00:00+00:00")
    found, counts = signatures([EDITS["a sentence changed"]], SETTINGS)
    late_copy = RunSignatures(["late-copy"], [""], found, counts, 0.0)
    assert group_documents(late_copy, {"late-copy"}, window, SETTINGS)[0].duplicate_group == "late-copy", "the story left the window"
    assert group_documents(late_copy, {"late-copy"}, read_index(tmp_path, SETTINGS), SETTINGS)[0].duplicate_group == "old-story"
