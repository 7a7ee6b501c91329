"""The plain-text abstract reader on the real seeds (tests/data/clean, see its README.md)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from pipeline.errors import InputFileError
from pipeline.ingest import detect_format, open_source, plaintext, read_file

DATA = Path(__file__).resolve().parent / "data" / "clean"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _seed(prefix: str) -> Path:
    return next(DATA.glob(f"{prefix}_*.txt"))


def _read(path: Path) -> list:
    return list(plaintext.read(open_source(path)))


def test_seed_000_is_one_labelled_abstract_with_keywords():
    (record,) = _read(_seed("000"))
    assert record.id == "1" and record.position == 1 and record.source_format == "text"
    assert record.source_file == _seed("000").name
    assert record.title == ""
    assert record.abstract.startswith("The School to School Collaboration Approach¢ and schools’")
    assert record.abstract.endswith("implementing School to School Collaboration Approach in Egypt.")
    assert record.abstract.count("\n\n") == 2  # three paragraphs, hard-wrapped lines joined
    assert "Abstract" not in record.abstract and "Keywords" not in record.abstract
    assert "each other« reinforces the focus on local solutions and provides a means" in record.abstract
    assert record.keywords == ["School to School Collaboration", "school improvement"]
    assert record.extra == {"line": "3"}


def test_seed_001_is_one_abstract_per_line():
    records = _read(_seed("001"))
    assert len(records) == 34
    assert [record.id for record in records] == [str(n) for n in range(1, 35)]
    assert len(records[0].abstract) > 700
    assert records[0].abstract.endswith("school‐to‐school c...")
    assert all(record.abstract.endswith("...") for record in records)
    assert records[4].abstract == (
        "In recent years school-to-school collaboration in the English context has been promoted by a myriad ..."
    )
    assert records[33].extra["line"] == "34"


def test_seed_002_drops_the_scite_blurb():
    records = _read(_seed("002"))
    assert len(records) == 3
    assert records[0].abstract.startswith("In recent years, networking and collaboration have become")
    assert records[2].abstract.endswith("contribute to the raising of expectations.")
    assert not any("scite" in record.abstract for record in records)


def test_seed_004_is_one_companion_document():
    (record,) = _read(_seed("004"))
    assert record.title == (
        "Context and Implications Document for: School-to-school collaboration in England: "
        "A configurative review of the empirical evidence"
    )
    assert record.authors == ["Armstrong, Paul Wilfred", "Brown, Chris", "Chapman, Christopher"]
    assert record.year == 2020
    assert record.doi == ""  # the DOI is the accompanied article's, not this document's
    assert record.extra["related_doi"] == "10.1002/rev3.3248"
    assert record.extra["related_citation"].startswith("This guide accompanies the following article: Armstrong")
    assert (
        record.extra["affiliations"] == "University of Manchester, UK; Durham University, UK; University of Glasgow, UK"
    )
    assert record.abstract.startswith("In recent years school-to-school collaboration in the English context")
    assert record.abstract.endswith("implications of our findings for educational policy and practice.")
    implications = record.extra["section: Implications for Policy"]
    assert implications.startswith("The policy discourse is awash with aspirational statements")
    assert "incentivising schools to collaborate is not enough" in implications
    assert "Authors' Introduction" not in record.abstract


def test_read_file_detects_the_seeds_as_plain_text_and_assigns_record_ids():
    counts = {}
    for prefix in ("000", "001", "002", "004"):
        path = _seed(prefix)
        assert detect_format(open_source(path)) is plaintext
        records = list(read_file(path))
        counts[prefix] = len(records)
        assert len({record.record_id for record in records}) == len(records)
    assert counts == {"000": 1, "001": 34, "002": 3, "004": 1}


def test_looks_like_accepts_the_seeds_and_no_other_real_format():
    assert [plaintext.looks_like(open_source(_seed(p)).head) for p in ("000", "001", "002", "004")] == [True] * 4
    assert not plaintext.looks_like(open_source(_seed("003")).head)  # the JSON record
    others = [
        path
        for folder in ("exports", "api-responses", "dedup-benchmarks")
        for path in sorted((SHARED / folder).rglob("*"))
        if path.is_file()
    ]
    assert len(others) > 100
    claimed = [path.name for path in others if plaintext.looks_like(open_source(path).head)]
    assert claimed == []


def test_wrapped_paragraphs_headings_and_hyphenated_line_ends(tmp_path):
    path = tmp_path / "abstracts.txt"
    path.write_text(
        "Networks of schools\n\n"
        "School-to-school collaboration is promoted by many\n"
        "policy initiatives in England, and school-\n"
        "to-school support is common\n"
        "\n\n"
        "A second abstract about trust between schools\n"
        "and the brokerage of local authorities\n"
        "Keywords: trust; brokerage\n",
        encoding="utf-8",
    )
    first, second = _read(path)
    assert first.title == "Networks of schools"
    assert first.abstract == (
        "School-to-school collaboration is promoted by many policy initiatives in England, "
        "and school-to-school support is common"
    )
    assert second.title == ""
    assert second.abstract.startswith("A second abstract about trust between schools and the brokerage")
    assert second.keywords == ["trust", "brokerage"]  # a 'Keywords:' line needs no blank line before it
    assert second.id == "2" and second.extra["line"] == "8"


def test_a_long_block_decides_its_layout_on_its_first_lines(tmp_path):
    per_line = tmp_path / "per_line.txt"
    per_line.write_text("".join(f"Abstract number {n} about schools working together.\n" for n in range(60)))
    assert len(_read(per_line)) == 60
    wrapped = tmp_path / "wrapped.txt"
    wrapped.write_text("".join(f"line {n} of one long wrapped abstract about schools\n" for n in range(60)))
    (record,) = _read(wrapped)
    assert record.abstract.startswith("line 0 of one long") and record.abstract.endswith(
        "line 59 of one long wrapped abstract about schools"
    )


def test_a_file_of_only_a_blurb_has_no_records(tmp_path):
    path = tmp_path / "blurb.txt"
    path.write_text(_seed("002").read_text(encoding="utf-8").splitlines()[3] + "\n", encoding="utf-8")
    with pytest.raises(InputFileError, match="no records were found"):
        list(read_file(path))


def test_a_paragraph_too_long_to_be_an_abstract_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(plaintext, "MAX_PARAGRAPH_CHARS", 5_000)
    path = tmp_path / "huge.txt"
    path.write_text("First abstract about schools.\n\n" + "words without a break\n" * 400, encoding="utf-8")
    with pytest.raises(InputFileError) as caught:
        _read(path)
    message = str(caught.value)
    assert message.startswith(f"{path}, line 3: a paragraph longer than 5,000 characters")
    assert "separate abstracts with blank lines" in message
    one_line = tmp_path / "one_line.txt"
    one_line.write_text("x " * 4_000, encoding="utf-8")
    with pytest.raises(InputFileError, match=r"line 1: a paragraph longer"):
        _read(one_line)


def test_a_large_file_streams(tmp_path):
    """3 MB of abstracts, one per line: the reader's memory stays far below the file's size."""
    line = _read(_seed("002"))[1].abstract + "\n"
    path = tmp_path / "large.txt"
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(3_000_000 // len(line)):
            handle.write(line)
    size = path.stat().st_size
    source = open_source(path)
    tracemalloc.start()
    try:
        count = sum(1 for _ in plaintext.read(source))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 3_000_000 // len(line)
    assert peak < size / 10


def test_title_authors_abstract_entries_are_a_list_not_one_document(tmp_path):
    path = tmp_path / "entries.txt"
    path.write_text(
        "School networks in Wales\n\nJane Smith and Tom O'Brien\n\n"
        "We studied how schools in Wales work together and what they gain from it.\n\n"
        "Trust between schools\n\nA. B. Jones, Mary-Ann Lee\n\n"
        "Trust is built slowly between schools that share staff and students.\n",
        encoding="utf-8",
    )
    first, second = _read(path)
    assert (first.title, first.authors) == ("School networks in Wales", ["Smith, Jane", "O'Brien, Tom"])
    assert (second.title, second.authors) == ("Trust between schools", ["Jones, A. B.", "Lee, Mary-Ann"])
    assert second.abstract.startswith("Trust is built slowly")
