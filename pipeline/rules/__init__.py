"""Rule-based coding: studies x Codebook -> hits, each with its evidence sentence, offsets, rule and confidence.

Public API: `build_engine(codebook) -> RuleEngine`, `RuleEngine.code_text(text, title=...) -> list[Hit]`,
`code_studies(studies, codebook, id_column='id') -> DataFrame`.

The engine's modules run compiled (Cython, built by `make install`) when their build matches their source;
see pipeline/rules/compiled.py.
"""

from pipeline.rules.compiled import use_current_sources
from pipeline.light_imports import import_spacy

BUILDS = use_current_sources()  # before the engine's modules are imported: a stale build must not load
import_spacy()  # before the engine's modules import spaCy: without torch (pipeline/light_imports.py)

from pipeline.rules.engine import Hit, RuleEngine, build_engine, looks_non_english  # noqa: E402
from pipeline.rules.studies import HIT_COLUMNS, code_studies, skip_reason  # noqa: E402

__all__ = [
    "HIT_COLUMNS",
    "Hit",
    "RuleEngine",
    "build_engine",
    "code_studies",
    "looks_non_english",
    "skip_reason",
]
