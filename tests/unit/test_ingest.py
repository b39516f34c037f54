"""Ingest: listing inputs and reading every supported format into documents or rejections."""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.config import SUPPORTED_EXTENSIONS, InputConfig, TableColumns
from tasks.records import RawDocument, Rejection, RejectReason
from tasks.stages.ingest import list_inputs, normalise_date, read_records, split_authors

CONFIG = InputConfig()


def read(path: Path, config: InputConfig = CONFIG) -> list[RawDocument | Rejection]:
    return list(read_records(path, config))


def only(items: list) -> RawDocument | Rejection:
    assert len(items) == 1, items
    return items[0]


def docs(items: list) -> list[RawDocument]:
    return [i for i in items if isinstance(i, RawDocument)]


def rejections(items: list) -> list[Rejection]:
    return [i for i in items if isinstance(i, Rejection)]


PARAGRAPHS = [
    "The harbour council voted on Tuesday night to approve a new flood wall along the eastern quay, "
    "ending a debate that has divided the town for more than three years.",
    "Supporters said the wall, which will rise two metres above the current promenade, is the only "
    "realistic way to protect the two hundred homes that flooded during last winter's storms.",
    "Opponents, including several shop owners on the quay, argued that the structure would block "
    "views of the water and drive away the summer visitors on whom their businesses depend.",
    "Construction is expected to begin in the autumn and to take eighteen months, with the cost shared between the council and a national resilience fund.",
]

HTML_PAGE = (
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Harbour council approves new flood wall | The Coastal Ledger</title>
<meta property="og:title" content="Harbour council approves new flood wall">
<meta property="og:site_name" content="The Coastal Ledger">
<meta property="og:url" content="https://ledger.example/news/flood-wall">
<meta name="author" content="Maria Lopez; Tom Baker">
<meta property="article:published_time" content="2024-03-14T09:30:00Z">
</head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/sport">Sport section link</a></li>
<li><a href="/subscribe">Subscribe today for special offers</a></li></ul></nav>
<aside class="sidebar"><h3>Most read</h3><ul>
<li><a href="/x">Celebrity chef opens bistro in the old mill</a></li></ul></aside>
<article>
<h1>Harbour council approves new flood wall</h1>
"""
    + "\n".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    + """
</article>
<footer><p>Copyright The Coastal Ledger. All rights reserved. Contact our newsroom.</p></footer>
</body></html>
"""
)


# --------------------------------------------------------------------------- list_inputs


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "a.txt").write_text("a")
    (root / "B.HTML").write_text("b")
    (root / "notes.docx").write_bytes(b"PK")
    (root / ".secret.txt").write_text("s")
    (root / ".hidden" / "h.txt").write_text("h")
    (root / "sub" / "c.jsonl").write_text("{}")
    (root / "sub" / "deeper" / "d.md").write_text("d")
    return root


def test_list_inputs_walks_folders_skipping_hidden_and_other_types(tree: Path):
    files, rejected = list_inputs([str(tree)], SUPPORTED_EXTENSIONS)
    root = tree.resolve()
    assert files == sorted([root / "B.HTML", root / "a.txt", root / "sub" / "c.jsonl", root / "sub" / "deeper" / "d.md"])
    assert rejected == []


def test_list_inputs_respects_the_extension_list(tree: Path):
    files, _ = list_inputs([str(tree)], [".md", "txt"])
    assert [f.name for f in files] == ["a.txt", "d.md"]


def test_list_inputs_dedupes_overlapping_entries(tree: Path):
    entries = [str(tree), str(tree / "a.txt"), str(tree / "sub" / ".." / "a.txt"), str(tree / "**" / "*.md")]
    files, rejected = list_inputs(entries, SUPPORTED_EXTENSIONS)
    root = tree.resolve()
    assert files == sorted([root / "B.HTML", root / "a.txt", root / "sub" / "c.jsonl", root / "sub" / "deeper" / "d.md"])
    assert rejected == []


def test_a_file_name_with_brackets_is_a_file_not_a_glob(tmp_path: Path):
    named = tmp_path / "Reuters [2024].txt"
    named.write_text("a")
    files, rejected = list_inputs([str(named)], SUPPORTED_EXTENSIONS)
    assert files == [named.resolve()] and rejected == []


def test_list_inputs_glob(tree: Path):
    files, rejected = list_inputs([str(tree / "**" / "*.jsonl"), str(tree / "?.txt")], SUPPORTED_EXTENSIONS)
    assert files == [tree.resolve() / "a.txt", tree.resolve() / "sub" / "c.jsonl"]
    assert rejected == []


def test_list_inputs_glob_matching_nothing_and_missing_path(tree: Path):
    missing = str(tree / "nope.txt")
    pattern = str(tree / "*.csv")
    files, rejected = list_inputs([missing, pattern], SUPPORTED_EXTENSIONS)
    assert files == []
    by_origin = {r.origin: r for r in rejected}
    assert by_origin[missing].reason is RejectReason.UNREADABLE
    assert by_origin[missing].detail == "no such file or folder"
    assert by_origin[pattern].reason is RejectReason.UNREADABLE
    assert by_origin[pattern].detail == "glob matched nothing"
    assert {r.stage for r in rejected} == {"ingest"}


def test_list_inputs_explicit_unsupported_file(tree: Path):
    named = str(tree / "notes.docx")
    files, rejected = list_inputs([named], SUPPORTED_EXTENSIONS)
    assert files == []
    assert only(rejected).origin == named
    assert only(rejected).reason is RejectReason.UNSUPPORTED


def test_list_inputs_rejects_symlinks_leaving_the_folder(tree: Path, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.txt").write_text("not for us")
    (tree / "escape.txt").symlink_to(outside / "private.txt")
    (tree / "escape_dir").symlink_to(outside, target_is_directory=True)
    (tree / "alias.txt").symlink_to(tree / "a.txt")  # stays inside: fine, listed once

    files, rejected = list_inputs([str(tree)], SUPPORTED_EXTENSIONS)

    assert all(f.is_relative_to(tree.resolve()) for f in files)
    assert outside.resolve() / "private.txt" not in files
    assert [f.name for f in files].count("a.txt") == 1
    assert {r.origin for r in rejected} == {str(tree / "escape.txt"), str(tree / "escape_dir")}
    for r in rejected:
        assert r.reason is RejectReason.UNREADABLE
        assert r.detail == "symlink points outside the input folder"

    # The same rule holds when a glob does the searching.
    files, rejected = list_inputs([str(tree / "*.txt")], SUPPORTED_EXTENSIONS)
    assert [f.name for f in files] == ["a.txt"]
    assert [(r.origin, r.detail) for r in rejected] == [(str(tree / "escape.txt"), "symlink points outside the input folder")]


def test_a_recursive_glob_does_not_leave_the_folder_through_a_linked_folder(tree: Path, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.txt").write_text("not for us")
    (tree / "escape_dir").symlink_to(outside, target_is_directory=True)
    files, rejected = list_inputs([str(tree / "**" / "*.txt"), str(tree / "*" / "*.txt")], SUPPORTED_EXTENSIONS)
    assert outside.resolve() / "private.txt" not in files
    assert [f.name for f in files] == ["a.txt"]
    assert {r.detail for r in rejected} == {"symlink points outside the input folder"}
    assert {r.origin for r in rejected} == {str(tree / "escape_dir"), str(tree / "escape_dir" / "private.txt")}


def test_follow_symlinks_reads_what_links_point_to(tree: Path, tmp_path: Path):
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "private.txt").write_text("shared on purpose")
    (outside / "deep" / "more.md").write_text("more")
    (tree / "escape.txt").symlink_to(outside / "private.txt")
    (tree / "escape_dir").symlink_to(outside, target_is_directory=True)
    (tree / "gone.txt").symlink_to(tmp_path / "missing.txt")
    wanted = {outside.resolve() / "private.txt", outside.resolve() / "deep" / "more.md", tree.resolve() / "a.txt"}

    for entry in (str(tree), str(tree / "**" / "*.*")):
        files, rejected = list_inputs([entry], SUPPORTED_EXTENSIONS, follow_symlinks=True)
        assert wanted <= set(files), entry
        assert len(files) == len(set(files))
        assert [(r.origin, r.detail) for r in rejected] == [(str(tree / "gone.txt"), "broken symlink")], entry

    files, rejected = list_inputs([str(tree)], SUPPORTED_EXTENSIONS)  # the default refuses them
    assert not (wanted - {tree.resolve() / "a.txt"}) & set(files)
    assert {r.origin for r in rejected} == {str(tree / "escape.txt"), str(tree / "escape_dir"), str(tree / "gone.txt")}


@pytest.mark.parametrize("follow", [False, True])
def test_symlink_cycles_end(tree: Path, follow: bool):
    # Two links back up make glob's own `**` branch exponentially (2**40 paths before ELOOP).
    (tree / "sub" / "up").symlink_to(tree, target_is_directory=True)
    (tree / "sub" / "deeper" / "top").symlink_to(tree / "sub", target_is_directory=True)
    real = sorted([tree.resolve() / "B.HTML", tree.resolve() / "a.txt", tree.resolve() / "sub" / "c.jsonl", tree.resolve() / "sub" / "deeper" / "d.md"])
    for entry in (str(tree), str(tree / "**" / "*.*"), str(tree / "**")):
        files, rejected = list_inputs([entry], SUPPORTED_EXTENSIONS, follow_symlinks=follow)
        assert files == real and rejected == [], entry


@pytest.mark.parametrize("pattern", ["**", "s*/**"])
def test_a_trailing_recursive_glob_visits_each_folder_once(tree: Path, monkeypatch, pattern: str):
    visits: list[str] = []
    real_walk = os.walk

    def counting_walk(top, *args, **kwargs):
        for dirpath, dirnames, filenames in real_walk(top, *args, **kwargs):
            visits.append(str(Path(dirpath)))
            yield dirpath, dirnames, filenames

    monkeypatch.setattr("tasks.stages.ingest.listing.os.walk", counting_walk)
    files, rejected = list_inputs([str(tree / pattern)], SUPPORTED_EXTENSIONS)
    assert rejected == [] and len(visits) == len(set(visits)), sorted(visits)
    if pattern.startswith("**"):
        assert files == sorted(tree.resolve() / f for f in ("B.HTML", "a.txt", "sub/c.jsonl", "sub/deeper/d.md"))
    else:
        assert files == sorted(tree.resolve() / f for f in ("sub/c.jsonl", "sub/deeper/d.md"))


def test_a_fifo_in_an_input_folder_is_named_for_what_it_is(tree: Path):
    fifo = tree / "pipe.txt"
    os.mkfifo(fifo)
    for entry in (str(tree), str(fifo), str(tree / "*.txt")):
        files, rejected = list_inputs([entry], SUPPORTED_EXTENSIONS)
        assert fifo.resolve() not in files
        assert [(r.origin, r.reason, r.detail) for r in rejected] == [(str(fifo), RejectReason.UNREADABLE, "not a regular file (FIFO)")]
    r = only(read(fifo))  # never opened: opening a FIFO with no writer would block
    assert r.reason is RejectReason.UNREADABLE and r.detail == "not a regular file (FIFO)"


# --------------------------------------------------------------------------- plain text


def test_txt_headline_becomes_title_and_byline_is_kept(tmp_path: Path):
    path = tmp_path / "story.txt"
    path.write_text(
        "Harbour council approves new flood wall\n\nBy Maria Lopez\nPublished 14 March 2024\n\n" + "\n\n".join(PARAGRAPHS) + "\n",
        encoding="utf-8",
    )
    doc = only(read(path))
    assert isinstance(doc, RawDocument)
    assert doc.origin == str(path)
    assert doc.title == "Harbour council approves new flood wall"
    assert doc.text.startswith("By Maria Lopez\nPublished 14 March 2024\n\n")  # cleaning is not ingest's job
    assert "Harbour council approves" not in doc.text
    assert doc.text.count("\n\n") >= 4  # paragraph breaks kept


@pytest.mark.parametrize(
    "first_line",
    [
        "By Maria Lopez",
        "The council voted on Tuesday to approve the wall.",
        "Will the wall be built?",
        "Here is what we know:",
        " ".join(["word"] * 26),
    ],
)
def test_txt_first_line_that_is_no_headline_stays_in_text(tmp_path: Path, first_line: str):
    path = tmp_path / "s.txt"
    path.write_text(f"{first_line}\n{PARAGRAPHS[0]}\n", encoding="utf-8")
    doc = only(read(path))
    assert doc.title is None
    assert doc.text == f"{first_line}\n{PARAGRAPHS[0]}\n"


CHINESE_PARAGRAPHS = [
    "市议会周二晚间投票批准沿东码头修建新的防洪墙，结束了三年多来一直困扰该镇的争论。",
    "支持者表示，这堵墙将比现在的海滨长廊高出两米，是保护去年冬季风暴中被淹的两百户房屋的唯一现实办法。",
]


def test_a_chinese_first_paragraph_is_no_headline(tmp_path: Path):
    from tasks.stages.ingest import split_headline

    # Chinese has no spaces: a paragraph is one whitespace "word", but dozens of words.
    text = "\n".join(CHINESE_PARAGRAPHS) + "\n"
    assert split_headline(text) == (None, text)  # ends in "。"
    unended = CHINESE_PARAGRAPHS[0][:-1] + "，" + "\n" + CHINESE_PARAGRAPHS[1]
    assert split_headline(unended) == (None, unended)  # 36 words, too many for a headline
    for end in ("！", "？"):
        question = CHINESE_PARAGRAPHS[0][:20] + end + "\n" + CHINESE_PARAGRAPHS[1]
        assert split_headline(question) == (None, question)
    # a Chinese headline is still a headline
    assert split_headline("市议会批准修建防洪墙\n\n" + text) == ("市议会批准修建防洪墙", text)
    path = tmp_path / "zh.txt"
    path.write_text(text, encoding="utf-8")
    doc = only(read(path))
    assert doc.title is None and doc.text == text


def test_txt_single_line_has_no_title(tmp_path: Path):
    path = tmp_path / "s.txt"
    path.write_text("Just one line without a full stop", encoding="utf-8")
    doc = only(read(path))
    assert doc.title is None and doc.text == "Just one line without a full stop"


def test_txt_crlf_newlines_are_normalised(tmp_path: Path):
    path = tmp_path / "s.txt"
    path.write_bytes(b"Headline here\r\n\r\nFirst paragraph.\r\nSecond line.\r\n")
    doc = only(read(path))
    assert doc.title == "Headline here"
    assert doc.text == "First paragraph.\nSecond line.\n"


# --------------------------------------------------------------------------- encodings and binary


def test_cp1252_is_decoded(tmp_path: Path):
    path = tmp_path / "legacy.txt"
    body = "Prices rose \u2013 the council\u2019s \u201cfair\u201d fee is now 5 \u20ac a day.\nSecond paragraph here."
    path.write_bytes(("Old encoding headline\n" + body).encode("cp1252"))
    doc = only(read(path))
    assert isinstance(doc, RawDocument)
    assert doc.title == "Old encoding headline"
    assert doc.text == body
    assert "\u2019" in doc.text and "\u20ac" in doc.text


def test_cyrillic_cp1251_keeps_its_code_page(tmp_path: Path):
    path = tmp_path / "ru.txt"
    text = "Городской совет одобрил строительство новой дамбы вдоль восточной набережной."
    path.write_bytes(text.encode("cp1251"))
    assert only(read(path)).text == text


def test_utf8_bom_is_stripped(tmp_path: Path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfHeadline with BOM\nBody text follows here.")
    doc = only(read(path))
    assert doc.title == "Headline with BOM"
    assert "\ufeff" not in doc.text and "\ufeff" not in doc.title
    assert doc.text == "Body text follows here."


def test_utf8_bom_is_stripped_in_jsonl(tmp_path: Path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"text": "Body"}).encode() + b"\n")
    assert only(read(path)).text == "Body"


def test_utf16_with_nul_bytes_is_text(tmp_path: Path):
    path = tmp_path / "wide.txt"
    path.write_bytes("Wide headline\nWide text body here.".encode("utf-16"))
    doc = only(read(path))
    assert doc.title == "Wide headline" and doc.text == "Wide text body here."


@pytest.mark.parametrize(
    "content, seen",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "PNG"),  # a picture named .txt
        (b"abc\x00\x01\x02\x00\xff\xfe\x00" * 50, "NUL"),
        (b"\x01\x02\x03\x04ab\x05\x06\x07\x08cd\x0e\x0f" * 40, "control characters"),
    ],
)
def test_binary_data_with_a_text_extension_is_not_text(tmp_path: Path, content: bytes, seen: str):
    path = tmp_path / "blob.txt"
    path.write_bytes(content)
    r = only(read(path))
    assert isinstance(r, Rejection)
    assert r.reason is RejectReason.NOT_TEXT and seen in r.detail
    assert r.stage == "ingest" and r.origin == str(path)


@pytest.mark.parametrize("low", [0x00, 0xA0])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_bytes_are_rejected_not_read_as_a_code_page(tmp_path: Path, low: int, seed: int):
    # Every byte 0xA0-0xFF is a cp1252 character: junk decoded to accented-letter soup.
    rng = random.Random(seed)
    path = tmp_path / "junk.txt"
    path.write_bytes(bytes(rng.randrange(low, 256) for _ in range(4096)))
    r = only(read(path))
    assert isinstance(r, Rejection)
    # Bytes from 0x00 hold NULs and controls: binary data. From 0xA0 no code page reads them.
    assert r.reason is (RejectReason.NOT_TEXT if low == 0 else RejectReason.ENCODING)
    assert ("NUL bytes" if low == 0 else "not UTF-8") in r.detail


def test_latin1_text_is_decoded(tmp_path: Path):
    # Only bytes Latin-1 and cp1252 share (no curly quotes or euro sign).
    text = "Die Straße über die Brücke bleibt gesperrt, sagte der Bürgermeister.\nL'été à Noël: élève, naïve, señor, Æble, øl, Þórður."
    path = tmp_path / "latin1.txt"
    path.write_bytes(text.encode("latin-1"))
    assert only(read(path)).text == text


def test_a_stray_nul_is_dropped_and_the_file_kept(tmp_path: Path):
    from tasks.config import CleanConfig
    from tasks.stages.clean import clean_document

    article = " ".join(PARAGRAPHS)
    txt = tmp_path / "nul.txt"
    txt.write_bytes(("Flood wall approved\n\n" + article).replace("Tuesday", "Tues\x00day", 1).encode())
    csv_file = tmp_path / "nul.csv"
    csv_file.write_bytes(('text,title\n"' + article.replace("quay", "qu\x00ay", 1) + '",T\n').encode())
    for path in (txt, csv_file):
        doc = only(read(path))
        assert isinstance(doc, RawDocument), doc
        clean = clean_document(doc, CleanConfig())
        assert "\x00" not in clean.text and clean.text.startswith(PARAGRAPHS[0][:40])
        assert "voted on Tuesday night" in clean.text and "along the eastern quay," in clean.text


def test_many_nuls_are_binary(tmp_path: Path):
    path = tmp_path / "padded.txt"
    path.write_bytes(b"Some text before a crash. " * 20 + b"\x00" * 600)
    r = only(read(path))
    assert r.reason is RejectReason.NOT_TEXT and "600 NUL bytes" in r.detail


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet", ".html", ".json", ".md", ".htm"])
def test_zero_byte_file_of_each_format_is_empty(tmp_path: Path, suffix: str):
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    r = only(read(path))
    assert (r.reason, r.detail, r.origin) == (RejectReason.EMPTY, "zero-byte file", str(path))


def test_utf8_bom_is_stripped_in_csv_and_html(tmp_path: Path):
    csv_file = tmp_path / "bom.csv"
    csv_file.write_bytes(b"\xef\xbb\xbftext,title\nBody of the row.,Row title\n")
    doc = only(read(csv_file))
    assert (doc.text, doc.title) == ("Body of the row.", "Row title")  # 'text' found despite the BOM
    html = tmp_path / "bom.html"
    html.write_bytes(b"\xef\xbb\xbf" + HTML_PAGE.encode("utf-8"))
    doc = only(read(html))
    assert doc.title == "Harbour council approves new flood wall"
    assert PARAGRAPHS[0] in doc.text and "\ufeff" not in doc.text + doc.title


def _passwd_lines() -> list[str]:
    try:
        return [line for line in Path("/etc/passwd").read_text().splitlines() if len(line) > 8]
    except OSError:
        return []


def test_html_external_entities_never_leak_files(tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-MARKER-7f3a")
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY leak "DTD-MARKER-91c2">')
    article = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    pages = {
        "xxe_passwd.html": f'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><html><body><article>{article}<p>&xxe;</p></article></body></html>',
        "xxe_secret.html": f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>'
        f"<html><body><article>{article}<p>&xxe;</p></article></body></html>",
        "dtd_passwd.html": f'<!DOCTYPE html SYSTEM "file:///etc/passwd"><html><body><article>{article}</article></body></html>',
        "dtd_entity.html": f'<!DOCTYPE html SYSTEM "{dtd.as_uri()}"><html><body><article>{article}<p>&leak;</p></article></body></html>',
    }
    for name, page in pages.items():
        path = tmp_path / name
        path.write_text(page)
        items = read(path)
        seen = repr(items)
        for leaked in ("SECRET-MARKER-7f3a", "DTD-MARKER-91c2", *_passwd_lines()):
            assert leaked not in seen, (name, leaked)
        if name.startswith("xxe"):
            assert only(items).reason is RejectReason.PARSE_ERROR
        else:  # an outside DTD is never fetched: the article itself is still read
            assert PARAGRAPHS[0] in only(items).text


def test_empty_and_whitespace_files(tmp_path: Path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    blank = tmp_path / "blank.md"
    blank.write_text("  \n\t\n  ")
    blank_jsonl = tmp_path / "blank.jsonl"
    blank_jsonl.write_text("\n\n   \n")
    for path in (empty, blank, blank_jsonl):
        r = only(read(path))
        assert r.reason is RejectReason.EMPTY, path
        assert r.origin == str(path)


def test_missing_file_is_unreadable(tmp_path: Path):
    path = tmp_path / "gone.txt"
    r = only(read(path))
    assert r.reason is RejectReason.UNREADABLE
    assert "No such file" in r.detail and r.stage == "ingest"


def test_too_big_file_is_not_read(tmp_path: Path):
    path = tmp_path / "big.txt"
    path.write_text("x" * 2000)
    r = only(read(path, InputConfig(max_file_bytes=1000)))
    assert r.reason is RejectReason.TOO_LONG
    assert "2000" in r.detail


def test_unsupported_extension_in_reader(tmp_path: Path):
    path = tmp_path / "doc.rtf"
    path.write_text("{\\rtf1 hello}")
    assert only(read(path)).reason is RejectReason.UNSUPPORTED


# --------------------------------------------------------------------------- markdown


def test_markdown_title_and_syntax_stripped(tmp_path: Path):
    path = tmp_path / "story.md"
    path.write_text(
        "# Harbour council approves *new* flood wall\n\n"
        "The **council** voted on _Tuesday_ to approve the [flood wall](https://ex.org/wall).\n"
        "![aerial photo](img/quay.png)\n\n"
        "## Reaction\n\n"
        "Shop owners on the quay were *not* pleased, said `snake_case_name`.\n\n"
        "```python\nprint('kept')\n```\n\n"
        "- first point\n- second point\n",
        encoding="utf-8",
    )
    doc = only(read(path))
    assert doc.title == "Harbour council approves new flood wall"
    assert doc.text == (
        "The council voted on Tuesday to approve the flood wall.\n\n"
        "Reaction\n\n"
        "Shop owners on the quay were not pleased, said snake_case_name.\n\n"
        "print('kept')\n\n"
        "first point\nsecond point"
    )
    for syntax in ("#", "**", "](", "![", "```", "https://"):
        assert syntax not in doc.text


def test_markdown_front_matter_becomes_metadata(tmp_path: Path):
    path = tmp_path / "fm.md"
    path.write_text(
        '---\ntitle: "Flood wall approved"\nauthor: Maria Lopez, Tom Baker\ndate: 2024-03-14\n---\nThe council voted on Tuesday.\n',
        encoding="utf-8",
    )
    doc = only(read(path))
    assert doc.title == "Flood wall approved"
    assert doc.authors == ["Maria Lopez", "Tom Baker"]
    assert doc.published == "2024-03-14"
    assert doc.text == "The council voted on Tuesday."


# --------------------------------------------------------------------------- HTML


def test_html_main_text_and_metadata(tmp_path: Path):
    path = tmp_path / "page.html"
    path.write_text(HTML_PAGE, encoding="utf-8")
    doc = only(read(path))
    assert isinstance(doc, RawDocument)
    for paragraph in PARAGRAPHS:
        assert paragraph in doc.text
    for boilerplate in ("Subscribe today", "Sport section", "Celebrity chef", "Copyright", "All rights reserved"):
        assert boilerplate not in doc.text
    assert doc.title == "Harbour council approves new flood wall"
    assert not doc.text.startswith(doc.title)  # headline handed over as title, not body
    assert doc.authors == ["Maria Lopez", "Tom Baker"]
    assert doc.published == "2024-03-14"
    assert doc.source == "The Coastal Ledger"
    assert doc.url == "https://ledger.example/news/flood-wall"


def test_html_without_article_body(tmp_path: Path):
    path = tmp_path / "nav.htm"
    path.write_text(
        "<html><head><title>Site</title></head><body><nav><ul><li><a href='/'>Home</a></li>"
        "<li><a href='/s'>Sport</a></li></ul></nav>"
        "<footer><p>Copyright 2024 Example News. All rights reserved.</p></footer></body></html>"
    )
    r = only(read(path))
    assert r.reason is RejectReason.NOT_TEXT and r.detail == "no article body found"


def test_html_entity_declarations_are_refused(tmp_path: Path):
    path = tmp_path / "lol.html"
    path.write_text(
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><html><body><article><p>&lol2;</p></article></body></html>'
    )
    r = only(read(path))
    assert r.reason is RejectReason.PARSE_ERROR
    assert r.detail == "DTD entity declarations are not allowed"


# --------------------------------------------------------------------------- JSON lines / JSON


def test_jsonl_good_lines_kept_bad_line_rejected(tmp_path: Path):
    path = tmp_path / "feed.jsonl"
    lines = [
        json.dumps(
            {
                "text": "First article body.",
                "title": "One",
                "authors": ["Ann Lee", " Bo Chan "],
                "published": "2024-03-14T09:30:00+00:00",
                "source": "Ledger",
                "url": "https://x/1",
            }
        ),
        "",
        '{"text": "broken", "title": ',
        json.dumps({"text": "Third article body.", "authors": "Ann Lee; Bo Chan", "published": "March 14, 2024"}),
        json.dumps({"title": "no text here"}),
        json.dumps({"text": "   "}),
        json.dumps({"text": 42}),
        json.dumps(["not", "an", "object"]),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    items = read(path)
    assert len(items) == 7  # the blank line is no record

    good = docs(items)
    assert [d.origin for d in good] == [f"{path}:1", f"{path}:4"]
    assert good[0].title == "One" and good[0].authors == ["Ann Lee", "Bo Chan"]
    assert good[0].published == "2024-03-14T09:30:00+00:00"
    assert good[0].source == "Ledger" and good[0].url == "https://x/1"
    assert good[1].authors == ["Ann Lee", "Bo Chan"] and good[1].published == "2024-03-14"
    assert good[1].title is None

    bad = {r.origin: r for r in rejections(items)}
    assert bad[f"{path}:3"].reason is RejectReason.PARSE_ERROR
    assert "line 3" in bad[f"{path}:3"].detail
    assert bad[f"{path}:5"].reason is RejectReason.MISSING_FIELD and "'text'" in bad[f"{path}:5"].detail
    assert bad[f"{path}:6"].reason is RejectReason.EMPTY
    assert bad[f"{path}:7"].reason is RejectReason.MISSING_FIELD and "int" in bad[f"{path}:7"].detail
    assert bad[f"{path}:8"].reason is RejectReason.PARSE_ERROR


def test_jsonl_is_lazy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "feed.jsonl"
    path.write_text(json.dumps({"text": "one"}) + "\n" + json.dumps({"text": "two"}) + "\n")
    calls = []
    real_loads = json.loads
    monkeypatch.setattr("tasks.stages.ingest.readers.json.loads", lambda text: calls.append(text) or real_loads(text))
    stream = read_records(path, CONFIG)
    assert next(stream).text == "one"
    assert len(calls) == 1  # the second line is not parsed until it is asked for


def test_json_object_and_array(tmp_path: Path):
    single = tmp_path / "one.json"
    single.write_text(json.dumps({"body": "Only article.", "headline": "Solo"}))
    config = InputConfig(columns=TableColumns(text="body", title="headline"))
    doc = only(read(single, config))
    assert doc.origin == str(single) and doc.text == "Only article." and doc.title == "Solo"

    many = tmp_path / "many.json"
    many.write_text(json.dumps([{"text": "A body."}, {"text": ""}, "oops", {"text": "C body."}]))
    items = read(many)
    assert [(i.origin, type(i).__name__) for i in items] == [
        (f"{many}#0", "RawDocument"),
        (f"{many}#1", "Rejection"),
        (f"{many}#2", "Rejection"),
        (f"{many}#3", "RawDocument"),
    ]
    assert items[1].reason is RejectReason.EMPTY and items[2].reason is RejectReason.PARSE_ERROR


def test_malformed_json(tmp_path: Path):
    path = tmp_path / "bad.json"
    path.write_text('[{"text": "a"},')
    r = only(read(path))
    assert r.reason is RejectReason.PARSE_ERROR and "line 1" in r.detail


# --------------------------------------------------------------------------- CSV


def test_csv_rows(tmp_path: Path):
    path = tmp_path / "rows.csv"
    path.write_text(
        'text,title,authors,published\n"First body, with a comma.",T1,"Ann Lee, Bo Chan",2024-03-14\n,T2,,\n"Third body\nacross lines.",T3,,not a date\n',
        encoding="utf-8",
    )
    items = read(path)
    assert [i.origin for i in items] == [f"{path}#0", f"{path}#1", f"{path}#2"]
    assert items[0].text == "First body, with a comma." and items[0].authors == ["Ann Lee", "Bo Chan"]
    assert items[0].published == "2024-03-14"
    assert items[1].reason is RejectReason.EMPTY
    assert items[2].text == "Third body\nacross lines." and items[2].published is None


def test_csv_without_text_column(tmp_path: Path):
    path = tmp_path / "rows.csv"
    path.write_text("headline,body\nA,B\nC,D\n")
    r = only(read(path))
    assert r.reason is RejectReason.MISSING_FIELD
    assert r.origin == str(path)
    assert "headline" in r.detail and "body" in r.detail


def test_csv_header_only_is_empty(tmp_path: Path):
    path = tmp_path / "rows.csv"
    path.write_text("text,title\n")
    assert only(read(path)).reason is RejectReason.EMPTY


# --------------------------------------------------------------------------- Parquet


def test_parquet_rows_streamed_with_types(tmp_path: Path):
    path = tmp_path / "rows.parquet"
    table = pa.table(
        {
            "text": ["Body one.", None, "Body three."],
            "title": ["T1", "T2", None],
            "authors": [["Ann Lee"], [], ["Bo Chan", "Cy Dee"]],
            "published": [datetime(2024, 3, 14, 9, 30, tzinfo=UTC), None, None],
            "extra": [1, 2, 3],
        }
    )
    pq.write_table(table, path, row_group_size=1)
    items = read(path)
    assert [i.origin for i in items] == [f"{path}#0", f"{path}#1", f"{path}#2"]
    assert items[0].text == "Body one." and items[0].title == "T1" and items[0].authors == ["Ann Lee"]
    assert items[0].published == "2024-03-14T09:30:00+00:00"
    assert items[1].reason is RejectReason.EMPTY
    assert items[2].authors == ["Bo Chan", "Cy Dee"] and items[2].title is None


def test_parquet_int_text_column(tmp_path: Path):
    path = tmp_path / "ints.parquet"
    pq.write_table(pa.table({"text": [1, 2, 3]}), path)
    r = only(read(path))
    assert r.reason is RejectReason.PARSE_ERROR and "int64" in r.detail


def test_parquet_missing_text_column_and_corrupt(tmp_path: Path):
    path = tmp_path / "cols.parquet"
    pq.write_table(pa.table({"body": ["x"]}), path)
    r = only(read(path))
    assert r.reason is RejectReason.MISSING_FIELD and "body" in r.detail

    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"this is not parquet at all")
    assert only(read(corrupt)).reason is RejectReason.PARSE_ERROR


# --------------------------------------------------------------------------- helpers


def test_split_authors():
    assert split_authors("A; B") == ["A", "B"]
    assert split_authors("Ann Lee, Bo Chan and Cy Dee") == ["Ann Lee", "Bo Chan", "Cy Dee"]
    assert split_authors("Doe, Jane; Roe, Rick") == ["Doe, Jane", "Roe, Rick"]
    assert split_authors("By Ann Lee") == ["Ann Lee"]
    assert split_authors(None) == [] and split_authors(["", " X "]) == ["X"]


def test_normalise_date():
    assert normalise_date(date(2024, 3, 14)) == "2024-03-14"
    assert normalise_date(datetime(2024, 3, 14, 9, 30)) == "2024-03-14T09:30:00"
    assert normalise_date("2024-03-14T09:30:00Z") == "2024-03-14T09:30:00+00:00"
    assert normalise_date("14 March 2024") == "2024-03-14"
    assert normalise_date("Tuesday") is None
    assert normalise_date("garbage 2024 xx") is None
    assert normalise_date(1710408600) is None


def test_file_failing_mid_read_is_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "locked.txt"
    path.write_text("Headline\nBody text.")

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", refuse)  # works as root too, unlike chmod
    r = only(read(path))
    assert r.reason is RejectReason.UNREADABLE and "Permission denied" in r.detail


def test_folder_is_not_a_record_file(tmp_path: Path):
    path = tmp_path / "folder.txt"
    path.mkdir()
    r = only(read(path))
    assert r.reason is RejectReason.UNREADABLE and r.detail == "not a regular file (folder)"


def test_excluded_names_are_not_read(tmp_path):
    from tasks.stages.ingest import without_excluded

    files = [tmp_path / "README.md", tmp_path / "story.md", tmp_path / "LICENSE.txt"]
    assert without_excluded(files, ["README*", "LICENSE*"]) == [tmp_path / "story.md"]


def test_ingest_files_cuts_bounded_shards_and_carries_rejections(tmp_path: Path):
    from dataclasses import fields

    from tasks.dataset.staging import read_shard
    from tasks.records import RAW_SCHEMA
    from tasks.stages.ingest import GROUP_STRIDE, ingest_files

    feed = tmp_path / "feed.jsonl"
    feed.write_text("".join(json.dumps({"text": f"article {i}"}) + "\n" for i in range(5)) + "{broken\n")
    (tmp_path / "empty.txt").write_text("")
    refs = ingest_files([str(feed), str(tmp_path / "empty.txt")], CONFIG, 2, str(tmp_path / "staging"), group=3)
    assert [r.index for r in refs] == [3 * GROUP_STRIDE + k for k in range(3)]
    assert [r.rows for r in refs] == [2, 2, 1]
    assert sum(r.rows + r.rejected_rows for r in refs) == 7  # 5 articles, a broken line, an empty file
    assert [read_shard(r).column("text").to_pylist() for r in refs] == [["article 0", "article 1"], ["article 2", "article 3"], ["article 4"]]
    reasons = sorted(pq.read_table(refs[-1].rejected_path).column("reason").to_pylist())
    assert reasons == ["empty", "parse_error"]
    assert RAW_SCHEMA.names == [f.name for f in fields(RawDocument)]
