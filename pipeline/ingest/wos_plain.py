"""Web of Science plain-text ('field-tagged') reader: FN/VR header, 2-letter tags, 3-space
continuation lines, records from `PT` to `ER`, `EF` at the end.

Continuation lines of the per-line list fields (AU, AF, CR, ...) are one more item each; of text
fields (TI, AB, SO, ...) they are joined with spaces. DE (author keywords) and ID (KeyWords Plus)
are '; '-separated lists that may wrap. `ID` here is KeyWords Plus; the record's own id is `UT`.
As in the RIS reader, a record that ends without `ER` is kept (flagged 'unterminated_record') if
it has a title, else an InputFileError names the line where it started.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pipeline.ingest.fields import abstract_text, bare_doi, page_range, split_list, year_from
from pipeline.ingest.source import SourceFile
from pipeline.ingest.tagged import UNTERMINATED_FLAG, TaggedRecord, TagLayout, tagged_records
from pipeline.records import Record

FORMAT = "wos_plain"
SUFFIXES: tuple[str, ...] = (".isi", ".ciw")

_TAG_LINE = re.compile(r"^([A-Z][A-Z0-9])(?: (.*))?$")
_FIRST_LINE = re.compile(r"^\s*(?:FN |PT [A-Z]\s*$)")
_END_LINE = re.compile(r"^(?:ER|EF)\s*$", re.MULTILINE)
_LIST_TAGS = frozenset({"AU", "AF", "BA", "BF", "CA", "GP", "ED", "CR", "C1", "RP", "EM", "RI", "OI"})
_MAPPED = frozenset(
    {"PT", "UT", "TI", "AU", "AF", "PY", "DI", "SO", "VL", "IS", "BP", "EP", "AR", "DE", "ID", "AB"}
    | {"PU", "DT", "SN", "EI", "LA"}
)
_LAYOUT = TagLayout(
    label="Web of Science",
    tag_line=_TAG_LINE,
    start_tag="PT",
    end_tag="ER",
    end_line="ER",
    title_tags=("TI",),
    ignored_tags=frozenset({"FN", "VR", "EF"}),  # the file's header and footer
)


def looks_like(head: str) -> bool:
    """Starts with the 'FN ' header (or straight with 'PT J'), and has WoS 'ER' / 'EF' lines or a 'VR' line."""
    lines = head.lstrip("\ufeff").lstrip().splitlines()
    if not lines or not _FIRST_LINE.match(lines[0]):
        return False
    return _END_LINE.search(head) is not None or any(line.startswith("VR ") for line in lines[:3])


def read(source: SourceFile) -> Iterator[Record]:
    """Stream the records of a WoS plain-text export, in file order."""
    for position, raw in enumerate(tagged_records(source, _LAYOUT), start=1):
        yield _to_record(raw, source, position)


def _to_record(raw: TaggedRecord, source: SourceFile, position: int) -> Record:
    record = Record(
        id=raw.first("UT") or str(position),
        source_format=FORMAT,
        source_file=source.name,
        position=position,
        title=raw.first("TI"),
        authors=raw.items("AF") or raw.items("AU") or raw.items("CA"),
        year=year_from(raw.first("PY"), raw.first("EY", "PD")),
        doi=bare_doi(raw.first("DI")),
        venue=raw.first("SO", "SE"),
        volume=raw.first("VL"),
        issue=raw.first("IS"),
        pages=page_range(raw.first("BP"), raw.first("EP")) or raw.first("AR"),
        keywords=split_list(raw.first("DE"), ";") + split_list(raw.first("ID"), ";"),
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


def _extra(raw: TaggedRecord) -> dict[str, str]:
    """Unmapped tags, the short author forms next to AF, and the document type code; list items one per line."""
    kept = {"PT", "AU"} if raw.items("AF") else {"PT"}
    extra = raw.unmapped(_MAPPED - kept, per_line=_LIST_TAGS)
    return {tag: "\n".join(values) for tag, values in extra.items()}
