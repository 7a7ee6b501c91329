"""The agreement tables (pipeline.agreement.agreement_report) as the exports show them: which tables, in what
order, under what title, and how their figures read.

`agreement` is a mapping of table name -> DataFrame. Known tables (reviewer_pairs, reviewers_all,
machine_vs_reviewers, rule_precision, code_precision) come first in that order, with a title and a note; any other
table follows in the mapping's order under a title made from its name.

Before any reviewer decision the report still lists the machine's codes per code (code_precision, all counts 0);
`shown_tables` treats a report whose count columns are all 0 as "no reviewer decisions yet", so the exports show
that line instead of a table of zeros.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from pipeline.errors import ReviewError

NO_DECISIONS = ("No reviewer decisions yet: import a review sheet (review sheet import) to see agreement and "
                "rule precision here.")
UNDEFINED = "n/a"
UNDEFINED_NOTE = ("n/a: undefined (fewer than two items, or one value used throughout). '(all codes)' rows give "
                  "the overall figure; the rows after it give each code.")
# name -> (title, what the table says)
TABLES: dict[str, tuple[str, str]] = {
    "reviewer_pairs": (
        "Reviewer vs reviewer",
        "Each pair of reviewers on the (study, code) items both decided: percent agreement, Cohen's kappa and "
        "Krippendorff's alpha on the outcome (keep with its direction, reject, or change to another code).",
    ),
    "reviewers_all": (
        "All reviewers",
        "All reviewers together on the items at least two decided: mean pairwise agreement and Krippendorff's "
        "alpha (any number of reviewers, missing decisions allowed).",
    ),
    "machine_vs_reviewers": (
        "Machine vs reviewers",
        "Does the code apply to the study? The machine (rule or topic model) against each reviewer and against "
        "the decisions in force.",
    ),
    "rule_precision": (
        "Rule precision",
        "Per rule: of the machine codes it produced that a decision covers, how many reviewers kept; "
        "precision = kept / (kept + removed).",
    ),
    "code_precision": (
        "Code precision",
        "Per code: machine codes, how many were reviewed, kept, given another direction, removed, and codes "
        "reviewers added that the machine missed; precision = kept / (kept + removed).",
    ),
}
PERCENT_COLUMNS = frozenset({"percent_agreement", "precision"})
RATIO_COLUMNS = frozenset({"cohen_kappa", "krippendorff_alpha"})
STAT_COLUMNS = PERCENT_COLUMNS | RATIO_COLUMNS
COUNT_COLUMNS = ("n_items", "n_reviewed", "n_added")  # a non-zero count means a reviewer decided something
OVERALL_CODES = frozenset({"(all codes)"})  # pipeline.agreement.ALL (not imported: it pulls in the ledger)
_UNSAFE_NAME_RE = re.compile(r"[^A-Za-z0-9_-]+")


def shown_tables(agreement: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The non-empty tables in display order; {} when no table records a reviewer decision."""
    tables = checked(agreement)
    non_empty = {name: frame for name, frame in tables.items() if not frame.empty}
    return non_empty if any(_records_decisions(frame) for frame in non_empty.values()) else {}


def checked(agreement: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Every table in display order; ReviewError when a value is not a DataFrame."""
    for name, frame in agreement.items():
        if not isinstance(frame, pd.DataFrame):
            raise ReviewError(
                f"the agreement table {str(name)!r} is a {type(frame).__name__}, not a table; "
                "pass the dict pipeline.agreement.agreement_report returns."
            )
    known = [name for name in TABLES if name in agreement]
    return {str(name): agreement[name] for name in known + [n for n in agreement if n not in TABLES]}


def title(name: str) -> str:
    return TABLES[name][0] if name in TABLES else name.replace("_", " ").strip().capitalize() or "Agreement"


def note(name: str) -> str:
    return TABLES[name][1] if name in TABLES else ""


def file_stem(name: str) -> str:
    """A table name safe in a file name: 'reviewer_pairs' stays, anything else outside [A-Za-z0-9_-] becomes '_'."""
    return _UNSAFE_NAME_RE.sub("_", name).strip("_") or "table"


def is_missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def display_value(column: str, value: Any) -> str:
    """One figure as a reader sees it: 70.0% for shares, 0.571 for kappa and alpha, n/a where undefined."""
    if is_missing(value):
        return UNDEFINED if column in STAT_COLUMNS else ""
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()  # numpy scalar -> Python
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if column in PERCENT_COLUMNS:
        return f"{100 * value:.1f}%"
    if column in RATIO_COLUMNS or isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def is_numeric(frame: pd.DataFrame, column: str) -> bool:
    """True for a figure column (shown right-aligned): a statistic, or every value a number."""
    if column in STAT_COLUMNS:
        return True
    kind = pd.api.types.infer_dtype(frame[column], skipna=True)
    return kind in ("integer", "floating", "mixed-integer-float", "decimal")


def _records_decisions(frame: pd.DataFrame) -> bool:
    counts = [c for c in COUNT_COLUMNS if c in frame.columns]
    if not counts:
        return True  # a table without counts has rows only when there were decisions
    return bool(pd.to_numeric(frame[counts].stack(), errors="coerce").fillna(0).gt(0).any())
