"""The stages between encode and write, on small tables: summaries, aggregation,
duplicates, atomic staging and the document join."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.arrow import column_vectors, row_ranges, vector_column
from tasks.config import SummaryConfig
from tasks.dataset.deduplicate import deduplicate_shard
from tasks.dataset.rejected import collect_rejected
from tasks.dataset.staging import read_shard, write_parquet_atomic, write_shard
from tasks.stages.stance import document_stance
from tasks.stages.summarize import select_summary_sentences, summarize_sentences
from tasks.stages.write import join_documents
from tests.conftest import REPO_ROOT


def unit(v: list[float]) -> np.ndarray:
    a = np.array(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def test_summary_prefers_central_early_sentences_and_skips_repeats():
    texts = [
        "Storm hits the coast and floods towns.",
        "The storm flooded coastal towns badly.",
        "Officials counted damage from the storm.",
        "A local team won a football match.",
        "Short line.",
    ]
    vectors = np.stack([unit([1, 0.1, 0]), unit([1, 0.12, 0]), unit([0.8, 0.5, 0]), unit([0, 0, 1]), unit([1, 0, 0])])
    picked = select_summary_sentences(vectors, texts, SummaryConfig(sentences=2, diversity=0.3, lead_weight=0.35))
    assert picked == [0, 2]  # the near-copy (1), the off-topic (3) and the fragment (4) are left out


def test_summary_is_in_document_order_and_never_a_byline():
    texts = ["By Jane Doe, Sam Kim and Ana Ruiz", "Second sentence with some words.", "Third sentence with more words.", "Fourth one here with words."]
    vectors = np.stack([unit([1, 0, 0])] * 4)
    picked = select_summary_sentences(vectors, texts, SummaryConfig(sentences=2))
    assert 0 not in picked and picked == sorted(picked)


def test_summarize_sentences_gives_one_row_per_document():
    table = pa.table(
        {
            "doc_id": ["a", "a", "a", "b"],
            "text": ["One two three four.", "Five six seven eight.", "Nine ten eleven twelve.", "Only sentence of b here."],
            "embedding": vector_column(np.eye(4, 3, dtype=np.float32) + 0.1),
        }
    )
    out = summarize_sentences(table, SummaryConfig(sentences=1))
    assert out.column("doc_id").to_pylist() == ["a", "b"]
    assert out.column("summary").to_pylist()[1] == "Only sentence of b here."


def test_row_ranges_and_vector_columns_round_trip():
    assert row_ranges(["a", "a", "b", "c", "c"]) == [("a", slice(0, 2)), ("b", slice(2, 3)), ("c", slice(3, 5))]
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
    chunked = pa.concat_tables([pa.table({"v": vector_column(vectors[:1])}), pa.table({"v": vector_column(vectors[1:])})])
    assert np.array_equal(column_vectors(chunked, "v"), vectors)


def test_document_stance_picks_the_most_decisive_evidence():
    labels = ["against", "neutral", "favor"]
    probs = np.array([[0.2, 0.7, 0.1], [0.8, 0.15, 0.05], [0.5, 0.4, 0.1]])
    label, confidence, mean, evidence = document_stance(probs, labels)
    assert label == "against" and evidence == 1
    assert np.isclose(confidence, mean[0]) and np.isclose(mean.sum(), 1.0)


def test_a_single_mildly_leaning_neutral_mention_stays_neutral():
    label, confidence, _, _ = document_stance(np.array([[0.04, 0.77, 0.19]]), ["against", "neutral", "favor"])
    assert label == "neutral" and np.isclose(confidence, 0.77)


def test_praise_and_criticism_of_two_targets_aggregate_per_target():
    """Hand-written mention probabilities: two mentions praise A, one mention criticises B,
    with a neutral mention of each; A is favor, B against, each with its own evidence."""
    from tasks.stages.stance import classify_stances

    sentences = pa.table(
        {
            "doc_id": ["d"] * 4,
            "sentence_index": pa.array([0, 1, 2, 3], pa.int32()),
            "text": ["A did well.", "A and B met.", "B failed badly.", "A was praised."],
        }
    )
    targets = ["A", "A", "B", "B", "A"]
    mentions = pa.table(
        {"doc_id": ["d"] * 5, "sentence_index": pa.array([0, 1, 1, 2, 3], pa.int32()), "entity_id": targets, "target": targets, "type": ["ORG"] * 5}
    )
    probs = np.array([[0.05, 0.25, 0.7], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.85, 0.1, 0.05], [0.02, 0.08, 0.9]])
    rows = {r["target"]: r for r in classify_stances(sentences, mentions, probs, ["against", "neutral", "favor"]).to_pylist()}
    assert rows["A"]["label"] == "favor" and rows["A"]["n_mentions"] == 3 and rows["A"]["evidence"] == "A was praised."
    assert rows["B"]["label"] == "against" and rows["B"]["n_mentions"] == 2 and rows["B"]["evidence"] == "B failed badly."
    assert rows["A"]["confidence"] > 0.5 and np.isclose(rows["A"]["p_against"] + rows["A"]["p_neutral"] + rows["A"]["p_favor"], 1.0)


def test_write_parquet_atomic_leaves_no_temporary_file(tmp_path):
    path = write_parquet_atomic(pa.table({"x": [1, 2]}), tmp_path / "t" / "a.parquet", {"newsflow.run_id": "r1"})
    assert [p.name for p in path.parent.iterdir()] == ["a.parquet"]
    assert pq.read_metadata(path).metadata[b"newsflow.run_id"] == b"r1"


def clean_table(rows: list[tuple[str, str]]) -> pa.Table:
    return pa.table({"doc_id": [d for d, _ in rows], "origin": [o for _, o in rows], "text": ["t"] * len(rows)})


def test_duplicates_across_shards_are_rejected_once_each(tmp_path):
    staging = str(tmp_path)
    first = write_shard(tmp_path, "clean", 0, clean_table([("h1", "a.txt"), ("h2", "b.txt"), ("h1", "c.txt")]))
    second = write_shard(tmp_path, "clean", 1, clean_table([("h3", "d.txt"), ("h2", "e.txt")]))
    result = [deduplicate_shard(ref, [first, second][:i], staging) for i, ref in enumerate([first, second])]
    kept = [read_shard(r).column("origin").to_pylist() for r in result]
    assert kept == [["a.txt", "b.txt"], ["d.txt"]]
    rejected = {row["origin"]: row for row in collect_rejected(result, []).to_pylist()}
    assert sorted(rejected) == ["c.txt", "e.txt"]
    assert all(row["reason"] == "duplicate" and row["stage"] == "deduplicate" for row in rejected.values())
    assert rejected["c.txt"]["detail"].startswith("same text as a.txt")  # names the copy that was kept
    assert rejected["e.txt"]["detail"].startswith("same text as b.txt")


def test_a_shard_is_deduplicated_against_the_shards_before_it_only(tmp_path):
    first = write_shard(tmp_path, "clean", 0, clean_table([("h1", "a.txt")]))
    second = write_shard(tmp_path, "clean", 1, clean_table([("h1", "b.txt"), ("h2", "c.txt")]))
    assert deduplicate_shard(second, [], str(tmp_path)).rows == 2  # alone, nothing repeats
    later = deduplicate_shard(second, [first], str(tmp_path))
    assert read_shard(later).column("origin").to_pylist() == ["c.txt"] and later.index == 1
    untouched = deduplicate_shard(first, [], str(tmp_path))  # no loss: the clean file stands
    assert untouched.path == first.path and untouched.stage == "deduplicate"


def test_join_documents_keeps_order_and_list_columns():
    clean = pa.table(
        {
            "doc_id": ["b", "a"],
            "origin": ["1", "2"],
            "source": [None, "S"],
            "title": ["B", "A"],
            "authors": [["X", "Y"], []],
            "published": [None, "2024-01-01"],
            "url": [None, None],
            "wire": ["AP", None],
            "field_sources": [None, '{"title": "jsonld"}'],
            "language": ["en", "en"],
            "text": ["tb", "ta"],
            "sentences": [["s1", "s2"], ["s3"]],
        }
    )
    summaries = pa.table({"doc_id": ["a", "b"], "summary": ["sa", "sb"]})
    sentiment = pa.table({"doc_id": ["a", "b"], "sentiment": ["positive", "negative"]})
    joined = join_documents(clean, summaries, sentiment)
    assert joined.column("doc_id").to_pylist() == ["b", "a"]
    assert joined.column("summary").to_pylist() == ["sb", "sa"]
    assert joined.column("authors").to_pylist() == [["X", "Y"], []]
    assert joined.column("n_sentences").to_pylist() == [2, 1]
    assert joined.column("wire").to_pylist() == ["AP", None]


def test_classify_stances_groups_mentions_by_document_and_target():
    from tasks.models.heads import LinearHead
    from tasks.stages.stance import classify_stances, mention_features, sentence_rows

    # A head that reads the first feature as the stance: negative -> against, positive -> favor.
    head = LinearHead(
        np.array([[-9.0, 0, 0, 0, 0, 0], [0.0] * 6, [9.0, 0, 0, 0, 0, 0]], np.float32),
        np.zeros(3, np.float32),
        np.zeros(6, np.float32),
        np.ones(6, np.float32),
        ["against", "neutral", "favor"],
        "sentence+span+window",
    )
    sentences = pa.table(
        {
            "doc_id": ["a", "a", "b"],
            "sentence_index": pa.array([0, 1, 0], pa.int32()),
            "text": ["A0 mentions X.", "A1 attacks X.", "B0 praises X."],
            "embedding": vector_column(np.array([[0.05, 0], [-1.0, 0], [1.0, 0]], np.float32)),
        }
    )
    span = vector_column(np.zeros((3, 2), np.float32))
    mentions = pa.table(
        {
            "doc_id": ["a", "a", "b"],
            "sentence_index": pa.array([0, 1, 0], pa.int32()),
            "entity_id": ["x", "x", "x"],
            "target": ["X", "X", "X"],
            "type": ["ORG"] * 3,
            "span_embedding": span,
            "window_embedding": span,
        }
    )
    probs = head.predict_proba(mention_features(sentences, mentions, sentence_rows(sentences, mentions)))
    stances = {(r["doc_id"], r["target"]): r for r in classify_stances(sentences, mentions, probs, head.labels).to_pylist()}
    assert set(stances) == {("a", "X"), ("b", "X")}
    assert stances[("a", "X")]["n_mentions"] == 2 and stances[("a", "X")]["label"] == "against"
    assert stances[("a", "X")]["evidence"] == "A1 attacks X." and stances[("a", "X")]["evidence_sentence"] == 1
    assert stances[("b", "X")]["label"] == "favor" and stances[("b", "X")]["evidence"] == "B0 praises X."
    empty = classify_stances(sentences, mentions.slice(0, 0), probs[:0], head.labels)
    assert empty.num_rows == 0 and "evidence" in empty.column_names


def test_a_sentence_that_starts_with_by_can_be_summarised():
    texts = ["By noon, the crowd outside the court had grown to thousands.", "Police closed two streets nearby.", "The hearing resumes on Friday morning."]
    vectors = np.stack([unit([1, 0, 0]), unit([0.9, 0.4, 0]), unit([0.8, 0, 0.6])])
    assert 0 in select_summary_sentences(vectors, texts, SummaryConfig(sentences=2))


def test_a_chinese_document_has_summary_candidates():
    from tasks.config import CleanConfig
    from tasks.records import RawDocument
    from tasks.stages.clean import clean_document
    from tasks.stages.summarize import summary_candidates

    chinese = (
        "市议会周二晚间投票批准沿东码头修建新的防洪墙，结束了三年多来一直困扰该镇的争论。"
        "支持者表示，这堵墙将比现在的海滨长廊高出两米，是保护去年冬季风暴中被淹的两百户房屋的唯一现实办法。"
        "反对者包括码头上的几位店主，他们认为这一建筑会遮挡海景，赶走他们赖以为生的夏季游客。好的。"
    )
    doc = clean_document(RawDocument(origin="zh.txt", text=chinese), CleanConfig(languages=["zh"]))
    assert doc.language == "zh" and len(doc.sentences) == 4
    # each sentence is one whitespace "word"; counted by ideograph, three are long enough
    assert summary_candidates(doc.sentences) == [0, 1, 2]  # "好的。" (two words) is a fragment
    vectors = np.stack([unit([1, 0, 0]), unit([0.9, 0.4, 0]), unit([0.8, 0, 0.6]), unit([1, 0, 0])])
    assert select_summary_sentences(vectors, doc.sentences, SummaryConfig(sentences=2))


PRAISE_AND_BLAME = [
    "Germany won wide praise on Monday for its generous and swift flood relief, which saved thousands of lives.",
    "Aid workers said Germany had been a model partner, and villagers thanked Germany for rebuilding their homes.",
    "Russia, by contrast, was condemned for blocking the aid convoys and for spreading lies about the disaster.",
    "Critics accused Russia of cruelty and said its obstruction had cost lives.",
    "The relief effort will continue through the winter.",
]


@pytest.mark.parametrize("head", ["data/models/stance-linear", "data/models/stance-tuned"])
def test_praise_of_one_target_and_blame_of_another_in_one_article(head):
    """The shipped heads, end to end from the encoder: favor Germany, against Russia, with
    evidence sentences that mention each."""
    from tasks.config import load_config
    from tasks.stages.encode import encode_documents
    from tasks.stages.entities import entities_shard
    from tasks.stages.stance import classify_stances, mention_probabilities

    if not (REPO_ROOT / head).is_dir():
        pytest.skip(f"{head} is not trained in this checkout")
    config = load_config(None, {"stance.head": head, "stance.targets": "configured"})
    documents = pa.table({"doc_id": ["d"], "sentences": [PRAISE_AND_BLAME]})
    sentences, mentions = encode_documents(documents, config, entities_shard(documents, config).parts["mentions"])
    probs, labels = mention_probabilities(sentences, mentions, config)
    stances = {r["target"]: r for r in classify_stances(sentences, mentions, probs, labels).to_pylist()}
    assert stances["Germany"]["label"] == "favor" and stances["Germany"]["n_mentions"] == 3
    assert stances["Russia"]["label"] == "against" and stances["Russia"]["n_mentions"] == 2
    assert "Russia" in stances["Russia"]["evidence"] and "Germany" in stances["Germany"]["evidence"]
    assert 0.34 < stances["Germany"]["confidence"] <= 1 and 0.34 < stances["Russia"]["confidence"] <= 1
