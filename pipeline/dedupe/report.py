"""What a reviewer sees of the dedupe stage: the duplicates sheet, the merged study record, PRISMA counts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from pipeline.dedupe.engine import PAIRS_ATTR, deduplicate, prepare_records
from pipeline.dedupe.normalise import abstract_key, text
from pipeline.dedupe.scoring import Features
from pipeline.errors import ReviewError
from pipeline.frames import member_of

SHEET_FIELDS = ("id", "title", "authors", "year", "doi", "venue", "source_file")
SHEET_COLUMNS = [
    "decision",
    "status",
    "reason",
    "score",
    *[f"{field}_{side}" for field in SHEET_FIELDS for side in ("a", "b")],
    "record_id_a",
    "record_id_b",
]
_MERGE_SKIP = {"record_id", "id", "position", "source_file", "source_format", "duplicate_group", "keep", "match_reason"}


SHEET_CHUNK_PAIRS = 50_000  # pairs put side by side at a time by iter_duplicates_sheet


def duplicates_sheet(result: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """Every merge (each member beside its group's canonical record) and every uncertain pair, side by side.

    `result` is what `deduplicate` returned for `records` (its pairs travel in `result.attrs`).
    A reviewer writes 'same' or 'different' in `decision`; `read_dedupe_decisions` reads the sheet back.
    """
    parts = list(iter_duplicates_sheet(result, records))
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def iter_duplicates_sheet(
    result: pd.DataFrame, records: pd.DataFrame, chunk_pairs: int = SHEET_CHUNK_PAIRS
) -> Iterator[pd.DataFrame]:
    """duplicates_sheet in consecutive parts of at most `chunk_pairs` rows (at least one part), so the sheet of a
    million records (~600,000 pairs, ~0.8 GB as a frame) can be written without ever being held whole."""
    pairs = result.attrs.get(PAIRS_ATTR)
    if pairs is None:
        raise ReviewError(
            "This dedupe result carries no pairs (it was copied or reloaded); "
            "run deduplicate again, or use candidate_pairs_report."
        )
    if not len(pairs):
        yield pd.DataFrame([], columns=SHEET_COLUMNS)
        return
    # merges first, then uncertain pairs, each by falling score (stable: ties keep the pairs' order)
    rank = pairs["status"].map({"merged": 0, "maybe": 1}).fillna(2)
    ordered = pairs.assign(_rank=rank).sort_values(["_rank", "score"], ascending=[True, False], kind="stable")
    fields = _SheetFields(records, result)
    for start in range(0, len(ordered), chunk_pairs):
        yield _side_by_side(ordered.iloc[start : start + chunk_pairs], fields).set_axis(
            pd.RangeIndex(start, start + min(chunk_pairs, len(ordered) - start))
        )


def _side_by_side(pairs: pd.DataFrame, fields: _SheetFields) -> pd.DataFrame:
    """The pairs with both records' sheet fields, in the pairs' order."""
    lookup = fields.of(set(pairs["record_id_a"].tolist()) | set(pairs["record_id_b"].tolist()))
    sheet = pairs[["record_id_a", "record_id_b", "status", "reason", "score"]].reset_index(drop=True)
    sheet["decision"] = pairs["decision"].to_numpy() if "decision" in pairs.columns else ""
    for side in ("a", "b"):
        named = lookup.rename(columns={f: f"{f}_{side}" for f in SHEET_FIELDS} | {"record_id": f"record_id_{side}"})
        sheet = sheet.merge(named, on=f"record_id_{side}", how="left")  # a left merge keeps the pairs' order
    for column in SHEET_COLUMNS:
        if column != "score":
            sheet[column] = sheet[column].fillna("")  # a record of neither the records nor the result
    return sheet[SHEET_COLUMNS]


def candidate_pairs_report(
    records: pd.DataFrame, *, decisions: pd.DataFrame | None = None, existing: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The duplicates sheet straight from records (runs `deduplicate`)."""
    result = deduplicate(records, decisions=decisions, existing=existing)
    sheet = duplicates_sheet(result, records)
    if existing is not None and len(existing):
        old = duplicates_sheet(result, prepare_records(existing, "existing records"))
        sheet = sheet.where(sheet != "", old)  # fill the existing records' side from the existing corpus
    return sheet


class _SheetFields:
    """The sheet fields (as text) of records, looked up a few pairs' worth at a time: the record ids and ids are
    prepare_records' (made from positions where missing); no other column of the corpus is copied whole."""

    def __init__(self, records: pd.DataFrame, result: pd.DataFrame) -> None:
        self._records = records.reset_index(drop=True)
        self._ids = prepare_records(records, "records", columns=())  # record_id and id only
        self._result = result

    def of(self, wanted: set[str]) -> pd.DataFrame:
        """One row per record_id in `wanted`; a record of the result missing from the records shows only its id."""
        rows = np.flatnonzero(member_of(self._ids["record_id"], wanted))
        table: dict[str, list[Any]] = {"record_id": self._ids["record_id"].take(rows).tolist()}
        for field in SHEET_FIELDS:
            source = self._ids if field == "id" else self._records
            values = source[field].take(rows).tolist() if field in source.columns else [""] * len(rows)
            table[field] = [text(value) for value in values]
        known = set(table["record_id"])
        missing = self._result[member_of(self._result["record_id"], wanted - known)]
        for key, own_id in zip(missing["record_id"].tolist(), missing["id"].tolist(), strict=True):
            if key not in known:
                known.add(key)
                table["record_id"].append(key)
                for field in SHEET_FIELDS:
                    table[field].append(own_id if field == "id" else "")
        return pd.DataFrame(table, columns=["record_id", *SHEET_FIELDS])


def merge_group_fields(group: pd.DataFrame) -> dict[str, Any]:
    """The canonical record of one duplicate group, its empty fields filled from the other records.

    The canonical record is the row with keep == True if there is one, else the most complete row.
    A truncated abstract ('...') is replaced by a full one it is a prefix of. Returns the record's fields plus
    `merged_record_ids` (all rows, canonical first) and `filled_from` ({field: record_id of the source}).
    """
    if group is None or len(group) == 0:
        raise ReviewError("merge_group_fields needs at least one record; pass the rows of one duplicate group.")
    frame = group.reset_index(drop=True)
    order = _merge_order(frame)
    ids = [text(v) for v in frame["record_id"]] if "record_id" in frame.columns else [str(i) for i in range(len(frame))]
    canonical = order[0]
    merged: dict[str, Any] = {k: v for k, v in frame.iloc[canonical].to_dict().items()}
    filled: dict[str, str] = {}
    for field in frame.columns:
        if field in _MERGE_SKIP:
            continue
        if _empty(merged.get(field)):
            for row in order[1:]:
                value = frame.at[row, field]
                if not _empty(value):
                    merged[field] = value
                    filled[field] = ids[row]
                    break
    _complete_abstract(frame, order, ids, merged, filled)
    merged["merged_record_ids"] = [ids[r] for r in order]
    merged["filled_from"] = filled
    return merged


def _merge_order(frame: pd.DataFrame) -> list[int]:
    features = Features(frame, memo=False)
    keep = (
        [str(v).strip().lower() in {"true", "1"} for v in frame["keep"]]
        if "keep" in frame.columns
        else [False] * len(frame)
    )
    return sorted(range(len(frame)), key=lambda r: (not keep[r], -features.completeness(r), r))


def _complete_abstract(
    frame: pd.DataFrame, order: list[int], ids: list[str], merged: dict[str, Any], filled: dict[str, str]
) -> None:
    if "abstract" not in frame.columns:
        return
    current, truncated = abstract_key(merged.get("abstract"))
    if not truncated:
        return
    for row in order[1:]:
        other, _ = abstract_key(frame.at[row, "abstract"])
        if len(other) > len(current) and other.startswith(current):
            merged["abstract"] = frame.at[row, "abstract"]
            filled["abstract"] = ids[row]
            return


def _empty(value: object) -> bool:
    return text(value) == ""


def prisma_counts(result: pd.DataFrame, records: pd.DataFrame | None = None) -> dict[str, Any]:
    """Counts for the PRISMA flow diagram's identification box.

    records_identified: all records; records_by_source: per database (or file when the export names no
    database); duplicates_removed: records that are not their group's canonical record; studies_remaining: groups.
    """
    identified = len(result)
    groups = int(result["duplicate_group"].nunique()) if identified else 0
    by_source: dict[str, int] = {}
    if records is not None and len(records):
        source = _source_column(records)
        keys = records["record_id"].astype(str) if "record_id" in records.columns else result["record_id"]
        source_of = dict(zip(keys, source, strict=True))
        for record_id in result["record_id"]:
            name = source_of.get(record_id, "unknown")
            by_source[name] = by_source.get(name, 0) + 1
    return {
        "records_identified": identified,
        "records_by_source": dict(sorted(by_source.items())),
        "duplicates_removed": identified - groups,
        "studies_remaining": groups,
    }


def _source_column(records: pd.DataFrame) -> list[str]:
    database = [text(v) for v in records["database"]] if "database" in records.columns else [""] * len(records)
    files = [text(v) for v in records["source_file"]] if "source_file" in records.columns else [""] * len(records)
    return [d or f or "unknown" for d, f in zip(database, files, strict=True)]
