"""EndNote XML (<xml><records><record>...) -> Records, streamed with lxml.etree.iterparse.

Covers real EndNote exports (every value wrapped in <style> elements) and the flavours Zotero
and Mendeley write (plain text values). Each <record> is cleared once read, so memory stays flat.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

from pipeline.ingest.fields import abstract_text, is_issn_list, year_from
from pipeline.ingest.source import SourceFile
from pipeline.records import Record

log = logging.getLogger(__name__)

FORMAT = "endnote_xml"
SUFFIXES = (".xml",)

_SIGNATURE = re.compile(r"<xml>\s*<records>\s*(<record[\s>]|</records>)", re.IGNORECASE)
# Elements read into Record fields; everything else that holds text goes to `extra`.
_MAPPED = frozenset(
    {
        "rec-number",
        "ref-type",
        "title",
        "secondary-title",
        "full-title",
        "authors",
        "author",
        "year",
        "date",
        "pub-dates",
        "electronic-resource-num",
        "volume",
        "number",
        "issue",
        "pages",
        "keyword",
        "keywords",
        "abstract",
        "publisher",
        "url",
        "related-urls",
        "web-urls",
        "urls",
        "isbn",
        "language",
        "remote-database-name",
        "titles",
        "periodical",
        "contributors",
        "dates",
        "record",
        "style",
        "foreign-keys",
        "key",
        "database",
        "source-app",
    }
)


def looks_like(head: str) -> bool:
    """EndNote XML: a root <xml> element holding <records>."""
    return bool(_SIGNATURE.search(head))


def read(source: SourceFile) -> Iterator[Record]:
    """Stream the <record> elements in file order."""
    from lxml import etree

    events = etree.iterparse(
        str(source.path), events=("end",), tag="record", resolve_entities=False, no_network=True, huge_tree=True
    )
    position = 0
    try:
        for _, element in events:
            position += 1
            yield _record(element, source, position)
            element.clear(keep_tail=False)
            while element.getprevious() is not None:  # drop the cleared records already read
                del element.getparent()[0]
    except etree.XMLSyntaxError as exc:
        raise source.error(
            f"the XML is not well formed ({exc.msg})",
            "export the library again as EndNote XML, or check that the file is complete",
            line=exc.lineno,
        ) from exc


def _text(element: Any) -> str:
    """All text inside an element (EndNote wraps values in <style>), whitespace-trimmed."""
    return "".join(element.itertext()).strip() if element is not None else ""


def _first(record: Any, *paths: str) -> str:
    for path in paths:
        for element in record.iterfind(path):
            text = _text(element)
            if text:
                return text
    return ""


def _record(element: Any, source: SourceFile, position: int) -> Record:
    ref_type = element.find("ref-type")
    issn_or_isbn = _first(element, "isbn")
    own_id = _first(element, "rec-number")
    record = Record(
        id=own_id or str(position),
        source_format=FORMAT,
        source_file=source.name,
        position=position,
        title=_first(element, "titles/title", "title"),
        authors=[_text(a) for a in element.iterfind("contributors/authors/author") if _text(a)],
        year=year_from(_first(element, "dates/year"), _first(element, "dates/pub-dates/date")),
        doi=_first(element, "electronic-resource-num"),
        venue=_first(element, "titles/secondary-title", "periodical/full-title", "secondary-title"),
        volume=_first(element, "volume"),
        issue=_first(element, "issue", "number"),
        pages=_first(element, "pages"),
        keywords=[_text(k) for k in element.iterfind("keywords/keyword") if _text(k)],
        abstract=abstract_text(_first(element, "abstract")),
        publisher=_first(element, "publisher"),
        doc_type=(ref_type.get("name") or _text(ref_type)) if ref_type is not None else "",
        url=_first(element, "urls/related-urls/url", "urls/web-urls/url", "urls/url"),
        issn=issn_or_isbn if is_issn_list(issn_or_isbn) else "",
        language=_first(element, "language"),
        database=_first(element, "remote-database-name"),
        extra=_extra(element, issn_or_isbn),
    )
    return record


def _extra(element: Any, issn_or_isbn: str) -> dict[str, str]:
    """Leaf values not read into fields (accession-num, caption, notes, label, ...), for provenance."""
    extra: dict[str, str] = {}
    for child in element:
        if not isinstance(child.tag, str) or child.tag in _MAPPED:
            continue
        text = _text(child)
        if text:
            extra[child.tag] = text
    library = element.find("database")
    if library is not None and _text(library):
        extra["library"] = _text(library)
    if issn_or_isbn and not is_issn_list(issn_or_isbn):
        extra["isbn"] = issn_or_isbn
    return extra
