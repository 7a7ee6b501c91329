"""Tagged-format readers (RIS, MEDLINE, WoS plain text, ProQuest text) on the real exports.

Small permissive files are copied under tests/data/ingest_tagged (see its README); the others are
read from ../shared/data/exports beside the clone.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from pipeline.errors import InputFileError
from pipeline.ingest import detect_format, medline, open_source, proquest, read_file, ris, wos_plain
from pipeline.records import Record

HERE = Path(__file__).resolve().parent
COPIED = HERE / "data" / "ingest_tagged"
SHARED = Path(__file__).resolve().parents[2] / "shared"
EXPORTS = SHARED / "data" / "exports"

# (folder, file): (records, records with an abstract), from shared/data/MANIFEST.md.
# litstudy_ieee_example.ris: the manifest's naive count says 1, the file holds 25 records.
MANIFEST = {
    ("ris", "asreview_baseline_zotero.ris"): (100, 98),
    ("ris", "asreview_embase.ris"): (6, 6),
    ("ris", "asreview_ovid_psycinfo.ris"): (6, 6),
    ("ris", "asreview_ovid_zotero.ris"): (6, 6),
    ("ris", "asreview_proquest.ris"): (6, 6),
    ("ris", "asreview_pubmed_endnote.txt"): (6, 6),
    ("ris", "asreview_pubmed_zotero.ris"): (6, 6),
    ("ris", "asreview_ris_issue_1099_scopus.txt"): (7, 7),
    ("ris", "asreview_ris_issue_992_rayyan.txt"): (19, 8),
    ("ris", "asreview_scopus.ris"): (6, 6),
    ("ris", "asreview_web_of_science_ris.txt"): (10, 10),
    ("ris", "asysd_ris_export.txt"): (69, 58),
    ("ris", "asysd_scopus.ris"): (10, 10),
    ("ris", "asysd_wos_test.ris"): (50, 49),
    ("ris", "asysd_zotero_export.ris"): (1000, 776),
    ("ris", "litsearchr_scopus.ris"): (92, 89),
    ("ris", "litstudy_ieee_example.ris"): (25, 25),
    ("medline", "biopython_pubmed_result1.txt"): (1, 1),
    ("medline", "biopython_pubmed_result2.txt"): (4, 4),
    ("medline", "biopython_pubmed_result3.txt"): (1, 1),
    ("medline", "metaknowledge_medline_test.medline"): (175, 171),
    ("wos-plaintext", "metaknowledge_OnePaper.isi"): (1, 1),
    ("wos-plaintext", "metaknowledge_savedrecs.txt"): (32, 10),
    ("proquest-text", "metaknowledge_ProQuest_TestFile.txt"): (100, 100),
}
FORMAT_OF_FOLDER = {"ris": "ris", "medline": "medline", "wos-plaintext": "wos_plain", "proquest-text": "proquest"}
OTHER_FOLDERS = ("bibtex", "csv", "endnote-xml", "wos-tab-delimited")
TAGGED_READERS = (medline, wos_plain, ris, proquest)


def _ids(key: tuple[str, str]) -> str:
    return f"{key[0]}/{key[1]}"


def _records(path: Path) -> list[Record]:
    return list(read_file(path))


def test_every_tagged_export_is_listed() -> None:
    on_disk = {(folder, p.name) for folder in FORMAT_OF_FOLDER for p in (EXPORTS / folder).iterdir()}
    assert on_disk == set(MANIFEST)


@pytest.mark.parametrize("key", sorted(MANIFEST), ids=_ids)
def test_record_and_abstract_counts_match_the_manifest(key: tuple[str, str]) -> None:
    folder, name = key
    records = _records(EXPORTS / folder / name)
    expected_records, expected_abstracts = MANIFEST[key]
    assert len(records) == expected_records
    assert sum(r.has_abstract() for r in records) == expected_abstracts
    assert [r.position for r in records] == list(range(1, expected_records + 1))
    assert {r.source_format for r in records} == {FORMAT_OF_FOLDER[folder]}
    assert all(r.id and r.record_id and r.title for r in records)
    assert not any(ris.UNTERMINATED_FLAG in r.flags for r in records)


@pytest.mark.parametrize("key", sorted(MANIFEST), ids=_ids)
def test_format_is_detected_from_content(key: tuple[str, str]) -> None:
    folder, name = key
    source = open_source(EXPORTS / folder / name)
    assert detect_format(source).FORMAT == FORMAT_OF_FOLDER[folder]
    claimed = [reader.FORMAT for reader in TAGGED_READERS if reader.looks_like(source.head)]
    assert claimed == [FORMAT_OF_FOLDER[folder]]  # MEDLINE is not taken for RIS, nor the reverse


def _other_files() -> list[Path]:
    files = [p for folder in OTHER_FOLDERS for p in sorted((EXPORTS / folder).iterdir())]
    return files + sorted((SHARED / "seeds").glob("*.txt"))


@pytest.mark.parametrize("path", _other_files(), ids=lambda p: p.name)
def test_other_formats_are_not_claimed(path: Path) -> None:
    head = open_source(path).head
    assert [reader.FORMAT for reader in TAGGED_READERS if reader.looks_like(head)] == []


@pytest.mark.parametrize("name", sorted(name for folder, name in MANIFEST if folder == "ris"))
def test_ris_agrees_with_rispy(name: str) -> None:
    """rispy (not streaming, so not used) as an independent oracle for counts, titles and abstracts."""
    import rispy

    path = EXPORTS / "ris" / name
    with open(path, encoding=open_source(path).encoding) as handle:
        entries = rispy.load(handle)
    records = list(ris.read(open_source(path)))
    assert len(records) == len(entries)
    assert [r.title for r in records] == [e.get("title") or e.get("primary_title", "") for e in entries]
    assert [r.has_abstract() for r in records] == [bool(e.get("abstract") or e.get("notes_abstract")) for e in entries]


# (path, index, expected fields): a first and a last record of several files, checked by eye against the file.
GOLDEN = [
    (
        COPIED / "asreview_ovid_psycinfo.ris",
        0,
        {
            "id": "2019-65183-001",
            "title": "The influence of self-criticism on depression symptoms among ambulatory patients with "
            "inflammatory bowel disease.",
            "authors": [
                "Trindade, Ines A",
                "Irons, Chris",
                "Ferreira, Claudia",
                "Portela, Francisco",
                "Pinto-Gouveia, Jose",
            ],
            "year": 2019,
            "doi": "10.1002/cpp.2398",
            "venue": "Clinical Psychology & Psychotherapy",
            "pages": "",
            "issn": "1063-3995",
            "abstract_start": "Considering that self-criticism is an important process",
            "abstract_end": "(PsycINFO Database Record (c) 2019 APA, all rights reserved)",
        },
    ),
    (
        COPIED / "asreview_ovid_psycinfo.ris",
        -1,
        {
            "id": "2019-55194-001",
            "title": "Psychological outcomes of a cognitive behavioral therapy for youth with inflammatory bowel "
            "disease: Results of the happy-ibd randomized controlled trial at 6- and 12-month follow-up.",
            "authors_first": "Stapersma, Luuk",
            "authors_count": 9,
            "year": 2019,
            "doi": "10.1007/s10880-019-09649-9",
            "abstract_start": "AbstractYouth with inflammatory bowel disease (IBD)",
        },
    ),
    (
        COPIED / "litstudy_ieee_example.ris",
        0,
        {
            "id": "1",
            "title": "The European Approach to the Exascale Challenge",
            "authors": ["G. Kalbe", "G. Kalbe"],
            "year": 2019,
            "doi": "10.1109/MCSE.2018.2884139",
            "venue": "Computing in Science & Engineering",
            "volume": "21",
            "issue": "1",
            "pages": "42-47",
            "issn": "1558-366X",
            "doc_type": "JOUR",
            "keywords": [
                "Exascale computing",
                "Industries",
                "Investment",
                "Technological innovation",
                "Ecosystems",
                "High performance computing",
            ],
            "abstract_start": "An integrated European exascale computing and data infrastructure",
            "abstract_end": "to invest in operational HPC technologies.",
        },
    ),
    (
        COPIED / "litstudy_ieee_example.ris",
        -1,
        {
            "id": "25",
            "title": "Trends in High Performance Computing: Exascale Systems and Facilities Beyond the First Wave",
            "authors": ["L. A. Parnell", "D. W. Demetriou", "V. Kamath", "E. Y. Zhang"],
            "year": 2019,
            "doi": "10.1109/ITHERM.2019.8757229",
            "pages": "167-176",
            "doc_type": "CONF",
            "abstract_end": "strategy over the next decade.",
        },
    ),
    (
        COPIED / "asreview_ris_issue_992_rayyan.txt",
        -1,
        {
            "id": "1060",
            "title": "Behavioral health care quality among marketplace insurers in 2019",
            "authors": ["Abraham, J. M.", "Cai, S. T.", "Anderson, D.", "Drake, C."],
            "year": 2021,
            "doi": "10.1176/appi.ps.202000115",
            "venue": "Psychiatric Services",
            "pages": "200-203",
            "url": "",  # '<Go to ISI>://WOS:...' is not a link
            "abstract_start": "Objective: Using 2019 Centers for Medicare and Medicaid Services data",
        },
    ),
    (
        COPIED / "asreview_embase.ris",
        0,
        {
            "id": "1",
            "title": "Duplication cysts: Diagnosis, management, and the role of endoscopic ultrasound",
            "authors": ["Liu R.", "Adler D.G."],
            "year": 2014,
            "doi": "10.4103/2303-9027.138783",
            "venue": "Endoscopic Ultrasound",
            "pages": "152-160",
            "database": "Embase",
            "language": "English",
            "abstract_start": "Gastrointestinal tract duplication cysts are rare",
        },
    ),
    (
        COPIED / "asreview_pubmed_endnote.txt",
        0,
        {
            "id": "369",
            "title": "Boswellia serrata: an overall assessment of in vitro, preclinical, pharmacokinetic and "
            "clinical data",
            "authors": ["Abdel-Tawab, M.", "Werz, O.", "Schubert-Zsilavecz, M."],
            "year": 2011,
            "doi": "10.2165/11586800-000000000-00000",
            "pages": "349-69",
            "database": "PubMed",
            "abstract_start": "Non-steroidal anti-inflammatory drug (NSAID) intake",
        },
    ),
    (
        EXPORTS / "ris" / "asreview_scopus.ris",
        0,
        {
            "title": "Stress and the brain-gut axis in functional and chronic-inflammatory gastrointestinal diseases: "
            "A transdisciplinary challenge",
            "authors": ["Labanski, A.", "Langhorst, J.", "Engler, H.", "Elsenbruch, S."],
            "year": 2020,
            "doi": "10.1016/j.psyneuen.2019.104501",
            "venue": "Psychoneuroendocrinology",
            "issn": "03064530",  # 'SN  - 03064530 (ISSN)'
            "database": "Scopus",
            "abstract_end": "© 2019 Elsevier Ltd",
        },
    ),
    (
        EXPORTS / "ris" / "asysd_zotero_export.ris",
        -1,
        {
            "id": "1000",
            "title": "Radiographic diagnosis-paraspinal abscess in a dog",
            "authors": ["Naughton, JF", "Tucker, RL", "Bagley, RS"],
            "year": 2005,
            "doi": "10.1111/j.1740-8261.2005.00004.x",
            "database": "Web of Science",  # 'AN  - WOS:...'
        },
    ),
    (
        COPIED / "biopython_pubmed_result2.txt",
        0,
        {
            "id": "16403221",
            "title": "A high level interface to SCOP and ASTRAL implemented in python.",
            "authors": ["Casbon, James A", "Crooks, Gavin E", "Saqi, Mansoor A S"],
            "year": 2006,
            "doi": "10.1186/1471-2105-7-10",
            "venue": "BMC bioinformatics",
            "database": "PubMed",
            "abstract_start": "BACKGROUND: Benchmarking algorithms in structural bioinformatics",
            "abstract_end": "datasets for use in structural genomics easier and more principled.",
        },
    ),
    (
        COPIED / "biopython_pubmed_result2.txt",
        -1,
        {
            "id": "14630660",
            "title": "PDB file parser and structure class implemented in Python.",
            "authors": ["Hamelryck, Thomas", "Manderick, Bernard"],
            "year": 2003,
            "doi": "",
            "pages": "2308-10",
            "issn": "1367-4803",
            "abstract_end": "from http://www.biopython.org",
        },
    ),
    (
        EXPORTS / "medline" / "metaknowledge_medline_test.medline",
        0,
        {
            "id": "26524502",
            "title": "Bioinformatic survey of ABC transporters in dermatophytes.",
            "authors": ["Gadzalski, Marek", "Ciesielska, Anita", "Staczek, Pawel"],
            "year": 2016,
            "doi": "10.1016/j.gene.2015.10.064",
            "venue": "Gene",
            "issue": "1 Pt 3",
            "keywords": ["ABC transporters", "Dermatophytes", "Drug resistance", "Phylogenetics"],
            "language": "eng",
            "abstract_start": "ATP binding cassette (ABC) transporters constitute a very large and ubiquitous",
            "abstract_end": "could lead to novel substrate specificity.",
        },
    ),
    (
        EXPORTS / "medline" / "metaknowledge_medline_test.medline",
        -1,
        {  # the file itself is cut inside this record's title
            "id": "26153366",
            "title": "Evaluation of the frequency of G-765C polymorphism in the promoter region of the COX-2 gene "
            "and its correlation with the expression of this gene in the endometriu",
            "year": 2016,
            "abstract": "",
        },
    ),
    (
        EXPORTS / "wos-plaintext" / "metaknowledge_OnePaper.isi",
        0,
        {
            "id": "WOS:000317623000007",
            "title": "The Motion Behind the Symbols: A Vital Role for Dynamism in the Conceptualization of Limits and "
            "Continuity in Expert Mathematics",
            "authors": ["Marghetis, Tyler", "Nunez, Rafael"],
            "year": 2013,
            "doi": "10.1111/tops.12013",
            "venue": "TOPICS IN COGNITIVE SCIENCE",
            "pages": "299-316",
            "keywords": [
                "Mathematical practice",
                "Metaphor",
                "Fictive motion",
                "Gesture",
                "Cauchy",
                "Calculus",
                "Conceptualization",
                "REPRESENTATIONS",
                "GESTURE",
                "REAL",
                "TIME",
            ],
            "database": "Web of Science",
            "abstract_start": "The canonical history of mathematics suggests",
        },
    ),
    (
        EXPORTS / "wos-plaintext" / "metaknowledge_savedrecs.txt",
        -1,
        {
            "id": "WOS:A1974S801100007",
            "title": "INTERNAL PHOTON IMPULSE OF DIELECTRIC AND ON COUPLE APPLIED TO ANISOTROPIC CRYSTAL",
            "authors": ["BEAUREGA.OC", "IMBERT, C", "ROOSEN, G"],
            "year": 1974,
            "doi": "",
            "pages": "635-638",
            "language": "French",
            "abstract": "",
        },
    ),
    (
        EXPORTS / "proquest-text" / "metaknowledge_ProQuest_TestFile.txt",
        0,
        {
            "id": "1548716365",
            "title": "Entrenchment and the Kripke-Wittgenstein paradox",
            "authors": ["Dorst, Chris"],
            "year": 2014,
            "doi": "",
            "doc_type": "Dissertation/Thesis",
            "url": "http://search.proquest.com.proxy.lib.uwaterloo.ca/docview/1548716365?accountid=14906",
            "database": "ProQuest",
            "keywords": [
                "Philosophy of Science",
                "Philosophy",
                "Philosophy, religion and theology",
                "Entrenchment",
                "Goodman",
                "Induction",
                "Kripke-Wittgenstein paradox",
                "New riddle of induction",
            ],
            "abstract_start": "Surprisingly little attention has been paid to Goodman's own entrenchment-based",
        },
    ),
    (
        EXPORTS / "proquest-text" / "metaknowledge_ProQuest_TestFile.txt",
        -1,
        {
            "id": "1501476590",
            "title": "Anthrobiota: Human-microbe relationships on the edge of biological science",
            "authors": ["Benezra, Amber"],
            "year": 2014,
            "abstract_start": "This dissertation investigates microbes in the human gut",
            "abstract_end": "co-accountable, ethical, and effective scientific practices.",
        },
    ),
]


@pytest.mark.parametrize(("path", "index", "expected"), GOLDEN, ids=[f"{p.name}[{i}]" for p, i, _ in GOLDEN])
def test_golden_fields(path: Path, index: int, expected: dict[str, object]) -> None:
    record = _records(path)[index]
    for name, value in expected.items():
        if name == "abstract_start":
            assert record.abstract.startswith(str(value))
        elif name == "abstract_end":
            assert record.abstract.endswith(str(value))
        elif name == "authors_first":
            assert record.authors[0] == value
        elif name == "authors_count":
            assert len(record.authors) == value
        else:
            assert getattr(record, name) == value, name


# --- RIS quirks, one by one -------------------------------------------------------------------


def test_rayyan_keywords_one_per_untagged_line() -> None:
    first = _records(COPIED / "asreview_ris_issue_992_rayyan.txt")[0]
    assert first.keywords == [
        "Health Facility Administration",
        "Joint Commission",
        "Standards",
        "Medication Errors",
        "Prevention and Control",
        "Medication Reconciliation",
        "Organizational Compliance",
        "Quality Improvement",
        "Electronic Health Records",
        "Consumer Participation",
        "Literacy",
        "Medication History",
        "Patient Education",
    ]
    assert first.extra["AN"] == "rayyan-264552525"


def test_scopus_export_date_lines_stay_in_their_note() -> None:
    first = _records(COPIED / "asreview_ris_issue_1099_scopus.txt")[0]
    assert first.extra["U3"] == "Cited By :9\nExport Date: 12 May 2022\nArticle"
    assert "Export Date" not in first.abstract
    assert first.publisher == "VSB-Technical University of Ostrava"
    assert first.database == "Scopus"  # its UR points to scopus.com


def test_ovid_numbers_and_tags_after_er() -> None:
    records = _records(COPIED / "asreview_ovid_psycinfo.ris")
    assert [r.extra["NL"] for r in records[:2]] == ["Clin Psychol Psychother", "J Health Psychol"]
    assert not any("Link to the Ovid" in value for r in records for value in r.extra.values())
    assert records[0].pages == ""  # SP 'No' + EP 'Specified' is 'No Pagination Specified'


def test_zotero_abstract_paragraphs_are_joined_with_a_space() -> None:
    first = _records(EXPORTS / "ris" / "asysd_zotero_export.ris")[0]
    assert "and delayed healing. Microangiography was performed" in first.abstract
    assert "\n" not in first.abstract


def test_endnote_multiline_note_is_kept_line_by_line() -> None:
    first = _records(COPIED / "asreview_pubmed_endnote.txt")[0]
    assert first.extra["N1"].splitlines()[:3] == ["1179-1926", "Abdel-Tawab, Mona", "Werz, Oliver"]
    assert first.keywords[:2] == ["Animals", "Anti-Inflammatory Agents/adverse effects/pharmacokinetics/*pharmacology"]


def test_no_abstract_placeholder_means_no_abstract(tmp_path: Path) -> None:
    text = (COPIED / "asreview_ris_issue_1099_scopus.txt").read_text(encoding="utf-8")
    lines = [("AB  - [No abstract available]" if line.startswith("AB  - ") else line) for line in text.splitlines()]
    path = tmp_path / "no_abstract.ris"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    records = _records(path)
    assert len(records) == 7
    assert not any(r.has_abstract() for r in records)


def test_proquest_abstract_paragraph_with_a_colon_stays_in_the_abstract(tmp_path: Path) -> None:
    lines = _lines(EXPORTS / "proquest-text" / "metaknowledge_ProQuest_TestFile.txt")
    first_abstract = _starts(lines, "Abstract: ")[0]
    lines[first_abstract + 1 : first_abstract + 1] = ["", "Results: the riddle stays unsolved.", ""]
    first = _records(_write(tmp_path, "proquest.txt", lines))[0]
    assert first.abstract.endswith("paradox about meaning. Results: the riddle stays unsolved.")
    assert "Results" not in first.extra
    assert first.extra["Advisor"] == "Lange, Marc"


def test_field_helpers() -> None:
    assert [ris.year_from(t) for t in ("2019//", "1 Jan.-Feb. 2019", "1999/08//undefined", "20151207", "Jun")] == [
        2019,
        2019,
        1999,
        2015,
        None,
    ]
    assert ris.bare_doi("http://dx.doi.org/10.1002/cpp.2398") == "10.1002/cpp.2398"
    assert ris.bare_doi("10.1016/j.gene.2015.10.064 [doi]") == "10.1016/j.gene.2015.10.064"
    assert ris.doi_in_text("https://x.org/record.uri?eid=2&doi=10.15598%2faeee.v16i3.2698&partnerID=40") == (
        "10.15598/aeee.v16i3.2698"
    )
    assert ris.issn_from(["978-131750096-4 (ISBN); 978-113888701-5 (ISBN)", "1536-5964 0025-7974"]) == "1536-5964"
    assert ris.abstract_text(" [No abstract available] ") == ""


# --- bad input ------------------------------------------------------------------------------------


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _starts(lines: list[str], prefix: str) -> list[int]:
    return [i for i, line in enumerate(lines) if line.startswith(prefix)]


def test_truncated_ris_keeps_a_last_record_that_has_a_title(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = _lines(COPIED / "asreview_ris_issue_1099_scopus.txt")
    fourth_ty = _starts(lines, "TY  - ")[3]
    title_line = next(i for i in range(fourth_ty, len(lines)) if lines[i].startswith("T1  - "))
    path = _write(tmp_path, "cut.ris", lines[: title_line + 2])  # cut two lines after the title
    records = _records(path)
    assert len(records) == 4
    assert records[-1].title == "BLUE: A 3D Dynamic Bipedal Robot"
    assert records[-1].flags == [ris.UNTERMINATED_FLAG]
    assert not any(r.flags for r in records[:3])
    assert f"line {fourth_ty + 1}: RIS record without its 'ER  -' line" in caplog.text


def test_truncated_ris_without_a_title_names_the_line(tmp_path: Path) -> None:
    lines = _lines(COPIED / "asreview_ris_issue_1099_scopus.txt")
    fourth_ty = _starts(lines, "TY  - ")[3]
    path = _write(tmp_path, "cut.ris", lines[: fourth_ty + 2])  # TY and one author: no title, no ER
    read: list[Record] = []
    with pytest.raises(InputFileError) as caught:
        for record in read_file(path):
            read.append(record)
    assert len(read) == 3  # the records before the cut were read
    assert caught.value.line == fourth_ty + 1
    message = str(caught.value)
    assert "cut.ris" in message and f"line {fourth_ty + 1}" in message and "no title" in message


def test_ris_record_missing_its_er_is_closed_by_the_next_ty(tmp_path: Path) -> None:
    lines = _lines(COPIED / "asreview_ris_issue_1099_scopus.txt")
    second_er = _starts(lines, "ER  -")[1]
    path = _write(tmp_path, "no_er.ris", lines[:second_er] + lines[second_er + 1 :])
    records = _records(path)
    original = _records(COPIED / "asreview_ris_issue_1099_scopus.txt")
    assert [r.title for r in records] == [r.title for r in original]
    assert [bool(r.flags) for r in records] == [False, True, False, False, False, False, False]


def test_ris_record_missing_its_er_and_title_is_an_error(tmp_path: Path) -> None:
    lines = _lines(COPIED / "asreview_ris_issue_1099_scopus.txt")
    second_ty, second_er = _starts(lines, "TY  - ")[1], _starts(lines, "ER  -")[1]
    dropped = {second_er} | {i for i in range(second_ty, second_er) if lines[i].startswith("T1  - ")}
    path = _write(tmp_path, "no_er.ris", [line for i, line in enumerate(lines) if i not in dropped])
    with pytest.raises(InputFileError) as caught:
        _records(path)
    assert caught.value.line == second_ty + 1


def test_truncated_wos_plain_text(tmp_path: Path) -> None:
    lines = _lines(EXPORTS / "wos-plaintext" / "metaknowledge_OnePaper.isi")
    so_line = _starts(lines, "SO ")[0]
    kept = _records(_write(tmp_path, "cut_after_title.txt", lines[:so_line]))
    assert [r.flags for r in kept] == [[ris.UNTERMINATED_FLAG]]
    assert kept[0].title.endswith("Continuity in Expert Mathematics")
    pt_line = _starts(lines, "PT ")[0]
    with pytest.raises(InputFileError) as caught:
        _records(_write(tmp_path, "cut_before_title.txt", lines[: pt_line + 3]))
    assert caught.value.line == pt_line + 1


def test_a_100_mb_ris_file_streams_in_bounded_memory(tmp_path: Path) -> None:
    text = (EXPORTS / "ris" / "asreview_scopus.ris").read_text(encoding="utf-8")
    record = text[text.index("TY  - ") : text.index("ER  -") + len("ER  -")] + "\n\n"
    copies = 100 * 2**20 // len(record.encode("utf-8")) + 1
    path = tmp_path / "big.ris"
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(copies):
            handle.write(record)
    assert path.stat().st_size > 100 * 2**20
    try:
        tracemalloc.start()
        count = 0
        for item in read_file(path):
            count += 1
            last = item
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        path.unlink()
    assert count == copies
    assert last.position == copies and last.title.startswith("Stress and the brain-gut axis")
    assert peak < 20 * 2**20  # measured well under 1 MB: records are never all held
