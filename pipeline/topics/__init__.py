"""Topic models that find what the codebook misses: offline BERTopic, mapped to codes, emergent themes.

Public API:
    fit_topics(studies, codebook, *, backend, seed, min_topic_size, cache_dir) -> TopicResult
    write_topic_outputs(result, outputs_dir) -> list[Path]
    emergent_codes_yaml(result) -> str
    distill_model2vec(cache_dir=None) -> Path
    embed_texts(texts, backend, cache_dir=None) -> np.ndarray
"""

from pipeline.topics.embeddings import BACKENDS, default_cache_dir, distill_model2vec, embed_texts
from pipeline.topics.model import DEFAULT_BACKEND, TopicResult, fit_topics
from pipeline.topics.outputs import emergent_codes_yaml, write_topic_outputs

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "TopicResult",
    "default_cache_dir",
    "distill_model2vec",
    "embed_texts",
    "emergent_codes_yaml",
    "fit_topics",
    "write_topic_outputs",
]
