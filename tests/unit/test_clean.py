"""The clean stage, as a specification: what comes out of a raw article, and why a
record is rejected. Real-world inputs (the founding seed, the CNN/DailyMail dev sample)
are read from ../shared and never copied into the repository."""

from __future__ import annotations

import csv
import hashlib
import random
import time
from datetime import UTC
from pathlib import Path

import pytest

from tasks.config import CleanConfig
from tasks.records import RawDocument, Rejection, RejectReason
from tasks.stages.clean import (
    Byline,
    CleanDocument,
    clean_document,
    clean_text,
    clearly_english,
    count_words,
    detect_language,
    doc_id_for,
    extract_byline,
    join_paragraphs,
    normalise_for_hash,
    split_sentences,
)

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
SEED = SHARED / "seeds" / "000_b354eb1718a7a74f.txt"
CNNDM_DEV = SHARED / "data" / "cnndm" / "dev.csv"

# Articles written for these tests.
HARBOUR = (
    "The harbour authority opened a new ferry terminal on Monday after three years of work. "
    "Officials said the terminal would handle twice as many passengers as the old one. "
    "Local businesses welcomed the opening, saying that visitors had often complained about "
    "long queues in the summer. The first ferry left shortly after nine in the morning."
)
FRENCH = (
    "Le conseil municipal a approuvé mardi soir un nouveau plan de circulation pour le centre "
    "de la ville. Les habitants pourront donner leur avis lors d'une réunion publique prévue "
    "le mois prochain, a indiqué la mairie dans un communiqué."
)


def body(*paragraphs: str) -> str:
    return "\n".join(paragraphs)


# --------------------------------------------------------------------------- bylines


class TestByline:
    def test_seed_style_authors_then_outlet(self):
        byline = extract_byline(body("By Liu Lingling, Zhang Penghui, People’s Daily", HARBOUR))
        assert byline.authors == ["Liu Lingling", "Zhang Penghui"]
        assert byline.source == "People’s Daily"
        assert byline.remaining_text == HARBOUR

    def test_single_author(self):
        byline = extract_byline(body("By Sam Kim", HARBOUR))
        assert (byline.authors, byline.source) == (["Sam Kim"], None)
        assert byline.remaining_text == HARBOUR

    def test_two_authors_joined_by_and(self):
        assert extract_byline(body("By Ana Ruiz and Tom Berg", HARBOUR)).authors == ["Ana Ruiz", "Tom Berg"]

    def test_pipe_separates_the_outlet(self):
        byline = extract_byline(body("By Ana Ruiz | Newsflow Wire", HARBOUR))
        assert (byline.authors, byline.source) == (["Ana Ruiz"], "Newsflow Wire")

    @pytest.mark.parametrize("outlet", ["Harbour Times", "The Coastline", "Reuters", "Valley Herald"])
    def test_last_comma_item_is_an_outlet_when_it_looks_like_one(self, outlet):
        byline = extract_byline(body(f"By Ana Ruiz, {outlet}", HARBOUR))
        assert (byline.authors, byline.source) == (["Ana Ruiz"], outlet)

    def test_last_comma_item_that_is_a_name_is_an_author(self):
        assert extract_byline(body("By Ana Ruiz, Tom Berg", HARBOUR)).authors == ["Ana Ruiz", "Tom Berg"]

    def test_byline_after_a_title_line(self):
        byline = extract_byline(body("Ferry terminal opens", "By Sam Kim", HARBOUR))
        assert byline.authors == ["Sam Kim"]
        assert byline.remaining_text == body("Ferry terminal opens", HARBOUR)

    def test_by_lines_are_only_taken_from_the_first_three_lines(self):
        text = body("One.", "Two.", "Three.", "By Sam Kim", HARBOUR)
        byline = extract_byline(text)
        assert byline.authors == []
        assert "By Sam Kim" in byline.remaining_text

    @pytest.mark.parametrize(
        "line",
        ["By the end of the year, the terminal was busy.", "By Tuesday, officials had agreed on a date.", "By 2030 the port expects to double its traffic."],
    )
    def test_prose_that_starts_with_by_is_not_a_byline(self, line):
        byline = extract_byline(body(line, HARBOUR))
        assert byline.authors == [] and byline.source is None
        assert byline.remaining_text.startswith(line)


class TestDailyMailHeader:
    def test_published_and_updated_stamps(self):
        text = (
            "By . Associated Press . PUBLISHED: . 14:11 EST, 25 October 2013 . | . "
            "UPDATED: . 15:36 EST, 25 October 2013 . The bishop said the parish would reopen. " + HARBOUR
        )
        byline = extract_byline(text)
        assert byline.source == "Associated Press"
        assert byline.authors == []
        assert byline.published == "2013-10-25"
        assert byline.remaining_text.startswith("The bishop said")

    def test_person_name_goes_to_authors(self):
        byline = extract_byline("By . Ana Ruiz . PUBLISHED: . 03:53 EST, 23 July 2013 . " + HARBOUR)
        assert (byline.authors, byline.source, byline.published) == (["Ana Ruiz"], None, "2013-07-23")
        assert byline.remaining_text == HARBOUR

    def test_two_names_and_no_updated_stamp(self):
        byline = extract_byline("By . Ana Ruiz . and Tom Berg . PUBLISHED: . 19:44 EST, 10 October 2012 . " + HARBOUR)
        assert byline.authors == ["Ana Ruiz", "Tom Berg"]
        assert byline.published == "2012-10-10"
        assert byline.remaining_text == HARBOUR

    def test_staff_reporter_credit_names_the_outlet(self):
        byline = extract_byline("By . Daily Mail Reporter . " + HARBOUR)
        assert (byline.authors, byline.source) == ([], "Daily Mail")
        assert byline.remaining_text == HARBOUR

    def test_last_updated_stamp(self):
        byline = extract_byline("Last updated at 10:06 AM on 12th March 2012 . " + HARBOUR)
        assert byline.published == "2012-03-12"
        assert byline.remaining_text == HARBOUR

    def test_name_for_an_outlet(self):
        byline = extract_byline("By . Ana Ruiz for MailOnline . " + HARBOUR)
        assert (byline.authors, byline.source) == (["Ana Ruiz"], "MailOnline")

    def test_name_without_stamp(self):
        byline = extract_byline("By . Ana Ruiz . " + HARBOUR)
        assert byline.authors == ["Ana Ruiz"]
        assert byline.remaining_text == HARBOUR

    def test_scroll_down_and_orphan_line_break_marks(self):
        text = (
            "By . Ana Ruiz . The ferry left at nine . Scroll down for video . Passengers who . "
            "queued early got seats . Click here to see more pictures . The end came soon."
        )
        assert extract_byline(text).remaining_text == ("The ferry left at nine. Passengers who queued early got seats. The end came soon.")


class TestDateline:
    @pytest.mark.parametrize(
        "prefix, source",
        [
            ("(CNN) -- ", "CNN"),
            ("LONDON, England (CNN) -- ", "CNN"),
            ("GENEVA, March 3 (Newsflow Wire) - ", "Newsflow Wire"),
            ("WASHINGTON (Reuters) - ", "Reuters"),
        ],
    )
    def test_dateline_gives_the_source_and_leaves_the_text(self, prefix: str, source: str):
        byline = extract_byline(prefix + HARBOUR)
        assert (byline.source, byline.remaining_text) == (source, HARBOUR)

    def test_dateline_after_a_byline(self):
        byline = extract_byline(body("By Sam Kim, Harbour Times", "WASHINGTON (Reuters) - " + HARBOUR))
        assert byline.authors == ["Sam Kim"]
        assert byline.source == "Harbour Times"  # the byline's outlet comes first
        assert byline.remaining_text == HARBOUR

    def test_glued_cnn_prefix_and_ap_style(self):
        assert extract_byline("(CNN)" + HARBOUR).remaining_text == HARBOUR
        byline = extract_byline("NEW YORK (AP) — " + HARBOUR)
        assert (byline.source, byline.remaining_text) == ("AP", HARBOUR)

    def test_a_ticker_after_a_company_name_is_not_a_dateline(self):
        text = "Acme (ACME) - the ferry operator - said bookings doubled. " + HARBOUR
        assert extract_byline(text) == Byline([], None, None, text)

    def test_a_caption_in_parentheses_is_not_a_dateline(self):
        text = "Mayor Ana Ruiz (pictured) - who opened the terminal - said it was overdue. " + HARBOUR
        assert extract_byline(text).remaining_text == text


class TestDebris:
    @pytest.mark.parametrize(
        "line",
        [
            "Scroll down for video",
            "Click here to read the full report",
            "Follow @harbourdesk on Twitter",
            "READ MORE: Ferry fares rise again",
            "VIDEO Harbour master opens the new terminal",
            "VIDEO: Ferry docks for the first time",
        ],
    )
    def test_debris_lines_are_dropped(self, line):
        assert extract_byline(body(HARBOUR, line, HARBOUR)).remaining_text == body(HARBOUR, HARBOUR)

    def test_video_link_titles_inside_a_flattened_page_are_dropped(self):
        text = "The ferry left at nine . VIDEO Harbour master cuts the ribbon . Passengers cheered as it sailed."
        assert extract_byline(text).remaining_text == "The ferry left at nine. Passengers cheered as it sailed."

    @pytest.mark.parametrize(
        "text", ["Video games were sold at the terminal shop. " + HARBOUR, "The VIDEO Assistant Referee system was explained to fans. " + HARBOUR]
    )
    def test_the_word_video_in_prose_stays(self, text):
        assert extract_byline(text).remaining_text == text

    def test_closing_credit_and_comment_notice_are_dropped(self):
        text = HARBOUR + " Ana Ruiz contributed to this report."
        assert extract_byline(text).remaining_text == HARBOUR
        text = HARBOUR + " Sorry we are not currently accepting comments on this article."
        assert extract_byline(text).remaining_text == HARBOUR


def test_hard_wrapped_paragraphs_are_unwrapped_but_paragraph_lines_are_kept():
    wrapped = "The harbour authority opened a new\nferry terminal on Monday after three\nyears of work."
    assert join_paragraphs(wrapped + "\n\n" + wrapped) == "\n".join([wrapped.replace("\n", " ")] * 2)
    assert join_paragraphs("Ferry terminal opens\n" + HARBOUR) == "Ferry terminal opens\n" + HARBOUR
    assert join_paragraphs("One.\nTwo.\n\nThree.") == "One.\nTwo.\nThree."


def test_joined_lines_are_re_cleaned_only_where_a_line_ends_outside_ascii(monkeypatch):
    import tasks.stages.clean.bylines

    cleaned: list[str] = []
    real_clean_text = tasks.stages.clean.clean_text
    monkeypatch.setattr(tasks.stages.clean.bylines, "clean_text", lambda text: cleaned.append(text) or real_clean_text(text))
    wrapped = "The harbour authority opened a new\nferry terminal on Monday after three\nyears of work."
    assert join_paragraphs(wrapped) == wrapped.replace("\n", " ") and cleaned == []
    # "Ã" at a line end, clean alone, is mojibake once the join puts a word after it
    wrapped = "They said voilÃ\nnext to the quay and went on\nwith the work of the day"
    assert real_clean_text(wrapped) == wrapped
    joined = join_paragraphs(wrapped)
    assert cleaned == [wrapped.replace("\n", " ")] and joined == "They said voilà next to the quay and went on with the work of the day"
    assert real_clean_text(joined) == joined


# --------------------------------------------------------------------------- sentences


def test_seed_article_splits_into_its_sentences():
    if not SEED.exists():
        pytest.skip(f"founding seed not present at {SEED}")
    byline = extract_byline(clean_text(SEED.read_text(encoding="utf-8")))
    assert byline.authors == ["Liu Lingling", "Zhang Penghui"]
    assert byline.source == "People’s Daily"
    paragraphs = byline.remaining_text.split("\n")
    sentences = split_sentences(byline.remaining_text)
    # The file holds the byline line and 18 paragraphs (19 lines); two paragraphs have two
    # sentences each, so 20 sentences. DESIGN.md's "21" is pysbd over the whole file, which
    # counts the byline line as a sentence: the same count with the byline left in.
    assert len(paragraphs) == 18
    assert len(sentences) == 20
    assert len(split_sentences(SEED.read_text(encoding="utf-8"))) == 21
    assert all("U.S." not in s[-5:] for s in sentences)  # "the U.S. for", "the U.S. to" never split
    assert sum("U.S." in s for s in sentences) == 2


@pytest.mark.parametrize(
    "text",
    [
        "Sanctions were agreed at the U.N. Security Council on Friday.",
        "Talks between the U.S. and the U.K. resumed in London.",
        "Mr. Lee met Mrs. Park and Ms. Cho at noon.",
        "Dr. Ruiz and Prof. Berg published the study.",
        "Gen. Ortiz briefed Sen. Hale and Rep. Dunn.",
        "Gov. Alvarez visited St. Louis on Tuesday.",
        "Martin Luther King Jr. Day is a holiday.",
        "Acme Inc. Chief Executive Ana Ruiz spoke first.",
        "Acme Corp. Board members voted against it.",
        "Berg & Co. Ltd. Partners were not informed.",
        "He lives at No. 10 Downing Street.",
        "It was Ruiz vs. Berg in the final.",
        "Some ports, e.g. Rotterdam, are automated.",
        "The port, i.e. the authority, pays for it.",
        "The ferry left at 9 a.m. Monday and returned at 5 p.m. Tuesday.",
        "The vote is set for Jan. 5 and the count for Feb. 12 this year.",
        "Talks ran from Sept. 3 to Oct. 9 in Geneva.",
        "President John F. Kennedy visited the port.",
        "Growth slowed to 3.5 percent from 4.25 percent.",
        "He paused... and then carried on.",
    ],
)
def test_abbreviations_initials_decimals_and_ellipses_do_not_end_a_sentence(text):
    assert split_sentences(text) == [text]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Sanctions were imposed by the U.S. The ministry said it would respond.",
            ["Sanctions were imposed by the U.S.", "The ministry said it would respond."],
        ),
        ('He said "no." Then he left.', ['He said "no."', "Then he left."]),
        ("She asked: 'Why now?' Nobody answered.", ["She asked: 'Why now?'", "Nobody answered."]),
        ("The vote passed (narrowly.) Work starts soon.", ["The vote passed (narrowly.)", "Work starts soon."]),
        ("Shares of Acme Inc. The company declined to comment.", ["Shares of Acme Inc.", "The company declined to comment."]),
        ("It rained. It poured! Did it stop? No.", ["It rained.", "It poured!", "Did it stop?", "No."]),
        ("The ferry left at 9 p.m. The crew was tired.", ["The ferry left at 9 p.m.", "The crew was tired."]),
        ("He waited... The ferry never came.", ["He waited...", "The ferry never came."]),
        ('"Why?" he asked.', ['"Why?" he asked.']),
        ("Prices rose in 2013. 2014 was worse.", ["Prices rose in 2013.", "2014 was worse."]),
        ("First line without a stop\nSecond line", ["First line without a stop", "Second line"]),
    ],
)
def test_sentence_boundaries(text, expected):
    assert split_sentences(text) == expected


def test_sentences_are_stripped_ordered_substrings():
    text = "  First one.   Second one!\n\n  Third one?  \n"
    sentences = split_sentences(text)
    assert sentences == ["First one.", "Second one!", "Third one?"]
    position = 0
    for sentence in sentences:
        found = text.find(sentence, position)
        assert found >= 0, sentence
        position = found + len(sentence)


def test_overlong_sentence_is_cut_at_whitespace():
    words = [f"word{i}" for i in range(300)]
    pieces = split_sentences(" ".join(words), max_chars=100)
    assert all(0 < len(p) <= 100 for p in pieces)
    assert " ".join(pieces).split() == words  # nothing lost, no word cut in two


def test_a_single_word_longer_than_max_chars_is_cut_hard():
    assert split_sentences("x" * 250, max_chars=100) == ["x" * 100, "x" * 100, "x" * 50]


def test_five_thousand_word_unpunctuated_sentence_is_fast():
    text = " ".join(f"w{i % 97}" for i in range(5000))
    started = time.perf_counter()
    pieces = split_sentences(text, max_chars=800)
    elapsed = time.perf_counter() - started
    assert all(0 < len(p) <= 800 for p in pieces)
    assert " ".join(pieces) == text
    assert elapsed < 1.0  # a guard against quadratic work (seconds), not a speed target


def test_pathological_punctuation_runs_stay_linear():
    text = ("." * 20000 + "x ") * 5 + "a. " * 20000
    started = time.perf_counter()
    split_sentences(text)
    assert time.perf_counter() - started < 2.0  # a guard against quadratic work, not a speed target


# --------------------------------------------------------------------------- text repair


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\x00b", "ab"),
        ("one\x07\x1b two", "one two"),
        ("line one\r\nline two\rline three", "line one\nline two\nline three"),
        ("  spaced \t\t out  ", "spaced out"),
        ("non\u00a0breaking\u2009space", "non breaking space"),
        ("para one\n\n\n\n\npara two", "para one\n\npara two"),
        ("  trailing  \n  leading", "trailing\nleading"),
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("Ã©tÃ© â€” mojibake", "été — mojibake"),
        ("cafe\u0301", "café"),  # NFC
        ("People’s “Daily”", "People’s “Daily”"),  # curly quotes are kept
        # Mojibake whose last byte is an NBSP ("à" -> "Ã\xa0"), at a line end or before a symbol:
        ("voilÃ\xa0\nnext", "voilà\nnext"),
        ("costs 5Â\xa0€ a day", "costs 5 € a day"),
        # ... or inside a 3-byte sequence ("†" is "â€\xa0", "ठ" is "à¤\xa0")
        ("The footnoteâ€\xa0 says so.", "The footnote† says so."),
        ("à¤\xa0à¥‡à¤•à¤¾ à¤¦à¤¿à¤¯à¤¾", "ठेका दिया"),
        # French typographic spacing is no mojibake: the NBSP becomes a space as any other
        ("Il a dit «\xa0texte\xa0» à tous\xa0: voilà\xa0!", "Il a dit « texte » à tous : voilà !"),
    ],
)
def test_clean_text(raw, expected):
    assert clean_text(raw) == expected


def test_french_nbsp_spacing_takes_the_normal_path(monkeypatch):
    import tasks.stages.clean.repair

    french = "Le maire a parlé d’un «\xa0accord historique\xa0» mardi\xa0: «\xa0C’est fait\xa0!\xa0»\n\n" + FRENCH
    expected = french.replace("\xa0", " ")
    repairs: list[str] = []
    real_repair = tasks.stages.clean.repair._repair
    monkeypatch.setattr(tasks.stages.clean.repair, "_repair", lambda text: repairs.append(text) or real_repair(text))
    assert clean_text(french) == expected  # preserved as before: NBSP -> space, nothing else
    # the normal path: spacing made final before ftfy, so one ftfy pass finds nothing to do
    assert repairs == [expected]
    repairs.clear()
    assert clean_text("voilÃ\xa0\nnext") == "voilà\nnext"
    assert len(repairs) == 2 and "\xa0" in repairs[0]  # mojibake NBSP: ftfy sees it as it came


NASTY = [
    "a",
    " ",
    "\n",
    "\t",
    "\x00",
    "\x85",
    "\u2028",
    "\xa0",
    "&amp;",
    "&",
    "amp;",
    "Ã",
    "©",
    "â€",
    "™",
    "\x93",
    "\x94",
    "\u200b",
    "’",
    "é",
    "e\u0301",
    "\r",
    "\x0c",
    ".",
    "ﬁ",
    "Ｆ",
    "<b>",
    "\x1b[31m",
]


def test_clean_text_is_idempotent():
    rng = random.Random(0)
    samples = ["".join(rng.choice(NASTY) for _ in range(rng.randint(0, 40))) for _ in range(2000)]
    samples += [HARBOUR, FRENCH, "&amp;amp; and Ã\xa0\xa0 la"]
    if SEED.exists():
        samples.append(SEED.read_text(encoding="utf-8"))
    for raw in samples:
        once = clean_text(raw)
        assert clean_text(once) == once, repr(raw)
        assert "\x00" not in once and "\r" not in once


def test_normalise_for_hash():
    assert normalise_for_hash("  The  Ferry\n\nLEFT\tat ９ ") == "the ferry left at 9"
    assert normalise_for_hash("People’s “Daily”") == normalise_for_hash('People\'s "Daily"')


# --------------------------------------------------------------------------- language


def test_language_detection():
    assert detect_language(HARBOUR) == "en"
    assert detect_language(FRENCH) == "fr"
    assert detect_language("") == "und"
    assert detect_language("12345 --- 678") == "und"
    assert all(detect_language(HARBOUR + FRENCH) == detect_language(HARBOUR + FRENCH) for _ in range(5))


OTHER_LANGUAGES = {
    "de": "Die Bundesregierung hat am Dienstag neue Massnahmen zur Unterstuetzung der Landwirte angekuendigt, die von der "
    "Duerre betroffen sind. Nach Angaben des Ministers sollen die Hilfen noch vor Ende des Jahres ausgezahlt werden und "
    "mehr als zehntausend Betriebe erreichen, die in diesem Sommer schwere Verluste hatten.",
    "nl": "De regering heeft dinsdag nieuwe maatregelen aangekondigd om boeren te steunen die getroffen zijn door de droogte. "
    "Volgens de minister worden de steunbedragen voor het einde van het jaar uitbetaald en gaat het om meer dan "
    "tienduizend bedrijven die deze zomer zware verliezen hebben geleden in het zuiden van het land.",
    "es": "El gobierno anuncio el martes una nueva serie de medidas para apoyar a los agricultores afectados por la sequia que "
    "ha golpeado varias regiones del sur del pais este verano. Segun el ministro, las ayudas se pagaran antes de fin de "
    "ano y llegaran a mas de diez mil explotaciones agricolas.",
}


def test_the_english_fast_path_takes_english_and_nothing_else(monkeypatch):
    assert clearly_english(HARBOUR)
    assert not clearly_english(FRENCH)
    assert not any(clearly_english(text) for text in OTHER_LANGUAGES.values())
    assert not clearly_english("the and of to that with for")  # too few words to tell
    for code, text in OTHER_LANGUAGES.items():  # they still reach langdetect
        assert detect_language(text) == code

    def no_langdetect(text: str) -> str:
        raise AssertionError("langdetect was called")

    monkeypatch.setattr("tasks.stages.clean.language.detect", no_langdetect)  # English never reaches it
    assert detect_language(HARBOUR) == "en"
    assert detect_language(HARBOUR * 5) == "en"  # the sample cut at ~1000 chars too
    with pytest.raises(AssertionError, match="langdetect was called"):
        detect_language(FRENCH)  # the patch is live: non-English does reach it


# --------------------------------------------------------------------------- the stage


CONFIG = CleanConfig(min_words=20)


def raw(text, **fields) -> RawDocument:
    return RawDocument(origin="test.txt", text=text, **fields)


def test_clean_document_builds_the_row():
    doc = clean_document(
        raw(body("By Ana Ruiz, Harbour Times", "PORTSMOUTH (Reuters) - " + HARBOUR), title="  Ferry   terminal opens ", url="https://example.org/ferry"), CONFIG
    )
    assert isinstance(doc, CleanDocument)
    assert doc.text == HARBOUR
    assert doc.authors == ["Ana Ruiz"]
    assert doc.source == "Harbour Times"
    assert doc.title == "Ferry terminal opens"
    assert doc.language == "en"
    assert doc.doc_id == hashlib.sha256(normalise_for_hash(HARBOUR).encode()).hexdigest()
    assert len(doc.sentences) == 4
    assert all(s in doc.text for s in doc.sentences)
    row = doc.to_row()
    assert row["doc_id"] == doc.doc_id and row["sentences"] == doc.sentences


def test_record_metadata_wins_over_the_byline():
    doc = clean_document(raw(body("By Ana Ruiz, Harbour Times", HARBOUR), authors=["Tom Berg"], source="Coast Courier", published="2024-05-01"), CONFIG)
    assert (doc.authors, doc.source, doc.published) == (["Tom Berg"], "Coast Courier", "2024-05-01")


def test_the_same_story_gets_the_same_id_whatever_the_debris():
    a = clean_document(raw("(CNN) -- " + HARBOUR), CONFIG)
    b = clean_document(raw(body("By Sam Kim", "  " + HARBOUR.replace(" ", "  ") + "\n\n")), CONFIG)
    assert a.doc_id == b.doc_id


@pytest.mark.parametrize(
    ("text", "config", "reason", "detail"),
    [
        ("   \n\t ", CONFIG, RejectReason.EMPTY, "no text left after cleaning"),
        ("By Sam Kim", CONFIG, RejectReason.EMPTY, "no text left after cleaning"),
        (HARBOUR, CleanConfig(max_chars=100), RejectReason.TOO_LONG, f"{len(HARBOUR)} chars > max_chars 100"),
        ("Too short to keep.", CONFIG, RejectReason.TOO_SHORT, "4 words < min_words 20"),
        (FRENCH, CONFIG, RejectReason.LANGUAGE, "detected fr"),
    ],
)
def test_rejections(text, config, reason, detail):
    result = clean_document(raw(text), config)
    assert result == Rejection(origin="test.txt", reason=reason, detail=detail, stage="clean")


def test_any_language_and_listed_languages_are_kept():
    assert clean_document(raw(FRENCH), CleanConfig(min_words=20, languages=["*"])).language == "fr"
    assert clean_document(raw(FRENCH), CleanConfig(min_words=20, languages=["en", "fr"])).language == "fr"


CHINESE = (
    "市议会周二晚间投票批准沿东码头修建新的防洪墙，结束了三年多来一直困扰该镇的争论。"
    "支持者表示，这堵墙将比现在的海滨长廊高出两米，是保护去年冬季风暴中被淹的两百户房屋的唯一现实办法。"
    "反对者包括码头上的几位店主，他们认为这一建筑会遮挡海景，赶走他们赖以为生的夏季游客。"
)


def test_words_of_languages_written_without_spaces_are_counted():
    assert count_words("The ferry left at nine.") == 5
    assert count_words("市议会周二") == 5  # one per ideograph
    assert count_words("コンピューターを使う") == 4  # katakana run, hiragana run, ideograph, hiragana run
    assert count_words("Apple 公司。 发布") == 5  # "Apple" + 4 ideographs; CJK punctuation is no word
    assert count_words(CHINESE) >= CleanConfig().min_words


def test_a_chinese_article_is_kept_where_chinese_is_wanted():
    kept = clean_document(raw(CHINESE), CleanConfig(languages=["zh"]))
    assert isinstance(kept, CleanDocument), kept
    assert kept.language == "zh" and len(kept.sentences) == 3
    assert clean_document(raw(CHINESE), CleanConfig(languages=["*"])).language == "zh"
    assert clean_document(raw(CHINESE), CleanConfig()) == Rejection(origin="test.txt", reason=RejectReason.LANGUAGE, detail="detected zh", stage="clean")


def test_a_huge_document_is_rejected_before_it_is_cleaned(tmp_path, monkeypatch):
    from tasks.config import InputConfig
    from tasks.stages.ingest import read_records

    huge = tmp_path / "huge.txt"
    huge.write_text("Huge headline\n\n" + (HARBOUR + "\n\n") * (20_000_000 // (len(HARBOUR) + 2)), encoding="utf-8")
    normal = tmp_path / "normal.txt"
    normal.write_text("Ferry terminal opens\n\n" + HARBOUR, encoding="utf-8")
    cleaned_sizes: list[int] = []
    real_clean_text = clean_text
    monkeypatch.setattr("tasks.stages.clean.document.clean_text", lambda text: cleaned_sizes.append(len(text)) or real_clean_text(text))

    results = [clean_document(doc, CONFIG) for path in (huge, normal) for doc in read_records(path, InputConfig())]

    assert huge.stat().st_size > 19_000_000
    big, small = results
    assert isinstance(big, Rejection) and big.reason is RejectReason.TOO_LONG and big.origin == str(huge)
    assert f"{huge.stat().st_size - len('Huge headline') - 2} chars before cleaning" in big.detail
    assert "max_chars 200000" in big.detail
    assert max(cleaned_sizes) < 10_000  # the 20 MB text never went through clean_text
    assert isinstance(small, CleanDocument) and small.text == HARBOUR


def test_whitespace_padding_does_not_count_towards_the_early_length_check():
    padded = " \n\t" * 20_000 + HARBOUR + "\xa0" * 20_000
    doc = clean_document(raw(padded), CleanConfig(min_words=20, max_chars=1000))
    assert isinstance(doc, CleanDocument) and doc.text == HARBOUR


def test_characters_cleaning_deletes_do_not_count_towards_the_early_length_check():
    article = "\n".join([HARBOUR] * 9)  # about 3,000 characters
    padded = "\u200b" * 10_500 + article.replace(" ", "\u200b" * 100 + " ")  # and 60k zero-width spaces
    config = CleanConfig(min_words=20, max_chars=5000)
    assert len(padded) > 60_000 and len(padded) - padded.count(" ") - padded.count("\n") > 10 * config.max_chars
    doc = clean_document(raw(padded), config)
    assert isinstance(doc, CleanDocument), doc
    assert doc.text == article
    # controls count the same way; text that stays too long is still rejected early
    assert isinstance(clean_document(raw(article.replace(" ", "\x07" * 20 + " ")), config), CleanDocument)
    too_long = clean_document(raw(padded + "x" * 50_001), config)
    assert too_long.reason is RejectReason.TOO_LONG and "before cleaning" in too_long.detail


def test_unexpected_errors_become_parse_error_rejections(monkeypatch):
    def broken(text: str) -> str:
        raise RuntimeError("profile missing")

    monkeypatch.setattr("tasks.stages.clean.document.detect_language", broken)
    result = clean_document(raw(HARBOUR), CONFIG)
    assert isinstance(result, Rejection) and result.reason == RejectReason.PARSE_ERROR
    assert result.detail == "RuntimeError: profile missing"
    assert clean_document(raw(None), CONFIG).reason == RejectReason.NOT_TEXT  # type: ignore[arg-type]


# --------------------------------------------------------------------------- real articles


def test_cnn_dailymail_dev_articles_lose_their_headers():
    if not CNNDM_DEV.exists():
        pytest.skip(f"CNN/DailyMail dev sample not present at {CNNDM_DEV}")
    with CNNDM_DEV.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows
    config = CleanConfig()
    published = 0
    for row in rows:
        doc = clean_document(RawDocument(origin=row["id"], text=row["article"]), config)
        assert isinstance(doc, CleanDocument), doc
        assert doc.sentences, row["id"]
        published += doc.published is not None
        for sentence in doc.sentences:
            assert sentence in doc.text
            assert "PUBLISHED:" not in sentence and "UPDATED:" not in sentence, (row["id"], sentence)
            assert not sentence.startswith(("By .", "(CNN)")), (row["id"], sentence)
            assert "Scroll down for video" not in sentence, (row["id"], sentence)
            assert not sentence.startswith("VIDEO"), (row["id"], sentence)
    assert published >= 6  # every article with a PUBLISHED or "Last updated" stamp


def test_language_detection_is_safe_across_threads():
    """Shards are cleaned in parallel threads; langdetect's lazy profile load once raced
    there and called every English shard Polish."""
    from concurrent.futures import ThreadPoolExecutor

    import langdetect.detector_factory as factory

    factory._factory = None  # force the lazy load to happen inside the threads
    english = "The government announced on Tuesday that it would expand the programme to every region of the country next year."
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(detect_language, [english] * 32))
    assert set(codes) == {"en"}


def test_clean_shard_keeps_and_rejects_every_row(tmp_path):
    from dataclasses import fields
    from datetime import datetime

    import pyarrow as pa

    from flows.shell import ShardJob, run_stage
    from tasks.config import PipelineConfig
    from tasks.dataset.output import RunContext
    from tasks.dataset.staging import read_shard, write_shard
    from tasks.records import CLEAN_SCHEMA, RAW_SCHEMA, CleanDocument

    def clean_shard(raw, index, config, staging):  # the clean stage through the stage shell, without a cache
        context = RunContext(run_id="r", started_at=datetime.now(UTC), output_root=staging, config_sha256="", staging=staging)
        return run_stage("clean", [raw], ShardJob(index, PipelineConfig(clean=config), context, None))

    english = "The council approved the new budget on Monday after a long debate about schools, roads and the future of the old harbour district. " * 3
    rows = [RawDocument(origin="a", text=english).to_row(), RawDocument(origin="b", text="Too short.").to_row()]
    raw = write_shard(tmp_path, "ingest", 7, pa.Table.from_pylist(rows, schema=RAW_SCHEMA))
    cleaned = clean_shard(raw, 0, CleanConfig(), str(tmp_path))
    assert cleaned.index == 0 and cleaned.rows == 1 and cleaned.rejected_rows == 1
    kept = read_shard(cleaned)
    assert kept.schema == CLEAN_SCHEMA and kept.column("origin").to_pylist() == ["a"]
    assert kept.column("doc_id").to_pylist() == [doc_id_for(kept.column("text")[0].as_py())]
    assert CLEAN_SCHEMA.names == [f.name for f in fields(CleanDocument)]
