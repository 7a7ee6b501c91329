"""Assignments -> the evidence-synthesis matrix: wide and long forms, per-code summaries, crosstabs by facet.

Inputs (declared columns; see `ASSIGNMENT_COLUMNS` and `STUDY_COLUMNS`):

- ``assignments``: one row per (study_id, code) from the assignment stage: the quote that justifies the code,
  the benefit direction ('' for categories without one), who or what coded it (method rule|topic|reviewer,
  decided_by 'machine' or the reviewer's name) and the confidence.
- ``studies``: one row per study (dedup group) with its bibliographic fields and its facets
  (``countries`` and ``lens`` are '; '-joined lists, ``design`` one value).
- the ``Codebook``: the code order, labels, categories (and which are directional) and origins.

The crosstabs count distinct studies per (code, facet value), as EPPI-Reviewer's crosstabs and an evidence gap
map do. A study naming two countries counts once in each country's column; a study without a value counts under
'not stated' (or 'no year'). Every codebook code is a row, so a code without evidence shows as a gap.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pipeline.codebook import CATEGORIES, DIRECTIONS, Codebook
from pipeline.errors import ReviewError

log = logging.getLogger(__name__)

LIST_SEPARATOR = "; "
METHODS: tuple[str, ...] = ("rule", "topic", "reviewer")
DESIGNS: tuple[str, ...] = (
    "review", "case_study", "mixed_methods", "quantitative", "qualitative", "conceptual", "other"
)
NOT_STATED = "not stated"
NO_YEAR = "no year"
YEAR_BAND_WIDTH = 5

ASSIGNMENT_COLUMNS: list[str] = [
    "study_id", "code", "category", "direction", "evidence", "method", "confidence", "decided_by", "assignment_id"
]
_ASSIGNMENT_REQUIRED = ("study_id", "code", "evidence", "method", "confidence")
STUDY_COLUMNS: list[str] = [
    "study_id", "title", "authors", "year", "doi", "venue", "abstract", "countries", "design", "lens", "records"
]
LONG_COLUMNS: list[str] = [
    "study_id", "title", "authors", "year", "doi", "countries", "design", "lens",
    "category", "code", "code_label", "origin", "direction", "evidence", "method", "confidence", "decided_by",
    "assignment_id",
]
WIDE_STUDY_COLUMNS: list[str] = [
    "study_id", "title", "authors", "year", "doi", "venue", "countries", "design", "lens", "n_codes"
]
SUMMARY_COLUMNS: list[str] = [
    "category", "code", "label", "origin", "n_studies", "supporting", "contrasting", "mixed",
    "by_rule", "by_topic", "by_reviewer", "year_min", "year_max", "years", "countries", "designs",
]
CODE_COLUMNS: list[str] = ["code", "category", "name", "label", "definition", "origin", "directional"]

# facet name -> (studies column, multi-valued, label shown to readers)
FACETS: dict[str, tuple[str, bool, str]] = {
    "country": ("countries", True, "Country"),
    "design": ("design", False, "Design"),
    "year_band": ("year_band", False, "Year"),
    "lens": ("lens", True, "Theoretical lens"),
}
_CROSSTAB_LEAD = ["category", "code", "label", "origin"]

Row = Mapping[Any, Any]  # one record of a frame (DataFrame.to_dict("records"))


@dataclass
class Matrix:
    """The evidence-synthesis matrix and everything the exports need to render it."""

    wide: pd.DataFrame  # one row per study; one column per code (cell: direction, quote, who, confidence)
    long: pd.DataFrame  # one row per (study, code): LONG_COLUMNS
    summary: pd.DataFrame  # one row per code: SUMMARY_COLUMNS
    crosstabs: dict[str, pd.DataFrame]  # facet -> codes x facet values (distinct studies), plus 'total'
    studies: pd.DataFrame = field(default_factory=pd.DataFrame)  # STUDY_COLUMNS + year_band, sorted
    codes: pd.DataFrame = field(default_factory=pd.DataFrame)  # CODE_COLUMNS in codebook order
    facet_values: dict[str, list[str]] = field(default_factory=dict)  # facet -> ordered column values
    title: str = ""  # the codebook's name
    version: str = ""  # the codebook's version


# ---------------------------------------------------------------- public API


def build_matrix(assignments: pd.DataFrame, studies: pd.DataFrame, codebook: Codebook) -> Matrix:
    """Build the matrix; raise ReviewError when a frame lacks a column or names an unknown study."""
    codes = code_frame(codebook, assignments)
    studies = _prepare_studies(studies)
    assignments = _prepare_assignments(assignments, studies, codes)
    long = _long(assignments, studies, codes)
    facet_values = {name: _facet_order(name, studies) for name in FACETS}
    return Matrix(
        wide=_wide(long, studies, codes),
        long=long,
        summary=_summary(long, codes),
        crosstabs={name: _crosstab(long, studies, codes, name, facet_values[name]) for name in FACETS},
        studies=studies,
        codes=codes,
        facet_values=facet_values,
        title=codebook.name,
        version=codebook.version,
    )


def code_frame(codebook: Codebook, assignments: pd.DataFrame | None = None) -> pd.DataFrame:
    """Codes in display order (category order, then codebook order); codes only the assignments name come last."""
    order = {name: i for i, name in enumerate(CATEGORIES)}
    rows = [
        {
            "code": code.id, "category": code.category, "name": code.name, "label": code.label,
            "definition": code.definition, "origin": code.origin,
            "directional": _directional(codebook, code.category),
        }
        for code in codebook.codes
    ]
    rows.extend(_unknown_codes(codebook, assignments))
    frame = pd.DataFrame(rows, columns=CODE_COLUMNS)
    frame["_cat"] = frame["category"].map(lambda c: order.get(c, len(order)))
    return frame.sort_values("_cat", kind="stable").drop(columns="_cat").reset_index(drop=True)


def year_band(year: Any, width: int = YEAR_BAND_WIDTH) -> str:
    """'2015-2019' for 2017 with width 5 (bands aligned on multiples of the width); 'no year' when missing."""
    if year is None or year is pd.NA or (isinstance(year, float) and pd.isna(year)):
        return NO_YEAR
    start = int(year) // width * width
    return f"{start}-{start + width - 1}"


def split_list(value: Any) -> list[str]:
    """'England; Wales' -> ['England', 'Wales']; empty or missing -> []."""
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(";") if part.strip()]


def facet_labels(study: Row, facet: str) -> list[str]:
    """The values a study contributes to one facet's columns ('not stated' / 'no year' when it has none)."""
    column, multi, _ = FACETS[facet]
    if facet == "year_band":
        return [str(study.get("year_band") or NO_YEAR)]
    values = split_list(study.get(column)) if multi else [str(study.get(column) or "").strip()]
    values = [v for v in values if v]
    return values or [NOT_STATED]


# ---------------------------------------------------------------- preparing the inputs


def _directional(codebook: Codebook, category: str) -> bool:
    found = codebook.categories.get(category)
    return bool(found.directional) if found is not None else category == "benefits"


def _unknown_codes(codebook: Codebook, assignments: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Codes assigned (e.g. by a reviewer) that the codebook does not define: kept, marked origin 'unknown'."""
    if assignments is None or assignments.empty or "code" not in assignments.columns:
        return []
    known = set(codebook.ids())
    extra = sorted({str(c) for c in assignments["code"].dropna()} - known)
    if extra:
        log.warning("%d assigned code(s) are not in the codebook: %s", len(extra), ", ".join(extra))
    rows = []
    for code_id in extra:
        category, _, name = code_id.partition(".")
        rows.append({
            "code": code_id, "category": category, "name": name or code_id, "label": name or code_id,
            "definition": "", "origin": "unknown", "directional": _directional(codebook, category),
        })
    return rows


def _missing_columns_error(frame_name: str, missing: list[str], expected: list[str]) -> ReviewError:
    return ReviewError(
        f"the {frame_name} table has no {', '.join(repr(c) for c in missing)} column; "
        f"give a table with the columns {', '.join(expected)}."
    )


def _prepare_studies(studies: pd.DataFrame) -> pd.DataFrame:
    if "study_id" not in studies.columns:
        raise _missing_columns_error("studies", ["study_id"], STUDY_COLUMNS)
    frame = studies.copy()
    frame["study_id"] = frame["study_id"].astype(str)
    duplicated = frame["study_id"][frame["study_id"].duplicated()].unique().tolist()
    if duplicated:
        raise ReviewError(
            f"the studies table has {len(duplicated)} study_id(s) on more than one row (first: {duplicated[0]!r}); "
            "give one row per study."
        )
    for column in STUDY_COLUMNS[1:]:
        if column not in frame.columns:
            frame[column] = 1 if column == "records" else (pd.NA if column == "year" else "")
    text_columns = [c for c in STUDY_COLUMNS if c not in ("year", "records")]
    frame[text_columns] = frame[text_columns].fillna("").astype(str)
    frame["year"] = pd.to_numeric(frame["year"], errors="coerce").astype("Int64")
    frame["records"] = pd.to_numeric(frame["records"], errors="coerce").fillna(1).astype("int64")
    frame["year_band"] = frame["year"].map(year_band)
    # Readers scan a matrix by date: oldest first, then title; the id breaks ties so the order is total.
    frame["_title"] = frame["title"].str.casefold()
    frame = frame.sort_values(["year", "_title", "study_id"], na_position="last", kind="stable")
    return frame.drop(columns="_title")[STUDY_COLUMNS + ["year_band"]].reset_index(drop=True)


def _prepare_assignments(assignments: pd.DataFrame, studies: pd.DataFrame, codes: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in _ASSIGNMENT_REQUIRED if c not in assignments.columns]
    if missing:
        raise _missing_columns_error("assignments", missing, ASSIGNMENT_COLUMNS)
    frame = assignments.copy()
    for column, default in (("direction", ""), ("decided_by", "machine"), ("assignment_id", ""), ("category", "")):
        if column not in frame.columns:
            frame[column] = default
    text_columns = [c for c in ASSIGNMENT_COLUMNS if c != "confidence"]
    frame[text_columns] = frame[text_columns].fillna("").astype(str)
    frame["confidence"] = pd.to_numeric(frame["confidence"], errors="coerce").astype("float64")
    # The codebook decides a code's category; a stale category in the input must not split a code in two.
    frame["category"] = frame["code"].map(dict(zip(codes["code"], codes["category"], strict=True)))
    _check_values(frame, studies)
    return frame[ASSIGNMENT_COLUMNS]


def _check_values(frame: pd.DataFrame, studies: pd.DataFrame) -> None:
    unknown = sorted(set(frame["study_id"]) - set(studies["study_id"]))
    if unknown:
        raise ReviewError(
            f"{len(unknown)} assigned study_id(s) are not in the studies table (first: {unknown[0]!r}); "
            "pass the studies table the assignments were made from."
        )
    checks = (("direction", ("",) + DIRECTIONS), ("method", METHODS))
    for column, allowed in checks:
        bad = sorted(set(frame[column]) - set(allowed))
        if bad:
            raise ReviewError(
                f"the assignments table has {column} {bad[0]!r}, which is not one of "
                f"{', '.join(repr(a) for a in allowed)}; correct that column."
            )


# ---------------------------------------------------------------- the matrix forms


def _long(assignments: pd.DataFrame, studies: pd.DataFrame, codes: pd.DataFrame) -> pd.DataFrame:
    meta = studies[["study_id", "title", "authors", "year", "doi", "countries", "design", "lens"]]
    code_meta = codes[["code", "label", "origin"]].rename(columns={"label": "code_label"})
    frame = assignments.merge(meta, on="study_id", how="left").merge(code_meta, on="code", how="left")
    study_rank = {sid: i for i, sid in enumerate(studies["study_id"])}
    code_rank = {cid: i for i, cid in enumerate(codes["code"])}
    frame["_s"] = frame["study_id"].map(study_rank)
    frame["_c"] = frame["code"].map(code_rank)
    frame = frame.sort_values(["_s", "_c", "confidence", "evidence", "assignment_id"],
                              ascending=[True, True, False, True, True], kind="stable")
    frame["year"] = frame["year"].astype("Int64")
    return frame[LONG_COLUMNS].reset_index(drop=True)


def cell_text(row: Row) -> str:
    """One matrix cell: '[supporting] quote (rule, 0.85)'; a reviewer's code names the reviewer."""
    direction = f"[{row['direction']}] " if row.get("direction") else ""
    quote = str(row.get("evidence") or "").strip() or "(no quote)"
    who = row["method"]
    name = row.get("decided_by")
    if name not in ("", "machine", None):
        # A name on a machine method should not happen (the ledger makes decided codes 'reviewer'), but a
        # decision is never hidden: the name shows whatever the method says.
        who = f"reviewer {name}" if row["method"] == "reviewer" else f"{row['method']}, decided by {name}"
    confidence = row.get("confidence")
    conf = "" if confidence is None or pd.isna(confidence) else f", {float(confidence):.2f}"
    return f"{direction}{quote} ({who}{conf})"


def _wide(long: pd.DataFrame, studies: pd.DataFrame, codes: pd.DataFrame) -> pd.DataFrame:
    frame = studies[[c for c in WIDE_STUDY_COLUMNS if c != "n_codes"]].copy()
    cells: dict[tuple[str, str], list[str]] = {}
    for row in long.to_dict("records"):
        cells.setdefault((row["study_id"], row["code"]), []).append(cell_text(row))
    n_codes = long.groupby("study_id")["code"].nunique()
    frame["n_codes"] = frame["study_id"].map(n_codes).fillna(0).astype("int64")
    columns = {
        code: [" | ".join(cells.get((sid, code), [])) for sid in frame["study_id"]] for code in codes["code"]
    }
    return pd.concat([frame.reset_index(drop=True), pd.DataFrame(columns, dtype=object)], axis=1)


def _year_span(years: pd.Series) -> str:
    if not len(years):
        return ""
    low, high = int(years.min()), int(years.max())
    return str(low) if low == high else f"{low}-{high}"


def _counted(values: list[str]) -> str:
    """'England (3); China (1)': most frequent first, then by name."""
    counts = pd.Series(values, dtype=object).value_counts()
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return LIST_SEPARATOR.join(f"{name} ({n})" for name, n in ordered)


def _summary(long: pd.DataFrame, codes: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for code in codes.to_dict("records"):
        rows.append(_summary_row(code, long[long["code"] == code["code"]]))
    frame = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    int_columns = ["supporting", "contrasting", "mixed", "year_min", "year_max"]
    frame[int_columns] = frame[int_columns].astype("Int64")
    return frame


def _summary_row(code: Row, rows: pd.DataFrame) -> dict[str, Any]:
    per_study = rows.drop_duplicates("study_id")
    years = per_study["year"].dropna()
    out: dict[str, Any] = {
        "category": code["category"], "code": code["code"], "label": code["label"], "origin": code["origin"],
        "n_studies": int(per_study.shape[0]),
        "year_min": int(years.min()) if len(years) else pd.NA,
        "year_max": int(years.max()) if len(years) else pd.NA,
        "years": _year_span(years),
        "countries": _counted([c for v in per_study["countries"] for c in split_list(v)]),
        "designs": _counted([d for d in per_study["design"] if d]),
    }
    for method in METHODS:
        out[f"by_{method}"] = int(rows.loc[rows["method"] == method, "study_id"].nunique())
    for direction in DIRECTIONS:
        # A study counts once per direction it reports; non-directional codes have no direction counts.
        n = rows.loc[rows["direction"] == direction, "study_id"].nunique()
        out[direction] = int(n) if code["directional"] else pd.NA
    return out


# ---------------------------------------------------------------- crosstabs (frequencies by facet)


def _facet_order(facet: str, studies: pd.DataFrame) -> list[str]:
    """Column order: designs in the design card's order; year bands by date, every band from the first to the last
    (a stretch of years without studies shows as a gap); other values by frequency, then name."""
    values = [v for study in studies.to_dict("records") for v in facet_labels(study, facet)]
    present = sorted(set(values) - {NOT_STATED, NO_YEAR})
    if facet == "design":
        present = [d for d in DESIGNS if d in present] + [d for d in present if d not in DESIGNS]
    elif facet != "year_band":
        counts = pd.Series(values, dtype=object).value_counts()
        present = sorted(present, key=lambda v: (-int(counts[v]), v))
    elif present:
        starts = [int(band.split("-")[0]) for band in present]
        present = [year_band(year) for year in range(min(starts), max(starts) + 1, YEAR_BAND_WIDTH)]
    tail = [v for v in (NOT_STATED, NO_YEAR) if v in values]
    return present + tail


def crosstab_column(facet: str, value: str) -> str:
    """A facet value's column name; a value that would clash with a fixed column (a lens called 'code') is suffixed."""
    return f"{value} ({facet})" if value in _CROSSTAB_LEAD or value == "total" else value


def _crosstab(
    long: pd.DataFrame, studies: pd.DataFrame, codes: pd.DataFrame, facet: str, values: list[str]
) -> pd.DataFrame:
    by_study = {s["study_id"]: facet_labels(s, facet) for s in studies.to_dict("records")}
    counts: dict[tuple[str, str], set[str]] = {}
    for study_id, code in long[["study_id", "code"]].drop_duplicates().itertuples(index=False):
        for value in by_study[study_id]:
            counts.setdefault((code, value), set()).add(study_id)
    frame = codes[_CROSSTAB_LEAD].copy()
    for value in values:
        frame[crosstab_column(facet, value)] = [len(counts.get((code, value), ())) for code in frame["code"]]
    totals = long.groupby("code")["study_id"].nunique()
    frame["total"] = frame["code"].map(totals).fillna(0).astype("int64")
    return frame.reset_index(drop=True)
