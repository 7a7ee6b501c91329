"""Topic models that find what the codebook misses: offline BERTopic, mapped to codes, emergent themes.

Public API:
    fit_topics(studies, codebook, *, backend, seed, min_topic_size, cache_dir, clustering, map_threshold,
               max_fit_studies, refit_share, state_dir, refit) -> TopicResult
    model_topics(batches, codebook, settings, *, cache_dir, state_dir, refit, progress) -> TopicResult
    TopicRun.start(...) / .to_place(...) / .add(...) / .finish()   the same, step by step (to map placement)
    assign_batch(fitted, texts) -> StudyAssignments                    place studies with a fitted model
    write_topic_outputs(result, outputs_dir) -> list[Path]
    emergent_codes_yaml(result) -> str
    distill_model2vec(cache_dir=None) -> Path
    embed_texts(texts, backend, cache_dir=None) -> np.ndarray
"""

from pipeline.topics.corpus import (
    ASSIGN_BATCH,
    DEFAULT_MAX_FIT_STUDIES,
    DEFAULT_REFIT_SHARE,
    TopicRun,
    TopicSettings,
    fit_topics,
    model_topics,
)
from pipeline.topics.embeddings import BACKENDS, default_cache_dir, distill_model2vec, embed_texts
from pipeline.topics.model import DEFAULT_BACKEND, StudyAssignments, TopicResult, assign_batch
from pipeline.topics.outputs import emergent_codes_yaml, write_topic_outputs

__all__ = [
    "ASSIGN_BATCH",
    "BACKENDS",
    "DEFAULT_BACKEND",
    "DEFAULT_MAX_FIT_STUDIES",
    "DEFAULT_REFIT_SHARE",
    "StudyAssignments",
    "TopicResult",
    "TopicRun",
    "TopicSettings",
    "assign_batch",
    "default_cache_dir",
    "distill_model2vec",
    "embed_texts",
    "emergent_codes_yaml",
    "fit_topics",
    "model_topics",
    "write_topic_outputs",
]
