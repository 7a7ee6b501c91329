"""Living, configurative literature reviews: ingest, clean, deduplicate, code, synthesise."""

__version__ = "0.1.0"
