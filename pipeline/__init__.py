"""Living, configurative literature reviews: ingest, clean, deduplicate, code, synthesise."""

import os as _os

__version__ = "0.1.0"

ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def _use_system_arrow_pool() -> None:
    """Arrow buffers (pandas keeps text in them) from glibc's allocator rather than pyarrow's default mimalloc,
    unless ARROW_DEFAULT_MEMORY_POOL says otherwise. mimalloc keeps the pages freed by each task thread in that
    thread's heap, which `release_memory` cannot reach (a million-record flow kept ~0.7 GB more after building
    its studies); glibc's malloc_trim gives every thread's arenas back. Measured at 100k records: every stage's
    peak lower, results byte-identical (benchmarks/stage_memory.py)."""
    if _os.environ.get(ARROW_POOL_VARIABLE):
        return
    import pyarrow

    pyarrow.set_memory_pool(pyarrow.system_memory_pool())


_use_system_arrow_pool()
