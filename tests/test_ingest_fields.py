"""The shared field normalisers (pipeline/ingest/fields.py) and the tag-line block reader (tagged.py).

The readers' own tests (test_ingest_tagged.py, test_ingest_tabular.py) check these through real
exports; here each normaliser is pinned on its own, with hypothesis properties where they are natural.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import InputFileError
from pipeline.ingest import open_source, read_file
from pipeline.ingest.fields import (
    abstract_text,
    bare_doi,
    doi_in_text,
    is_issn_list,
    issn_from,
    join_lines,
    page_range,
    split_authors,
    split_keywords,
    split_list,
    unique,
    year_from,
)
from pipeline.ingest.tagged import EVERY_TAG, TaggedRecord, TagLayout, numbered_lines, tagged_records

TAGGED_DATA = Path(__file__).resolve().parent / "data" / "ingest_tagged"
PROPERTY = settings(max_examples=200, deadline=None)

# Anything a reader may hand over: text with digits and date punctuation, numbers, None, bools.
_DATE_TEXT = st.text(alphabet="0123456789 /-.,:JanFebDc[]()", max_size=24)
_ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), _DATE_TEXT, st.text())
_DOI = st.builds(
    lambda registrant, suffix: f"10.{registrant}/{suffix}",
    st.integers(1000, 999_999_999),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-/()", min_size=1, max_size=30).filter(
        lambda s: s[-1] not in ".,;)]" and not s.startswith("/")
    ),
)


# --- year_from -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("2019//",), 2019),
        (("1 Jan.-Feb. 2019",), 2019),
        (("20151207",), 2015),  # a compact date
        (("Jun",), None),
        (("123456",), None),  # six digits: not a year
        (("", None, "2001"), 2001),  # empty values are skipped
        (("no date", "2003 Mar"), 2003),  # the first value with a year wins
        ((2020,), 2020),  # JSON gives numbers
        ((0, "2019"), 2019),  # an out-of-range number is not a year; the next value is tried
        ((True,), None),  # a bool is not a number here
        ((1499,), None),
        (("1499 or 1500",), 1500),
    ],
)
def test_year_from(values: tuple[object, ...], expected: int | None) -> None:
    assert year_from(*values) == expected


@PROPERTY
@given(st.lists(_ANY_VALUE, max_size=4))
def test_year_from_never_raises_and_stays_in_range(values: list[object]) -> None:
    year = year_from(*values)
    assert year is None or 1500 <= year <= 2099


@PROPERTY
@given(st.integers(1500, 2099), st.sampled_from(["{}", "{}//", "Jan {}", "{}-03-01", "({})", "{}0131"]))
def test_year_from_finds_every_year_in_its_usual_spellings(year: int, template: str) -> None:
    assert year_from(template.format(year)) == year
    assert year_from(str(year)) == year_from(year) == year


# --- DOIs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://dx.doi.org/10.1002/cpp.2398", "10.1002/cpp.2398"),
        ("https://doi.org/10.1/ABC", "10.1/ABC"),
        ("doi: 10.5/x", "10.5/x"),
        ("DOI 10.5/x", "10.5/x"),
        ("10.1016/j.gene.2015.10.064 [doi]", "10.1016/j.gene.2015.10.064"),
        ("  10.1/x  ", "10.1/x"),
        ("not a doi", "not a doi"),  # as given: the cleaning stage judges it
        ("", ""),
    ],
)
def test_bare_doi(text: str, expected: str) -> None:
    assert bare_doi(text) == expected


@PROPERTY
@given(st.one_of(st.text(), _DOI))
def test_bare_doi_is_idempotent(text: str) -> None:
    once = bare_doi(text)
    assert bare_doi(once) == once


@PROPERTY
@given(_DOI, st.sampled_from(["", "https://doi.org/", "http://dx.doi.org/", "doi:", "doi: ", "DOI "]))
def test_bare_doi_removes_any_prefix(doi: str, prefix: str) -> None:
    assert bare_doi(prefix + doi) == doi
    assert bare_doi(f"{doi} [doi]") == doi


def test_doi_in_text() -> None:
    link = "https://x.org/record.uri?eid=2&doi=10.15598%2faeee.v16i3.2698&partnerID=40"
    assert doi_in_text(link) == "10.15598/aeee.v16i3.2698"
    assert doi_in_text("see https://doi.org/10.1234/abc.") == "10.1234/abc"  # trailing punctuation is not the DOI's
    assert doi_in_text("no identifier here") == ""


@PROPERTY
@given(_DOI)
def test_doi_in_text_finds_a_doi_in_a_link(doi: str) -> None:
    assert doi_in_text(f"https://doi.org/{doi}") == doi
    assert doi_in_text(doi) == doi


def test_real_dois_are_already_bare() -> None:
    """Every DOI the readers take from the real exports is a fixed point of bare_doi and looks like a DOI."""
    dois = [
        record.doi
        for name in ("asreview_ris_issue_1099_scopus.txt", "biopython_pubmed_result2.txt")
        for record in read_file(TAGGED_DATA / name)
        if record.doi
    ]
    assert len(dois) >= 5
    assert all(bare_doi(doi) == doi and re.match(r"10\.\d{4,9}/\S+$", doi) for doi in dois)


# --- pages, ISSN ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        ("42", "47", "42-47"),
        ("42", "", "42"),
        ("", "47", "47"),
        ("42", "42", "42"),
        ("42-47", "47", "42-47"),  # already a range
        (" e123 ", "", "e123"),
        ("No", "Specified", ""),  # Ovid's placeholder split over SP and EP
        ("n/a", "", ""),
        ("", "", ""),
    ],
)
def test_page_range(first: str, last: str, expected: str) -> None:
    assert page_range(first, last) == expected


@PROPERTY
@given(st.text(max_size=12), st.text(max_size=12))
def test_page_range_never_raises_and_keeps_a_given_range(first: str, last: str) -> None:
    pages = page_range(first, last)
    assert pages == pages.strip()
    if "-" in first.strip():
        assert pages == first.strip()


def test_issn_from() -> None:
    assert issn_from(["978-131750096-4 (ISBN); 978-113888701-5 (ISBN)", "1536-5964 0025-7974"]) == "1536-5964"
    assert issn_from(["03064530 (ISSN)"]) == "03064530"
    assert issn_from(["0894-9867, 0894-9867"]) == "0894-9867"
    assert issn_from(["1234-567X (Electronic)"]) == "1234-567X"
    assert issn_from(["978-0-12-345678-9"]) == ""
    assert issn_from([]) == ""


def test_is_issn_list() -> None:
    assert is_issn_list("1234-5678")
    assert is_issn_list(" 1234-5678, 2345-678X ")
    assert is_issn_list("12345678; 2345-6789")
    assert not is_issn_list("978-0-12-345678-9")
    assert not is_issn_list("1234-5678 (Print)")
    assert not is_issn_list("")


# --- abstracts, lines ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "placeholder",
    [
        "[No abstract available]",
        " [no abstract available] ",
        "No abstract available.",
        "No abstract is available",
        "NA",
        "n/a",
    ],
)
def test_abstract_placeholders_give_no_abstract(placeholder: str) -> None:
    assert abstract_text(placeholder) == ""


def test_abstract_text_keeps_real_text_stripped() -> None:
    assert abstract_text("  NA values were imputed.  ") == "NA values were imputed."
    assert abstract_text("No abstract available for the pilot; results follow.") == (
        "No abstract available for the pilot; results follow."
    )


@PROPERTY
@given(st.text())
def test_abstract_text_is_idempotent(text: str) -> None:
    once = abstract_text(text)
    assert abstract_text(once) == once
    assert once in ("", text.strip())


def test_join_lines() -> None:
    assert join_lines(["  first line", "", "second  ", "   "]) == "first line second"
    assert join_lines([]) == ""


# --- lists ---------------------------------------------------------------------------------------


def test_split_list_and_unique() -> None:
    assert split_list(" a; b;; c ;", ";") == ["a", "b", "c"]
    assert split_list("", ",") == []
    assert unique(["Education", "Schools", "Education", "", "schools"]) == ["Education", "Schools", "schools"]


@PROPERTY
@given(st.lists(st.text(max_size=5)))
def test_unique_keeps_first_places_once(items: list[str]) -> None:
    result = unique(items)
    assert len(result) == len(set(result))
    assert set(result) == {item for item in items if item}
    assert result == sorted(result, key=items.index)


def test_split_keywords_brackets_and_separators() -> None:
    assert split_keywords("a; b;; c ") == ["a", "b", "c"]
    assert split_keywords("cyst (diagnosis, surgery), adult") == ["cyst (diagnosis, surgery)", "adult"]
    assert split_keywords("x, y; z") == ["x, y", "z"]  # ';' present: commas stay inside keywords


@PROPERTY
@given(st.text(alphabet="ab ;,()[]", max_size=30))
def test_split_keywords_gives_stripped_non_empty_parts(text: str) -> None:
    keywords = split_keywords(text)
    assert all(keyword and keyword == keyword.strip() and keyword in text for keyword in keywords)


def test_split_authors_forms() -> None:
    assert split_authors("Smith, J; Doe, K") == ["Smith, J", "Doe, K"]
    assert split_authors("Craig C., Mazerolle M.J.") == ["Craig C.", "Mazerolle M.J."]
    assert split_authors("Rotter, Carina") == ["Rotter, Carina"]
    assert split_authors("[No author name available]") == []
    assert split_authors("Smith, J (j.smith@x.org); Doe, K") == ["Smith, J", "Doe, K"]


@PROPERTY
@given(st.text(alphabet="AbcD., ;-()@and", max_size=40))
def test_split_authors_never_raises_and_gives_clean_names(text: str) -> None:
    names = split_authors(text)
    assert all(name and name == name.strip() and ";" not in name for name in names)


# --- tagged.py -----------------------------------------------------------------------------------

_LAYOUT = TagLayout(
    label="Test",
    tag_line=re.compile(r"^([A-Z]{2}) - ?(.*)$"),
    start_tag="ST",
    end_tag="EN",
    end_line="EN - ",
    title_tags=("TI",),
)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "export.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_tagged_record_access() -> None:
    record = TaggedRecord(start_line=1)
    record.add("AU", "Smith, J")
    record.add("TI", "A title")
    record.extend("  wrapped")
    record.add("AU", "")
    record.extend("Doe, K")
    record.add("XX", "kept")
    assert record.first("T1", "TI") == "A title wrapped"
    assert record.texts("AU") == ["Smith, J", "Doe, K"]
    assert record.items("TI", "AU") == ["Smith, J", "A title", "wrapped", "Doe, K"]  # file order
    assert record.unmapped({"AU"}) == {"TI": ["A title wrapped"], "XX": ["kept"]}
    assert record.unmapped({"AU"}, per_line=EVERY_TAG) == {"TI": ["A title", "wrapped"], "XX": ["kept"]}


def test_numbered_lines_strips_boms_and_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    path.write_bytes(b"\xef\xbb\xbfST - x  \r\nTI - y\r\rEN - \n")
    assert list(numbered_lines(open_source(path))) == [(1, "ST - x"), (2, "TI - y"), (3, ""), (4, "EN -")]


def test_tagged_records_blocks_continuations_and_preamble(tmp_path: Path) -> None:
    text = (
        "preamble\nTI - before any record\nST - one\nTI - First\n  title\nEN - \nstray\nST - two\nTI - Second\nEN -\n"
    )
    records = list(tagged_records(open_source(_write(tmp_path, text)), _LAYOUT))
    assert [(r.start_line, r.first("TI"), r.closed) for r in records] == [(3, "First title", True), (8, "Second", True)]
    assert "EN" not in records[0].unmapped(())  # the end tag is not a field


def test_tagged_records_keeps_an_unclosed_record_with_a_title(tmp_path: Path) -> None:
    records = list(
        tagged_records(open_source(_write(tmp_path, "ST - a\nTI - Kept\nST - b\nTI - Too\nEN - \n")), _LAYOUT)
    )
    assert [(r.first("TI"), r.closed) for r in records] == [("Kept", False), ("Too", True)]


def test_tagged_records_names_the_line_of_a_cut_record(tmp_path: Path) -> None:
    path = _write(tmp_path, "ST - a\nTI - Fine\nEN - \n\nST - b\nAU - Smith\n")
    with pytest.raises(InputFileError) as caught:
        list(tagged_records(open_source(path), _LAYOUT))
    message = str(caught.value)
    assert "line 5" in message and "no title and no 'EN -' end line" in message and "'EN - '" in message


def test_tagged_records_blank_line_separated_layout(tmp_path: Path) -> None:
    layout = TagLayout(
        label="Blank", tag_line=re.compile(r"^([A-Z]{2,4}) *- ?(.*)$"), start_tag="ID", blank_line_separates=True
    )
    text = "ID - 1\nTI - One\n      more\n\nTI - Two, no id\n\nID - 3\nID - 4\n"
    records = list(tagged_records(open_source(_write(tmp_path, text)), layout))
    assert [(r.first("ID"), r.first("TI")) for r in records] == [
        ("1", "One more"),
        ("", "Two, no id"),
        ("3", ""),
        ("4", ""),
    ]
