"""MEDLINE / PubMed .nbib reader: 'PMID- ' records, 4-character tags, 6-space continuation lines.

A record starts at a `PMID- ` line, or at the first tag after a blank line (records are
separated by blank lines); there is no end tag, so a cut file simply ends with a shorter record.
Authors are the full names (FAU, with collective names CN in place) where given, else AU;
keywords are the MeSH headings (MH, the '*' major-topic mark removed) then the author keywords (OT).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pipeline.ingest.fields import abstract_text, bare_doi, issn_from, year_from
from pipeline.ingest.source import SourceFile
from pipeline.ingest.tagged import TaggedRecord, TagLayout, tagged_records
from pipeline.records import Record

FORMAT = "medline"
SUFFIXES: tuple[str, ...] = (".nbib", ".medline")

_TAG_LINE = re.compile(r"^([A-Z][A-Z0-9]{1,3}) {0,3}- ?(.*)$")
_PMID_IN_HEAD = re.compile(r"^PMID- ?\d", re.MULTILINE)
_RIS_TY_IN_HEAD = re.compile(r"^\s*TY  - ", re.MULTILINE)
_MAPPED = frozenset(
    {"PMID", "TI", "FAU", "AU", "CN", "DP", "AID", "LID", "JT", "TA", "VI", "IP", "PG", "MH", "OT"}
    | {"AB", "PB", "PT", "IS", "LA"}
)
_LAYOUT = TagLayout(label="MEDLINE", tag_line=_TAG_LINE, start_tag="PMID", blank_line_separates=True)


def looks_like(head: str) -> bool:
    """A 'PMID- ' line, and no RIS 'TY  - ' line (a RIS file never holds a 4-character tag)."""
    return _PMID_IN_HEAD.search(head) is not None and _RIS_TY_IN_HEAD.search(head) is None


def read(source: SourceFile) -> Iterator[Record]:
    """Stream the records of a MEDLINE file, in file order."""
    for position, raw in enumerate(tagged_records(source, _LAYOUT), start=1):
        yield _to_record(raw, source, position)


def _to_record(raw: TaggedRecord, source: SourceFile, position: int) -> Record:
    pmid = raw.first("PMID")
    return Record(
        id=pmid or str(position),
        source_format=FORMAT,
        source_file=source.name,
        position=position,
        title=raw.first("TI", "BTI"),
        authors=_authors(raw),
        year=year_from(raw.first("DP"), raw.first("DEP")),
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


def _authors(raw: TaggedRecord) -> list[str]:
    """FAU (full names) and CN (collective names) in file order; AU where no FAU is given."""
    return raw.texts("FAU" if raw.texts("FAU") else "AU", "CN")


def _doi(raw: TaggedRecord) -> str:
    for text in raw.texts("AID") + raw.texts("LID"):
        if text.lower().endswith("[doi]"):
            return bare_doi(text)
    return ""


def _extra(raw: TaggedRecord) -> dict[str, str]:
    extra = raw.unmapped(_MAPPED)
    for tag in ("AU", "TA", "PT", "IS"):  # short forms and the full lists behind the chosen values
        if len(values := raw.texts(tag)) > (0 if tag in ("AU", "TA") else 1):
            extra[tag] = values
    return {tag: "\n".join(values) for tag, values in extra.items()}
