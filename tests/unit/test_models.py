"""Encoder, target matching and the heads, on the real packaged MiniLM weights."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.config import load_config, resolve_resource
from tasks.models.encoder import PACKAGED_MINILM, Span, get_encoder, token_budget_batches
from tasks.models.heads import LinearHead, load_linear_head, opinion_weighted_mean


@pytest.fixture(scope="module")
def encoder():
    return get_encoder(PACKAGED_MINILM, 256, 2048)


def test_token_budget_batches_cover_every_index_within_budget():
    lengths = [5, 40, 7, 33, 12, 90, 3, 64]
    batches = token_budget_batches(lengths, 100)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) * max(lengths[i] for i in batch) <= 100 or len(batch) == 1
        assert [lengths[i] for i in batch] == sorted(lengths[i] for i in batch)


def test_sentence_vectors_match_sentence_transformers_pooling(encoder):
    from sentence_transformers import SentenceTransformer

    sentences = ["The U.N. praised the agreement.", "Markets fell sharply on Monday after the report.", "Short."]
    ours = encoder.encode(sentences).sentence_vectors
    reference = SentenceTransformer(str(encoder.folder), device="cpu").encode(sentences, normalize_embeddings=True)
    assert np.allclose((ours * reference).sum(axis=1), 1.0, atol=1e-4)


def test_batching_does_not_change_vectors(encoder):
    sentences = [f"Sentence number {i} " + "word " * (i % 17) for i in range(40)]
    small = get_encoder(PACKAGED_MINILM, 256, 64).encode(sentences).sentence_vectors
    large = encoder.encode(sentences).sentence_vectors
    assert np.allclose(small, large, atol=1e-4)


def test_span_vectors_differ_by_mention(encoder):
    sentence = "China praised the plan while the United States condemned it."
    encoded = encoder.encode([sentence], [Span(0, 0, 5), Span(0, 33, 46)])
    assert encoded.span_vectors.shape == (2, encoder.dim)
    cosine = encoded.span_vectors[0] @ encoded.span_vectors[1] / np.linalg.norm(encoded.span_vectors, axis=1).prod()
    assert cosine < 0.95


def test_every_forward_pass_runs_on_the_one_inference_thread(encoder, monkeypatch):
    """Calls from many task threads share one thread for torch (its per-thread pools and
    buffers would otherwise grow memory with every task thread)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    seen: set[str] = set()
    forward = type(encoder)._forward

    def recording_forward(self, *args, **kwargs):
        seen.add(threading.current_thread().name)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(type(encoder), "_forward", recording_forward)
    with ThreadPoolExecutor(max_workers=3) as pool:
        vectors = list(pool.map(lambda text: encoder.encode([text]).sentence_vectors[0], ["One.", "Two words.", "Three short words."]))
    assert len(seen) == 1 and next(iter(seen)).startswith("newsflow-inference")
    assert np.allclose(vectors[0], encoder.encode(["One."]).sentence_vectors[0], atol=1e-6)


def test_linear_head_round_trips_through_safetensors(tmp_path):
    rng = np.random.default_rng(0)
    head = LinearHead(
        rng.normal(size=(3, 4)).astype(np.float32),
        np.zeros(3, np.float32),
        np.zeros(4, np.float32),
        np.ones(4, np.float32),
        ["negative", "neutral", "positive"],
        "sentence",
        {"name": "t"},
    )
    head.save(tmp_path / "h")
    loaded = load_linear_head(tmp_path / "h")
    x = rng.normal(size=(5, 4)).astype(np.float32)
    assert np.allclose(loaded.predict_proba(x), head.predict_proba(x), atol=1e-6)
    assert np.allclose(loaded.predict_proba(x).sum(axis=1), 1.0, atol=1e-5)


def test_opinion_weighted_mean_lets_opinionated_sentences_carry_the_document():
    neutral = 1
    single = np.array([[0.2, 0.5, 0.3]])
    assert np.allclose(opinion_weighted_mean(single, neutral), single[0])  # one sentence: its own argmax (neutral)
    mostly_neutral = np.array([[0.05, 0.9, 0.05]] * 4 + [[0.8, 0.15, 0.05]] * 2)
    assert opinion_weighted_mean(mostly_neutral, neutral).argmax() == 0  # a plain mean would say neutral
    assert mostly_neutral.mean(axis=0).argmax() == neutral
    all_neutral = np.array([[0.0, 1.0, 0.0]] * 3)
    assert np.allclose(opinion_weighted_mean(all_neutral, neutral), [0.0, 1.0, 0.0])
    assert np.isclose(opinion_weighted_mean(np.random.default_rng(0).dirichlet([1, 1, 1], 20), neutral).sum(), 1.0)


CLEAR_CASES = ["Experts condemned China for its brutal crackdown and abuses.", "Everyone praised China for its generous and wise help."]
CLEAR_SPANS = [Span(0, 18, 23), Span(1, 17, 22)]


def test_shipped_linear_heads_read_clear_cases(encoder):
    config = load_config()
    stance = load_linear_head(resolve_resource("data/models/stance-linear"))
    sentiment = load_linear_head(resolve_resource(config.sentiment.head))
    encoded = encoder.encode(CLEAR_CASES, CLEAR_SPANS)
    features = np.hstack([encoded.sentence_vectors, encoded.span_vectors, encoded.window_vectors])
    assert [stance.labels[i] for i in stance.predict_proba(features).argmax(axis=1)] == ["against", "favor"]
    assert [sentiment.labels[i] for i in sentiment.predict_proba(encoded.sentence_vectors).argmax(axis=1)] == ["negative", "positive"]
    assert "NewsMTSC" in stance.card["data_credit"] and stance.card["metrics"]["dev_macro_f1"] > 0.7


def test_default_tuned_stance_head_rides_along_the_encoder_pass(encoder):
    from tasks.stages.encode import tuned_stance_head

    config = load_config()
    head = tuned_stance_head(config.stance.head, encoder)
    assert head is not None and head.split_layer == 3, "the default stance head is the tuned one, over layers 4-6"
    encoded = encoder.encode(CLEAR_CASES, CLEAR_SPANS, head)
    assert [head.labels[i] for i in encoded.span_probs.argmax(axis=1)] == ["against", "favor"]
    assert np.allclose(encoded.span_probs.sum(axis=1), 1.0, atol=1e-5)
    # The shared pass is untouched: the same sentence vectors as without the head.
    assert np.allclose(encoded.sentence_vectors, encoder.encode(CLEAR_CASES).sentence_vectors, atol=1e-6)
    assert "NewsMTSC" in head.card["data_credit"] and head.card["metrics"]["dev_macro_f1"] >= 0.76


TWO_TARGETS = "Voters praised Germany for its calm leadership while Russia was blamed for the chaos."


def test_tuned_head_sees_the_same_states_in_training_and_in_the_pipeline(encoder):
    """Training reads `token_states` + `mention_data`; runs read `encode(..., tuned_head)` in
    padded batches. Both must give one mention the same probabilities."""
    import torch

    from tasks.stages.encode import tuned_stance_head
    from tasks.training.finetune_stance import mention_data, predict_logits

    head = tuned_stance_head(load_config().stance.head, encoder)
    assert TWO_TARGETS[15:22] == "Germany" and TWO_TARGETS[53:59] == "Russia"
    rows = [
        {"sentence": TWO_TARGETS, "mention": "Germany", "from": 15, "to": 22, "polarity": 1},
        {"sentence": TWO_TARGETS, "mention": "Russia", "from": 53, "to": 59, "polarity": -1},
        {"sentence": CLEAR_CASES[0], "mention": "China", "from": 18, "to": 23, "polarity": -1},
    ]
    # The shipped head marks every judged mention of a sentence: here, the labelled ones.
    assert head.marking == "all-mentions"
    no_others = mention_data(rows, encoder, head.split_layer, marker=lambda sentences: [[] for _ in sentences])
    trained_view = torch.softmax(predict_logits(head, no_others) / head.temperature, -1).numpy()
    sentences = [TWO_TARGETS, CLEAR_CASES[0]]
    spans = [Span(0, 15, 22), Span(0, 53, 59), Span(1, 18, 23)]
    batched = encoder.encode(sentences, spans, head).span_probs
    by_sentence = [encoder.encode([TWO_TARGETS], spans[:2], head).span_probs, encoder.encode([CLEAR_CASES[0]], [Span(0, 18, 23)], head).span_probs]
    one_at_a_time = np.vstack(by_sentence)
    assert np.allclose(trained_view, batched, atol=1e-5) and np.allclose(one_at_a_time, batched, atol=1e-5)
    assert [head.labels[i] for i in batched.argmax(axis=1)] == ["favor", "against", "against"]  # one sentence, two stances


def test_a_mention_truncated_away_says_nothing_to_the_tuned_head():
    from tasks.stages.encode import tuned_stance_head

    short = get_encoder(PACKAGED_MINILM, 16, 2048)  # 16 tokens: the mention below falls outside
    head = tuned_stance_head(load_config().stance.head, short)
    sentence = "The long and winding report, published after many months of delay and argument, finally blamed Russia."
    probs = short.encode([sentence], [Span(0, sentence.index("Russia"), len(sentence) - 1)], head).span_probs
    assert probs.tolist() == [[0.0, 1.0, 0.0]]


PARITY_SENTENCES = [
    "The International Monetary Fund warned on Thursday that Brazil's public debt is rising faster than expected.",
    "Ministers from both countries praised the agreement as a model for clean technology cooperation.",
    "Critics said the port strike would disrupt supply chains across Europe for weeks.",
    "The committee meets again on Tuesday.",
]


@pytest.mark.parametrize("precision, backend, floor", [("bf16", "torch", 0.999), ("fp32", "onnx", 0.998)])
def test_faster_encoder_paths_keep_parity_with_fp32(encoder, precision, backend, floor):
    """bf16 (the `auto` choice on CPUs with native bf16) and the ONNX graph against torch fp32."""
    fast = get_encoder(PACKAGED_MINILM, 256, 2048, precision=precision, backend=backend)
    assert fast.provenance()["precision"] == precision and fast.provenance()["backend"] == backend
    spans = [Span(0, 4, 31), Span(1, 0, 9)]  # "International Monetary Fund", "Ministers"
    reference, candidate = encoder.encode(PARITY_SENTENCES, spans), fast.encode(PARITY_SENTENCES, spans)
    assert np.sum(reference.sentence_vectors * candidate.sentence_vectors, axis=1).min() >= floor
    head = load_linear_head(resolve_resource("data/models/stance-linear"))
    features = [np.hstack([e.sentence_vectors[[0, 1]], e.span_vectors, e.window_vectors]) for e in (reference, candidate)]
    assert (head.predict_proba(features[0]).argmax(1) == head.predict_proba(features[1]).argmax(1)).all()


def test_the_onnx_graph_cannot_feed_the_tuned_head():
    from tasks.stages.encode import tuned_stance_head

    onnx = get_encoder(PACKAGED_MINILM, 256, 2048, backend="onnx")
    with pytest.raises(ValueError, match="encoder.backend = 'torch'"):
        onnx.encode(CLEAR_CASES, CLEAR_SPANS, tuned_stance_head(load_config().stance.head, onnx))
