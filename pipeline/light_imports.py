"""spaCy and BERTopic without the torch stack they would import and this project does not use there.

spaCy's machine-learning layer (thinc) imports torch whenever torch is installed, and torch is (BERTopic's
minilm backend needs it). Rule matching never touches it, yet the import alone keeps ~180 MB resident in the
flow's process and in every Dask worker. BERTopic imports torch, transformers and sentence-transformers for
extras it guards as optional (the multimodal backend; text-generation, zero-shot and visual representations;
saving to safetensors): ~3 s and ~150 MB in every topics process, when only the minilm backend uses torch.

UMAP's numba functions are compiled when first called, in every process: ~5 s before a topics child places its
first study. `import_bertopic` has numba keep their compiled code on disk (numba's own cache, beside the
package or in NUMBA_CACHE_DIR), so only the first process on a machine compiles them.

Each import here runs with those modules hidden (a None entry in sys.modules: their import raises
ModuleNotFoundError, which both libraries catch for optional parts), then unhides them: a later `import torch`
works as usual; only the optional parts skipped during the import stay off in that process.
"""

from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType

_LOCK = threading.Lock()
# BERTopic's optional parts that import transformers / sentence-transformers (and with them torch).
_BERTOPIC_TORCH_EXTRAS = (
    "bertopic.backend._multimodal",
    "bertopic.representation._textgeneration",
    "bertopic.representation._zeroshot",
    "bertopic.representation._visual",
)
# Imported before torch is hidden: they look torch up in sys.modules as they load (scipy's array-API layer),
# and a None entry there breaks them.
_BERTOPIC_DEPENDENCIES = ("scipy.stats", "sklearn", "umap", "hdbscan")


def import_spacy() -> ModuleType:
    """The spaCy module, imported without torch unless torch is loaded already."""
    return _import_hiding("spacy", ("torch",))


def import_bertopic(*, with_torch: bool) -> ModuleType:
    """The bertopic module; without torch and BERTopic's torch-based extras unless `with_torch` (the minilm
    backend: torch then loads with BERTopic, so the topic model's thread limits cover its thread pools too)."""
    if with_torch:
        bertopic = importlib.import_module("bertopic")
    else:
        for dependency in _BERTOPIC_DEPENDENCIES:
            importlib.import_module(dependency)
        bertopic = _import_hiding("bertopic", ("torch", *_BERTOPIC_TORCH_EXTRAS))
    _cache_compilations(("umap.umap_", "umap.layouts"))
    return bertopic


def _cache_compilations(modules: tuple[str, ...]) -> None:
    """Numba's on-disk cache for the modules' compiled functions that do not ask for it (same machine code,
    loaded instead of compiled)."""
    from numba.core.registry import CPUDispatcher

    for name in modules:
        for function in vars(importlib.import_module(name)).values():
            if isinstance(function, CPUDispatcher) and not function.stats.cache_path:
                function.enable_caching()


def _import_hiding(name: str, hidden: tuple[str, ...]) -> ModuleType:
    """Import `name` with the `hidden` modules unimportable meanwhile (those loaded already stay as they are)."""
    with _LOCK:
        if name in sys.modules:
            return sys.modules[name]
        hiding = [module for module in hidden if module not in sys.modules]
        for module in hiding:
            sys.modules[module] = None  # type: ignore[assignment]  # its import raises ModuleNotFoundError meanwhile
        try:
            return importlib.import_module(name)
        finally:
            for module in hiding:
                del sys.modules[module]
