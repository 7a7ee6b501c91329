"""Deduplication: records -> groups of records that are the same work, every merge explained and reversible.

deduplicate(records, *, decisions=None, existing=None, index=None) -> DataFrame
    one row per record: record_id, id, duplicate_group, keep, match_reason
DedupeIndex
    features, blocking keys and group links of a deduplicated corpus, saved between runs
    (DedupeIndex.load(path) / index.save(path)), so that a run on new records compares only pairs touching them
duplicates_sheet(result, records) -> DataFrame
    every merge and every 'maybe' pair side by side, with an empty `decision` column
iter_duplicates_sheet(result, records) -> Iterator[DataFrame]
    the same sheet in consecutive parts (SHEET_COLUMNS), to write a large one without holding it whole
candidate_pairs_report(records, *, decisions=None, existing=None) -> DataFrame
    the same sheet straight from records
read_dedupe_decisions(path) -> DataFrame
    a filled-in sheet read back and checked (record_id_a, record_id_b, decision)
merge_group_fields(group) -> dict
    the canonical record of a group, empty fields filled from the others (sources kept)
prisma_counts(result, records) -> dict
    records identified (per source), duplicates removed, studies remaining
"""

from pipeline.dedupe.decisions import read_dedupe_decisions
from pipeline.dedupe.engine import PAIRS_ATTR, RESULT_COLUMNS, deduplicate
from pipeline.dedupe.index import DedupeIndex
from pipeline.dedupe.report import (
    SHEET_COLUMNS,
    candidate_pairs_report,
    duplicates_sheet,
    iter_duplicates_sheet,
    merge_group_fields,
    prisma_counts,
)

__all__ = [
    "DedupeIndex",
    "PAIRS_ATTR",
    "RESULT_COLUMNS",
    "SHEET_COLUMNS",
    "candidate_pairs_report",
    "deduplicate",
    "duplicates_sheet",
    "iter_duplicates_sheet",
    "merge_group_fields",
    "prisma_counts",
    "read_dedupe_decisions",
]
