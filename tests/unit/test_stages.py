"""The stages between encode and write, on small tables: summaries, aggregation,
duplicates, atomic staging and the document join."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tasks.config import SummaryConfig
from tasks.deduplicate import deduplicate_shards
from tasks.encode import column_vectors, row_ranges, vector_column
from tasks.rejected import collect_rejected
from tasks.stance import document_stance
from tasks.staging import read_shard, write_parquet_atomic, write_shard
from tasks.summarize import select_summary_sentences, summarize_sentences
from tasks.write import join_documents


def unit(v: list[float]) -> np.ndarray:
    a = np.array(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def test_summary_prefers_central_early_sentences_and_skips_repeats():
    texts = ["Storm hits the coast and floods towns.", "The storm flooded coastal towns badly.",
             "Officials counted damage from the storm.", "A local team won a football match.", "Short line."]
    vectors = np.stack([unit([1, 0.1, 0]), unit([1, 0.12, 0]), unit([0.8, 0.5, 0]), unit([0, 0, 1]), unit([1, 0, 0])])
    picked = select_summary_sentences(vectors, texts, SummaryConfig(sentences=2, diversity=0.3, lead_weight=0.35))
    assert picked == [0, 2]  # the near-copy (1), the off-topic (3) and the fragment (4) are left out


def test_summary_is_in_document_order_and_never_a_byline():
    texts = ["By Jane Doe and Sam Kim of the wire", "Second sentence with some words.", "Third sentence with more words.", "Fourth one here with words."]
    vectors = np.stack([unit([1, 0, 0])] * 4)
    picked = select_summary_sentences(vectors, texts, SummaryConfig(sentences=2))
    assert 0 not in picked and picked == sorted(picked)


def test_summarize_sentences_gives_one_row_per_document():
    table = pa.table({"doc_id": ["a", "a", "a", "b"], "text": ["One two three four.", "Five six seven eight.", "Nine ten eleven twelve.", "Only sentence of b here."],
                      "embedding": vector_column(np.eye(4, 3, dtype=np.float32) + 0.1)})
    out = summarize_sentences(table, SummaryConfig(sentences=1))
    assert out.column("doc_id").to_pylist() == ["a", "b"]
    assert out.column("summary").to_pylist()[1] == "Only sentence of b here."


def test_row_ranges_and_vector_columns_round_trip():
    assert row_ranges(["a", "a", "b", "c", "c"]) == [("a", slice(0, 2)), ("b", slice(2, 3)), ("c", slice(3, 5))]
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert np.array_equal(column_vectors(pa.chunked_array([vector_column(vectors)]), 3), vectors)


def test_document_stance_picks_the_most_decisive_evidence():
    labels = ["against", "neutral", "favor"]
    probs = np.array([[0.2, 0.7, 0.1], [0.8, 0.15, 0.05], [0.5, 0.4, 0.1]])
    label, confidence, mean, evidence = document_stance(probs, labels, margin=0.1)
    assert label == "against" and evidence == 1
    assert np.isclose(confidence, mean[0]) and np.isclose(mean.sum(), 1.0)


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
    result = deduplicate_shards([first, second], staging)
    kept = [read_shard(r).column("origin").to_pylist() for r in result]
    assert kept == [["a.txt", "b.txt"], ["d.txt"]]
    rejected = collect_rejected(result, [])
    assert sorted(zip(rejected.column("origin").to_pylist(), rejected.column("reason").to_pylist())) == [("c.txt", "duplicate"), ("e.txt", "duplicate")]
    assert "a.txt" in rejected.column("detail").to_pylist()[0] or "a.txt" in rejected.column("detail").to_pylist()[1]


def test_join_documents_keeps_order_and_list_columns():
    clean = pa.table({"doc_id": ["b", "a"], "origin": ["1", "2"], "source": [None, "S"], "title": ["B", "A"],
                      "authors": [["X", "Y"], []], "published": [None, "2024-01-01"], "url": [None, None],
                      "language": ["en", "en"], "text": ["tb", "ta"], "sentences": [["s1", "s2"], ["s3"]]})
    summaries = pa.table({"doc_id": ["a", "b"], "summary": ["sa", "sb"]})
    sentiment = pa.table({"doc_id": ["a", "b"], "sentiment": ["positive", "negative"]})
    joined = join_documents(clean, summaries, sentiment)
    assert joined.column("doc_id").to_pylist() == ["b", "a"]
    assert joined.column("summary").to_pylist() == ["sb", "sa"]
    assert joined.column("authors").to_pylist() == [["X", "Y"], []]
    assert joined.column("n_sentences").to_pylist() == [2, 1]
