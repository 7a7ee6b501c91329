"""spaCy and BERTopic imported without torch (pipeline/light_imports.py), each in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys
from pipeline.light_imports import import_bertopic, import_spacy
import_spacy()
loaded_after_spacy = "torch" in sys.modules
bertopic = import_bertopic(with_torch={with_torch})
loaded = {{name: name in sys.modules for name in ("torch", "transformers", "sentence_transformers")}}
from bertopic import BERTopic
import torch  # unhidden again: a later import works as usual
print(json.dumps({{"after_spacy": loaded_after_spacy, "loaded": loaded, "torch": torch.__name__,
                  "bertopic": BERTopic.__name__}}))
"""


def _probe(with_torch: bool) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(with_torch=with_torch)], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_bertopic_loads_without_the_torch_stack_and_torch_still_imports_afterwards() -> None:
    found = _probe(with_torch=False)
    assert found["after_spacy"] is False
    assert found["loaded"] == {"torch": False, "transformers": False, "sentence_transformers": False}
    assert found["torch"] == "torch" and found["bertopic"] == "BERTopic"


def test_the_minilm_backend_gets_bertopic_with_torch() -> None:
    assert _probe(with_torch=True)["loaded"]["torch"] is True  # type: ignore[index]


COMPILE = """
import json
import numpy as np
from pipeline.light_imports import import_bertopic
import_bertopic(with_torch=False)
from umap.umap_ import smooth_knn_dist
distances = np.sort(np.random.default_rng(0).random((50, 5)).astype(np.float32), axis=1)
sigmas, rhos = smooth_knn_dist(distances, 5.0)
stats = smooth_knn_dist.stats
print(json.dumps({"hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values()),
                  "sigmas": sigmas.tolist()}))
"""


def test_umaps_compiled_functions_are_cached_on_disk_for_the_next_process(tmp_path: Path) -> None:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    runs = []
    for _ in range(2):
        result = subprocess.run([sys.executable, "-c", COMPILE], capture_output=True, text=True, check=True, env=env)
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    first, second = runs
    assert first["misses"] >= 1 and first["hits"] == 0  # compiled, then saved
    assert second["hits"] >= 1 and second["misses"] == 0  # loaded
    assert second["sigmas"] == first["sigmas"]
    assert any(tmp_path.rglob("*.nbi"))
