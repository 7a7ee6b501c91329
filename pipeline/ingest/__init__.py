"""Ingest: any supported export file -> Records. The format is detected from content first.

Every reader module exposes:
    FORMAT: str                                  short name stored in Record.source_format
    SUFFIXES: tuple[str, ...]                    suffixes that hint at this format (".ris", ...)
    looks_like(head: str) -> bool                does the decoded start of the file look like it?
    read(source: SourceFile) -> Iterator[Record] stream the records, in file order
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType

from pipeline.errors import InputFileError
from pipeline.ingest.source import SourceFile, open_source
from pipeline.records import Record, make_record_id

log = logging.getLogger(__name__)

# Most specific first: a RIS file may contain tabs, a JSON file may contain "TY  -" in a string.
_READER_MODULES = (
    "json_records",
    "endnote_xml",
    "medline",
    "wos_plain",
    "ris",
    "proquest",
    "bibtex",
    "tabular",
)
_FALLBACK_MODULE = "plaintext"


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"pipeline.ingest.{name}")


def detect_format(source: SourceFile) -> ModuleType:
    """The reader for a file: by content, then by suffix, then plain-text abstracts."""
    for name in _READER_MODULES:
        module = _module(name)
        if module.looks_like(source.head):
            return module
    suffix = source.path.suffix.lower()
    for name in _READER_MODULES:
        module = _module(name)
        if suffix in module.SUFFIXES:
            return module
    return _module(_FALLBACK_MODULE)


def read_source(source: SourceFile, reader: ModuleType | None = None) -> Iterator[Record]:
    """Stream the records of an opened file, each with its stable record_id (file hash + position + id)."""
    reader = reader or detect_format(source)
    for record in reader.read(source):
        record.record_id = make_record_id(source.sha256, f"{record.position}\x1f{record.id}")
        yield record


def no_records_error(source: SourceFile, reader: ModuleType) -> InputFileError:
    return source.error(
        f"no records were found in this {reader.FORMAT} file",
        "check that it is a complete export (RIS, BibTeX, CSV, MEDLINE, EndNote XML, JSON or abstracts as text)",
    )


def read_file(path: str | Path) -> Iterator[Record]:
    """Stream the records of one file, each with its stable record_id."""
    source = open_source(path)
    reader = detect_format(source)
    log.info("reading %s as %s (%s)", source.name, reader.FORMAT, source.encoding)
    count = 0
    for record in read_source(source, reader):
        count += 1
        yield record
    if count == 0:
        raise no_records_error(source, reader)


def read_files(paths: Iterable[str | Path]) -> Iterator[Record]:
    for path in paths:
        yield from read_file(path)


__all__ = [
    "InputFileError",
    "SourceFile",
    "detect_format",
    "no_records_error",
    "open_source",
    "read_file",
    "read_files",
    "read_source",
]
