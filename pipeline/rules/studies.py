"""Code a table of studies: one row per (study, code), with the strongest evidence sentence.

Aggregation over a study's sentences (and its title): the row keeps the most confident hit as its evidence
(ties: the earliest sentence), and `n_sentences` counts the sentences that support the code. A benefit found
in one sentence and contradicted in another (supporting + contrasting), or mixed in any, is `mixed`.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from pipeline.codebook import Codebook
from pipeline.errors import ReviewError
from pipeline.rules.engine import Hit, RuleEngine, build_engine, looks_non_english

log = logging.getLogger(__name__)

HIT_COLUMNS: list[str] = [
    "id",
    "code",
    "category",
    "direction",
    "evidence",
    "start",
    "end",
    "rule",
    "method",
    "confidence",
    "field",
    "n_sentences",
]


def code_studies(
    studies: pd.DataFrame,
    codebook: Codebook,
    *,
    id_column: str = "id",
    engine: RuleEngine | None = None,
) -> pd.DataFrame:
    """Code every study (columns id_column, title, abstract, optional flags) against the codebook.

    A study flagged `non_english:*`, with an empty abstract, or whose abstract does not look like English is
    skipped: it gets no rows. Pass a prebuilt `engine` to code many tables with one set of compiled rules.
    """
    _check_columns(studies, id_column)
    engine = engine or build_engine(codebook)
    rows: list[dict[str, Any]] = []
    skipped = 0
    for record in studies.to_dict("records"):
        abstract = _text(record.get("abstract"))
        reason = skip_reason(abstract, record.get("flags"))
        if reason:
            skipped += 1
            continue
        hits = engine.code_text(abstract, title=_text(record.get("title")))
        rows.extend(_study_rows(str(record[id_column]), hits))
    if skipped:
        log.info("skipped %d of %d studies (empty or non-English abstract)", skipped, len(studies))
    frame = pd.DataFrame(rows, columns=HIT_COLUMNS)
    return frame.astype({"start": "int64", "end": "int64", "n_sentences": "int64", "confidence": "float64"})


def skip_reason(abstract: str, flags: Any = None) -> str:
    """Why a study is not coded ('' when it is): an empty abstract, a non_english flag, non-English text."""
    if not abstract.strip():
        return "empty abstract"
    for flag in _flags(flags):
        if flag.startswith("non_english"):
            return f"flagged {flag}"
    if looks_non_english(abstract):
        return "abstract does not look like English"
    return ""


def _check_columns(studies: pd.DataFrame, id_column: str) -> None:
    missing = [c for c in (id_column, "abstract") if c not in studies.columns]
    if missing:
        raise ReviewError(
            f"the studies table has no {', '.join(repr(c) for c in missing)} column; "
            f"give a table with {id_column!r}, 'title' and 'abstract' columns."
        )


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value)


def _flags(flags: Any) -> list[str]:
    if flags is None or (isinstance(flags, float) and pd.isna(flags)):
        return []
    if isinstance(flags, str):
        return [part.strip() for part in flags.replace(",", ";").split(";") if part.strip()]
    return [str(flag) for flag in flags]


def _study_rows(study_id: str, hits: list[Hit]) -> list[dict[str, Any]]:
    by_code: dict[str, list[Hit]] = {}
    for hit in hits:
        by_code.setdefault(hit.code, []).append(hit)
    rows = []
    for code, code_hits in by_code.items():
        best = max(code_hits, key=lambda h: (h.confidence, h.field == "abstract", -h.start))
        rows.append(
            {
                "id": study_id,
                "code": code,
                "category": best.category,
                "direction": _combined_direction(code_hits),
                "evidence": best.evidence,
                "start": best.start,
                "end": best.end,
                "rule": best.rule,
                "method": "rule",
                "confidence": round(best.confidence, 3),
                "field": best.field,
                "n_sentences": len({(h.field, h.start) for h in code_hits}),
            }
        )
    return rows


def _combined_direction(hits: list[Hit]) -> str:
    directions = {h.direction for h in hits if h.direction}
    if not directions:
        return ""
    if "mixed" in directions or {"supporting", "contrasting"} <= directions:
        return "mixed"
    return directions.pop()
