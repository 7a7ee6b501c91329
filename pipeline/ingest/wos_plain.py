"""Web of Science plain-text ('field-tagged') reader: FN/VR header, 2-letter tags, 3-space
continuation lines, records from `PT` to `ER`, `EF` at the end.

Continuation lines of the per-line list fields (AU, AF, CR, ...) are one more item each; of text
fields (TI, AB, SO, ...) they are joined with spaces. DE (author keywords) and ID (KeyWords Plus)
are '; '-separated lists that may wrap. `ID` here is KeyWords Plus; the record's own id is `UT`.
As in the RIS reader, a record that ends without `ER` is kept (flagged 'unterminated_record') if
it has a title, else an InputFileError names the line where it started.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from pipeline.ingest.ris import UNTERMINATED_FLAG, abstract_text, bare_doi, join_lines, page_range, year_from
from pipeline.ingest.source import SourceFile
from pipeline.records import Record

log = logging.getLogger(__name__)

FORMAT = "wos_plain"
SUFFIXES: tuple[str, ...] = (".isi", ".ciw")

_TAG_LINE = re.compile(r"^([A-Z][A-Z0-9])(?: (.*))?$")
_FIRST_LINE = re.compile(r"^\s*(?:FN |PT [A-Z]\s*$)")
_END_LINE = re.compile(r"^(?:ER|EF)\s*$", re.MULTILINE)
_LIST_TAGS = frozenset({"AU", "AF", "BA", "BF", "CA", "GP", "ED", "CR", "C1", "RP", "EM", "RI", "OI"})
_HEADER_TAGS = frozenset({"FN", "VR", "EF"})
_MAPPED = frozenset(
    {"PT", "UT", "TI", "AU", "AF", "PY", "DI", "SO", "VL", "IS", "BP", "EP", "AR", "DE", "ID", "AB"}
    | {"PU", "DT", "SN", "EI", "LA"}
)


@dataclass
class _RawRecord:
    start_line: int
    tags: list[tuple[str, list[str]]] = field(default_factory=list)
    closed: bool = False

    def first(self, *tags: str) -> str:
        for tag in tags:
            for name, lines in self.tags:
                if name == tag and (text := join_lines(lines)):
                    return text
        return ""

    def items(self, tag: str) -> list[str]:
        return [line.strip() for name, lines in self.tags if name == tag for line in lines if line.strip()]


def looks_like(head: str) -> bool:
    """Starts with the 'FN ' header (or straight with 'PT J'), and has WoS 'ER' / 'EF' lines or a 'VR' line."""
    lines = head.lstrip("\ufeff").lstrip().splitlines()
    if not lines or not _FIRST_LINE.match(lines[0]):
        return False
    return _END_LINE.search(head) is not None or any(line.startswith("VR ") for line in lines[:3])


def read(source: SourceFile) -> Iterator[Record]:
    """Stream the records of a WoS plain-text export, in file order."""
    position = 0
    for raw in _raw_records(source):
        position += 1
        yield _to_record(raw, source, position)


def _raw_records(source: SourceFile) -> Iterator[_RawRecord]:
    current: _RawRecord | None = None
    with source.open_lines() as lines:
        for number, line in enumerate(lines, start=1):
            text = line.replace("\ufeff", "").rstrip()
            if not text.strip():
                continue
            match = None if text[0].isspace() else _TAG_LINE.match(text)
            if match is None:
                if current is not None and not current.closed and current.tags:
                    current.tags[-1][1].append(text.strip())
                continue
            tag, value = match.group(1), (match.group(2) or "").strip()
            if tag == "PT":
                if current is not None:
                    yield _finished(current, source)
                current = _RawRecord(start_line=number)
            if tag in _HEADER_TAGS or current is None or current.closed:
                continue
            if tag == "ER":
                current.closed = True
            else:
                current.tags.append((tag, [value] if value else []))
    if current is not None:
        yield _finished(current, source)


def _finished(raw: _RawRecord, source: SourceFile) -> _RawRecord:
    if raw.closed:
        return raw
    if not raw.first("TI"):
        raise source.error(
            "this Web of Science record has no title and no 'ER' end line, so the file looks cut short here",
            "export the records again, or end the record with a line 'ER'",
            line=raw.start_line,
        )
    log.warning("%s line %d: Web of Science record without its 'ER' line, kept", source.name, raw.start_line)
    return raw


def _to_record(raw: _RawRecord, source: SourceFile, position: int) -> Record:
    record = Record(
        id=raw.first("UT") or str(position),
        source_format=FORMAT,
        source_file=source.name,
        position=position,
        title=raw.first("TI"),
        authors=raw.items("AF") or raw.items("AU") or raw.items("CA"),
        year=year_from(raw.first("PY")) or year_from(raw.first("EY", "PD")),
        doi=bare_doi(raw.first("DI")),
        venue=raw.first("SO", "SE"),
        volume=raw.first("VL"),
        issue=raw.first("IS"),
        pages=page_range(raw.first("BP"), raw.first("EP")) or raw.first("AR"),
        keywords=_split_keywords(raw.first("DE")) + _split_keywords(raw.first("ID")),
        abstract=abstract_text(raw.first("AB")),
        publisher=raw.first("PU"),
        doc_type=raw.first("DT"),
        url="",
        issn=raw.first("SN", "EI"),
        language=raw.first("LA"),
        database="Web of Science",
        extra=_extra(raw),
    )
    if not raw.closed:
        record.flags.append(UNTERMINATED_FLAG)
    return record


def _split_keywords(text: str) -> list[str]:
    return [item.strip() for item in text.split(";") if item.strip()]


def _extra(raw: _RawRecord) -> dict[str, str]:
    """Unmapped tags, the short author forms next to AF, and the document type code; list items one per line."""
    kept = {"PT", "AU"} if raw.items("AF") else {"PT"}
    extra: dict[str, list[str]] = {}
    for tag, lines in raw.tags:
        if tag in _MAPPED and tag not in kept:
            continue
        if tag in _LIST_TAGS:
            values = [line.strip() for line in lines if line.strip()]
        else:
            values = [text] if (text := join_lines(lines)) else []
        extra.setdefault(tag, []).extend(values)
    return {tag: "\n".join(values) for tag, values in extra.items() if values}
