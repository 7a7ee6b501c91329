"""RIS reader: a small streaming parser that survives the variants real databases write.

Why not rispy: it returns a list (no streaming), silently drops a last record that lacks its
`ER`, and keeps no line numbers for error messages. Its record counts agree with this reader
on every real export under shared/data (the tests cross-check that).

Variants handled: a BOM; blank lines and numbered Ovid lines ('1.') before `TY`; stray CRs
(IEEE's '\\r\\r\\n' become extra line breaks under universal newlines); untagged continuation
lines (Scopus N1 'Export Date' lines, Zotero multi-paragraph AB, WoS 3-space indents), where a
continuation of a list tag (KW, AU, ...) is one more item, of a text tag one more line; tags
written after `ER` (Ovid's `NL`), kept with the record they follow.

A record that ends without its `ER` (a truncated file, or a new `TY` before the `ER`) is still
returned, flagged 'unterminated_record', if it has a title; without a title it cannot be told
from a cut fragment, and an InputFileError names the line where it started (see tagged.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pipeline.ingest.fields import abstract_text, bare_doi, doi_in_text, issn_from, page_range, year_from
from pipeline.ingest.source import SourceFile
from pipeline.ingest.tagged import EVERY_TAG, UNTERMINATED_FLAG, TaggedRecord, TagLayout, tagged_records
from pipeline.records import Record

FORMAT = "ris"
SUFFIXES: tuple[str, ...] = (".ris",)

_TAG_LINE = re.compile(r"^([A-Z][A-Z0-9])  -(?: (.*))?$")
_TY_IN_HEAD = re.compile(r"^[\s\ufeff]*TY  - ", re.MULTILINE)
_ANY_TAG_IN_HEAD = re.compile(r"^\s*[A-Z][A-Z0-9]  -", re.MULTILINE)

_TITLE_TAGS = ("TI", "T1", "CT", "ST", "BT")
_AUTHOR_TAGS = ("AU", "A1")
_YEAR_TAGS = ("PY", "Y1", "DA")
_VENUE_TAGS = ("T2", "JF", "JO", "SO", "J2", "JA", "T3")
_URL_DOI_TAGS = ("L2", "UR")
# Tags whose content goes to a Record field; every other tag is kept in `extra`.
_MAPPED = frozenset(
    {"TY", "ER", "ID", "TI", "T1", "AU", "A1", "PY", "Y1", "DO", "T2", "JF", "JO", "VL", "IS", "SP", "EP"}
    | {"KW", "AB", "N2", "PB", "UR", "LA", "DB"}
)

_LAYOUT = TagLayout(
    label="RIS",
    tag_line=_TAG_LINE,
    start_tag="TY",
    end_tag="ER",
    end_line="ER  - ",
    title_tags=_TITLE_TAGS,
    indented_tags=True,
    tags_after_end=True,  # Ovid writes NL after ER
)


def looks_like(head: str) -> bool:
    """A `TY  - ` line (after a BOM, blank lines or Ovid numbers) followed by another RIS tag."""
    match = _TY_IN_HEAD.search(head)
    return match is not None and _ANY_TAG_IN_HEAD.search(head, match.end()) is not None


def read(source: SourceFile) -> Iterator[Record]:
    """Stream the records of a RIS file, in file order."""
    for position, raw in enumerate(tagged_records(source, _LAYOUT), start=1):
        yield _to_record(raw, source, position)


def _to_record(raw: TaggedRecord, source: SourceFile, position: int) -> Record:
    own_id = raw.first("ID")
    record = Record(
        id=own_id or str(position),
        source_format=FORMAT,
        source_file=source.name,
        position=position,
        title=raw.first(*_TITLE_TAGS),
        authors=_authors(raw),
        year=_year(raw),
        doi=_doi(raw),
        venue=raw.first(*_VENUE_TAGS),
        volume=raw.first("VL", "VO"),
        issue=raw.first("IS"),
        pages=page_range(raw.first("SP"), raw.first("EP")),
        keywords=raw.items("KW"),
        abstract=abstract_text(raw.first("AB", "N2")),
        publisher=raw.first("PB"),
        doc_type=raw.first("TY"),
        url=_url(raw),
        issn=issn_from(raw.texts("SN")),
        language=raw.first("LA"),
        database=_database(raw),
        extra=_extra(raw),
    )
    if not raw.closed:
        record.flags.append(UNTERMINATED_FLAG)
    return record


def _authors(raw: TaggedRecord) -> list[str]:
    """AU and A1 in file order (both are primary authors; A2-A4 are editors and the like)."""
    return raw.items(*_AUTHOR_TAGS)


def _year(raw: TaggedRecord) -> int | None:
    return year_from(*(text for tag in _YEAR_TAGS for text in raw.texts(tag)))


def _doi(raw: TaggedRecord) -> str:
    for text in raw.texts("DO"):
        if doi := bare_doi(text):
            return doi
    for tag in _URL_DOI_TAGS:
        for text in raw.texts(tag):
            if doi := doi_in_text(text):
                return doi
    return ""


def _url(raw: TaggedRecord) -> str:
    """The first link of UR (some exports list several, comma-separated), else of L2."""
    for tag in ("UR", "L2"):
        for text in raw.texts(tag):
            for token in re.split(r"[\s,]+", text):
                if token.startswith(("http://", "https://")):
                    return token
    return ""


def _database(raw: TaggedRecord) -> str:
    """The DB tag; else what the record itself says about where it comes from."""
    if database := raw.first("DB"):
        return database
    if raw.first("DP").upper() == "NLM":
        return "PubMed"
    if raw.first("AN").upper().startswith("WOS:") or raw.texts("WE"):
        return "Web of Science"
    if any("scopus.com" in text for text in raw.texts("UR")):
        return "Scopus"
    return ""


def _extra(raw: TaggedRecord) -> dict[str, str]:
    """Tags without a Record field, each line of each occurrence on a line of its own."""
    extra = raw.unmapped(_MAPPED, per_line=EVERY_TAG)
    if raw.texts("AB") and raw.texts("N2"):  # both given: AB is the abstract, keep N2 too
        extra["N2"] = raw.texts("N2")
    return {tag: "\n".join(values) for tag, values in extra.items()}
