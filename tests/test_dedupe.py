"""The dedupe stage on real records: normalisation, traps, no chaining, decisions, incremental runs, reports."""

from __future__ import annotations

import re
from itertools import combinations
from pathlib import Path

import pandas as pd
import pytest

from pipeline.dedupe import (
    candidate_pairs_report,
    deduplicate,
    duplicates_sheet,
    merge_group_fields,
    prisma_counts,
    read_dedupe_decisions,
)
from pipeline.dedupe import normalise as nz
from pipeline.dedupe.blocking import candidate_pairs
from pipeline.dedupe.scoring import MATCH, MAYBE, Features, compare
from pipeline.errors import InputFileError, ReviewError
from pipeline.records import RECORD_COLUMNS

DATA = Path(__file__).parent / "data" / "dedupe"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "dedup-benchmarks" / "bib-dedupe"
ASYSD = SHARED.parent / "asysd-labelled-test-set" / "labelled_test_set.csv"
FRAME_COLUMNS = [c for c in RECORD_COLUMNS if c != "extra"]
ARTICLE_TITLE = "School-to-school collaboration in England: A configurative review of the empirical evidence"
ARTICLE_DOI = "10.1002/rev3.3248"


# --- helpers ------------------------------------------------------------------------------


def frame_of(rows: list[dict[str, object]], source: str = "test.csv") -> pd.DataFrame:
    """Rows (any subset of the record fields) as a records_to_frame-shaped frame."""
    filled = []
    for position, row in enumerate(rows, start=1):
        record = {c: "" for c in FRAME_COLUMNS}
        record.update({"source_format": "csv", "source_file": source, "position": position, "year": None})
        record.update(row)
        record.setdefault("id", str(position))
        record["id"] = str(record["id"]) or str(position)
        record["record_id"] = record["record_id"] or f"r-{record['id']}"
        filled.append(record)
    frame = pd.DataFrame(filled, columns=FRAME_COLUMNS)
    frame["year"] = pd.array(frame["year"], dtype="Int64")
    return frame


def bibtex_frame(raw: pd.DataFrame, ids: pd.Series, source: str) -> pd.DataFrame:
    """A bib-dedupe CSV (BibTeX field names) as a records frame."""

    def col(*names: str) -> pd.Series:
        for name in names:
            if name in raw.columns:
                return raw[name].fillna("").astype(str)
        return pd.Series([""] * len(raw), index=raw.index)

    rows = []
    for i in range(len(raw)):
        journal, booktitle = col("journal").iloc[i], col("booktitle").iloc[i]
        year = col("year").iloc[i]
        rows.append(
            {
                "id": ids.iloc[i],
                "record_id": ids.iloc[i],
                "title": col("title").iloc[i],
                "authors": "; ".join(a.strip() for a in col("author").iloc[i].split(" and ") if a.strip()),
                "year": int(year) if year.isdigit() else None,
                "doi": col("doi").iloc[i],
                "venue": journal or booktitle,
                "volume": col("volume").iloc[i],
                "issue": col("number", "issue").iloc[i],
                "pages": col("pages").iloc[i],
                "abstract": col("abstract").iloc[i],
                "doc_type": col("ENTRYTYPE").iloc[i],
            }
        )
    return frame_of(rows, source)


def groups_of(result: pd.DataFrame) -> set[frozenset[str]]:
    return {frozenset(members) for _, members in result.groupby("duplicate_group")["id"]}


def pairs_of(result: pd.DataFrame) -> set[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for group in groups_of(result):
        pairs.update(combinations(sorted(group), 2))
    return pairs


def gold_pairs(path: Path) -> set[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for cluster in pd.read_csv(path)["merged_ids"]:
        pairs.update(combinations(sorted(cluster.split(";")), 2))
    return pairs


def group_of(result: pd.DataFrame, own_id: str) -> set[str]:
    group = result.loc[result["id"] == own_id, "duplicate_group"].item()
    return set(result.loc[result["duplicate_group"] == group, "id"])


# --- normalisation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "10.1002/rev3.3248",
        "https://doi.org/10.1002/REV3.3248",
        "doi:10.1002/rev3.3248.",
        "http://dx.doi.org/10.1002/rev3.3248",
        " DOI: 10.1002/rev3.3248;",
    ],
)
def test_doi_prefixes_case_and_trailing_punctuation_are_removed(raw: str) -> None:
    assert nz.normalise_doi(raw) == ARTICLE_DOI


def test_a_value_without_a_doi_gives_an_empty_doi() -> None:
    assert nz.normalise_doi("not a doi") == ""
    assert nz.normalise_doi(float("nan")) == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "Efficacy observation of batroxobin for treatment of vascular cognitive impairment. [Chinese]",
            "efficacy observation of batroxobin for treatment of vascular cognitive impairment",
        ),
        (
            "[Paroxysmal nocturnal hemoglobinuria therapy with eculizumab: Spanish experience]. [Spanish]",
            "paroxysmal nocturnal hemoglobinuria therapy with eculizumab spanish experience",
        ),
        ("Effects of GLP-1 on Ca<sup>2+</sup> handling", "effects of glp 1 on ca2 handling"),
        ("School‐to‐school collaboration &amp; equity", "school to school collaboration and equity"),
        ("Eculizumab for aHUS.[Erratum appears in N Engl J Med. 2009 Jun 4;360(23):2487]", "eculizumab for ahus"),
    ],
)
def test_titles_lose_case_punctuation_html_and_bracketed_tags(raw: str, expected: str) -> None:
    assert nz.normalise_title(raw) == expected


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("Correction to: " + ARTICLE_TITLE, "correction"),
        ("Erratum: " + ARTICLE_TITLE, "correction"),
        (ARTICLE_TITLE + " (vol 360, pg 542, 2009)", "correction"),
        ('"Rainmakers: Why bad weather means good productivity": Correction to Lee et al. (2014).', "correction"),
        ("Retraction Note: " + ARTICLE_TITLE, "retraction"),
        ("Thrombomodulin in Atypical Hemolytic-Uremic Syndrome AUTHORS REPLY", "reply"),
        ("Context and Implications Document for: " + ARTICLE_TITLE, "companion"),
        (ARTICLE_TITLE, ""),
        ("Tumour dose-response", ""),
    ],
)
def test_notices_are_recognised_at_either_end_of_a_title(raw: str, kind: str) -> None:
    assert nz.title_key(raw).notice == kind


@pytest.mark.parametrize(
    ("raw", "surnames"),
    [
        ("Zuna, R E and Wang, S S and Schiffman, M", ["zuna", "wang", "schiffman"]),
        ("Adeli K.Lewis G. F.", ["adeli", "lewis"]),  # ASySD glues names together
        ("Chaoqun Deng; T. Ravichandran", ["deng", "ravichandran"]),
        ("Zhai Q. J.; Yue X. Y.", ["zhai", "yue"]),
        ("Smith J, Jones K et al.", ["smith", "jones"]),
        ("Fremeaux-Bacchi, V.; Le Quintrec, M.", ["fremeauxbacchi", "lequintrec"]),
    ],
)
def test_author_names_in_any_order_and_format_give_surnames(raw: str, surnames: list[str]) -> None:
    assert nz.normalise_authors(raw) == surnames


def test_short_page_ranges_are_expanded() -> None:
    assert nz.normalise_pages("73-6") == nz.normalise_pages("73-76") == ("73", "76")
    assert nz.normalise_pages("376 -- 383") == ("376", "383")
    assert nz.normalise_pages("S12-4") == ("s12", "s14")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Nat Rev Nephrol", "Nature reviews. Nephrology"),
        ("N Engl J Med", "New England Journal of Medicine"),
        ("Br J Haematol", "British Journal of Haematology"),
        ("Stroke; a journal of cerebral circulation", "Stroke"),
        ("BMJ (Clinical research ed.)", "BMJ"),
        ("ICIS : Transforming Society with Digital Innovation", "International Conference on Information Systems"),
        ("Amcis 2017 Proceedings", "Americas Conference on Information Systems"),
    ],
)
def test_journal_abbreviations_match_their_full_names(a: str, b: str) -> None:
    assert nz.venues_compatible(nz.venue_key(a), nz.venue_key(b))


@pytest.mark.parametrize(
    ("a", "b"), [("Blood", "Blood Reviews"), ("Journal of Hypertension", "Hypertension"), ("Diabetologia", "Diabetes")]
)
def test_different_journals_are_not_taken_for_abbreviations(a: str, b: str) -> None:
    assert not nz.venues_compatible(nz.venue_key(a), nz.venue_key(b))


def test_years_are_read_from_any_date_text() -> None:
    assert nz.normalise_year("2019-05-01") == 2019
    assert nz.normalise_year("n.d.") is None


# --- real sets ----------------------------------------------------------------------------


def test_special_cases_set_gives_exactly_the_gold_clusters() -> None:
    raw = pd.read_csv(DATA / "special_cases_records.csv", dtype=str, keep_default_na=False)
    result = deduplicate(bibtex_frame(raw, raw["ID"], "special_cases"))
    assert pairs_of(result) == gold_pairs(DATA / "special_cases_gold.csv")
    # The conference paper of 2011 and its journal extension of 2014 stay apart, as do 2021/2022 minitracks.
    assert group_of(result, "id_0000009") == {"id_0000009"}
    assert group_of(result, "id_0000003") == {"id_0000003"}


def test_unmemoised_features_are_the_same_and_leave_the_memo_tables_alone() -> None:
    """A study's members are ranked with Features(memo=False): in the flow's process the memo tables would keep
    every record of the corpus. Same features, nothing added to the tables."""
    raw = pd.read_csv(DATA / "special_cases_records.csv", dtype=str, keep_default_na=False)
    frame = bibtex_frame(raw, raw["ID"], "special_cases")
    nz.clear_record_caches()
    plain = Features(frame, memo=False)
    memos = (nz.title_key, nz.author_key, nz.venue_key)
    assert [memo.cache_info().currsize for memo in memos] == [0, 0, 0]
    memoised = Features(frame)
    assert all(memo.cache_info().currsize for memo in memos)
    assert plain.size == memoised.size == len(frame) > 10
    assert plain.__getstate__() == memoised.__getstate__()
    assert [plain.completeness(r) for r in range(plain.size)] == [memoised.completeness(r) for r in range(plain.size)]


@pytest.mark.parametrize("name", ["stroke", "cytology_screening"])
def test_a_real_benchmark_set_has_no_false_merges(name: str) -> None:
    raw = pd.read_csv(SHARED / name / "records_pre_merged.csv", dtype=str, keep_default_na=False)
    result = deduplicate(bibtex_frame(raw, raw["ID"], name))
    predicted, gold = pairs_of(result), gold_pairs(SHARED / name / "merged_record_ids.csv")
    true_pairs = len(predicted & gold)
    assert predicted <= gold  # precision 1.0
    recall = true_pairs / len(gold)
    assert 2 * recall / (1 + recall) >= 0.99


def _trap_result() -> pd.DataFrame:
    raw = pd.read_csv(DATA / "trap_records.csv", dtype=str, keep_default_na=False)
    return deduplicate(bibtex_frame(raw, raw["set"] + ":" + raw["ID"], "trap_records.csv"))


def test_errata_corrections_and_replies_never_join_the_work_they_are_about() -> None:
    # bib-dedupe's gold labels group these notices with their articles; the rules do not.
    groups = groups_of(_trap_result())
    h = "haematology:id_000"
    assert frozenset({h + "0018", h + "0019"}) in groups  # the article, once with MEDLINE's erratum note
    assert frozenset({h + "0020", h + "0021"}) in groups  # 'Erratum: X' and 'X (vol 142, pg 310, 2003)'
    assert frozenset({h + "0057", h + "0058"}) in groups  # two spellings of one erratum
    assert frozenset({h + "0063", h + "0064", h + "0065"}) in groups
    assert frozenset({h + "0175", h + "0190"}) in groups and frozenset({h + "1173"}) in groups
    assert frozenset({h + "0180", h + "0181"}) in groups and frozenset({h + "1126"}) in groups  # letter vs reply
    d = "digital_work:id_"
    assert frozenset({d + "2006682", d + "3006970"}) in groups and frozenset({d + "3006550"}) in groups
    assert frozenset({d + "1005083"}) in groups


def test_generic_titles_and_near_identical_titles_of_different_works_stay_apart() -> None:
    groups = groups_of(_trap_result())
    for number in ("1006028", "1006029", "1006030", "1006031"):  # 'Editor's Comments', one per issue
        assert frozenset({"digital_work:id_" + number}) in groups
    h = "haematology:id_000"
    assert frozenset({h + "1377"}) in groups  # '... in Pediatric Patients ...' vs '... in Adult Patients ...'


# --- versions of one work: meeting abstract and article, retitled, republished ----------------


def _version_result() -> pd.DataFrame:
    raw = pd.read_csv(DATA / "version_records.csv", dtype=str, keep_default_na=False)
    return deduplicate(bibtex_frame(raw, raw["set"] + ":" + raw["ID"], "version_records.csv"))


def _reason(result: pd.DataFrame, own_id: str) -> str:
    return str(result.set_index("id").loc[own_id, "match_reason"])


def _maybe_reason(result: pd.DataFrame, a: str, b: str) -> str:
    pairs = result.attrs["dedupe_pairs"]
    wanted = pairs[
        ((pairs["record_id_a"] == a) & (pairs["record_id_b"] == b))
        | ((pairs["record_id_a"] == b) & (pairs["record_id_b"] == a))
    ]
    assert (wanted["status"] == "maybe").all()
    return str(wanted["reason"].iloc[0]) if len(wanted) else ""


def test_a_one_page_meeting_abstract_printed_before_the_article_in_its_journal_joins_it() -> None:
    # Pediatric Nephrology prints its society's meeting abstracts in a regular issue (22(9) p1514, 25(9) p1875),
    # months before the article (22(12) p2129-2132, 25(12) p2539-2542).
    result = _trap_result()
    h = "haematology:id_000"
    for abstract, article in (("0128", "0129"), ("0220", "0221")):
        assert group_of(result, h + abstract) == {h + abstract, h + article}
        assert "conference_version" in _reason(result, h + abstract) + _reason(result, h + article)


def test_one_page_records_printed_after_the_article_are_errata_and_stay_apart() -> None:
    # MEDLINE's note on 0117 says '[Erratum appears in Am J Transplant. 2009 Sep;9(9):2205 ...]': 0807 is that
    # erratum (same title, one page, later issue), 0808 a second one in 9(11).
    result = _version_result()
    h = "haematology:id_000"
    assert group_of(result, h + "0052") == {h + "0052", h + "0117"}
    assert group_of(result, h + "0807") == {h + "0807"}
    assert group_of(result, h + "0808") == {h + "0808"}


def test_two_records_of_one_meeting_abstract_join_whatever_their_pages_say() -> None:
    result = _version_result()
    h = "haematology:id_000"
    # Embase's 'Pediatric Nephrology.Conference: ...' twice: pages '9' (volume in the issue field) vs 1746.
    assert group_of(result, h + "0105") == {h + "0105", h + "0106"}
    # The conference supplement of Pediatric Transplantation 15 (p22) vs the same abstract indexed as p52.
    assert group_of(result, h + "1188") == {h + "1188", h + "1189"}
    assert _reason(result, h + "1189").startswith("conference_version")


def test_one_abstract_at_two_meetings_in_one_year_joins_but_a_reworded_one_a_year_earlier_does_not() -> None:
    result = _version_result()
    h = "haematology:id_000"
    # BJH 145 Suppl. 1 and Haematologica 94 Suppl. 2, 2009: the same title and authors.
    assert group_of(result, h + "0134") == {h + "0134", h + "0135"}
    assert "one abstract at two meetings" in _reason(result, h + "0134")
    assert group_of(result, h + "0873") == {h + "0873"}  # Blood 2008, a reworded title


def test_an_abstract_and_a_work_in_another_journal_or_year_are_left_to_the_reviewer() -> None:
    # The labelled sets keep these apart; the duplicates sheet shows them as 'maybe' pairs.
    result = _version_result()
    h = "haematology:id_000"
    for abstract, other, why in (
        ("0326", "0327", "journals differ"),  # Pediatric Nephrology meeting vs Molecular Immunology, 2011
        ("1262", "1263", "abstract after the article"),  # BJH 129 Suppl. 1 vs BJH 128(3) p274
    ):
        assert group_of(result, h + abstract) == {h + abstract}
        assert f"possible conference_version (not merged: {why})" in _maybe_reason(result, h + abstract, h + other)
    # Two one-page records of one journal a year apart (2012 p841, 2013 p789-790): not merged.
    assert group_of(result, "stroke:id_0000698") == {"stroke:id_0000698"}


def test_a_full_proceedings_paper_is_not_taken_for_a_meeting_abstract() -> None:
    raw = pd.read_csv(DATA / "special_cases_records.csv", dtype=str, keep_default_na=False)
    frame = bibtex_frame(raw, raw["ID"], "special_cases")
    features = Features(frame)
    rows = {own: n for n, own in enumerate(frame["id"])}
    for paper, article in (("id_0000012", "id_0000007"), ("id_0000009", "id_0000010")):
        verdict = compare(features, rows[paper], rows[article])
        assert verdict.level < MATCH and "conference_version" not in verdict.rule


def test_two_abstracts_of_one_study_on_adjacent_pages_of_one_supplement_join() -> None:
    # ASySD diabetes set: the same study as two abstracts (pp. 51 and 52 of Diabetes Metab Res Rev 30 Suppl 3),
    # each indexed four times; ASySD's gold puts all eight records in one cluster.
    raw = pd.read_csv(ASYSD, encoding="cp1252", dtype=str, keep_default_na=False, na_values=["NA"]).fillna("")
    wanted = {493, 494, 1237, 1238, 1560, 1561, 1732, 1733, 416, 497, 1156, 1241}
    rows = [
        {
            "id": f"id_{int(row['record_id']):07d}",
            "title": row["title"],
            "authors": row["author"],
            "year": int(row["year"]) if row["year"].isdigit() else None,
            "venue": row["journal"],
            "volume": row["volume"],
            "issue": row["number"],
            "pages": row["pages"],
            "doi": row["doi"],
            "abstract": row["abstract"],
        }
        for row in raw.to_dict("records")
        if int(row["record_id"]) in wanted
    ]
    result = deduplicate(frame_of(rows))
    study = {f"id_{n:07d}" for n in (493, 494, 1237, 1238, 1560, 1561, 1732, 1733)}
    assert group_of(result, "id_0000493") == study
    # An AHA 2014 abstract (Circulation 130 Suppl. 2) and the J Hypertens 2015 article: apart, as ASySD labels them.
    assert group_of(result, "id_0000416") == {"id_0000416", "id_0001156"}
    assert group_of(result, "id_0000497") == {"id_0000497", "id_0001241"}


def test_a_title_changed_between_online_first_and_print_joins_its_printed_record() -> None:
    # NEJM 2011: 'Complement Blockade in Severe Shiga-Toxin-Associated HUS' (no volume or pages) was printed as
    # 'Eculizumab in severe Shiga-toxin-associated HUS', 364(26):2561-2563, by the same five first authors.
    result = _version_result()
    h = "haematology:id_000"
    assert group_of(result, h + "0818") == {h + "0818", h + "0819"}
    assert "retitled" in _reason(result, h + "0818") + _reason(result, h + "0819")


def test_a_section_label_before_the_title_and_a_year_in_the_volume_field_are_ignored() -> None:
    assert nz.title_key("How did it ... Upwork's CEO on how an introverted engineer learned to lead").tail == (
        "upwork s ceo on how an introverted engineer learned to lead"
    )
    result = _version_result()
    d = "digital_work:id_"
    # HBR 2016: volume '2016' issue 'May' (no pages) vs volume 94 issue 5 p35+.
    assert group_of(result, d + "2002950") == {d + "2002950", d + "4002951"}


def test_one_text_printed_twice_by_one_journal_is_one_work() -> None:
    # JIT 24(1):46-54, 2009 and 25(1):56-64, 2010: two DOIs, one title, authors and 923-character abstract.
    result = _version_result()
    d = "digital_work:id_"
    assert group_of(result, d + "1003663") == {d + "1003663", d + "1003664"}
    assert _reason(result, d + "1003664").startswith(("republished", "canonical of 2 records; republished"))


def test_truncated_abstracts_of_seed_001_join_the_abstract_they_cut() -> None:
    lines = [line for line in (DATA / "seed_001_abstracts.txt").read_text(encoding="utf-8").split("\n") if line.strip()]
    result = deduplicate(
        frame_of([{"id": str(n), "abstract": line} for n, line in enumerate(lines, start=1)], "001.txt")
    )
    start = {str(n): line.replace("\u2010", "-")[:60] for n, line in enumerate(lines, start=1)}
    expected = {frozenset(k for k in start if start[k] == s) for s in set(start.values())}
    assert len(lines) == 34 and len(expected) == 13
    assert groups_of(result) == expected
    full = result.loc[result["id"] == "1"]
    assert bool(full["keep"].item())  # the longest abstract is the canonical record
    assert result.loc[result["id"] == "5", "match_reason"].item().startswith("abstract")


def test_a_truncated_abstract_is_a_prefix_of_the_full_one() -> None:
    lines = (DATA / "seed_001_abstracts.txt").read_text(encoding="utf-8").split("\n")
    full, cut = nz.abstract_key(lines[0]), nz.abstract_key(lines[5])
    assert cut[1] and full[0].startswith(cut[0])


def test_the_companion_document_of_seed_004_joins_its_article_by_doi() -> None:
    text = (DATA / "seed_004_companion.txt").read_text(encoding="utf-8")
    title = next(line.strip() for line in text.splitlines() if line.startswith("Context and Implications Document"))
    doi = re.search(r"https://doi\.org/(\S+?)>", text).group(1)
    rows = [
        {
            "id": "guide",
            "title": title,
            "doi": doi,
            "authors": "Armstrong, Paul Wilfred; Brown, Chris; Chapman, Christopher",
        },
        {
            "id": "article",
            "title": ARTICLE_TITLE,
            "doi": ARTICLE_DOI,
            "authors": "Armstrong, P. W.; Brown, C.; Chapman, C.",
            "year": 2020,
            "venue": "Review of Education",
        },
        {
            "id": "erratum",
            "title": "Correction to: " + ARTICLE_TITLE,
            "authors": "Armstrong, P. W.; Brown, C.; Chapman, C.",
            "year": 2021,
            "venue": "Review of Education",
        },
    ]
    result = deduplicate(frame_of(rows))
    assert group_of(result, "guide") == {"guide", "article"}
    assert result.set_index("id").loc["article", "keep"]
    assert result.set_index("id").loc["guide", "match_reason"].startswith("companion")
    assert group_of(result, "erratum") == {"erratum"}


def test_preprint_and_published_version_are_one_work() -> None:
    title = "Collaboration between schools and student outcomes: evidence from England"
    authors = "Sammons, P.; Chapman, C."
    rows = [
        {
            "id": "preprint",
            "title": title + ".",
            "authors": authors,
            "year": 2019,
            "doi": "10.35542/osf.io/abcde",
            "venue": "EdArXiv",
        },
        {
            "id": "article",
            "title": title,
            "authors": authors,
            "year": 2020,
            "doi": "10.1080/09243453.2020.1",
            "venue": "School Effectiveness and School Improvement",
            "volume": "31",
            "pages": "1-20",
        },
    ]
    result = deduplicate(frame_of(rows))
    assert group_of(result, "preprint") == {"preprint", "article"}


def test_same_title_in_different_years_with_different_pages_is_not_merged() -> None:
    base = {
        "title": "Perinatal asphyxia may present with features of neonatal atypical HUS",
        "authors": "Biran, V.; Fau, S.",
        "venue": "Pediatric Nephrology",
    }
    rows = [
        {"id": "abstract", **base, "year": 2007, "volume": "22", "pages": "1514"},
        {"id": "article", **base, "year": 2009, "volume": "24", "pages": "2129-2132"},
    ]
    assert len(groups_of(deduplicate(frame_of(rows)))) == 2


# --- clustering without chaining -----------------------------------------------------------


def test_a_record_matching_two_different_works_does_not_chain_them() -> None:
    title = "Networks of schools and the self-improving system"
    rows = [
        {
            "id": "2019",
            "title": title,
            "authors": "Hargreaves, D.",
            "year": 2019,
            "venue": "Oxford Review of Education",
            "volume": "45",
            "pages": "1-15",
        },
        {"id": "sparse", "title": title, "authors": "Hargreaves, D."},  # matches both: no year, no pages
        {
            "id": "2022",
            "title": title,
            "authors": "Hargreaves, D.",
            "year": 2022,
            "venue": "Oxford Review of Education",
            "volume": "48",
            "pages": "200-215",
        },
    ]
    frame = frame_of(rows)
    features = Features(frame)
    assert compare(features, 0, 1).level == MATCH and compare(features, 1, 2).level == MATCH
    assert compare(features, 0, 2).level < MATCH
    result = deduplicate(frame)
    assert group_of(result, "2019") != group_of(result, "2022")
    assert len(groups_of(result)) == 2


@pytest.mark.parametrize("name", ["trap_records.csv", "version_records.csv"])
def test_every_pair_inside_a_group_matches_or_lacks_only_evidence(name: str) -> None:
    raw = pd.read_csv(DATA / name, dtype=str, keep_default_na=False)
    frame = bibtex_frame(raw, raw["set"] + ":" + raw["ID"], name)
    result = deduplicate(frame)
    features = Features(frame)
    for _, rows in result.groupby("duplicate_group").groups.items():
        for i, j in combinations(sorted(rows), 2):
            verdict = compare(features, i, j)
            assert verdict.level == MATCH or (verdict.level == MAYBE and not verdict.doubt)


# --- output contract -----------------------------------------------------------------------


def test_result_has_one_row_per_record_and_one_canonical_record_per_group() -> None:
    result = _trap_result()
    assert list(result.columns) == ["record_id", "id", "duplicate_group", "keep", "match_reason"]
    assert len(result) == 33 and result["record_id"].is_unique
    assert (result.groupby("duplicate_group")["keep"].sum() == 1).all()
    canonical = result[result["keep"]]
    assert (canonical["duplicate_group"] == canonical["record_id"]).all()
    singletons = result.groupby("duplicate_group")["id"].transform("size") == 1
    assert (result.loc[singletons, "match_reason"] == "").all()
    assert (result.loc[~singletons, "match_reason"] != "").all()


def test_the_most_complete_record_is_kept() -> None:
    rows = [
        {"id": "bare", "title": ARTICLE_TITLE, "authors": "Armstrong, P. W.", "year": 2020},
        {
            "id": "full",
            "title": ARTICLE_TITLE,
            "authors": "Armstrong, P. W.; Brown, C.",
            "year": 2020,
            "doi": ARTICLE_DOI,
            "venue": "Review of Education",
            "abstract": "In recent years ...",
        },
    ]
    result = deduplicate(frame_of(rows)).set_index("id")
    assert result.loc["full", "keep"] and not result.loc["bare", "keep"]


# --- bad input -----------------------------------------------------------------------------


def test_empty_input_gives_an_empty_result() -> None:
    result = deduplicate(frame_of([]))
    assert result.empty and list(result.columns) == ["record_id", "id", "duplicate_group", "keep", "match_reason"]


def test_records_without_titles_or_any_field_do_not_crash_and_are_not_merged() -> None:
    rows = [
        {"id": "a"},
        {"id": "b"},
        {"id": "c", "title": "   "},
        {"id": "d", "authors": "Smith, J."},
        {"id": "e", "authors": "Smith, J."},
    ]
    result = deduplicate(frame_of(rows))
    assert len(result) == 5 and len(groups_of(result)) == 5


def test_missing_id_and_record_id_columns_fall_back_to_positions() -> None:
    frame = pd.DataFrame(
        {
            "title": [ARTICLE_TITLE, ARTICLE_TITLE.upper()],
            "authors": ["Armstrong, P. W."] * 2,
            "year": [2020, 2020],
            "doi": [ARTICLE_DOI, ""],
        }
    )
    result = deduplicate(frame)
    assert result["id"].tolist() == ["1", "2"]
    assert result["duplicate_group"].nunique() == 1


def test_non_latin_titles_are_compared_in_their_own_script() -> None:
    title = "Платформенная занятость: масштабы и признаки неустойчивости"
    rows = [
        {"id": "ru1", "title": title, "authors": "Иванов, И.", "year": 2020, "venue": "Мир новой экономики"},
        {"id": "ru2", "title": title + ".", "authors": "Иванов, И.", "year": 2020, "venue": "Мир новой экономики"},
        {"id": "zh", "title": "学校合作与教育改进", "authors": "王, 伟", "year": 2020},
    ]
    result = deduplicate(frame_of(rows))
    assert group_of(result, "ru1") == {"ru1", "ru2"} and group_of(result, "zh") == {"zh"}


def test_identical_generic_titles_of_different_works_stay_apart() -> None:
    rows = [
        {"id": str(n), "title": "Editorial", "authors": f"Author{n}, A.", "year": 2020, "venue": "Journal of Education"}
        for n in range(6)
    ]
    assert len(groups_of(deduplicate(frame_of(rows)))) == 6


def test_bad_input_raises_clear_errors() -> None:
    with pytest.raises(ReviewError, match="DataFrame"):
        deduplicate([{"title": "x"}])  # type: ignore[arg-type]
    frame = frame_of([{"id": "a", "record_id": "same"}, {"id": "b", "record_id": "same"}])
    with pytest.raises(ReviewError, match="repeat a record_id"):
        deduplicate(frame)


# --- reviewer decisions ----------------------------------------------------------------------


def _pair_frame() -> pd.DataFrame:
    return frame_of(
        [
            {"id": "a", "title": ARTICLE_TITLE, "authors": "Armstrong, P. W.", "year": 2020, "doi": ARTICLE_DOI},
            {"id": "b", "title": ARTICLE_TITLE, "authors": "Armstrong, P.", "year": 2020},
            {"id": "c", "title": "Leading school networks", "authors": "Chapman, C.", "year": 2015},
        ]
    )


def test_a_reviewer_split_wins_over_the_machine() -> None:
    decisions = pd.DataFrame({"record_id_a": ["r-a"], "record_id_b": ["r-b"], "decision": ["different"]})
    assert group_of(deduplicate(_pair_frame()), "a") == {"a", "b"}
    assert group_of(deduplicate(_pair_frame(), decisions=decisions), "a") == {"a"}


def test_a_reviewer_join_wins_over_the_machine_without_chaining_others_in() -> None:
    decisions = pd.DataFrame({"record_id_a": ["r-c"], "record_id_b": ["r-a"], "decision": ["same"]})
    result = deduplicate(_pair_frame(), decisions=decisions)
    # c joins a; b matches a but not c, so it stays out until a reviewer joins it too.
    assert group_of(result, "c") == {"a", "c"} and group_of(result, "b") == {"b"}
    assert (
        "reviewer" in result.set_index("id").loc["c", "match_reason"] + result.set_index("id").loc["a", "match_reason"]
    )
    both = pd.concat([decisions, pd.DataFrame({"record_id_a": ["r-b"], "record_id_b": ["r-c"], "decision": ["same"]})])
    assert group_of(deduplicate(_pair_frame(), decisions=both), "b") == {"a", "b", "c"}


def test_the_duplicates_sheet_round_trips_reviewer_decisions(tmp_path: Path) -> None:
    records = _pair_frame()
    result = deduplicate(records)
    sheet = duplicates_sheet(result, records)
    assert {"decision", "status", "reason", "title_a", "title_b", "record_id_a", "record_id_b"} <= set(sheet.columns)
    merged = sheet[sheet["status"] == "merged"]
    assert len(merged) == 1 and (sheet["decision"] == "").all()
    sheet.loc[merged.index, "decision"] = "Different"
    path = tmp_path / "duplicates.csv"
    sheet.to_csv(path, index=False)
    decisions = read_dedupe_decisions(path)
    assert decisions[["decision"]].to_dict("records") == [{"decision": "different"}]
    again = deduplicate(records, decisions=decisions)
    assert group_of(again, "a") == {"a"}
    # The split pair is still listed, as a 'maybe' carrying the reviewer's decision, so the sheet round-trips.
    listed = duplicates_sheet(again, records)
    row = listed[(listed["record_id_a"].isin(["r-a", "r-b"])) & (listed["record_id_b"].isin(["r-a", "r-b"]))]
    assert row[["status", "decision"]].values.tolist() == [["maybe", "different"]]


def test_candidate_pairs_report_lists_maybe_pairs_beside_merges() -> None:
    raw = pd.read_csv(DATA / "trap_records.csv", dtype=str, keep_default_na=False)
    sheet = candidate_pairs_report(bibtex_frame(raw, raw["set"] + ":" + raw["ID"], "trap_records.csv"))
    assert {"merged", "maybe"} <= set(sheet["status"])
    maybe = sheet[sheet["status"] == "maybe"]
    assert (maybe["title_a"] != "").all() and (maybe["title_b"] != "").all()
    editorial = maybe[maybe["id_a"].str.contains("10060") & maybe["id_b"].str.contains("10060")]
    assert editorial.empty  # different issues of one column are not even uncertain


def test_read_dedupe_decisions_names_the_bad_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "sheet.csv"
    pd.DataFrame({"record_id_a": ["r1", "r2"], "record_id_b": ["r3", "r4"], "decision": ["same", "perhaps"]}).to_csv(
        path, index=False
    )
    with pytest.raises(InputFileError, match=r"row 3, field 'decision'.*'perhaps'"):
        read_dedupe_decisions(path)
    pd.DataFrame({"record_id_a": ["r1"], "verdict": ["same"]}).to_csv(path, index=False)
    with pytest.raises(InputFileError, match="no 'record_id_b', 'decision' column"):
        read_dedupe_decisions(path)


def test_the_last_decision_on_a_pair_wins(tmp_path: Path) -> None:
    path = tmp_path / "sheet.csv"
    pd.DataFrame(
        {"record_id_a": ["r1", "r3", "r5"], "record_id_b": ["r3", "r1", "r6"], "decision": ["same", "different", ""]}
    ).to_csv(path, index=False)
    decisions = read_dedupe_decisions(path)
    assert decisions[["record_id_a", "record_id_b", "decision"]].values.tolist() == [["r3", "r1", "different"]]


# --- incremental mode ------------------------------------------------------------------------


def _existing_corpus() -> tuple[pd.DataFrame, pd.DataFrame]:
    old = frame_of(
        [
            {
                "id": "old1",
                "title": ARTICLE_TITLE,
                "authors": "Armstrong, P. W.; Brown, C.",
                "year": 2020,
                "doi": ARTICLE_DOI,
            },
            {
                "id": "old2",
                "title": "Leading school networks",
                "authors": "Chapman, C.",
                "year": 2015,
                "venue": "School Leadership",
                "volume": "3",
                "pages": "1-9",
            },
            {"id": "old3", "title": "Leading school networks", "authors": "Chapman, C.", "year": 2015},
        ],
        "search1.ris",
    )
    result = deduplicate(old)
    return old.merge(result[["record_id", "duplicate_group", "keep"]], on="record_id"), result


def test_new_records_join_existing_groups_which_keep_their_names() -> None:
    existing, first = _existing_corpus()
    new = frame_of(
        [
            {
                "id": "new1",
                "title": ARTICLE_TITLE.upper(),
                "authors": "Armstrong, P.",
                "year": 2020,
                "doi": "https://doi.org/" + ARTICLE_DOI,
            }
        ],
        "search2.ris",
    )
    result = deduplicate(new, existing=existing)
    assert len(result) == 4
    old_group = first.set_index("id").loc["old1", "duplicate_group"]
    assert result.set_index("id").loc["new1", "duplicate_group"] == old_group
    assert result.set_index("id").loc["old1", "keep"] and not result.set_index("id").loc["new1", "keep"]


def test_existing_groups_are_never_merged_because_a_new_record_links_them() -> None:
    existing, _ = _existing_corpus()
    # A reviewer had kept old2 and old3 apart: the existing corpus holds them in two groups.
    existing.loc[existing["id"] == "old3", ["duplicate_group", "keep"]] = ["r-old3", True]
    existing.loc[existing["id"] == "old2", ["duplicate_group", "keep"]] = ["r-old2", True]
    new = frame_of(
        [
            {
                "id": "new2",
                "title": "Leading school networks",
                "authors": "Chapman, C.",
                "year": 2015,
                "venue": "School Leadership",
            }
        ],
        "search2.ris",
    )
    result = deduplicate(new, existing=existing).set_index("id")
    assert result.loc["old2", "duplicate_group"] != result.loc["old3", "duplicate_group"]
    assert result.loc["new2", "duplicate_group"] in {"r-old2", "r-old3"}


def test_incremental_mode_does_not_compare_old_records_again() -> None:
    existing, _ = _existing_corpus()
    new = frame_of(
        [{"id": "new3", "title": "Something else entirely", "authors": "Ainscow, M.", "year": 2016}], "search2.ris"
    )
    combined = pd.concat([existing, new], ignore_index=True)
    mask = pd.Series([False] * len(existing) + [True]).to_numpy()
    pairs = candidate_pairs(Features(combined), new=mask)
    assert all(mask[i] or mask[j] for i, j in pairs.tolist())
    result = deduplicate(new, existing=existing)
    assert len(result) == 4 and result.set_index("id").loc["new3", "duplicate_group"] == "r-new3"


def test_a_record_already_in_the_corpus_is_not_counted_twice() -> None:
    existing, _ = _existing_corpus()
    result = deduplicate(frame_of([{"id": "old1", "record_id": "r-old1", "title": ARTICLE_TITLE}]), existing=existing)
    assert len(result) == 3


# --- merged record and PRISMA counts ---------------------------------------------------------


def test_merge_group_fields_fills_gaps_and_records_their_source() -> None:
    lines = (DATA / "seed_001_abstracts.txt").read_text(encoding="utf-8").split("\n")
    group = frame_of(
        [
            {"id": "cut", "title": ARTICLE_TITLE, "doi": ARTICLE_DOI, "abstract": lines[5], "year": 2020},
            {
                "id": "full",
                "title": ARTICLE_TITLE,
                "abstract": lines[0].replace("\u2010", "-"),
                "venue": "Review of Education",
            },
        ]
    )
    merged = merge_group_fields(group)
    assert merged["id"] == "cut"  # the record with a DOI is the more complete one
    assert merged["venue"] == "Review of Education" and merged["filled_from"]["venue"] == "r-full"
    assert merged["abstract"].startswith("In recent years") and merged["filled_from"]["abstract"] == "r-full"
    assert merged["merged_record_ids"] == ["r-cut", "r-full"]


def test_prisma_counts_per_source() -> None:
    records = pd.concat(
        [
            frame_of([{"id": "1", "title": ARTICLE_TITLE, "doi": ARTICLE_DOI, "database": "Scopus"}], "scopus.ris"),
            frame_of(
                [
                    {"id": "2", "title": ARTICLE_TITLE, "doi": ARTICLE_DOI},
                    {"id": "3", "title": "Leading school networks"},
                ],
                "eric.csv",
            ),
        ],
        ignore_index=True,
    )
    counts = prisma_counts(deduplicate(records), records)
    assert counts == {
        "records_identified": 3,
        "records_by_source": {"Scopus": 1, "eric.csv": 2},
        "duplicates_removed": 1,
        "studies_remaining": 2,
    }


def test_a_split_decision_breaks_an_existing_group_on_the_next_run() -> None:
    existing, first = _existing_corpus()
    assert first.set_index("id").loc["old2", "duplicate_group"] == first.set_index("id").loc["old3", "duplicate_group"]
    decisions = pd.DataFrame({"record_id_a": ["r-old2"], "record_id_b": ["r-old3"], "decision": ["different"]})
    new = frame_of(
        [{"id": "new4", "title": "Something else entirely", "authors": "Ainscow, M.", "year": 2016}], "search2.ris"
    )
    result = deduplicate(new, existing=existing, decisions=decisions).set_index("id")
    assert result.loc["old2", "duplicate_group"] != result.loc["old3", "duplicate_group"]
    assert result.loc["old1", "duplicate_group"] == first.set_index("id").loc["old1", "duplicate_group"]
