"""MEDLINE / PubMed .nbib reader: 'PMID- ' records, 4-character tags, 6-space continuation lines.

A record starts at a `PMID- ` line, or at the first tag after a blank line (records are
separated by blank lines); there is no end tag, so a cut file simply ends with a shorter record.
Authors are the full names (FAU, with collective names CN in place) where given, else AU;
keywords are the MeSH headings (MH, the '*' major-topic mark removed) then the author keywords (OT).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from pipeline.ingest.ris import abstract_text, bare_doi, issn_from, join_lines, year_from
from pipeline.ingest.source import SourceFile
from pipeline.records import Record

log = logging.getLogger(__name__)

FORMAT = "medline"
SUFFIXES: tuple[str, ...] = (".nbib", ".medline")

_TAG_LINE = re.compile(r"^([A-Z][A-Z0-9]{1,3}) {0,3}- ?(.*)$")
_PMID_IN_HEAD = re.compile(r"^PMID- ?\d", re.MULTILINE)
_RIS_TY_IN_HEAD = re.compile(r"^\s*TY  - ", re.MULTILINE)
_MAPPED = frozenset(
    {"PMID", "TI", "FAU", "AU", "CN", "DP", "AID", "LID", "JT", "TA", "VI", "IP", "PG", "MH", "OT"}
    | {"AB", "PB", "PT", "IS", "LA"}
)


@dataclass
class _RawRecord:
    start_line: int
    tags: list[tuple[str, list[str]]] = field(default_factory=list)

    def texts(self, tag: str) -> list[str]:
        return [text for name, lines in self.tags if name == tag and (text := join_lines(lines))]

    def first(self, *tags: str) -> str:
        for tag in tags:
            for text in self.texts(tag):
                return text
        return ""


def looks_like(head: str) -> bool:
    """A 'PMID- ' line, and no RIS 'TY  - ' line (a RIS file never holds a 4-character tag)."""
    return _PMID_IN_HEAD.search(head) is not None and _RIS_TY_IN_HEAD.search(head) is None


def read(source: SourceFile) -> Iterator[Record]:
    """Stream the records of a MEDLINE file, in file order."""
    position = 0
    for raw in _raw_records(source):
        position += 1
        yield _to_record(raw, source, position)


def _raw_records(source: SourceFile) -> Iterator[_RawRecord]:
    current: _RawRecord | None = None
    after_blank = True
    with source.open_lines() as lines:
        for number, line in enumerate(lines, start=1):
            text = line.replace("\ufeff", "").rstrip()
            if not text.strip():
                after_blank = True
                continue
            match = None if text[0].isspace() else _TAG_LINE.match(text)
            if match is None:
                if current is not None and current.tags:
                    current.tags[-1][1].append(text)  # a wrapped line (6 spaces in PubMed's output)
                else:
                    log.debug("%s line %d: text outside a MEDLINE record ignored", source.name, number)
                continue
            tag, value = match.group(1), match.group(2).strip()
            if current is None or after_blank or (tag == "PMID" and current.first("PMID")):
                if current is not None and current.tags:
                    yield current
                current = _RawRecord(start_line=number)
            after_blank = False
            current.tags.append((tag, [value] if value else []))
    if current is not None and current.tags:
        yield current


def _to_record(raw: _RawRecord, source: SourceFile, position: int) -> Record:
    pmid = raw.first("PMID")
    return Record(
        id=pmid or str(position),
        source_format=FORMAT,
        source_file=source.name,
        position=position,
        title=raw.first("TI", "BTI"),
        authors=_authors(raw),
        year=year_from(raw.first("DP")) or year_from(raw.first("DEP")),
        doi=_doi(raw),
        venue=raw.first("JT", "TA"),
        volume=raw.first("VI"),
        issue=raw.first("IP"),
        pages=raw.first("PG"),
        keywords=[heading.lstrip("*") for heading in raw.texts("MH")] + raw.texts("OT"),
        abstract=abstract_text(raw.first("AB")),
        publisher=raw.first("PB"),
        doc_type=raw.first("PT"),
        url="",
        issn=issn_from(raw.texts("IS")),
        language=raw.first("LA"),
        database="PubMed" if pmid else "",
        extra=_extra(raw),
    )


def _authors(raw: _RawRecord) -> list[str]:
    """FAU (full names) and CN (collective names) in file order; AU where no FAU is given."""
    personal = "FAU" if raw.texts("FAU") else "AU"
    return [join_lines(lines) for name, lines in raw.tags if name in (personal, "CN") and join_lines(lines)]


def _doi(raw: _RawRecord) -> str:
    for text in raw.texts("AID") + raw.texts("LID"):
        if text.lower().endswith("[doi]"):
            return bare_doi(text)
    return ""


def _extra(raw: _RawRecord) -> dict[str, str]:
    extra: dict[str, list[str]] = {}
    for tag, lines in raw.tags:
        if tag not in _MAPPED and (text := join_lines(lines)):
            extra.setdefault(tag, []).append(text)
    for tag in ("AU", "TA", "PT", "IS"):  # short forms and the full lists behind the chosen values
        if len(values := raw.texts(tag)) > (0 if tag in ("AU", "TA") else 1):
            extra[tag] = values
    return {tag: "\n".join(values) for tag, values in extra.items()}
