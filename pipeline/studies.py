"""Studies: one row per duplicate group, the canonical record merged with its duplicates, plus facets."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipeline.facets import study_facets
from pipeline.records import LIST_SEPARATOR
from pipeline.synth import take_rows

STUDY_COLUMNS = [
    "study_id",
    "title",
    "authors",
    "year",
    "doi",
    "venue",
    "abstract",
    "flags",
    "records",
    "record_ids",
    "sources",
    "countries",
    "design",
    "lens",
]
_FIELD_COLUMNS = [c for c in STUDY_COLUMNS if c not in ("countries", "design", "lens")]
MERGE_BATCH = 20_000  # records merged (and texts read for facets) at a time


def build_studies(records: pd.DataFrame, groups: pd.DataFrame, *, lenses: dict[str, Any] | None = None) -> pd.DataFrame:
    """Merge each duplicate group into its study; `study_id` is the group id (its canonical record_id).

    Most groups hold one record, which is its own study: those are taken column by column, without copying a text
    column twice. Groups of two or more go through pipeline.dedupe.merge_group_fields, MERGE_BATCH records at a
    time. Facets are read from every study's title and abstract (pipeline.facets: ~0.2 ms a study).
    """
    if records.empty:
        return pd.DataFrame(columns=STUDY_COLUMNS)
    members = _members(records, groups)
    sizes = members["duplicate_group"].map(members["duplicate_group"].value_counts()).to_numpy()
    single, multi = members[sizes == 1], members[sizes > 1]
    merged = _merged_studies(records, multi)
    ids = np.concatenate([single["duplicate_group"].to_numpy(dtype=object), merged["study_id"].to_numpy(dtype=object)])
    order = np.argsort(ids, kind="stable")
    # Each column is taken once, in study order, from the records' column followed by the merged studies' column.
    source_rows = np.concatenate([single["row"].to_numpy(), len(records) + np.arange(len(merged))])[order]
    studies = {"study_id": pd.Series(ids[order], dtype=str)}
    for column, values in _single_columns(records).items():
        studies[column] = take_rows(pd.concat([values, merged[column]], ignore_index=True), source_rows)
    untitled = (studies["title"] == "").to_numpy()  # only a single record can lack a title here
    if untitled.any():
        studies["title"] = studies["title"].copy()
        studies["title"][untitled] = [_untitled(a) for a in studies["abstract"][untitled]]
    studies.update(_facet_columns(studies["title"], studies["abstract"], lenses))
    frame = pd.DataFrame(studies)[STUDY_COLUMNS]
    frame["year"] = pd.to_numeric(frame["year"], errors="coerce").astype("Int64")
    return frame


def _members(records: pd.DataFrame, groups: pd.DataFrame) -> pd.DataFrame:
    """(row of `records`, duplicate_group, keep) for every record in a group, in the records' order (the inner join of
    the two tables, without copying the records' text)."""
    rows = pd.DataFrame({"row": np.arange(len(records)), "record_id": records["record_id"].to_numpy()})
    joined = rows.merge(groups[["record_id", "duplicate_group", "keep"]], on="record_id", how="inner")
    return joined[joined["duplicate_group"].notna()][["row", "duplicate_group", "keep"]].reset_index(drop=True)


def _single_columns(records: pd.DataFrame) -> dict[str, pd.Series]:
    """Every record as the study of its own group (what merge_group_fields and _study_fields make of one record),
    the study fields as columns aligned with `records`."""
    from pipeline.dedupe.normalise import text  # how merge_group_fields reads a record id

    columns = {name: _text_column(records[name]) for name in ("title", "authors")}
    columns["year"] = pd.to_numeric(records["year"], errors="coerce").astype("Int64").reset_index(drop=True)
    columns.update({name: _text_column(records[name]) for name in ("doi", "venue", "abstract", "flags")})
    columns["records"] = pd.Series(np.ones(len(records), dtype="int64"))
    columns["record_ids"] = pd.Series([text(v) for v in records["record_id"].tolist()], dtype=str)
    columns["sources"] = _text_column(records["source_file"])
    return columns


def _merged_studies(records: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    """Groups of two records or more, merged one by one, MERGE_BATCH records at a time (as plain Python values:
    pandas' per-cell access to Arrow-backed text is what a merge would otherwise spend its time on)."""
    from pipeline.dedupe import merge_group_fields

    members = members.sort_values("duplicate_group", kind="stable")  # a group's records stay in the records' order
    group_ids = members["duplicate_group"].to_numpy(dtype=object)
    starts = np.flatnonzero(np.r_[True, group_ids[1:] != group_ids[:-1]]) if len(group_ids) else np.empty(0, int)
    rows = []
    for batch in _batches(starts, len(members)):
        part = members.iloc[batch]
        frame = records.take(part["row"].to_numpy()).reset_index(drop=True).astype(object)
        frame["duplicate_group"] = part["duplicate_group"].to_numpy(dtype=object)
        frame["keep"] = part["keep"].to_numpy()  # merge_group_fields takes the kept record as canonical
        for group_id, group in frame.groupby("duplicate_group", sort=True):
            rows.append(_study_fields(str(group_id), merge_group_fields(group), group))
    merged = pd.DataFrame(rows, columns=_FIELD_COLUMNS)
    merged["year"] = pd.to_numeric(merged["year"], errors="coerce").astype("Int64")
    for column in _FIELD_COLUMNS:
        if column not in ("year", "records"):
            merged[column] = merged[column].astype(str)
    return merged.astype({"records": "int64"})


def _batches(starts: np.ndarray, total: int) -> list[slice]:
    """Slices of about MERGE_BATCH rows that never split a group (`starts`: where each group begins)."""
    bounds = [0]
    for start in starts.tolist():
        if start - bounds[-1] >= MERGE_BATCH:
            bounds.append(start)
    bounds.append(total)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def _study_fields(group_id: str, study: dict[str, Any], group: pd.DataFrame) -> dict[str, Any]:
    abstract = _text(study.get("abstract"))
    return {
        "study_id": group_id,
        "title": _text(study.get("title")) or _untitled(abstract),
        "authors": _text(study.get("authors")),
        "year": study.get("year"),
        "doi": _text(study.get("doi")),
        "venue": _text(study.get("venue")),
        "abstract": abstract,
        "flags": _text(study.get("flags")),  # the canonical record's: a duplicate's flags do not describe it
        "records": len(group),
        "record_ids": LIST_SEPARATOR.join(study["merged_record_ids"]),
        "sources": LIST_SEPARATOR.join(sorted({_text(v) for v in group["source_file"]})),
    }


def _facet_columns(titles: pd.Series, abstracts: pd.Series, lenses: dict[str, Any] | None) -> dict[str, pd.Series]:
    """countries, design and lens of every study, from its title and abstract (pipeline.facets); the texts are
    read MERGE_BATCH at a time (a million abstracts as Python strings would double their memory)."""
    columns: dict[str, list[str]] = {"countries": [], "design": [], "lens": []}
    for start in range(0, len(titles), MERGE_BATCH):
        chunk = zip(titles[start:start + MERGE_BATCH].tolist(), abstracts[start:start + MERGE_BATCH].tolist(),
                    strict=True)
        for title, abstract in chunk:
            facets = study_facets(title, abstract, lenses=lenses)
            columns["countries"].append(LIST_SEPARATOR.join(facets.get("countries", [])))
            columns["design"].append(_text(facets.get("design")))
            columns["lens"].append(LIST_SEPARATOR.join(facets.get("lenses", [])))
    return {name: pd.Series(values, dtype=str) for name, values in columns.items()}


def _untitled(abstract: str, words: int = 12) -> str:
    """A record without a title (a pasted abstract) is shown by its opening words, marked as such."""
    opening = " ".join(abstract.split()[:words])
    return f"[no title] {opening}…" if opening else "[no title]"


def _text_column(values: pd.Series) -> pd.Series:
    """_text() of every value: '' for a missing one (a text column without gaps is shared, not copied)."""
    if isinstance(values.dtype, pd.StringDtype) and not values.hasnans:
        return values.reset_index(drop=True)
    return values.fillna("").astype(str).reset_index(drop=True)


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return ""
    return str(value)
