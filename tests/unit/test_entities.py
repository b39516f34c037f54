"""Named entities: names, the alias table, grouping within a document, ids across
documents, and the stage over real spaCy weights (en_core_web_sm 3.8.0)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tasks.config import KnownEntity, load_config, validate_config
from tasks.stages.entities import entities_shard
from tasks.stages.entities.grouping import Mention, entity_id, group_mentions
from tasks.stages.entities.known import AliasTable
from tasks.stages.entities.names import acronym_of, bare_name, fold, is_acronym, visible_text, without_honorifics
from tests.conftest import SEEDS

FOUNDING = SEEDS / "000_b354eb1718a7a74f.txt"


def run_stage(documents: dict[str, list[str]], **overrides) -> tuple[list[dict], list[dict], list[dict]]:
    config = load_config(None, overrides)
    out = entities_shard(pa.table({"doc_id": list(documents), "sentences": list(documents.values())}), config)
    return out.table.to_pylist(), out.parts["mentions"].to_pylist(), out.parts["capped"].to_pylist()


def test_names_lose_articles_possessives_titles_and_invisible_characters():
    assert bare_name("the Permanent Mission of China") == "Permanent Mission of China"
    assert bare_name("China’s") == "China" and bare_name("Reuters'") == "Reuters"
    assert bare_name("the Ministry of Foreign Affairs of") == "Ministry of Foreign Affairs"
    assert without_honorifics("President Luiz Inácio Lula da Silva") == "Luiz Inácio Lula da Silva"
    assert without_honorifics("Secretary-General António Guterres") == "António Guterres"
    assert without_honorifics("President") == "President"  # a title alone stays
    assert visible_text("Ang\u200bela\u00ad Mer\u200dkel\x07") == "Angela Merkel"
    assert fold("António Guterres") == fold("ANTONIO GUTERRES") == "antonio guterres"
    assert fold("U.S.") == fold("US") and fold("Marković") == fold("Markovic")


def test_acronyms_are_initials_of_the_long_name():
    assert acronym_of("International Atomic Energy Agency") == "IAEA"
    assert acronym_of("Bank of England") == "BE" and acronym_of("Reuters") == ""
    assert is_acronym("U.N.") and is_acronym("IAEA") and not is_acronym("Nato") and not is_acronym("A")


def test_alias_table_finds_names_on_word_boundaries_and_metonyms_only_for_places():
    table = AliasTable(
        [
            KnownEntity(name="United States", aliases=["U.S.", "US", "America"], metonyms=["Washington"], kind="country"),
            KnownEntity(name="United Nations", aliases=["UN", "U.N."], kind="organisation"),
        ]
    )
    found = [(m.name, m.surface) for m in table.find("The U.S.-Mexico border, the UN and US officials; not us, UNESCO or Americans.")]
    assert found == [("United States", "U.S."), ("United Nations", "UN"), ("United States", "US")]
    assert table.name_for("Washington", "GPE") == "United States"
    assert table.name_for("Washington", "PERSON") is None  # George Washington is no country
    assert table.name_for("u.s.", "ORG") == "United States"  # recognised names compare folded


def mention(sentence: int, surface: str, label: str, start: int = 0) -> Mention:
    name = without_honorifics(bare_name(surface)) if label == "PERSON" else bare_name(surface)
    return Mention(sentence, start, start + len(surface), surface, name, label)


def test_a_lone_surname_joins_the_one_person_with_it_whatever_spacy_labelled_it():
    entities = group_mentions([mention(0, "António Guterres", "PERSON"), mention(1, "Guterres", "ORG"), mention(2, "Mr. Guterres", "PERSON")], ["", "", ""], {})
    assert [(e.name, e.type, len(e.mentions)) for e in entities] == [("António Guterres", "PERSON", 3)]


def test_a_surname_two_people_share_stays_apart():
    entities = group_mentions([mention(0, "Hunter Biden", "PERSON"), mention(0, "Joe Biden", "PERSON", 20), mention(1, "Biden", "PERSON")], ["", ""], {})
    assert sorted(e.name for e in entities) == ["Biden", "Hunter Biden", "Joe Biden"]


def test_acronyms_join_their_long_form_by_initials_and_by_parentheses():
    sentences = [
        "The Organisation for Economic Co-operation and Development (OECD) said so.",
        "The International Atomic Energy Agency agreed.",
        "OECD and IAEA staff met.",
    ]
    entities = group_mentions(
        [
            mention(0, "The Organisation for Economic Co-operation and Development", "ORG"),
            mention(1, "The International Atomic Energy Agency", "ORG"),
            mention(2, "OECD", "ORG", 0),
            mention(2, "IAEA", "ORG", 9),
        ],
        sentences,
        {},
    )
    assert [(e.name, len(e.mentions)) for e in entities] == [
        ("Organisation for Economic Co-operation and Development", 2),
        ("International Atomic Energy Agency", 2),
    ]


def test_entity_ids_ignore_accents_case_and_spacing():
    assert entity_id("António Guterres") == entity_id("Antonio  GUTERRES") != entity_id("Antonio Gutierrez")


@pytest.fixture(scope="module")
def founding() -> tuple[list[dict], list[dict]]:
    if not FOUNDING.exists():
        pytest.skip("../shared/seeds/ is not beside the repository")
    from tasks.stages.clean.sentences import split_sentences

    paragraphs = FOUNDING.read_text(encoding="utf-8").split("\n")[1:]  # the byline line is metadata
    sentences = [s for p in paragraphs for s in split_sentences(p)]
    entities, mentions, _ = run_stage({"founding": sentences})
    return entities, mentions


def test_founding_article_organisations_named_after_china_are_not_china(founding):
    entities, mentions = founding
    by_name = {e["name"]: e for e in entities}
    assert by_name["China Society for Human Rights Studies"]["type"] == "ORG"
    assert by_name["Permanent Mission of China"]["type"] == "ORG"
    china = [m for m in mentions if m["target"] == "China"]
    # "China's achievements", "China's Xinjiang"; the others are inside an organisation's name
    # ("the Ministry of Foreign Affairs of" + "China" as spaCy splits it is read as one name).
    assert {m["surface"] for m in china} == {"China"} and len(china) == by_name["China"]["n_mentions"] == 2
    assert by_name["Ministry of Foreign Affairs of China"]["type"] == "ORG"
    # "U.S." twice on its own; the one inside "U.S.-Mexico" belongs to that name.
    assert by_name["United States"]["n_mentions"] == 2 and by_name["United States"]["configured"]
    assert by_name["António Guterres"]["type"] == "PERSON" and by_name["António Guterres"]["n_mentions"] == 2
    assert by_name["Western countries"]["configured"] and by_name["United Nations"]["surfaces"] == ["the United Nations", "UN"]


def test_one_entity_id_across_documents_for_one_name_spelt_two_ways():
    entities, _, _ = run_stage(
        {"a": ["António Guterres spoke in Geneva on Monday."], "b": ["Antonio Guterres, the UN chief, flew to Nairobi."]}, **{"stance.targets": "entities"}
    )
    ids = {(e["doc_id"], e["name"]): e["entity_id"] for e in entities}
    assert ids[("a", "António Guterres")] == ids[("b", "Antonio Guterres")]
    un = [e for e in entities if e["doc_id"] == "b" and e["configured"]]
    assert [e["name"] for e in un] == ["United Nations"]  # the alias table names what NER found


def test_nationalities_count_as_their_country_and_metonyms_as_theirs():
    entities, mentions, _ = run_stage({"d": ["Chinese officials met Russian diplomats, and Washington said the Kremlin was wrong."]})
    names = {e["name"]: e for e in entities}
    assert {"China", "Russia", "United States"} <= set(names)
    assert names["Russia"]["n_mentions"] == 2  # "Russian" and "the Kremlin"
    assert {m["surface"] for m in mentions if m["target"] == "Russia"} == {"Russian", "Kremlin"}


def test_stance_targets_choose_which_mentions_are_judged():
    doc = {"d": ["Airbus praised the West and the United Nations.", "Airbus then thanked Boeing."]}
    both = {m["target"] for m in run_stage(doc)[1]}
    assert {"Airbus", "Boeing", "Western countries", "United Nations"} <= both
    configured = {m["target"] for m in run_stage(doc, **{"stance.targets": "configured"})[1]}
    assert configured == {"Western countries", "United Nations"}
    entities_only = {m["target"] for m in run_stage(doc, **{"stance.targets": "entities"})[1]}
    assert "Airbus" in entities_only and "Western countries" not in entities_only  # the alias search alone found "the West"
    twice = {m["target"] for m in run_stage(doc, **{"stance.min_mentions": 2})[1]}
    assert "Airbus" in twice and "Boeing" not in twice and "United Nations" in twice


def test_a_text_without_names_gives_no_entities_and_no_mentions():
    entities, mentions, capped = run_stage({"d": ["it was cold and wet all week, and nobody went out much at all."]})
    assert entities == [] and mentions == [] and capped == []


def test_thousands_of_names_in_one_document_are_capped_and_the_document_counted():
    names = [f"Person{chr(65 + k % 26)}{chr(65 + k // 26 % 26)} Smithson{k}" for k in range(600)]
    sentences = [f"{a} met {b} and {c} in Lisbon." for a, b, c in zip(names[0::3], names[1::3], names[2::3])]
    entities, mentions, capped = run_stage({"d": sentences}, **{"entities.max_per_document": 50})
    assert len(entities) == 50 and len({m["entity_id"] for m in mentions}) <= 50
    assert capped[0]["doc_id"] == "d" and capped[0]["entities_found"] > 50 and capped[0]["entities_kept"] == 50
    assert "Lisbon" in {e["name"] for e in entities}  # the most mentioned stays


def test_invisible_characters_and_diacritics_do_not_split_an_entity():
    entities, _, _ = run_stage(
        {"d": ["António Guterres arrived in Geneva.", "Later Anto\u200bnio Guterres left Geneva for Paris."]}, **{"stance.targets": "entities"}
    )
    people = [e for e in entities if e["type"] == "PERSON"]
    assert len(people) == 1 and people[0]["n_mentions"] == 2
    assert all("\u200b" not in s for s in people[0]["surfaces"])


def test_an_old_targets_list_becomes_the_alias_table():
    config = validate_config({"stance": {"targets": [{"name": "Airbus", "aliases": ["AIR"], "kind": "organisation"}]}})
    assert config.stance.targets == "both" and [k.name for k in config.entities.known] == ["Airbus"]


def test_the_report_sums_each_entity_over_the_run_with_its_strongest_evidence():
    from flows.report import entity_summary

    entities = [
        {"doc_id": "a", "entity_id": "u", "name": "United Nations", "type": "ORG", "n_mentions": 3},
        {"doc_id": "b", "entity_id": "u", "name": "United Nations", "type": "ORG", "n_mentions": 2},
        {"doc_id": "b", "entity_id": "g", "name": "António Guterres", "type": "PERSON", "n_mentions": 4},
    ]
    stances = [
        {"entity_id": "u", "label": "favor", "confidence": 0.7, "evidence": "The UN did well."},
        {"entity_id": "u", "label": "against", "confidence": 0.9, "evidence": "The UN failed."},
        {"entity_id": "g", "label": "neutral", "confidence": 0.8, "evidence": "Guterres spoke."},
    ]
    rows = entity_summary(entities, stances)
    assert [(r["name"], r["documents"], r["mentions"]) for r in rows] == [("United Nations", 2, 5), ("António Guterres", 1, 4)]
    assert rows[0]["stances"] == "favor 1, against 1" and rows[0]["evidence"] == "against: The UN failed."
    assert rows[1]["stances"] == "neutral 1" and rows[1]["evidence"] == ""


def test_newsmtsc_proper_names_count_for_recall_titles_and_pronouns_aside(tmp_path):
    import json
    from pathlib import Path

    from tasks.evaluation.entities import evaluate_entities, is_proper_name

    assert is_proper_name("President Trump") and is_proper_name("the Justice Department") and not is_proper_name("He")
    assert not is_proper_name("the president")
    rows = [
        ("President Emmanuel Macron met Angela Merkel in Berlin on Monday.", "President Emmanuel Macron"),
        ("President Emmanuel Macron met Angela Merkel in Berlin on Monday.", "Angela Merkel"),
        ("He said the talks had gone well.", "He"),
        ("The weather was cold, said the man from the Quorblex Fluxion.", "Quorblex Fluxion"),
    ]
    data = Path(tmp_path) / "rows.jsonl"
    data.write_text(
        "\n".join(json.dumps({"sentence": s, "mention": m, "from": s.index(m), "to": s.index(m) + len(m), "polarity": 0}) for s, m in rows), encoding="utf-8"
    )
    metrics, examples = evaluate_entities(data, load_config(None))
    found = metrics["per_class"]["proper names (inside an entity)"]
    assert metrics["format"] == "newsmtsc" and metrics["n"] == 3 and found["precision"] is None  # "He" is no proper name
    assert dict(zip(examples.mention, examples.found))["Angela Merkel"] and dict(zip(examples.mention, examples.found))["President Emmanuel Macron"]
    assert found["recall"] == round(examples.found.mean(), 4)


def test_spans_lose_stray_brackets_and_quotes_and_an_organisation_keeps_its_place():
    from tasks.stages.entities.recognise import Found
    from tasks.stages.entities.spans import tidied

    sentence = "Officials of the Embassy of Peru and the (UN) Human Rights Council met at the Office in Lima with “Ana Rojas”."

    def found(text: str, label: str) -> Found:
        at = sentence.index(text)
        return Found(at, at + len(text), label)

    spans = tidied(
        sentence,
        [
            found("the Embassy of", "ORG"),
            found("Peru", "GPE"),
            found("UN) Human Rights Council", "ORG"),
            found("the Office in", "ORG"),
            found("Lima", "GPE"),
            found("“Ana Rojas”", "PERSON"),
            found(")", "ORG"),
        ],
    )
    assert [(sentence[f.start : f.end], f.label) for f in spans] == [
        ("the Embassy of Peru", "ORG"),  # one organisation, not a Peru mention
        ("Human Rights Council", "ORG"),
        ("the Office in", "ORG"),  # only "of" joins: Lima stays a place
        ("Lima", "GPE"),
        ("Ana Rojas", "PERSON"),
    ]


@pytest.mark.parametrize("recogniser", ["encoder", "spacy"])
def test_the_encode_stage_finds_groups_and_judges_names_with_either_recogniser(recogniser):
    from flows.stages import STAGE_BY_NAME, stage_settings
    from tasks.stages.encode import STANCE_PROBS, encode_shard

    documents = {
        "a": ["Angela Merkel met Emmanuel Macron in Paris on Tuesday.", "Critics accused Merkel of stalling the talks."],
        "b": ["Farmers in Brazil cheered the new trade deal."],
    }
    settings = stage_settings(STAGE_BY_NAME["encode"], load_config(None, {"entities.recogniser": recogniser}))
    out = encode_shard(pa.table({"doc_id": list(documents), "sentences": list(documents.values())}), settings)
    assert out.table.num_rows == 3 and out.table.column("sentence_index").to_pylist() == [0, 1, 0]
    entities = {(e["doc_id"], e["name"]): e for e in out.parts["entities"].to_pylist()}
    assert entities[("a", "Angela Merkel")]["type"] == "PERSON" and entities[("a", "Angela Merkel")]["n_mentions"] == 2
    assert entities[("a", "Emmanuel Macron")]["type"] == "PERSON" and entities[("b", "Brazil")]["type"] == "GPE"
    mentions = out.parts["mentions"].to_pylist()
    merkel = [m for m in mentions if m["target"] == "Angela Merkel"]
    assert [m["surface"] for m in merkel] == ["Angela Merkel", "Merkel"] and all(abs(sum(m[STANCE_PROBS]) - 1) < 1e-4 for m in mentions)
    assert out.parts["capped"].num_rows == 0


def test_the_run_record_names_either_recogniser_with_its_weights():
    from tasks.stages.entities.recognise import ner_provenance

    spacy = ner_provenance(load_config(None, {"entities.recogniser": "spacy"}).entities)
    assert spacy["recogniser"] == "spacy" and spacy["version"] == "3.8.0" and spacy["components"] == "tok2vec,ner" and len(spacy["weights_sha256"]) == 64
    head = ner_provenance(load_config(None).entities)
    assert head["recogniser"] == "encoder" and head["id"] == "ner-tokens" and len(head["weights_sha256"]) == 64
