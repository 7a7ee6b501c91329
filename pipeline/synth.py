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

Scale: `build_matrix` does not copy the studies or the assignments. It validates them, works out the display order
(positions into the frames it was given) and computes the summary and the crosstabs with vectorised counts. The
wide and long forms are made on demand: `Matrix.iter_wide` / `iter_long` / `iter_studies` yield them in chunks of
rows (what the exports write, so a million studies never sit in memory twice), and the `wide`, `long` and `studies`
properties build a whole form at once (for small reviews, tests and the HTML map).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any, Protocol

import numpy as np
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
CHUNK_ROWS = 50_000  # rows per chunk when the wide, long and studies forms are streamed
TAKE_BLOCK = 65_536  # rows gathered at a time by take_rows

ASSIGNMENT_COLUMNS: list[str] = [
    "study_id", "code", "category", "direction", "evidence", "method", "confidence", "decided_by", "assignment_id"
]
_ASSIGNMENT_REQUIRED = ("study_id", "code", "evidence", "method", "confidence")
_ASSIGNMENT_DEFAULTS = {"direction": "", "decided_by": "machine", "assignment_id": "", "category": ""}
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
_LONG_STUDY_COLUMNS = ["title", "authors", "year", "doi", "countries", "design", "lens"]
_DIRECTION_VALUES = ("",) + DIRECTIONS  # direction codes: 0 = none, then DIRECTIONS in order

Row = Mapping[Any, Any]  # one record of a frame (DataFrame.to_dict("records"))


class TextColumn(Protocol):
    """A studies column kept out of memory (study_table.SpilledTexts): its texts by row of the studies frame."""

    def __len__(self) -> int: ...

    def take(self, positions: np.ndarray) -> list[str]: ...


class Matrix:
    """The evidence-synthesis matrix and everything the exports need to render it.

    Small tables are attributes: `summary` (one row per code: SUMMARY_COLUMNS), `crosstabs` (facet -> codes x facet
    values, distinct studies, plus 'total'), `codes` (CODE_COLUMNS in codebook order), `facet_values` (facet ->
    ordered column values), `title` and `version` (the codebook's). The large forms are made on demand:

        wide / iter_wide(n)        one row per study; one column per code (cell: direction, quote, who, confidence)
        long / iter_long(n)        one row per (study, code): LONG_COLUMNS
        studies / iter_studies(n)  STUDY_COLUMNS + year_band, in display order (oldest first, then title, then id)
    """

    def __init__(self, layout: _Layout, codes: pd.DataFrame, title: str = "", version: str = "") -> None:
        self._layout = layout
        self.codes = codes
        self.title = title
        self.version = version
        self.facet_values = {name: _facet_order(name, layout.labels(name)) for name in FACETS}
        self.summary = _summary(layout, codes)
        self.crosstabs = {name: _crosstab(layout, codes, name, self.facet_values[name]) for name in FACETS}

    # ------------------------------------------------------------ sizes

    @property
    def n_studies(self) -> int:
        return len(self._layout.order)

    @property
    def n_assignments(self) -> int:
        return len(self._layout.long_rows)

    @property
    def n_coded_studies(self) -> int:
        """Studies with at least one code assignment."""
        return int(np.unique(self._layout.long_rank).size)

    # ------------------------------------------------------------ whole forms (small reviews)

    @cached_property
    def studies(self) -> pd.DataFrame:
        return self.studies_at(np.arange(self.n_studies))

    @cached_property
    def long(self) -> pd.DataFrame:
        return self.long_at(np.arange(self.n_assignments))

    @cached_property
    def wide(self) -> pd.DataFrame:
        return self._wide_chunk(0, self.n_studies)

    # ------------------------------------------------------------ streamed forms

    def iter_studies(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
        """The studies in display order, `chunk_rows` at a time (at least one chunk, empty for no study)."""
        order = self._layout.order
        for start in range(0, max(len(order), 1), chunk_rows):  # an empty matrix still yields its header
            yield self.studies_at(np.arange(start, min(start + chunk_rows, len(order))))

    def iter_long(self, chunk_rows: int = CHUNK_ROWS, *, category: str | None = None) -> Iterator[pd.DataFrame]:
        """The long form in chunks; with `category`, only the rows of that category's codes (at least one chunk)."""
        rows = np.arange(self.n_assignments)
        if category is not None:
            rows = rows[self._in_category(category)]
        for start in range(0, max(len(rows), 1), chunk_rows):
            yield self.long_at(rows[start:start + chunk_rows])

    def iter_wide(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
        """The wide form, `chunk_rows` studies at a time (at least one chunk)."""
        for start in range(0, max(self.n_studies, 1), chunk_rows):
            yield self._wide_chunk(start, min(start + chunk_rows, self.n_studies))

    def count_rows(self, category: str) -> int:
        """Long-form rows of one category's codes."""
        return int(self._in_category(category).sum())

    def _in_category(self, category: str) -> np.ndarray:
        """Which long-form rows are of the category's codes."""
        return self._long_category == self._categories.get(category, -2)

    @cached_property
    def _categories(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(dict.fromkeys(self.codes["category"]))}

    @cached_property
    def _long_category(self) -> np.ndarray:
        """Each long-form row's category as its position in _categories (-1: a code without a column)."""
        of_code = np.asarray([self._categories[c] for c in self.codes["category"]] + [-1], dtype=np.int16)
        return of_code[self._layout.long_code]

    # ------------------------------------------------------------ rows by position (display order)

    def studies_at(self, ranks: np.ndarray, columns: list[str] | None = None) -> pd.DataFrame:
        """The studies at these display positions (0 = the first study of the matrix), all columns or `columns`."""
        layout = self._layout
        wanted = layout.columns if columns is None else list(columns)
        rows = layout.order[ranks]
        frame = _take(layout.studies[[c for c in wanted if c not in layout.spilled]], rows)
        for name in wanted:
            if name in layout.spilled:
                frame[name] = pd.Series(layout.spilled[name].take(rows), index=frame.index, dtype=str)
        return frame[wanted]

    def long_at(self, rows: np.ndarray) -> pd.DataFrame:
        """The long-form rows at these positions of the long form."""
        layout = self._layout
        frame = _normalised_assignments(_take(layout.assignments, layout.long_rows[rows]))
        codes = layout.long_code[rows]
        frame["category"] = _lookup(self.codes["category"], codes)
        meta = _take(layout.studies[_LONG_STUDY_COLUMNS], layout.long_study[rows])
        for column in _LONG_STUDY_COLUMNS:
            frame[column] = meta[column]
        frame["code_label"] = _lookup(self.codes["label"], codes)
        frame["origin"] = _lookup(self.codes["origin"], codes)
        return frame[LONG_COLUMNS]

    def code_rows(self) -> pd.DataFrame:
        """One row per long-form row, in its order: study (display position), code (position in `codes`, or
        len(codes) for a code the matrix has no column for), method and direction (positions in METHODS and in
        ('',) + DIRECTIONS). Integers only: what counting needs, without the text."""
        layout = self._layout
        return pd.DataFrame({"study": layout.long_rank, "code": layout.long_code, "method": layout.long_method,
                             "direction": layout.long_direction})

    def facet_pairs(self, facet: str) -> pd.DataFrame:
        """(study display position, facet value) for every study and each value it contributes, once each; the value
        as its position in facet_values[facet]."""
        labels = self._layout.labels(facet).drop_duplicates()
        return pd.DataFrame({"study": self._layout.rank[labels["study"].to_numpy()],
                             "value": pd.Index(self.facet_values[facet]).get_indexer(labels["value"])})

    def _wide_chunk(self, start: int, stop: int) -> pd.DataFrame:
        layout = self._layout
        frame = self.studies_at(np.arange(start, stop), WIDE_STUDY_COLUMNS[:-1])
        first, last = np.searchsorted(layout.long_rank, [start, stop])
        rows = np.arange(first, last)
        codes = layout.long_code[rows]
        study = layout.long_rank[rows] - start
        texts = _cell_texts(_normalised_assignments(_take(layout.assignments, layout.long_rows[rows])))
        # Rows of one (study, code) are next to each other in the long order: one cell, quotes joined by ' | '.
        key = study * (len(self.codes) + 1) + codes
        firsts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.empty(0, dtype=np.int64)
        sizes = np.diff(np.r_[firsts, len(key)])
        runs = zip(firsts.tolist(), sizes.tolist(), strict=True)
        joined = [texts[i] if n == 1 else " | ".join(texts[i:i + n]) for i, n in runs]
        grid = np.full((stop - start, len(self.codes)), "", dtype=object)
        known = codes[firsts] < len(self.codes)
        grid[study[firsts][known], codes[firsts][known]] = np.asarray(joined, dtype=object)[known]
        frame["n_codes"] = np.bincount(study[firsts], minlength=stop - start).astype("int64")
        columns = pd.DataFrame(grid, columns=list(self.codes["code"]), dtype=object)
        return pd.concat([frame.reset_index(drop=True), columns], axis=1)


# ---------------------------------------------------------------- public API


def build_matrix(
    assignments: pd.DataFrame, studies: pd.DataFrame, codebook: Codebook, *, spilled: Mapping[str, TextColumn] | None = None
) -> Matrix:
    """Build the matrix; raise ReviewError when a frame lacks a column or names an unknown study.

    `spilled`: study columns (e.g. the abstracts of a million studies) read from elsewhere by row of `studies`
    when a chunk of the matrix shows them, instead of held in `studies`.
    """
    codes = code_frame(codebook, assignments)
    spilled = dict(spilled or {})
    prepared, order = _prepare_studies(studies, spilled)
    layout = _Layout.build(prepared, order, assignments, codes)
    layout.spilled = spilled
    return Matrix(layout, codes, title=codebook.name, version=codebook.version)


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


def cell_text(row: Row) -> str:
    """One matrix cell: '[supporting] quote (rule, 0.85)'; a reviewer's code names the reviewer."""
    return _cell_text(row.get("direction"), row.get("evidence"), row["method"], row.get("decided_by"),
                      row.get("confidence"))


def crosstab_column(facet: str, value: str) -> str:
    """A facet value's column name; a value that would clash with a fixed column (a lens called 'code') is suffixed."""
    return f"{value} ({facet})" if value in _CROSSTAB_LEAD or value == "total" else value


# ---------------------------------------------------------------- preparing the inputs


def _directional(codebook: Codebook, category: str) -> bool:
    found = codebook.categories.get(category)
    return bool(found.directional) if found is not None else category == "benefits"


def _unknown_codes(codebook: Codebook, assignments: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Codes assigned (e.g. by a reviewer) that the codebook does not define: kept, marked origin 'unknown'."""
    if assignments is None or assignments.empty or "code" not in assignments.columns:
        return []
    known = set(codebook.ids())
    extra = sorted({str(c) for c in assignments["code"].dropna().unique()} - known)
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


def _text(values: pd.Series) -> pd.Series:
    """A column as text, '' for missing; a column that already is text without gaps is shared, not copied."""
    if isinstance(values.dtype, pd.StringDtype) and not values.hasnans:
        return values
    return values.fillna("").astype(str)


def _prepare_studies(studies: pd.DataFrame, spilled: Mapping[str, TextColumn]) -> tuple[pd.DataFrame, np.ndarray]:
    """(STUDY_COLUMNS + year_band in the input's row order, but for the `spilled` columns; positions of its rows
    in display order)."""
    if "study_id" not in studies.columns:
        raise _missing_columns_error("studies", ["study_id"], STUDY_COLUMNS)
    ids = studies["study_id"].astype(str).reset_index(drop=True)
    duplicated = ids[ids.duplicated()].unique().tolist()
    if duplicated:
        raise ReviewError(
            f"the studies table has {len(duplicated)} study_id(s) on more than one row (first: {duplicated[0]!r}); "
            "give one row per study."
        )
    for name, texts in spilled.items():
        if name not in STUDY_COLUMNS[1:] or name in ("year", "records") or len(texts) != len(ids):
            raise ReviewError(f"the spilled studies column {name!r} is not a text column of one row per study.")
    frame = {"study_id": ids}
    for column in STUDY_COLUMNS[1:]:
        if column in spilled:
            continue
        if column in studies.columns:
            frame[column] = studies[column].reset_index(drop=True)
        else:
            frame[column] = pd.Series(1 if column == "records" else (pd.NA if column == "year" else ""),
                                      index=ids.index)
    for column in STUDY_COLUMNS:
        if column not in ("year", "records", *spilled):
            frame[column] = _text(frame[column])
    frame["year"] = pd.to_numeric(frame["year"], errors="coerce").astype("Int64")
    frame["records"] = pd.to_numeric(frame["records"], errors="coerce").fillna(1).astype("int64")
    frame["year_band"] = _year_bands(frame["year"])
    prepared = pd.DataFrame(frame)
    # Readers scan a matrix by date: oldest first, then title; the id breaks ties so the order is total.
    keys = pd.DataFrame({"year": prepared["year"], "_title": prepared["title"].str.casefold(), "study_id": ids})
    order = keys.sort_values(["year", "_title", "study_id"], na_position="last", kind="stable").index.to_numpy()
    return prepared, order


def _year_bands(years: pd.Series, width: int = YEAR_BAND_WIDTH) -> pd.Series:
    """year_band() of every year at once."""
    start = years // width * width
    bands = start.astype(str) + "-" + (start + width - 1).astype(str)
    return bands.where(years.notna(), NO_YEAR).astype(str)


def _normalised_assignments(frame: pd.DataFrame) -> pd.DataFrame:
    """ASSIGNMENT_COLUMNS with defaults for the optional ones, text as text and confidence as a float."""
    out = {}
    for column in ASSIGNMENT_COLUMNS:
        if column == "confidence":
            out[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        elif column in frame.columns:
            out[column] = _text(frame[column])
        else:
            out[column] = pd.Series(_ASSIGNMENT_DEFAULTS[column], index=frame.index, dtype=str)
    return pd.DataFrame(out).reset_index(drop=True)


def _check_assignments(assignments: pd.DataFrame) -> None:
    missing = [c for c in _ASSIGNMENT_REQUIRED if c not in assignments.columns]
    if missing:
        raise _missing_columns_error("assignments", missing, ASSIGNMENT_COLUMNS)


def _check_values(assignments: pd.DataFrame, study_ids: pd.Series, study_pos: np.ndarray) -> None:
    unknown = sorted(set(study_ids[study_pos < 0]))
    if unknown:
        raise ReviewError(
            f"{len(unknown)} assigned study_id(s) are not in the studies table (first: {unknown[0]!r}); "
            "pass the studies table the assignments were made from."
        )
    for column, allowed in (("direction", _DIRECTION_VALUES), ("method", METHODS)):
        present = _distinct_text(assignments, column)
        bad = sorted(present - set(allowed))
        if bad:
            raise ReviewError(
                f"the assignments table has {column} {bad[0]!r}, which is not one of "
                f"{', '.join(repr(a) for a in allowed)}; correct that column."
            )


def _distinct_text(assignments: pd.DataFrame, column: str) -> set[str]:
    if column not in assignments.columns:
        return {_ASSIGNMENT_DEFAULTS[column]} if len(assignments) else set()
    return set(_text(pd.Series(assignments[column].unique(), dtype=object)))


def _codes_of(assignments: pd.DataFrame, column: str, values: tuple[str, ...]) -> np.ndarray:
    """Each row's value of a checked column as its position in `values` (int8)."""
    if column not in assignments.columns:
        return np.full(len(assignments), values.index(_ASSIGNMENT_DEFAULTS[column]), dtype=np.int8)
    return pd.Index(values).get_indexer(_text(assignments[column])).astype(np.int8)


class _Layout:
    """Where every row of the matrix comes from: positions into the studies and assignments as given."""

    def __init__(self, studies: pd.DataFrame, order: np.ndarray, assignments: pd.DataFrame) -> None:
        self.studies = studies  # STUDY_COLUMNS + year_band, input order, text normalised (but the spilled columns)
        self.columns = [*STUDY_COLUMNS, "year_band"]  # of a whole studies row
        self.spilled: dict[str, TextColumn] = {}
        self.order = order  # display position -> row of `studies`
        self.rank = np.empty(len(order), dtype=np.int64)  # row of `studies` -> display position
        self.rank[order] = np.arange(len(order))
        # as given (only checked), the columns the matrix reads
        self.assignments = assignments[[c for c in ASSIGNMENT_COLUMNS if c in assignments.columns]]
        self.long_rows = np.empty(0, dtype=np.int64)  # long position -> row of `assignments`
        self.long_study = np.empty(0, dtype=np.int64)  # long position -> row of `studies`
        self.long_rank = np.empty(0, dtype=np.int64)  # long position -> display position of its study
        self.long_code = np.empty(0, dtype=np.int64)  # long position -> row of the code frame (len: none)
        self.long_method = np.empty(0, dtype=np.int8)
        self.long_direction = np.empty(0, dtype=np.int8)
        self._labels: dict[str, pd.DataFrame] = {}

    @classmethod
    def build(cls, studies: pd.DataFrame, order: np.ndarray, assignments: pd.DataFrame,
              codes: pd.DataFrame) -> _Layout:
        _check_assignments(assignments)
        layout = cls(studies, order, assignments)
        study_ids = _text(assignments["study_id"]).reset_index(drop=True)
        study_pos = pd.Index(studies["study_id"]).get_indexer(study_ids)
        _check_values(assignments, study_ids, study_pos)
        code_pos = pd.Index(codes["code"]).get_indexer(_text(assignments["code"]))
        code_pos = np.where(code_pos < 0, len(codes), code_pos)  # no column: sorts after every code, as NaN did
        rows = _long_order(assignments, layout.rank[study_pos] * (len(codes) + 1) + code_pos)
        layout.long_rows = rows
        layout.long_study = study_pos[rows]
        layout.long_rank = layout.rank[layout.long_study]
        layout.long_code = code_pos[rows]
        layout.long_method = _codes_of(assignments, "method", METHODS)[rows]
        layout.long_direction = _codes_of(assignments, "direction", _DIRECTION_VALUES)[rows]
        return layout

    def listed(self, column: str) -> pd.DataFrame:
        """(row of `studies`, value) as the summary counts them: each value of split_list(countries), duplicates
        kept; or each non-empty design, as written."""
        if column == "countries":
            return _split_values(self.studies["countries"])
        design = self.studies["design"]
        keep = (design != "").to_numpy()
        return pd.DataFrame({"study": np.flatnonzero(keep), "value": design[keep].to_numpy(dtype=object)})

    def labels(self, facet: str) -> pd.DataFrame:
        """(row of `studies`, value) for each value each study contributes to a facet, duplicates kept (facet_labels,
        for every study at once)."""
        if facet not in self._labels:
            self._labels[facet] = _facet_table(self.studies, facet)
        return self._labels[facet]


def _long_order(assignments: pd.DataFrame, key: np.ndarray) -> np.ndarray:
    """Rows in long order: by study (display order), code (codebook order), then confidence (highest first), quote
    and assignment id; rows equal in all of these keep their input order. Nearly every (study, code) has one row, so
    only the few that share one are sorted on the text keys."""
    rows = np.argsort(key, kind="stable")
    ordered = key[rows]
    tied = np.zeros(len(rows), dtype=bool)
    if len(rows) > 1:
        same = ordered[1:] == ordered[:-1]
        tied[1:] |= same
        tied[:-1] |= same
    if not tied.any():
        return rows
    positions = np.sort(rows[tied])  # the tied rows in input order, so the stable sort keeps it for full ties
    subset = _normalised_assignments(assignments.iloc[positions])
    keys = pd.DataFrame({"key": key[positions], "confidence": subset["confidence"], "evidence": subset["evidence"],
                         "assignment_id": subset["assignment_id"]})
    resolved = keys.sort_values(["key", "confidence", "evidence", "assignment_id"],
                                ascending=[True, False, True, True], kind="stable").index.to_numpy()
    rows[np.flatnonzero(tied)] = positions[resolved]  # tied runs are contiguous and keyed alike: same slots
    return rows


def _take(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({column: take_rows(frame[column], positions) for column in frame.columns})


def take_rows(values: pd.Series, positions: np.ndarray) -> pd.Series:
    """values.take(positions) with a fresh index, in memory proportional to what is taken.

    pyarrow's take on a text column of several chunks (a Parquet file's row groups, a concat) first joins the chunks
    into one copy of the whole column: taking 10,000 abstracts from a million would cost the million's memory. Here
    each chunk gives its own rows, TAKE_BLOCK positions at a time, and the result is a column of those blocks."""
    if not (isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow") or not len(positions):
        return values.take(positions).reset_index(drop=True)
    import pyarrow as pa

    column = values.array.__arrow_array__()
    if column.num_chunks <= 1:
        return values.take(positions).reset_index(drop=True)
    offsets = np.cumsum([0] + [len(chunk) for chunk in column.chunks])
    blocks = []
    for start in range(0, len(positions), TAKE_BLOCK):
        block = np.asarray(positions[start:start + TAKE_BLOCK], dtype=np.int64)
        chunk_of = np.searchsorted(offsets, block, side="right") - 1
        by_chunk = np.argsort(chunk_of, kind="stable")
        ordered = block[by_chunk]
        parts = [column.chunk(k).take(pa.array(ordered[chunk_of[by_chunk] == k] - offsets[k]))
                 for k in np.unique(chunk_of)]
        blocks.append(pa.concat_arrays(parts).take(pa.array(np.argsort(by_chunk))))  # back to the asked order
    return pd.Series(pd.array(pa.chunked_array(blocks, type=column.type), dtype=values.dtype), name=values.name)


def _lookup(values: pd.Series, positions: np.ndarray) -> pd.Series:
    """values[positions], NaN where a position is len(values) (a code the frame has no row for)."""
    padded = pd.concat([values.reset_index(drop=True), pd.Series([np.nan], dtype=values.dtype)], ignore_index=True)
    return padded.take(positions).reset_index(drop=True)


# ---------------------------------------------------------------- cells


def _cell_text(direction: Any, evidence: Any, method: Any, name: Any, confidence: Any) -> str:
    prefix = f"[{direction}] " if direction else ""
    quote = str(evidence or "").strip() or "(no quote)"
    who = method
    if name not in ("", "machine", None):
        # A name on a machine method should not happen (the ledger makes decided codes 'reviewer'), but a
        # decision is never hidden: the name shows whatever the method says.
        who = f"reviewer {name}" if method == "reviewer" else f"{method}, decided by {name}"
    conf = "" if confidence is None or pd.isna(confidence) else f", {float(confidence):.2f}"
    return f"{prefix}{quote} ({who}{conf})"


def _cell_texts(frame: pd.DataFrame) -> list[str]:
    columns = ("direction", "evidence", "method", "decided_by", "confidence")
    return [_cell_text(*values) for values in zip(*(frame[c].tolist() for c in columns), strict=True)]


# ---------------------------------------------------------------- per-code summary


def _year_span(low: float, high: float) -> str:
    if pd.isna(low):
        return ""
    return str(int(low)) if low == high else f"{int(low)}-{int(high)}"


def _counted(counts: Mapping[str, int]) -> str:
    """'England (3); China (1)': most frequent first, then by name."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return LIST_SEPARATOR.join(f"{name} ({n})" for name, n in ordered)


def _pairs(layout: _Layout, n_codes: int, extra: np.ndarray | None = None, levels: int = 1) -> np.ndarray:
    """Distinct (code, study row[, extra]) of the long form, encoded as one integer each."""
    key = layout.long_code.astype(np.int64) * len(layout.rank) + layout.long_study
    if extra is not None:
        key = key * levels + extra
    return np.unique(key)


def _summary(layout: _Layout, codes: pd.DataFrame) -> pd.DataFrame:
    n_codes, n_studies = len(codes), len(layout.rank)
    pairs = _pairs(layout, n_codes)
    pair_code, pair_study = pairs // n_studies, pairs % n_studies
    frame = codes[["category", "code", "label", "origin"]].copy()
    frame["n_studies"] = np.bincount(pair_code, minlength=n_codes + 1)[:n_codes].astype("int64")
    per_direction = _distinct_counts(layout, layout.long_direction, len(_DIRECTION_VALUES), n_codes)
    directional = codes["directional"].to_numpy(dtype=bool)
    for i, direction in enumerate(DIRECTIONS, start=1):
        # A study counts once per direction it reports; non-directional codes have no direction counts.
        counts = [int(n) if d else pd.NA for n, d in zip(per_direction[:, i], directional, strict=True)]
        frame[direction] = pd.array(counts, dtype="Int64")
    per_method = _distinct_counts(layout, layout.long_method, len(METHODS), n_codes)
    for i, method in enumerate(METHODS):
        frame[f"by_{method}"] = per_method[:, i].astype("int64")
    years = layout.studies["year"].to_numpy(dtype="float64", na_value=np.nan)[pair_study]
    by_code = pd.DataFrame({"code": pair_code, "year": years}).groupby("code")["year"].agg(["min", "max"])
    low = by_code["min"].reindex(range(n_codes)).to_numpy()
    high = by_code["max"].reindex(range(n_codes)).to_numpy()
    frame["year_min"] = pd.array(low, dtype="Float64").astype("Int64")
    frame["year_max"] = pd.array(high, dtype="Float64").astype("Int64")
    frame["years"] = [_year_span(a, b) for a, b in zip(low, high, strict=True)]
    frame["countries"] = _counted_per_code(layout.listed("countries"), pair_code, pair_study, n_codes)
    frame["designs"] = _counted_per_code(layout.listed("design"), pair_code, pair_study, n_codes)
    frame = frame[SUMMARY_COLUMNS]
    for column in ("category", "code", "label", "origin", "years", "countries", "designs"):
        frame[column] = frame[column].astype(str)
    return frame.reset_index(drop=True)


def _distinct_counts(layout: _Layout, values: np.ndarray, levels: int, n_codes: int) -> np.ndarray:
    """[code, level] -> distinct studies of the code with a row at that level (method or direction)."""
    keys = _pairs(layout, n_codes, values.astype(np.int64), levels)
    code = keys // levels // len(layout.rank)
    level = keys % levels
    counts = np.bincount(code * levels + level, minlength=(n_codes + 1) * levels)
    return counts.reshape(n_codes + 1, levels)[:n_codes]


def _counted_per_code(values: pd.DataFrame, pair_code: np.ndarray, pair_study: np.ndarray, n_codes: int) -> list[str]:
    """For each code, _counted() of the values of its distinct studies (a value listed twice counts twice)."""
    if values.empty or not len(pair_code):
        return [""] * n_codes
    pairs = pd.DataFrame({"code": pair_code, "study": pair_study})
    joined = pairs.merge(values, on="study", how="inner")
    counts = joined.groupby(["code", "value"]).size()
    per_code: dict[int, dict[str, int]] = {}
    for (code, value), n in counts.items():
        per_code.setdefault(int(code), {})[value] = int(n)
    return [_counted(per_code.get(i, {})) for i in range(n_codes)]


# ---------------------------------------------------------------- crosstabs (frequencies by facet)


def _split_values(column: pd.Series) -> pd.DataFrame:
    """(row, value) for split_list() of every row, in order, empty parts dropped."""
    parts = column.str.split(";").explode()
    stripped = parts.str.strip()
    keep = stripped.notna() & (stripped != "")
    return pd.DataFrame({"study": stripped.index[keep].to_numpy(dtype=np.int64),
                         "value": stripped[keep].to_numpy(dtype=object)})


def _facet_table(studies: pd.DataFrame, facet: str) -> pd.DataFrame:
    """facet_labels() of every study: (row, value), 'not stated' for a study without a value."""
    column, multi, _ = FACETS[facet]
    if facet == "year_band":
        values = studies["year_band"].where(studies["year_band"] != "", NO_YEAR)
        return pd.DataFrame({"study": np.arange(len(studies)), "value": values.to_numpy(dtype=object)})
    if multi:
        found = _split_values(studies[column])
    else:
        stripped = studies[column].str.strip()
        keep = (stripped != "").to_numpy()
        found = pd.DataFrame({"study": np.flatnonzero(keep), "value": stripped[keep].to_numpy(dtype=object)})
    missing = np.setdiff1d(np.arange(len(studies)), found["study"].to_numpy())
    stated = pd.DataFrame({"study": missing, "value": NOT_STATED})
    return pd.concat([found, stated], ignore_index=True)


def _facet_order(facet: str, labels: pd.DataFrame) -> list[str]:
    """Column order: designs in the design card's order; year bands by date, every band from the first to the last
    (a stretch of years without studies shows as a gap); other values by frequency, then name."""
    counts = labels["value"].value_counts()
    values = set(counts.index)
    present = sorted(values - {NOT_STATED, NO_YEAR})
    if facet == "design":
        present = [d for d in DESIGNS if d in present] + [d for d in present if d not in DESIGNS]
    elif facet != "year_band":
        present = sorted(present, key=lambda v: (-int(counts[v]), v))
    elif present:
        starts = [int(band.split("-")[0]) for band in present]
        present = [year_band(year) for year in range(min(starts), max(starts) + 1, YEAR_BAND_WIDTH)]
    tail = [v for v in (NOT_STATED, NO_YEAR) if v in values]
    return present + tail


def _crosstab(layout: _Layout, codes: pd.DataFrame, facet: str, values: list[str]) -> pd.DataFrame:
    n_codes, n_studies = len(codes), len(layout.rank)
    pairs = _pairs(layout, n_codes)
    frame = codes[_CROSSTAB_LEAD].copy()
    labels = layout.labels(facet).drop_duplicates()
    joined = pd.DataFrame({"code": pairs // n_studies, "study": pairs % n_studies}).merge(labels, on="study")
    joined = joined[joined["code"] < n_codes]
    column_of = {value: i for i, value in enumerate(values)}
    counts = np.zeros((n_codes, len(values)), dtype=np.int64)
    if len(joined):
        grouped = joined.groupby(["code", "value"]).size()
        code_index = grouped.index.get_level_values(0).to_numpy()
        value_index = np.asarray([column_of.get(v, -1) for v in grouped.index.get_level_values(1)])
        ok = value_index >= 0
        counts[code_index[ok], value_index[ok]] = grouped.to_numpy()[ok]
    columns = {crosstab_column(facet, value): counts[:, i] for i, value in enumerate(values)}
    columns["total"] = np.bincount(pairs // n_studies, minlength=n_codes + 1)[:n_codes].astype("int64")
    return pd.concat([frame.reset_index(drop=True), pd.DataFrame(columns)], axis=1)
