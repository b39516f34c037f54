"""A run over a folder of good articles mixed with every kind of bad input: the run
completes, each bad input is a `rejected` row with its reason, the good ones are kept, and
the run record proves kept + rejected = read for every input file."""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import SAMPLES, run_pipeline

GOOD = ["imf_warns_brazil_debt.txt", "nato_air_defence_timeline.txt", "port_strike_daily_courier.txt"]
ARTICLE = (SAMPLES / "imf_warns_brazil_debt.txt").read_text(encoding="utf-8")
# 5,000 words of English without a single punctuation mark: the good articles' first 400
# words, punctuation taken out, over and over.
ENGLISH_WORDS = re.sub(r"[^\w\s]", " ", " ".join((SAMPLES / name).read_text(encoding="utf-8") for name in GOOD)).split()[:400]
RUN_ON = " ".join(ENGLISH_WORDS[i % len(ENGLISH_WORDS)] for i in range(5_000))
CP1252_ARTICLE = (
    "The café owners in São Paulo said the “new rules” would cost them dearly — about €2 million a year, according to the association’s own figures. "
) * 6


FIRST_NAMES = "Maria Tomas Amara Kenji Leila Pavel Ines Omar Sofia Daniel Yara Mateo Nadia Felix Aisha Hugo Elena Ravi Clara Jonas".split()
SURNAMES = (
    "Okafor Lindqvist Moreau Tanaka Haddad Novak Ferreira Rahman Costa Weber Mensah Alvarez Petrov Kowalski Osei Brennan Duarte Iyer Santos Keller".split()
)
# 400 distinct people, each named once: twice the default entities.max_per_document.
ROLL_CALL = "The delegates at the session were named in the minutes as follows.\n" + "\n".join(
    f"{a} {b}, {c} {d} and {e} {f} attended the morning session of the committee."
    for a, b, c, d, e, f in (
        (FIRST_NAMES[k % 20], SURNAMES[k // 20], FIRST_NAMES[(k + 1) % 20], SURNAMES[(k + 1) // 20], FIRST_NAMES[(k + 2) % 20], SURNAMES[(k + 2) // 20])
        for k in range(0, 399, 3)
    )
)
# One person written two ways, with invisible characters and without an accent.
INVISIBLE_NAMES = (
    "Secretary-General Ant\u00f3nio Guter\u200bres opened the meeting in Geneva on Monday with a call for calm and restraint. "
    "Later that day, Antonio Guterres\u00ad told reporters that the talks had been useful and would continue next week. "
    "Delegates said the mood in the hall had improved after the opening speeches and the long lunch break."
)
NO_NAMES = "the rain kept falling all week, and most people stayed at home. " * 8


def build_mixed_corpus(folder: Path, outside: Path) -> dict[str, set[str]]:
    """Write good and bad inputs; returns {file name: the reasons its records may be rejected for}
    ('kept' for a record that must be kept)."""
    folder.mkdir()
    for name in GOOD:
        (folder / name).write_bytes((SAMPLES / name).read_bytes())
    expected: dict[str, set[str]] = {name: {"kept"} for name in GOOD}

    def add(name: str, data: bytes | str, *reasons: str) -> None:
        path = folder / name
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        expected[name] = set(reasons)

    add("empty.txt", b"", "empty")
    add("blank.md", "   \n\t  \n", "empty")
    add("picture.txt", b"\x89PNG\r\n\x1a\n" + random.Random(1).randbytes(4000), "not_text")
    add("noise.txt", random.Random(2).randbytes(6000), "not_text")  # NUL bytes: binary data
    add("windows.txt", CP1252_ARTICLE.encode("cp1252"), "kept")
    add("bom.txt", "\ufeff" + ARTICLE + "\nA reader sent this copy with a byte-order mark.", "kept")
    lines = [json.dumps({"text": f"Line {n}. " + CP1252_ARTICLE}) for n in range(3)]
    add("wire.jsonl", "\n".join([lines[0], "{not json", lines[1], json.dumps({"text": "   "}), lines[2]]) + "\n", "kept", "parse_error", "empty")
    add("no_text_column.csv", "headline,body\nA,B\n", "missing_field")
    wrong_types = folder / "wrong_types.parquet"
    pq.write_table(pa.table({"text": [1, 2, 3]}), wrong_types)
    expected["wrong_types.parquet"] = {"parse_error"}
    add("menu.html", "<html><head><title>Menu</title></head><body><nav><a href='/'>Home</a></nav></body></html>", "too_short")
    add("huge.txt", ("The council met again on Tuesday. " * 600_000)[:20_000_000], "too_long")
    add("run_on.txt", RUN_ON, "kept")
    add(
        "controls.txt",
        ARTICLE.replace("Brazil", "Bra\x00zil", 1).replace(". ", ".\x07 ", 3) + "\nThe archive desk annotated this copy on Friday morning.",
        "kept",
    )
    add("french.txt", (SAMPLES / "fr_onu_accord_oceans.txt").read_bytes(), "language")
    add("roll_call.txt", ROLL_CALL, "kept")
    add("invisible_names.txt", INVISIBLE_NAMES, "kept")
    add("no_names.txt", NO_NAMES, "kept")
    # sorts after the original: the first copy in path order is kept
    add("reprint_of_imf.txt", (SAMPLES / "imf_warns_brazil_debt.txt").read_bytes(), "duplicate")
    add(
        "laughs.html",
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><html><body><p>&lol2;</p></body></html>',
        "parse_error",
    )
    add("xxe.html", '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><html><body><p>&xxe;</p></body></html>', "parse_error")
    outside.mkdir()
    (outside / "secret.txt").write_text(ARTICLE.replace("IMF", "Outside"), encoding="utf-8")
    os.symlink(outside / "secret.txt", folder / "link_outside.txt")
    expected["link_outside.txt"] = {"unreadable"}
    return expected


def file_of(origin: str, folder: Path) -> str:
    name = origin[len(str(folder)) + 1 :]
    return name.split(":")[0].split("#")[0]


@pytest.fixture(scope="module")
def mixed_run(prefect_harness, tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    folder = root / "inputs"
    expected = build_mixed_corpus(folder, root / "outside")
    summary = run_pipeline(folder, root / "out")
    return folder, root / "out", expected, summary


def test_the_run_completes_and_every_input_is_kept_or_rejected_for_its_reason(mixed_run):
    folder, output, expected, summary = mixed_run
    assert summary["status"] == "completed"
    rejected = pd.read_parquet(output / "rejected")
    documents = pd.read_parquet(output / "documents")
    outcomes: dict[str, set[str]] = {}
    for origin, reason in zip(rejected.origin, rejected.reason):
        outcomes.setdefault(file_of(origin, folder), set()).add(reason)
    for origin in documents.origin:
        outcomes.setdefault(file_of(origin, folder), set()).add("kept")
    for name, allowed in expected.items():
        assert outcomes.get(name), f"{name}: neither kept nor rejected"
        assert outcomes[name] <= allowed, f"{name}: {outcomes[name]} not in {allowed}"
    for name in (*GOOD, "windows.txt", "bom.txt", "controls.txt", "run_on.txt"):
        assert outcomes[name] == {"kept"}, name
    assert outcomes["noise.txt"] == {"not_text"} and outcomes["menu.html"] == {"too_short"}
    assert outcomes["wire.jsonl"] == {"kept", "parse_error", "empty"}
    assert not rejected.detail.isna().any() and rejected.detail.str.len().gt(0).all(), "every rejection says why"


def test_details_point_at_the_line_and_the_cause(mixed_run):
    folder, output, _, _ = mixed_run
    rejected = pd.read_parquet(output / "rejected").set_index("origin")
    assert rejected.loc[f"{folder / 'wire.jsonl'}:2", "reason"] == "parse_error"
    assert rejected.loc[f"{folder / 'wire.jsonl'}:4", "reason"] == "empty"
    assert "outside" in rejected.loc[str(folder / "link_outside.txt"), "detail"]
    documents = pd.read_parquet(output / "documents")
    windows = documents[documents.origin == str(folder / "windows.txt")].text.iloc[0]
    assert "café" in windows and "São Paulo" in windows and "€2 million" in windows and "“new rules”" in windows
    controls = documents[documents.origin == str(folder / "controls.txt")].text.iloc[0]
    assert "\x00" not in controls and "\x07" not in controls
    bom = documents[documents.origin == str(folder / "bom.txt")].text.iloc[0]
    assert not bom.startswith("\ufeff")
    assert "root:" not in " ".join(documents.text), "no external entity was read"


def test_a_run_on_text_is_kept_in_sentences_no_longer_than_the_limit(mixed_run):
    from tasks.config import load_config

    folder, output, _, _ = mixed_run
    assert len(ENGLISH_WORDS) == 400 and len(RUN_ON.split()) == 5_000 and not re.search(r"[^\w\s]", RUN_ON)
    documents = pd.read_parquet(output / "documents")
    run_on = documents[documents.origin == str(folder / "run_on.txt")]
    assert len(run_on) == 1 and run_on.language.iloc[0] == "en"
    sentences = pd.read_parquet(output / "sentences")
    mine = sentences[sentences.doc_id == run_on.doc_id.iloc[0]]
    limit = load_config(None).clean.max_sentence_chars
    assert len(mine) >= len(RUN_ON) // limit  # cut into pieces, none lost
    assert mine.text.str.len().max() <= limit, mine.text.str.len().max()
    assert " ".join(mine.sort_values("sentence_index").text) == RUN_ON


def test_the_run_record_proves_kept_plus_rejected_equals_read_per_file(mixed_run):
    folder, output, expected, summary = mixed_run
    accounting = summary["accounting"]
    assert accounting["balanced"] and not accounting["unbalanced_files"]
    per_file = accounting["per_file"]
    assert {file_of(f, folder) for f in per_file} == set(expected)
    for counts in per_file.values():
        assert counts["read"] == counts["kept"] + counts["rejected"] and counts["read"] >= 1
    assert per_file[str(folder / "wire.jsonl")] == {"read": 5, "kept": 3, "rejected": 2}
    assert summary["n_read"] == summary["n_kept"] + summary["n_rejected"] == sum(c["read"] for c in per_file.values())
    record = pd.read_parquet(output / "runs").iloc[0]
    assert json.loads(record.accounting)["per_file"] == per_file, "the record in the runs table holds the same proof"


def test_entities_survive_crowds_invisible_characters_and_texts_without_names(mixed_run):
    folder, output, _, summary = mixed_run
    documents = pd.read_parquet(output / "documents")
    entities = pd.read_parquet(output / "entities")
    doc_of = {file_of(o, folder): d for o, d in zip(documents.origin, documents.doc_id)}
    crowd = entities[entities.doc_id == doc_of["roll_call.txt"]]
    assert len(crowd) == 200  # entities.max_per_document, and the record counts the document
    assert json.loads(pd.read_parquet(output / "runs").counts[0])["documents_over_entity_cap"] == 1
    people = entities[(entities.doc_id == doc_of["invisible_names.txt"]) & (entities.type == "PERSON")]
    assert list(people.name) == ["António Guterres"] and people.n_mentions.iloc[0] == 2
    assert not any("\u200b" in s or "\u00ad" in s for s in people.surfaces.iloc[0])
    assert doc_of["no_names.txt"] not in set(entities.doc_id)  # kept, and no entity rows
