"""Tabular and structured readers (CSV/TSV/WoS tab-delimited, BibTeX, EndNote XML, JSON) on real files.

Small permissive files are copied under tests/data/ingest_tabular (see its README); the others are
read from ../shared beside the clone.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from pipeline.errors import ConfigError, InputFileError
from pipeline.ingest import bibtex, detect_format, endnote_xml, json_records, open_source, read_file, tabular
from pipeline.ingest.fields import split_authors, split_keywords
from pipeline.ingest.tabular import load_aliases
from pipeline.records import Record

HERE = Path(__file__).resolve().parent
COPIED = HERE / "data" / "ingest_tabular"
SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SHARED / "data"
EXPORTS = DATA / "exports"
BENCH = DATA / "dedup-benchmarks"
SEED_003 = SHARED / "seeds" / "003_f5b9f6be0458ced0.txt"

# (folder, file): (records, records with an abstract), from shared/data/MANIFEST.md.
MANIFEST = {
    ("csv", "asreview_embase.csv"): (6, 6),
    ("csv", "asysd_zotero_export.csv"): (1233, 1128),
    ("csv", "litsearchr_borealis_scopus.csv"): (137, 137),
    ("csv", "litsearchr_scopus.csv"): (692, 692),
    ("csv", "litstudy_ieee.csv"): (10, 10),
    ("csv", "litstudy_scopus.csv"): (58, 57),
    ("csv", "litstudy_springer.csv"): (18, 0),
    ("csv", "metaknowledge_scopus_testing.csv"): (220, 204),
    ("bibtex", "asysd_zotero_export.bib"): (1000, 776),
    ("bibtex", "litsearchr_borealis_WoS_corecollection_final_2.bib"): (460, 460),
    ("bibtex", "litsearchr_borealis_scopus_final.bib"): (1115, 1114),
    ("endnote-xml", "asysd_mendeley_export.xml"): (1233, 1128),
    ("endnote-xml", "asysd_zotero_export.xml"): (1233, 1128),
    ("wos-tab-delimited", "litsearchr_biosis.txt"): (212, 199),
    ("wos-tab-delimited", "litsearchr_borealis_WoS_biosis.txt"): (145, 141),
    ("wos-tab-delimited", "litsearchr_borealis_WoS_corecollection.txt"): (163, 163),
    ("wos-tab-delimited", "litsearchr_borealis_WoS_corecollection_final_2.txt"): (460, 460),
    ("wos-tab-delimited", "litsearchr_borealis_WoS_current_contents.txt"): (142, 142),
    ("wos-tab-delimited", "litsearchr_borealis_WoS_medline.txt"): (10, 10),
    ("wos-tab-delimited", "litsearchr_borealis_WoS_medline_final.txt"): (73, 73),
    ("wos-tab-delimited", "litsearchr_borealis_WoS_zoological.txt"): (133, 126),
    ("wos-tab-delimited", "litsearchr_zoorec.txt"): (179, 171),
}
READER = {"csv": "tabular", "wos-tab-delimited": "tabular", "bibtex": "bibtex", "endnote-xml": "endnote_xml"}


def _read(path: Path) -> list[Record]:
    return list(read_file(path))


@pytest.fixture(scope="module")
def cache() -> dict[Path, list[Record]]:
    """Records per file, read once per module (several tests look at the same big files)."""
    return {}


def _records(cache: dict[Path, list[Record]], path: Path) -> list[Record]:
    if path not in cache:
        cache[path] = _read(path)
    return cache[path]


def _by_id(records: list[Record], own_id: str) -> Record:
    return next(record for record in records if record.id == own_id)


# ---------------------------------------------------------------------------------------------
# Every export file: exact record and abstract counts, through the public entry point
# ---------------------------------------------------------------------------------------------


def test_manifest_lists_every_file_in_the_four_folders() -> None:
    on_disk = {(folder, p.name) for folder in READER for p in (EXPORTS / folder).iterdir() if p.is_file()}
    assert on_disk == set(MANIFEST)


@pytest.mark.parametrize(("folder", "name"), sorted(MANIFEST), ids=[name for _, name in sorted(MANIFEST)])
def test_every_export_yields_the_manifest_counts(folder: str, name: str, cache: dict[Path, list[Record]]) -> None:
    path = EXPORTS / folder / name
    assert detect_format(open_source(path)).__name__ == f"pipeline.ingest.{READER[folder]}"
    records = _records(cache, path)
    expected_records, expected_abstracts = MANIFEST[(folder, name)]
    assert len(records) == expected_records
    assert sum(record.has_abstract() for record in records) == expected_abstracts
    assert [record.position for record in records] == list(range(1, expected_records + 1))
    assert all(record.title for record in records)
    assert all(record.record_id.startswith("r") for record in records)
    assert len({record.record_id for record in records}) == expected_records


# ---------------------------------------------------------------------------------------------
# Golden fields, CSV
# ---------------------------------------------------------------------------------------------


def test_scopus_csv_first_and_last_record(cache: dict[Path, list[Record]]) -> None:
    records = _records(cache, EXPORTS / "csv" / "litsearchr_borealis_scopus.csv")
    first, last = records[0], records[-1]
    assert first.id == "2-s2.0-85061613518"
    assert first.source_format == "csv"
    assert first.title.startswith("Predictors of habitat use and nesting success for two sympatric species")
    assert first.authors == ["Craig C.", "Mazerolle M.J.", "Taylor P.D.", "Tremblay J.A.", "Villard M.-A."]
    assert (first.year, first.doi, first.venue) == (
        2019,
        "10.1016/j.foreco.2019.02.016",
        "Forest Ecology and Management",
    )
    assert (first.volume, first.pages, first.doc_type, first.database) == ("438", "134-141", "Article", "Scopus")
    assert "Acadian forest" in first.keywords
    assert first.extra["Publication Stage"] == "Final"
    assert (last.id, last.year, last.authors, last.doi) == ("2-s2.0-0021579087", 1984, ["Raphael M.G.", "White M."], "")
    assert last.title == "Use of snags by cavity-nesting birds in the Sierra Nevada."


def test_scopus_no_abstract_placeholder_is_no_abstract(cache: dict[Path, list[Record]]) -> None:
    path = EXPORTS / "csv" / "metaknowledge_scopus_testing.csv"
    with path.open(encoding="utf-8-sig") as handle:
        assert handle.read().count("[No abstract available]") == 16
    records = _records(cache, path)
    assert not any("No abstract available" in record.abstract for record in records)
    assert sum(not record.has_abstract() for record in records) == 16


def test_scopus_row_with_more_cells_than_header_stays_aligned(cache: dict[Path, list[Record]]) -> None:
    # litstudy's Scopus header has one 'Funding Text 1' column; rows 3-58 carry a second funding text.
    records = _records(cache, EXPORTS / "csv" / "litstudy_scopus.csv")
    third = records[2]
    assert third.id == "2-s2.0-85123480963"
    assert (third.doc_type, third.language, third.database) == ("Article", "English", "Scopus")
    assert third.extra["References"].startswith("Edelstein-Keshet, L., (2005) Mathematical Models in Biology")
    assert third.extra["Correspondence Address"].startswith("Gutowska, K.; Institute of Computing Science")
    assert [r.id.startswith("2-s2.0-") for r in records] == [True] * 58


def test_zotero_csv_first_and_last_record(cache: dict[Path, list[Record]]) -> None:
    records = _records(cache, EXPORTS / "csv" / "asysd_zotero_export.csv")
    first, last = records[0], records[-1]
    assert first.id == "ACSRAG7N"
    assert first.authors == ["Rotter, Carina", "Whittaker, Danielle", "Rusbridge, Clare"]
    assert (first.year, first.doi, first.doc_type) == (2022, "10.1111/jvim.16404", "journalArticle")
    assert (first.venue, first.volume, first.issue, first.pages) == (
        "Journal of veterinary internal medicine",
        "36",
        "3",
        "1032-1038",
    )
    assert first.keywords[:2] == ["*Dog Diseases/diagnostic imaging", "*Myoclonus/veterinary"]
    assert first.abstract.startswith("BACKGROUND: Myoclonus is observed in older Cavalier King Charles Spaniels")
    assert (last.id, len(last.authors), last.year) == ("PV767JQQ", 299, 2021)


def test_ieee_csv_semicolon_authors_and_page_range() -> None:
    first = _read(COPIED / "litstudy_ieee.csv")[0]
    assert first.id == "1"  # IEEE exports carry no record id: the position stands in
    assert first.title == 'Exascale Computing Trends: Adjusting to the "New Normal"\' for Computer Architecture'
    assert first.authors == ["P. Kogge", "J. Shalf"]
    assert (first.year, first.pages, first.issn, first.database) == (2013, "16-26", "1558-366X", "IEEE Xplore")
    assert first.keywords[:2] == ["Computer architecture", "Market research"]
    assert first.extra["Document Identifier"] == "IEEE Magazines"


def test_springer_csv_run_together_authors_are_split() -> None:
    records = _read(COPIED / "litstudy_springer.csv")
    assert records[0].authors == ["Araz R. Aliev", "Nigar T. Ismayilova"]
    assert records[1].authors == [
        "Prof. Rafik A. Aliev",
        "Prof. Dr. Janusz Kacprzyk",
        "Prof. Witold Pedrycz",
        "Prof. Mo Jamshidi",
        "Mustafa Babanli",
        "Prof. Fahreddin M. Sadikoglu",
    ]
    assert records[-1].authors == ["Umali Saidi"]
    assert {record.database for record in records} == {"SpringerLink"}


def test_embase_csv_source_citation_fills_venue_year_volume_issue_pages() -> None:
    second = _read(COPIED / "asreview_embase.csv")[1]
    assert second.authors[:2] == ["Eloubeidi M.A.", "Cohn M."]
    assert (second.venue, second.year, second.volume, second.issue, second.pages) == (
        "Cancer",
        2004,
        "102",
        "4",
        "253-258",
    )
    assert "cancer cell" in second.keywords
    assert second.database == "Embase"


def test_bib_dedupe_csv_keeps_its_id_column() -> None:
    records = _read(COPIED / "bibdedupe_special_cases_records_pre_merged.csv")
    assert [record.id for record in records[:2]] == ["id_0000001", "id_0000002"]
    assert records[0].authors == ["Deng, Chaoqun", "Ravichandran, Thiagarajan"]
    assert records[0].venue == "Americas Conference on Information Systems"
    assert sum(record.has_abstract() for record in records) == 3


@pytest.mark.parametrize("name", ["cytology_screening", "digital_work", "haematology", "respiratory", "stroke"])
def test_bib_dedupe_benchmark_csvs_use_the_id_column(name: str) -> None:
    records = _read(BENCH / "bib-dedupe" / name / "records_pre_merged.csv")
    expected = {
        "cytology_screening": 1856,
        "digital_work": 7159,
        "haematology": 1415,
        "respiratory": 1988,
        "stroke": 1292,
    }
    assert len(records) == expected[name]
    assert all(record.id.startswith("id_") for record in records)
    assert len({record.id for record in records}) == len(records)


def test_asysd_cp1252_labelled_set() -> None:
    path = BENCH / "asysd-labelled-test-set" / "labelled_test_set.csv"
    assert open_source(path).encoding == "cp1252"
    records = _read(path)
    assert len(records) == 1845
    assert sorted(int(record.id) for record in records) == list(range(1, 1846))
    first = records[0]
    assert first.id == "1"
    assert first.authors == ["Adeli K.", "Lewis G. F."]  # 'Adeli K.Lewis G. F.' in the file
    assert (first.title, first.year) == ("Intestinal lipoprotein overproduction in insulin-resistant states", 2008)
    with_copyright = [record for record in records if "\u00a9" in record.abstract]  # byte 0xA9 in cp1252
    assert len(with_copyright) == 504
    assert "\u00a9 2008 Lippincott" in _by_id(records, "699").abstract
    assert not any("\u00c2" in record.abstract or "\ufffd" in record.abstract for record in records)
    assert not any(record.doi == "NA" or record.abstract == "NA" for record in records)  # 'NA' is missing
    assert sum(record.has_abstract() for record in records) == 1812  # 33 rows hold NA or nothing
    assert any("\n" in record.extra.get("isbn", "") for record in records)  # quoted newline inside a field
    assert {record.extra["source"] for record in records} == {"unique", "duplicate"}


# ---------------------------------------------------------------------------------------------
# Golden fields, Web of Science tab-delimited
# ---------------------------------------------------------------------------------------------


def test_wos_core_collection_tab_first_and_last(cache: dict[Path, list[Record]]) -> None:
    records = _records(cache, EXPORTS / "wos-tab-delimited" / "litsearchr_borealis_WoS_corecollection_final_2.txt")
    first, last = records[0], records[-1]
    assert (first.id, first.source_format) == ("WOS:000284016600001", "wos_tab")
    assert first.title == "Fire Frequency Affects Structure and Composition of Xeric Forests of Eastern Oklahoma"
    assert first.authors == ["Burton, JA", "Hallgren, SW", "Palmer, MW"]
    assert (first.year, first.doi, first.venue) == (2010, "10.3375/043.030.0401", "NATURAL AREAS JOURNAL")
    assert (first.volume, first.issue, first.pages) == ("30", "4", "370-379")
    assert first.keywords[:3] == ["forest dynamics", "mesophication", "Oklahoma"]
    assert "CROSS TIMBERS" in first.keywords  # Keywords Plus (ID) - not the record id
    assert first.database == "Web of Science Core Collection"
    assert (last.id, last.authors, last.year) == ("WOS:A1991HF03500005", ["PYLYPEC, B"], 1991)


def test_wos_current_contents_run_together_authors(cache: dict[Path, list[Record]]) -> None:
    first = _records(cache, EXPORTS / "wos-tab-delimited" / "litsearchr_borealis_WoS_current_contents.txt")[0]
    assert first.authors == ["Roach, MC", "Thompson, FR", "Jones-Farrand, T"]  # 'Roach, MCThompson, FRJones-Farrand, T'
    assert first.database == "Current Contents Connect"


def test_biosis_tab_author_emails_removed_and_header_empty_name(cache: dict[Path, list[Record]]) -> None:
    first = _records(cache, EXPORTS / "wos-tab-delimited" / "litsearchr_biosis.txt")[0]
    assert first.authors[:2] == ["Tingley, Morgan W.", "Stillman, Andrew N."]
    assert (first.id, first.database, first.pages) == ("BCI:BCI201800796061", "BIOSIS Citation Index", "1484-1496")
    assert "" not in first.extra


def test_wos_tab_reads_unquoted_fields_literally(tmp_path: Path) -> None:
    header = "PT\tAU\tTI\tSO\tPY\tAB\tUT\t"
    rows = [
        'J\tDoe, J\t"Sky islands" and birds\tJ BIRDS\t2001\tAbstract one.\tWOS:1\t',
        "J\tRoe, R\tSecond\tJ BIRDS\t2002\t\tWOS:2\t",
    ]
    path = tmp_path / "savedrecs.txt"
    path.write_text("\ufeff" + "\r".join([header, *rows, "", ""]), encoding="utf-8")
    records = _read(path)
    assert [record.title for record in records] == ['"Sky islands" and birds', "Second"]
    assert [record.source_format for record in records] == ["wos_tab", "wos_tab"]


# ---------------------------------------------------------------------------------------------
# Golden fields, BibTeX
# ---------------------------------------------------------------------------------------------


def test_wos_bibtex_double_braces_and_wrapped_values(cache: dict[Path, list[Record]]) -> None:
    records = _records(cache, EXPORTS / "bibtex" / "litsearchr_borealis_WoS_corecollection_final_2.bib")
    first = records[0]
    assert first.id == "ISI:000284016600001"
    assert first.title == "Fire Frequency Affects Structure and Composition of Xeric Forests of Eastern Oklahoma"
    assert first.authors == ["Burton, Jesse A.", "Hallgren, Stephen W.", "Palmer, Michael W."]
    assert (first.year, first.doi, first.venue, first.pages) == (
        2010,
        "10.3375/043.030.0401",
        "NATURAL AREAS JOURNAL",
        "370-379",
    )
    assert first.abstract.startswith(
        "Since European settlement changes in the fire regime of eastern deciduous forests"
    )
    assert "  " not in first.abstract and "{" not in first.abstract
    assert first.keywords[:2] == ["forest dynamics", "mesophication"]
    assert "Dept Nat Resource Ecol & Management" in first.extra["affiliation"]  # '\&' unescaped
    assert first.database == "Web of Science Core Collection"
    assert records[-1].id == "ISI:A1991HF03500005"


def test_zotero_bibtex_latex_and_protected_capitals(cache: dict[Path, list[Record]]) -> None:
    records = _records(cache, EXPORTS / "bibtex" / "asysd_zotero_export.bib")
    first = records[0]
    assert first.id == "larsen_microangiography_1999"
    assert first.title == "Microangiography of the humeral condyle in Cocker Spaniel and non-Cocker Spaniel dogs"
    assert first.authors == ["Larsen, LJ", "Roush, JK", "McLaughlin, RM", "Cash, WC"]
    assert (first.pages, first.year, first.issn, first.extra["month"]) == ("134-137", 1999, "0932-0814", "August")
    assert first.keywords[:2] == ["blood supply", "Cocker Spaniels"]
    kaimio = _by_id(records, "kaimio_survey_2017")
    assert "early onset (< 1 year)" in kaimio.abstract  # {\textless}
    assert not any("\\" in record.abstract or "\\" in record.title for record in records)
    assert records[-1].id == "naughton_radiographic_2005"


def test_scopus_bibtex_duplicate_keys_and_stray_brace(cache: dict[Path, list[Record]]) -> None:
    records = _records(cache, EXPORTS / "bibtex" / "litsearchr_borealis_scopus_final.bib")
    assert [record.id for record in records].count("Krüger199782") == 2  # both kept
    broken = _by_id(records, "Michelat2012101")  # '{Austropotamobius pallipes)' in its abstract
    assert broken.flags == ["bibtex_unbalanced_braces"]
    assert "Crayfish Austropotamobius pallipes). From 1993" in broken.abstract
    assert (broken.language, broken.doc_type, broken.database) == ("French", "Article", "Scopus")
    following = records[records.index(broken) + 1]
    assert following.id == "Woinarski2012397" and not following.flags
    first = records[0]
    assert (first.id, first.year, first.doi) == ("Zlonis201970", 2019, "10.1016/j.foreco.2019.02.043")
    assert first.url.startswith("https://www.scopus.com/inward/record.uri?eid=2-s2.0-85062282548&doi=10.1016%2f")


def test_bibtex_parsing_details(tmp_path: Path) -> None:
    path = tmp_path / "refs.bib"
    path.write_text(
        '% exported\n@string{jb = "J. Birds"}\n@comment{ignore me}\n'
        '@Article{m{\\"u}ller2020,\n  author = {M{\\"u}ller, J{\\\'e}r{\\^o}me and {Barnes and Noble} and others},\n'
        '  title = "The {\\emph{Sky}} \\& {DNA} of 5\\% birds",\n  journal = jb # { Letters},\n'
        "  year = 2020, pages = {3--9}, month = may,\n  doi = {10.1000/a\\_b},\n}\n"
        "@inproceedings(second, title = {Second {One}})\n",
        encoding="utf-8",
    )
    first, second = _read(path)
    assert first.authors == ["Müller, Jérôme", "Barnes and Noble"]
    assert first.title == "The Sky & DNA of 5% birds"
    assert (first.venue, first.year, first.pages, first.doi) == ("J. Birds Letters", 2020, "3-9", "10.1000/a_b")
    assert first.extra["month"] == "May"
    assert (second.id, second.title, second.doc_type) == ("second", "Second One", "inproceedings")


def test_big_bibtex_streams_entry_by_entry(tmp_path: Path) -> None:
    path = tmp_path / "big.bib"
    abstract = "Schools that collaborate share practice and {Leaders} broker the links. " * 40
    with path.open("w", encoding="utf-8") as handle:
        for i in range(1000):
            handle.write(f"@article{{key{i},\n  title = {{Study {i}}},\n  author = {{Doe, J and Roe, R}},\n")
            handle.write(f"  year = {{2020}},\n  abstract = {{{abstract}}}\n}}\n\n")
    source = open_source(path)
    tracemalloc.start()
    try:
        count = sum(1 for _ in bibtex.read(source))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 1000
    assert peak < path.stat().st_size / 10  # never the whole file at once


def test_truncated_bibtex_names_the_entry_line(tmp_path: Path) -> None:
    path = tmp_path / "cut.bib"
    path.write_text("@article{a,\n title={One}\n}\n\n@article{b,\n title={Two is cut", encoding="utf-8")
    with pytest.raises(InputFileError) as caught:
        _read(path)
    assert "cut.bib, line 5: the file ends inside this entry" in str(caught.value)


# ---------------------------------------------------------------------------------------------
# Golden fields, EndNote XML
# ---------------------------------------------------------------------------------------------


def test_endnote_zotero_and_mendeley_flavours_agree(cache: dict[Path, list[Record]]) -> None:
    zotero = _records(cache, EXPORTS / "endnote-xml" / "asysd_zotero_export.xml")
    mendeley = _records(cache, EXPORTS / "endnote-xml" / "asysd_mendeley_export.xml")
    for first in (zotero[0], mendeley[0]):
        assert first.title == "Myoclonus in older Cavalier King Charles Spaniels."
        assert first.authors == ["Rotter, Carina", "Whittaker, Danielle", "Rusbridge, Clare"]
        assert (first.year, first.doi, first.pages, first.volume, first.issue) == (
            2022,
            "10.1111/jvim.16404",
            "1032-1038",
            "36",
            "3",
        )
        assert first.doc_type == "Journal Article"
        assert first.venue == "Journal of veterinary internal medicine"
    assert zotero[0].issn == "1939-1676 0891-6640"
    assert mendeley[0].extra["accession-num"] == "35319117"
    assert (
        zotero[-1].title
        == "Virtual Histology of Cortical Thickness and Shared Neurobiology in 6 Psychiatric Disorders."
    )
    assert len(zotero[-1].authors) == 299


def test_real_endnote_xml_with_style_wrappers() -> None:
    records = _read(BENCH / "bib-dedupe" / "respiratory" / "Respiratory.xml")
    assert len(records) == 1988
    first = records[0]
    assert first.id == "2"  # EndNote's rec-number
    assert (
        first.title
        == "Perioperative nutritional support in patients undergoing hepatectomy for hepatocellular carcinoma"
    )
    assert (first.authors, first.year, first.venue) == (
        ["Ziegler, T. R."],
        1996,
        "Jpen: Journal of Parenteral & Enteral Nutrition",
    )
    assert sum(record.extra.get("caption") == "Duplicate" for record in records) == 799


def test_malformed_endnote_xml_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.xml"
    path.write_text("<xml><records><record><titles><title>A</title></record></records></xml>", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"broken\.xml, line 1: the XML is not well formed"):
        _read(path)


# ---------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------


def test_seed_003_json_record_with_aggregator_wrapper() -> None:
    assert detect_format(open_source(SEED_003)).__name__ == "pipeline.ingest.json_records"
    (record,) = _read(SEED_003)
    assert record.source_format == "json"
    assert record.title == "School-to-School Collaboration: Building Collective Capacity through Collaborative Enquiry"
    assert (record.authors, record.year, record.doi) == (["C. Chapman"], 2018, "10.4135/9781526465542.n32")
    assert record.venue == "The SAGE Handbook of School Organization"
    assert record.abstract.startswith("Almost half a century ago, Basil Bernstein (1970) argued")
    assert "引用次数" not in record.abstract
    assert record.extra["trailing_text"].startswith("引用次数: 6\nAbstract\nAlmost half a century ago")
    assert record.extra["trailing_text"].endswith("escape high-poverty settings. 32")


def test_openalex_page_rebuilds_inverted_abstracts() -> None:
    records = _read(DATA / "api-responses" / "openalex" / "peneira_works.json")
    assert len(records) == 49
    assert sum(record.has_abstract() for record in records) == 46
    first = records[0]
    assert first.id == "https://openalex.org/W2068311567"
    assert first.authors[:2] == ["Alexander Liss", "Magaly Koch"]
    assert (first.year, first.venue, first.volume, first.issue, first.database) == (
        2014,
        "Geospatial Health",
        "8",
        "3",
        "OpenAlex",
    )
    assert first.abstract.startswith("Existing climate classification has not been designed for")


def test_crossref_work_and_list_envelopes() -> None:
    (work,) = _read(COPIED / "colrev_work_10.2196_22081.json")
    assert work.id == work.doi == "10.2196/22081"
    assert work.authors[0] == "Grenier Ouimet, Antoine"
    assert (work.year, work.venue, work.database) == (2020, "Journal of Medical Internet Research", "Crossref")
    assert work.abstract.startswith("<jats:sec>")  # JATS is the cleaner's job
    items = _read(DATA / "api-responses" / "crossref" / "decoded" / "habanero_test_journals_works.i0.json")
    assert len(items) == 20 and all(item.database == "Crossref" for item in items)
    assert "Crossref" not in {item.venue for item in items}


def test_semantic_scholar_and_eric_envelopes() -> None:
    (paper,) = _read(COPIED / "peneira_semantic_paper_search_bulk.json")
    assert (paper.id, paper.authors, paper.year) == ("649def34f8be52c8b66281af98ae884c09aef38b", ["Oren Etzioni"], 2018)
    assert (paper.database, paper.volume, paper.pages) == ("Semantic Scholar", "176", "255-271")
    (eric,) = _read(COPIED / "colrev_eric_blockchain.json")
    assert (eric.id, eric.authors, eric.year, eric.database) == ("EJ1286736", ["Çulha, Davut"], 2021, "ERIC")
    assert "Teaching Methods" in eric.keywords
    assert eric.abstract.startswith("Blockchain, which is a disruptive technology")


def test_json_list_jsonl_and_author_shapes(tmp_path: Path) -> None:
    items = [
        {"id": "a", "title": "One", "authors": [{"given": "Ann", "family": "Lee"}, {"name": "Bo Chen"}], "year": 2020},
        {"paperId": "b", "title": "Two", "authorships": [{"author": {"display_name": "Cy Dee"}}], "abstract": "NA"},
        {"title": "Three", "authors": "Smith, J; Jones, K", "keywords": ["x", {"display_name": "y"}]},
    ]
    listed = tmp_path / "records.json"
    listed.write_text(json.dumps(items, ensure_ascii=False, indent=1), encoding="utf-8")
    lines = tmp_path / "records.jsonl"
    lines.write_text("\n".join(json.dumps(item) for item in items) + "\n", encoding="utf-8")
    for path in (listed, lines):
        one, two, three = _read(path)
        assert (one.id, one.authors, one.year) == ("a", ["Lee, Ann", "Bo Chen"], 2020)
        assert (two.id, two.authors, two.abstract) == ("b", ["Cy Dee"], "")
        assert (three.id, three.authors, three.keywords) == ("3", ["Smith, J", "Jones, K"], ["x", "y"])


def test_big_json_list_streams(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    item = {"title": "T", "abstract": "word " * 400}
    path.write_text("[" + ",\n".join(json.dumps({**item, "id": str(i)}) for i in range(3000)) + "]", encoding="utf-8")
    source = open_source(path)  # hashing the file is not the reader's memory
    tracemalloc.start()
    try:
        count = sum(1 for _ in json_records.read(source))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 3000
    assert peak < path.stat().st_size / 10  # never the whole 6 MB list at once


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[\n{"title": "One"},\n{"title": "Two",,}\n]', encoding="utf-8")
    with pytest.raises(InputFileError, match=r"bad\.json, line 3: the JSON is not valid"):
        _read(path)


# ---------------------------------------------------------------------------------------------
# CSV errors, dialects and memory
# ---------------------------------------------------------------------------------------------


def test_csv_without_title_column_lists_columns_and_known_names(tmp_path: Path) -> None:
    path = tmp_path / "no_title.csv"
    path.write_text('Authors,Year,DOI\n"Doe, J",2020,10.1/x\n', encoding="utf-8")
    with pytest.raises(InputFileError) as caught:
        _read(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: no title column was found; the columns are 'Authors', 'Year', 'DOI';")
    assert "'Title', 'Document Title', 'Item Title'" in message
    assert "column_aliases.yaml" in message


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiters_case_insensitive_headers_and_empty_rows(tmp_path: Path, delimiter: str) -> None:
    import csv

    path = tmp_path / "export.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(["record_id", "TITLE", "author", "publication year", "abstract"])
        writer.writerow(["7", "Alpha", "Doe, J; Roe, R", "1999", "Text"])
        writer.writerow(["", "", "", "", ""])
        handle.write("\r\n")
        writer.writerow(["9", "Beta", "Poe E.", "n.d.", "[No abstract available]"])
    records = _read(path)
    assert [(r.id, r.position, r.title) for r in records] == [("7", 1, "Alpha"), ("9", 2, "Beta")]
    assert records[0].authors == ["Doe, J", "Roe, R"] and records[0].year == 1999
    assert records[1].year is None and records[1].abstract == ""


def test_unclosed_quote_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    path.write_text('Title,Year\nFirst,2019\n"Open quote,2020\nThird,2021\n', encoding="utf-8")
    with pytest.raises(InputFileError, match=r"quote\.csv, line 4: the file cannot be split into rows"):
        _read(path)


def test_100_mb_csv_is_read_with_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    abstract = ("Teachers in partnered schools reported that joint practice development helped. " * 25)[:1900]
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("ID,Title,Authors,Year,Abstract\n")
        rows = 0
        while handle.tell() < 100 * 1024 * 1024:
            rows += 1
            handle.write(
                f'r{rows},"School collaboration study {rows}","Smith, J.; Jones, K.",{1990 + rows % 30},"{abstract}"\n'
            )
    tracemalloc.start()
    try:
        count, last = 0, None
        for record in read_file(path):
            count += 1
            last = record
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == rows
    assert last is not None and last.id == f"r{rows}" and last.authors == ["Smith, J.", "Jones, K."]
    assert peak < 20 * 1024 * 1024


def test_new_database_csv_is_supported_by_editing_the_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv_path = tmp_path / "newdb.csv"
    csv_path.write_text('Headline,Writers,Published\nA new study,"Doe, J; Roe, R",2021\n', encoding="utf-8")
    assert not tabular.looks_like(open_source(csv_path).head)
    yaml_text = tabular.ALIASES_PATH.read_text(encoding="utf-8")
    yaml_text = yaml_text.replace("  title: [Title,", "  title: [Headline, Title,")
    yaml_text = yaml_text.replace("  authors: [Authors,", "  authors: [Writers, Authors,")
    yaml_text = yaml_text.replace("  year: [Year,", "  year: [Published, Year,")
    edited = tmp_path / "column_aliases.yaml"
    edited.write_text(yaml_text, encoding="utf-8")
    monkeypatch.setattr(tabular, "ALIASES_PATH", edited)
    (record,) = _read(csv_path)
    assert (record.title, record.authors, record.year) == ("A new study", ["Doe, J", "Roe, R"], 2021)


def test_bad_alias_table_reports_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "aliases.yaml"
    path.write_text("columns:\n  titel: [Title]\n  authors: Author\nprofiles:\n  - name: x\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_aliases(path)
    assert len(caught.value.problems) == 4
    assert "columns.titel: unknown field" in str(caught.value)


def test_shipped_alias_table_is_valid() -> None:
    table = load_aliases()
    assert "Title" in table.title_aliases and "TI" in table.title_aliases
    assert {profile.name for profile in table.profiles} >= {"web_of_science_tab", "scopus", "zotero"}


# ---------------------------------------------------------------------------------------------
# Field parsers and detection
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Rotter, Carina; Whittaker, Danielle", ["Rotter, Carina", "Whittaker, Danielle"]),
        ("Roach, MC; Thompson, FR", ["Roach, MC", "Thompson, FR"]),
        ("Zuna, R E and Wang, S S and Schiffman, M", ["Zuna, R E", "Wang, S S", "Schiffman, M"]),
        ("Craig C., Mazerolle M.J., Villard M.-A.", ["Craig C.", "Mazerolle M.J.", "Villard M.-A."]),
        ("Liu R., Adler D.G.", ["Liu R.", "Adler D.G."]),
        ("P. Kogge, J. Shalf, T. Lin", ["P. Kogge", "J. Shalf", "T. Lin"]),
        ("Roach, MCThompson, FRJones-Farrand, T", ["Roach, MC", "Thompson, FR", "Jones-Farrand, T"]),
        ("Adeli K.Lewis G. F.", ["Adeli K.", "Lewis G. F."]),
        ("Kim-Mitsuyama S.Ma M.Le Quang K.", ["Kim-Mitsuyama S.", "Ma M.", "Le Quang K."]),
        ("Araz R. AlievNigar T. Ismayilova", ["Araz R. Aliev", "Nigar T. Ismayilova"]),
        ("Rotter, Carina", ["Rotter, Carina"]),
        ("Burton, J.A.", ["Burton, J.A."]),
        ("John McDonald", ["John McDonald"]),
        ("John FitzGerald", ["John FitzGerald"]),
        ("Department of Health and Social Care", ["Department of Health and Social Care"]),
        (
            "Tingley, Morgan W. (morgan.tingley@uconn.edu) ; Stillman, Andrew N.",
            ["Tingley, Morgan W.", "Stillman, Andrew N."],
        ),
        ("[No author name available]", []),
        ("", []),
    ],
)
def test_split_authors(text: str, expected: list[str]) -> None:
    assert split_authors(text) == expected


def test_split_keywords() -> None:
    assert split_keywords("a; b;; c ") == ["a", "b", "c"]
    assert split_keywords("cyst (diagnosis, surgery), adult") == ["cyst (diagnosis, surgery)", "adult"]
    assert split_keywords("Picoides major [Prey / Sitta; Corsica]; Aves") == [
        "Picoides major [Prey / Sitta; Corsica]",
        "Aves",
    ]


@pytest.mark.parametrize(
    ("head", "module", "expected"),
    [
        ("Title,Authors,Year\n", tabular, True),
        ('"Key","Item Type","Title"\r\n', tabular, True),
        ("\ufeffPT\tAU\tTI\tSO\tUT\rJ\tDoe, J\tX\tY\tWOS:1\r", tabular, True),
        ("Authors,Year,DOI\n", tabular, False),
        ("TY  - JOUR\nTI  - A title\nER  -\n", tabular, False),
        ("Title of a plain abstract, with a comma\n", tabular, False),
        ("@article{key2020,\n title={X}\n}\n", bibtex, True),
        ("\n@ARTICLE{ ISI:000284016600001,\nAuthor = {A}}", bibtex, True),
        ("Contact us @ email{x} for details", bibtex, False),
        ('<?xml version="1.0"?><xml><records><record>', endnote_xml, True),
        ('<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom">', endnote_xml, False),
        ('\n{"title": "x"}\nsome text', json_records, True),
        ('[\n  {"id": 1}]', json_records, True),
        ("[1] Smith J. A paper about schools.", json_records, False),
        ("{\\rtf1 not json}", json_records, False),
    ],
)
def test_looks_like(head: str, module: object, expected: bool) -> None:
    assert module.looks_like(head) is expected  # type: ignore[attr-defined]
