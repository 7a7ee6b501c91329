"""Rule-based coding: studies x Codebook -> hits, each with its evidence sentence, offsets, rule and confidence.

Public API: `build_engine(codebook) -> RuleEngine`, `RuleEngine.code_text(text, title=...) -> list[Hit]`,
`code_studies(studies, codebook, id_column='id') -> DataFrame`.
"""

from pipeline.rules.engine import Hit, RuleEngine, build_engine, looks_non_english
from pipeline.rules.studies import HIT_COLUMNS, code_studies, skip_reason

__all__ = [
    "HIT_COLUMNS",
    "Hit",
    "RuleEngine",
    "build_engine",
    "code_studies",
    "looks_non_english",
    "skip_reason",
]
