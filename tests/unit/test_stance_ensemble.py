"""The tuned stance head's ensemble, entity-swap augmentation and opinion cues, on a tiny
randomly initialised BERT (no downloads, a few seconds)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel

from tasks.models.heads import head_kind
from tasks.models.tuned_stance import TunedStanceEnsemble, TunedStanceHead, load_tuned_stance_head, pad_mentions
from tasks.training.finetune_stance import FinetuneSettings, finetune_stance, training_set
from tasks.training.stance_augment import MentionEntity, entity_swaps, mention_entities, opinion_cue, swap_mention

LABELS = ["against", "neutral", "favor"]


@pytest.fixture(scope="module")
def base():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=200, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    return BertModel(config).eval()


def random_head(base, seed: int) -> TunedStanceHead:
    torch.manual_seed(seed)
    head = TunedStanceHead(base, 1, LABELS)
    with torch.no_grad():
        head.marker.normal_()
        head.temperature.fill_(1.0 + seed)
    return head


def a_batch(n: int = 5, hidden: int = 16):
    generator = torch.Generator().manual_seed(7)
    states = [torch.randn(4 + k, hidden, generator=generator) for k in range(n)]
    return pad_mentions(states, [[1], [2, 3], [1], [0, 1, 2], [3]][:n])


def test_an_ensemble_averages_its_members_calibrated_probabilities(base):
    members = [random_head(base, 0), random_head(base, 1), random_head(base, 2)]
    ensemble = TunedStanceEnsemble(members)
    batch = a_batch()
    each = [m.predict_proba_states(batch) for m in members]
    assert not np.allclose(each[0], each[1], atol=1e-3)  # the members really differ
    probs = ensemble.predict_proba_states(batch)
    assert probs.dtype == np.float32 and probs.shape == (5, 3)
    assert np.allclose(probs, np.mean(each, axis=0), atol=1e-6) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert ensemble.split_layer == members[0].split_layer == 2 and ensemble.labels == LABELS


def test_an_ensemble_round_trips_through_save_and_load(base, tmp_path):
    ensemble = TunedStanceEnsemble([random_head(base, 0), random_head(base, 1)])
    ensemble.card = {"name": "stance-tuned", "seeds": [0, 1]}
    ensemble.save(tmp_path)
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["members"] == 2 and card["kind"] == "tuned-top-layers" == head_kind(tmp_path) and card["tuned_layers"] == 1
    raw = (tmp_path / "head.safetensors").read_bytes()
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    assert header["members.1.layers.0.attention.self.query.weight"]["dtype"] == "F16" and header["members.0.marker"]["dtype"] == "F32"
    loaded = load_tuned_stance_head(tmp_path, base)
    assert isinstance(loaded, TunedStanceEnsemble) and len(loaded.members) == 2 and loaded.card["seeds"] == [0, 1]
    batch = a_batch()
    assert [float(m.temperature) for m in loaded.members] == [1.0, 2.0]
    assert np.allclose(loaded.predict_proba_states(batch), ensemble.predict_proba_states(batch), atol=2e-3)  # fp16 layers


def test_a_single_head_keeps_its_format(base, tmp_path):
    head = random_head(base, 0)
    head.save(tmp_path)
    card = json.loads((tmp_path / "card.json").read_text())
    assert "members" not in card
    loaded = load_tuned_stance_head(tmp_path, base)
    assert isinstance(loaded, TunedStanceHead)
    assert np.allclose(loaded.predict_proba_states(a_batch()), head.predict_proba_states(a_batch()), atol=2e-3)


def fake_tagger(entities: dict[str, list[tuple[int, int, str]]]):
    return lambda sentences: [entities.get(s, []) for s in sentences]


ROWS = [
    {"sentence": "President Donald Trump attacked the press.", "mention": "Trump", "from": 16, "to": 21, "polarity": -1},
    {"sentence": "He praised Angela Merkel for her calm.", "mention": "Angela Merkel", "from": 11, "to": 24, "polarity": 1},
    {"sentence": "He praised Angela Merkel for her calm.", "mention": "He", "from": 0, "to": 2, "polarity": 0},
    {"sentence": "Boris Johnson spoke on Monday.", "mention": "Boris Johnson", "from": 0, "to": 13, "polarity": 0},
    {"sentence": "Russia was blamed for the chaos.", "mention": "Russia", "from": 0, "to": 6, "polarity": -1},
    {"sentence": "Voters in France cheered.", "mention": "France", "from": 9, "to": 15, "polarity": 1},
]
ENTITIES = {
    ROWS[0]["sentence"]: [(10, 22, "PERSON")],
    ROWS[1]["sentence"]: [(11, 24, "PERSON")],
    ROWS[3]["sentence"]: [(0, 13, "PERSON"), (23, 29, "DATE")],
    ROWS[4]["sentence"]: [(0, 6, "GPE")],
    ROWS[5]["sentence"]: [(9, 15, "GPE")],
}


def test_swap_replaces_the_mention_and_fixes_the_offsets():
    row = {"sentence": "Critics said Trump lied.", "mention": "Trump", "from": 13, "to": 18, "polarity": -1}
    swapped = swap_mention(row, "Angela Merkel")
    assert swapped["sentence"] == "Critics said Angela Merkel lied." and swapped["sentence"][swapped["from"] : swapped["to"]] == "Angela Merkel"
    assert swapped["polarity"] == -1 and swapped["swapped_from"] == "Trump" and row["sentence"] == "Critics said Trump lied."


def test_entity_swaps_keep_the_kind_skip_pronouns_and_cover_the_whole_entity():
    entities = mention_entities(ROWS, fake_tagger(ENTITIES))
    assert entities[0] == MentionEntity("person", 10, 22, False) and entities[2] is None  # "He" stays as it is
    for seed in range(5):
        swaps = entity_swaps(ROWS, entities, seed)
        assert swaps[2] is None
        person = swaps[0]  # "Donald Trump" (the entity around the mention) makes way for a whole name
        assert person["sentence"].startswith("President ") and person["sentence"].endswith(" attacked the press.")
        assert person["mention"] in {"Angela Merkel", "Boris Johnson"} and person["sentence"][person["from"] : person["to"]] == person["mention"]
        assert swaps[4]["mention"] == "France" and swaps[5]["mention"] == "Russia"  # places only with places
        assert swaps[1]["mention"] == "Boris Johnson"  # never the name the sentence already has
        assert all(s["polarity"] == r["polarity"] for r, s in zip(ROWS, swaps) if s)


def test_opinion_cues_find_the_object_of_criticism_and_praise():
    urged = "Senators urged the U.S. to reform its visa rules."
    at = urged.index("U.S.")
    assert opinion_cue({"sentence": urged, "from": at, "to": at + 4}) == "criticism"
    participants = "Farmers criticized some Western countries and their subsidies."
    at = participants.index("Western")
    assert opinion_cue({"sentence": participants, "from": at, "to": at + 17}) == "criticism"
    assert opinion_cue(ROWS[1]) == "praise" and opinion_cue(ROWS[3]) is None
    assert opinion_cue({"sentence": "Russia was blamed.", "from": 0, "to": 6}) is None  # the subject, not the object


class FakeEncoder:
    """token_states from a tiny BERT over character-level 'tokens' (one per word)."""

    def __init__(self, model):
        self.model = model

    def token_states(self, sentences, layer):
        from tasks.models.encoder import TokenStates

        states, offsets = [], []
        for sentence in sentences:
            words, spans, at = sentence.split(), [], 0
            for word in words:
                at = sentence.index(word, at)
                spans.append((at, at + len(word)))
                at += len(word)
            ids = torch.tensor([[sum(map(ord, w)) % 200 for w in words]])
            with torch.inference_mode():
                out = self.model(input_ids=ids, output_hidden_states=True)
            states.append(out.hidden_states[layer][0].clone())
            offsets.append(spans)
        return TokenStates(states, offsets)


def test_epoch_rows_show_swapped_copies_and_repeat_cue_rows(base):
    settings = FinetuneSettings(n_layers=1, augment="swap", swap_probability=1.0, cues="repeat", cue_repeats=2)
    training, summary = training_set(ROWS, FakeEncoder(base), 2, settings, fake_tagger(ENTITIES))
    assert summary["swap"]["rows_with_a_copy"] == 5 and summary["cues"]["rows"] == 1
    rows = training.epoch_rows(torch.Generator().manual_seed(0))
    assert rows[2] == 2 and all(r >= len(ROWS) for k, r in enumerate(rows[:6]) if k != 2)  # every copy shown, the pronoun as it is
    assert rows[6:] == [rows[1], rows[1]]  # the praise row, twice more
    plain = training_set(ROWS, FakeEncoder(base), 2, FinetuneSettings(n_layers=1))[0]
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    assert plain.epoch_rows(generator) == list(range(len(ROWS))) and torch.equal(generator.get_state(), state)  # no draw


def test_finetuning_an_ensemble_trains_each_seed_as_a_single_head_would(base):
    rows = ROWS * 3
    encoder = FakeEncoder(base)
    settings = dict(n_layers=1, epochs=1, batch_size=4)
    ensemble, metrics = finetune_stance(rows, ROWS, encoder, LABELS, FinetuneSettings(**settings, seeds=(0, 1)), tagger=fake_tagger(ENTITIES))
    single, single_metrics = finetune_stance(rows, ROWS, encoder, LABELS, FinetuneSettings(**settings, seed=1))
    assert isinstance(ensemble, TunedStanceEnsemble) and [m["seed"] for m in metrics["members"]] == [0, 1]
    assert metrics["members"][1]["dev_macro_f1"] == single_metrics["dev_macro_f1"]
    for name, value in single.state_dict().items():
        assert torch.equal(value, ensemble.members[1].state_dict()[name]), name
    assert ensemble.card_from_training["seeds"] == [0, 1] and "--seeds 0,1" in ensemble.card_from_training["command"]
    assert single.card_from_training == {}  # a plain head keeps the card `newsflow train --finetune` writes


def test_an_all_mentions_head_judges_every_mention_of_a_sentence_in_one_row(base):
    """One pass per sentence, every judged mention marked, each pooled from it: the same
    probabilities as giving each mention a row of its own with the same marks."""
    from tasks.models.encoder import SentencePass, Span, span_tokens, tuned_batches
    from tasks.models.tuned_stance import pad_rows

    torch.manual_seed(3)
    head = TunedStanceHead(base, 1, LABELS, marking="all-mentions")
    with torch.no_grad():
        head.marker.normal_()
    states = torch.randn(2, 6, 16)
    offsets = [[(0, 0), (0, 3), (4, 8), (9, 12), (13, 17), (0, 0)], [(0, 0), (0, 5), (6, 9), (0, 0)]]
    passes = [
        SentencePass(np.zeros((6, 16)), {head.split_layer: states[0]}, offsets[0]),
        SentencePass(np.zeros((4, 16)), {head.split_layer: states[1, :4]}, offsets[1]),
    ]
    spans = [Span(0, 0, 3), Span(1, 6, 9), Span(0, 9, 12)]
    tokens = {k: span_tokens(offsets[s.sentence], s) for k, s in enumerate(spans)}
    [(keys, batch)] = list(tuned_batches([0, 1, 2], spans, tokens, passes, head, 1000))
    assert batch.states.shape[0] == 2 and sorted(keys) == [0, 1, 2]  # two passes for three mentions
    row_of = dict(zip(keys, batch.row.tolist()))
    assert row_of[0] == row_of[2] != row_of[1]
    assert batch.marked[row_of[0]].nonzero().flatten().tolist() == [1, 3] and batch.target[keys.index(2)].nonzero().flatten().tolist() == [3]
    together = np.zeros((3, 3), dtype=np.float32)
    together[keys] = head.predict_proba_states(batch)
    one_row_each = head.predict_proba_states(pad_rows([states[0], states[1, :4], states[0]], [[1, 3], [2], [1, 3]], [(0, [1]), (1, [2]), (2, [3])]))
    assert np.allclose(together, one_row_each, atol=1e-5)
    assert not np.allclose(together[0], together[2], atol=1e-3)  # the pooling tells the two mentions apart
    head.marking = "target"
    per_mention = [b for _, b in tuned_batches([0, 1, 2], spans, tokens, passes, head, 1000)]
    assert sum(b.states.shape[0] for b in per_mention) == 3  # a target head: a row per mention, marking its own only
    assert all(torch.equal(b.marked, b.target) for b in per_mention)


def test_all_mentions_training_marks_every_labelled_target_and_found_mention(base):
    found = {ROWS[3]["sentence"]: [(23, 29)], ROWS[1]["sentence"]: [(11, 24)]}  # "Monday" stands in for a mention found there
    settings = FinetuneSettings(n_layers=1, marking="all-mentions")
    training, _ = training_set(ROWS, FakeEncoder(base), 2, settings, marker=lambda sentences: [list(found.get(s, [])) for s in sentences])
    data = training.data
    assert data.tokens[3] == [0, 1] and data.marked[3] == [0, 1, 4]  # Boris Johnson pooled; he and "Monday" marked
    assert data.marked[1] == data.marked[2] == [0, 2, 3]  # "He" and "Angela Merkel" both labelled in one sentence
    assert data.tokens[2] == [0] and data.marked[0] == data.tokens[0] == [2]
    plain = training_set(ROWS, FakeEncoder(base), 2, FinetuneSettings(n_layers=1))[0].data
    assert plain.marked == plain.tokens  # a target head marks only what it judges
    head, _ = finetune_stance(
        ROWS, ROWS, FakeEncoder(base), LABELS, FinetuneSettings(n_layers=1, epochs=1, batch_size=4, marking="all-mentions"), marker=lambda s: [[] for _ in s]
    )
    assert head.marking == "all-mentions" and "--marking all-mentions" in head.card_from_training["command"]


def test_the_marking_travels_with_the_saved_head(base, tmp_path):
    TunedStanceHead(base, 1, LABELS, marking="all-mentions").save(tmp_path / "all")
    random_head(base, 0).save(tmp_path / "one")
    assert load_tuned_stance_head(tmp_path / "all", base).marking == "all-mentions"
    assert load_tuned_stance_head(tmp_path / "one", base).marking == "target"
    card = json.loads((tmp_path / "one" / "card.json").read_text())
    del card["marking"]  # a head saved before the choice existed
    (tmp_path / "one" / "card.json").write_text(json.dumps(card))
    assert load_tuned_stance_head(tmp_path / "one", base).marking == "target"
