"""Studies: one row per duplicate group, the canonical record merged with its duplicates, plus facets."""

from __future__ import annotations

from typing import Any

import pandas as pd

from pipeline.facets import study_facets
from pipeline.records import LIST_SEPARATOR

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


def build_studies(records: pd.DataFrame, groups: pd.DataFrame, *, lenses: dict[str, Any] | None = None) -> pd.DataFrame:
    """Merge each duplicate group into its study; `study_id` is the group id (its canonical record_id)."""
    from pipeline.dedupe import merge_group_fields

    if records.empty:
        return pd.DataFrame(columns=STUDY_COLUMNS)
    merged = records.merge(groups[["record_id", "duplicate_group", "keep"]], on="record_id", how="inner")
    rows = []
    for group_id, group in merged.groupby("duplicate_group", sort=True):
        study = merge_group_fields(group)
        rows.append(_study_row(str(group_id), study, group, lenses))
    studies = pd.DataFrame(rows, columns=STUDY_COLUMNS)
    studies["year"] = pd.to_numeric(studies["year"], errors="coerce").astype("Int64")
    return studies.sort_values("study_id", kind="stable").reset_index(drop=True)


def _study_row(group_id: str, study: dict[str, Any], group: pd.DataFrame, lenses: dict[str, Any] | None) -> dict[str, Any]:
    abstract = _text(study.get("abstract"))
    title = _text(study.get("title")) or _untitled(abstract)
    facets = study_facets(title, abstract, lenses=lenses)
    return {
        "study_id": group_id,
        "title": title,
        "authors": _text(study.get("authors")),
        "year": study.get("year"),
        "doi": _text(study.get("doi")),
        "venue": _text(study.get("venue")),
        "abstract": abstract,
        "flags": _text(study.get("flags")),  # the canonical record's: a duplicate's flags do not describe it
        "records": len(group),
        "record_ids": LIST_SEPARATOR.join(study["merged_record_ids"]),
        "sources": LIST_SEPARATOR.join(sorted({_text(v) for v in group["source_file"]})),
        "countries": LIST_SEPARATOR.join(facets.get("countries", [])),
        "design": _text(facets.get("design")),
        "lens": LIST_SEPARATOR.join(facets.get("lenses", [])),
    }


def _untitled(abstract: str, words: int = 12) -> str:
    """A record without a title (a pasted abstract) is shown by its opening words, marked as such."""
    opening = " ".join(abstract.split()[:words])
    return f"[no title] {opening}…" if opening else "[no title]"


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return ""
    return str(value)
