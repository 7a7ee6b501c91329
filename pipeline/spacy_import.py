"""spaCy without torch: what rule coding and codebook checks need, ~180 MB less in every process that codes.

spaCy's machine-learning layer (thinc) imports torch whenever torch is installed, and torch is (BERTopic needs
it). Rule matching never touches it, yet the import alone keeps ~180 MB resident in the flow's process and in
every Dask worker. `import_spacy` imports spaCy with torch hidden, then unhides it: a later `import torch`
(BERTopic, in the topics child process or a test) works as usual; only thinc's own torch wrappers, which this
project does not use, stay off in that process.
"""

from __future__ import annotations

import sys
import threading
from types import ModuleType

_LOCK = threading.Lock()


def import_spacy() -> ModuleType:
    """The spaCy module, imported without torch unless torch is loaded already."""
    with _LOCK:
        if "spacy" in sys.modules or "torch" in sys.modules:
            import spacy

            return spacy
        sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError meanwhile
        try:
            import spacy
        finally:
            del sys.modules["torch"]
        return spacy
