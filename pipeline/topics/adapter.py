"""BERTopic's view of an Embedder, in a module of its own: importing it imports BERTopic.

A module-level class (not one made inside a function) so that a fitted model pickles, e.g. to reach Dask workers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from bertopic.backend import BaseEmbedder


class EmbedderAdapter(BaseEmbedder):  # type: ignore[misc]
    """BERTopic embeds the seed topics (and anything else it needs) with the same backend as the studies."""

    def __init__(self, embedder: Any) -> None:
        super().__init__()
        self.embedder = embedder

    def embed(self, documents: list[str], verbose: bool = False) -> np.ndarray:
        return self.embedder.embed(list(documents))
