"""The result tables, from a fitted model and the per-study results (whichever run placed each study).

Columns are built whole (not row by row), so a million studies cost a few arrays; every table is sorted and
rounded as it always was, so the bytes do not depend on how the studies were placed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from pipeline.topics.model import (
    EMERGENT_COLUMNS,
    STUDY_TOPIC_COLUMNS,
    SUGGESTION_COLUMNS,
    TOPIC_COLUMNS,
    FittedTopics,
    StudyAssignments,
    TopicResult,
)

_TOPIC_DTYPES = {"topic": "int64", "size": "int64", "best_score": "float64", "emergent": "bool"}
_STUDY_DTYPES = {"topic": "int64", "similarity": "float64", "reassigned": "bool", "representative": "bool"}
_SUGGESTION_DTYPES = {"confidence": "float64", "topic": "int64", "evidence_score": "float64"}
_EMERGENT_DTYPES = {"topic": "int64", "size": "int64", "nearest_score": "float64"}


def compose_result(fitted: FittedTopics, studies: StudyAssignments, run: dict[str, Any]) -> TopicResult:
    """The TopicResult of every study, with the fitted model's topics, quotes and mapping."""
    sizes = Counter(studies.topics.tolist())
    settings = dict(fitted.settings)
    n_fit = int(settings["n_studies"])
    settings["n_studies"] = len(studies)
    if n_fit != len(studies):  # only then: a corpus fitted whole keeps the summary it always had
        settings["n_fit_studies"] = n_fit
    outliers = studies.topics == -1
    return TopicResult(
        status=fitted.status,
        topics=_topics(fitted, sizes),
        study_topics=_study_topics(fitted, studies),
        suggestions=_suggestions(fitted, studies),
        emergent=_emergent(fitted, sizes),
        outlier_share_before=round(float(studies.initial_outlier.mean()) if len(studies) else 0.0, 4),
        outlier_share_after=round(float(outliers.mean()) if len(studies) else 0.0, 4),
        backend=fitted.backend,
        model=fitted.model,
        settings=settings,
        documents=fitted.documents,
        reduced_embeddings=fitted.reduced_embeddings,
        fitted=fitted,
        assignments=studies,
        run=run,
    )


def _topics(fitted: FittedTopics, sizes: Counter[int]) -> pd.DataFrame:
    rows = [{**row, "size": sizes.get(row["topic"], 0)} for row in fitted.topic_rows]
    if sizes.get(-1, 0):
        rows.append(
            {"topic": -1, "label": "outliers", "size": sizes[-1], "words": "", "mapped_codes": "", "best_code": "",
             "best_score": 0.0, "emergent": False, "method": "topic", "representative_quote": "",
             "representative_id": ""}  # fmt: skip
        )
    return pd.DataFrame(rows, columns=TOPIC_COLUMNS).astype(_TOPIC_DTYPES)


def _study_topics(fitted: FittedTopics, studies: StudyAssignments) -> pd.DataFrame:
    labels = {t: fitted.label(t) for t in set(studies.topics.tolist())}
    frame = pd.DataFrame(
        {
            "id": studies.ids,
            "topic": studies.topics,
            "label": [labels[t] for t in studies.topics.tolist()],
            "similarity": studies.similarity,
            "reassigned": studies.initial_outlier & (studies.topics != -1),
            "representative": [pair in fitted.representatives for pair in zip(studies.ids, studies.keys, strict=True)],
        },
        columns=STUDY_TOPIC_COLUMNS,
    )
    return frame.astype(_STUDY_DTYPES)


def _suggestions(fitted: FittedTopics, studies: StudyAssignments) -> pd.DataFrame:
    if not studies.suggestions:
        return empty(SUGGESTION_COLUMNS, _SUGGESTION_DTYPES)
    confidence = {(t, code): round(score, 4) for t in fitted.topic_ids for code, score in fitted.mapped[t]}
    category = dict(zip(fitted.codes.ids, fitted.codes.categories, strict=True))
    positions = [s[0] for s in studies.suggestions]
    codes = [s[1] for s in studies.suggestions]
    topics = studies.topics[positions].tolist()
    frame = pd.DataFrame(
        {
            "id": [studies.ids[p] for p in positions],
            "code": codes,
            "category": [category[c] for c in codes],
            "direction": "",
            "evidence": [s[3] for s in studies.suggestions],
            "method": "topic",
            "confidence": [confidence[(t, c)] for t, c in zip(topics, codes, strict=True)],
            "rule": [f"topic {t}: {fitted.label(t)}" for t in topics],
            "topic": topics,
            "evidence_score": [s[4] for s in studies.suggestions],
        },
        columns=SUGGESTION_COLUMNS,
    )
    frame = frame.sort_values(["id", "code"], kind="stable", ignore_index=True)
    return frame.astype(_SUGGESTION_DTYPES)


def _emergent(fitted: FittedTopics, sizes: Counter[int]) -> pd.DataFrame:
    rows = [{**row, "size": sizes.get(row["topic"], 0)} for row in fitted.emergent_rows]
    return pd.DataFrame(rows, columns=EMERGENT_COLUMNS).astype(_EMERGENT_DTYPES)


def empty(columns: list[str], dtypes: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, "object")) for c in columns})


def skipped_result(status: str, backend: str, settings: dict[str, Any], run: dict[str, Any]) -> TopicResult:
    return TopicResult(
        status=status,
        topics=empty(TOPIC_COLUMNS, _TOPIC_DTYPES),
        study_topics=empty(STUDY_TOPIC_COLUMNS, _STUDY_DTYPES),
        suggestions=empty(SUGGESTION_COLUMNS, _SUGGESTION_DTYPES),
        emergent=empty(EMERGENT_COLUMNS, _EMERGENT_DTYPES),
        outlier_share_before=0.0,
        outlier_share_after=0.0,
        backend=backend,
        model=None,
        settings=settings,
        run=run,
    )
