"""ProQuest 'Report Information from ProQuest' text export reader.

Layout: a header, a table of contents, then one block per document: 'Document N of M', the
title, 'Field: value' lines (Author, the document URL on a line of its own, Abstract, Links,
then the other fields), a line of underscores; after the last document an optional
'Bibliography' section (the same records again as BibTeX), which is not read.

Inside the Abstract only known ProQuest field names start a new field, so that an abstract
paragraph such as 'Results: ...' stays in the abstract. 'Identifier / keyword' is comma-separated
although some ProQuest subject names hold commas ('Philosophy, religion and theology'): those
names are kept whole.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.ingest.fields import abstract_text, bare_doi, split_list, unique, year_from
from pipeline.ingest.source import SourceFile
from pipeline.ingest.tagged import EVERY_TAG, TaggedRecord, numbered_lines
from pipeline.records import Record

log = logging.getLogger(__name__)

FORMAT = "proquest"
SUFFIXES: tuple[str, ...] = ()

_HEADER = "Report Information from ProQuest"
_DOCUMENT = re.compile(r"^Document (\d+) of (\d+)$")
_SEPARATOR = re.compile(r"^_{20,}$")
_FIELD = re.compile(r"^([A-Z][A-Za-z0-9 /()&.,'-]{0,48}?): (.*)$")
_URL = re.compile(r"^https?://\S+$")

# Field labels ProQuest writes (several databases); only these may end an abstract.
KNOWN_FIELDS = frozenset(
    {
        "Abstract", "Accession number", "Advisor", "Affiliation", "Author", "Author e-mail address",
        "Authors", "Classification", "Committee member", "Company / organization", "Conference title",
        "Copyright", "Corporate author", "Country of publication", "Database", "Degree", "Degree date",
        "Department", "Dissertation/thesis number", "Document URL", "Document feature", "Document type",
        "DOI", "e-ISSN", "Editor", "First page", "ISBN", "ISSN", "Identifier / keyword", "Issue",
        "Language", "Language of publication", "Last updated", "Links", "Location", "MeSH subject",
        "Number of pages", "Pages", "People", "Place of publication", "Publication date",
        "Publication note", "Publication subject", "Publication title", "Publication year", "Publisher",
        "ProQuest document ID", "Document ID", "School code", "Section", "Source", "Source type", "Subject",
        "Title", "University location", "University/institution", "Update", "Volume", "Year",
    }
)  # fmt: skip
# ProQuest subject categories that contain a comma (they lead 'Identifier / keyword').
_COMMA_CATEGORIES = (
    "Philosophy, religion and theology",
    "Language, literature and linguistics",
)
_MAPPED = frozenset(
    {"Title", "Author", "Authors", "Abstract", "Publication year", "Year", "Publication date", "Degree date"}
    | {"DOI", "Publication title", "Source", "Volume", "Issue", "Pages", "Identifier / keyword", "Subject"}
    | {"Publisher", "Document type", "Document URL", "ISSN", "e-ISSN", "Language", "Language of publication"}
    | {"ProQuest document ID", "Document ID"}
)


@dataclass
class _RawDocument(TaggedRecord):
    """One document: its number, heading and document URL, and its fields as (label, lines) tags."""

    number: str = ""
    heading: str = ""
    url: str = ""

    def add_line(self, text: str) -> None:
        """One non-blank line of the block: the heading, the document URL, a field, or a continuation."""
        if not self.heading and not self.tags:
            self.heading = text
            return
        match = _FIELD.match(text)
        in_abstract = bool(self.tags) and self.tags[-1][0] == "Abstract"
        if match and (match.group(1) in KNOWN_FIELDS or not in_abstract):
            self.add(match.group(1), match.group(2))
        elif _URL.match(text) and not self.url and not self.first("Links"):
            self.url = text
        else:
            self.extend(text)


def looks_like(head: str) -> bool:
    """The 'Report Information from ProQuest' header, or 'Document 1 of N' with a ProQuest document ID."""
    if _HEADER in head[:4000]:
        return True
    return re.search(r"^Document 1 of \d+\s*$", head, re.MULTILINE) is not None and "ProQuest document ID:" in head


def read(source: SourceFile) -> Iterator[Record]:
    """Stream the documents of a ProQuest text export, in file order."""
    for position, raw in enumerate(_raw_documents(source), start=1):
        yield _to_record(raw, source, position)


def _raw_documents(source: SourceFile) -> Iterator[_RawDocument]:
    current: _RawDocument | None = None
    for number, line in numbered_lines(source):
        text = line.strip()
        if not text:
            continue
        if match := _DOCUMENT.match(text):
            if current is not None:
                yield current
            current = _RawDocument(start_line=number, number=match.group(1))
        elif _SEPARATOR.match(text):
            if current is not None:
                yield current
            current = None
        elif current is not None:
            current.add_line(text)
    if current is not None:
        log.warning("%s line %d: last ProQuest document has no closing line", source.name, current.start_line)
        yield current


def _to_record(raw: _RawDocument, source: SourceFile, position: int) -> Record:
    year_text = raw.first("Publication year", "Year", "Publication date", "Degree date")
    return Record(
        id=raw.first("ProQuest document ID", "Document ID") or str(position),
        source_format=FORMAT,
        source_file=source.name,
        position=position,
        title=raw.first("Title") or raw.heading,
        authors=split_list(raw.first("Author", "Authors"), ";"),
        year=year_from(year_text),
        doi=bare_doi(raw.first("DOI")),
        venue=raw.first("Publication title", "Source"),
        volume=raw.first("Volume"),
        issue=raw.first("Issue"),
        pages=raw.first("Pages"),
        keywords=_keywords(raw),
        abstract=abstract_text(raw.first("Abstract")),
        publisher=raw.first("Publisher"),
        doc_type=raw.first("Document type"),
        url=raw.first("Document URL") or raw.url,
        issn=raw.first("ISSN", "e-ISSN"),
        language=raw.first("Language", "Language of publication"),
        database="ProQuest",
        extra=_extra(raw),
    )


def _keywords(raw: _RawDocument) -> list[str]:
    """Subjects then identifiers; the lists overlap ('Education, Education'): each keyword once."""
    return unique(split_list(raw.first("Subject"), ";") + _identifier_keywords(raw.first("Identifier / keyword")))


def _identifier_keywords(text: str) -> list[str]:
    """Comma-separated identifiers, with the comma-holding subject categories kept whole."""
    placeholders = {}
    for index, category in enumerate(_COMMA_CATEGORIES):
        if category in text:
            key = f"\x00{index}\x00"
            placeholders[key] = category
            text = text.replace(category, key)
    items = split_list(text, ",")
    return [placeholders.get(item, item) for item in items]


def _extra(raw: _RawDocument) -> dict[str, str]:
    unmapped = raw.unmapped(_MAPPED, per_line=EVERY_TAG)
    extra = {"Document number": [raw.number, *unmapped.pop("Document number", [])], **unmapped}
    if raw.heading and raw.heading != raw.first("Title"):
        extra["Heading"] = [raw.heading]
    return {label: "\n".join(values) for label, values in extra.items()}
