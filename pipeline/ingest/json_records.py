"""JSON and JSON Lines records -> Records.

Accepted shapes: a list of record objects (streamed element by element), JSON Lines or several
concatenated objects (streamed), a single record object, and the usual API envelopes:
{"results": [...]} (OpenAlex), {"data": [...]} (Semantic Scholar), {"message": {"items": [...]}}
and {"message": {...work...}} (Crossref), {"response": {"docs": [...]}} (ERIC / Solr). An envelope
is one JSON value and is decoded whole (API pages are small).

Text after the first JSON value that is not JSON (aggregator pages wrap a record in a citation
count line, a repeated abstract and a page number) is ignored and kept in extra['trailing_text'].
Crossref's JATS abstract markup is left as it is, for the cleaning stage.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import IO, Any

from pipeline.ingest.fields import abstract_text, page_range, split_authors, split_keywords, unique, year_from
from pipeline.ingest.source import SourceFile
from pipeline.records import Record

log = logging.getLogger(__name__)

FORMAT = "json"
SUFFIXES = (".json", ".jsonl", ".ndjson")

_SIGNATURE = re.compile(r'^\s*(?:\{\s*(?:"|\})|\[\s*(?:\{|\]|$))')
_CHUNK = 1 << 16
_TRAILING_KEEP = 20_000  # characters of wrapper text kept for provenance
# Keys (case-insensitive) that make an object a bibliographic record rather than some other JSON.
_RECORD_KEYS = frozenset({"title", "display_name", "abstract", "doi", "paperid", "authors", "author", "id"})
_ID_KEYS = ("id", "paperid", "record_id", "key", "uid", "doi")
_ENVELOPES = (
    ("results", "OpenAlex"),
    ("data", "Semantic Scholar"),
    ("records", ""),
    ("items", ""),
    ("works", ""),
    ("papers", ""),
)
_SCALARS = (str, int, float, bool)


def looks_like(head: str) -> bool:
    """JSON: an object ('{"...') or an array of objects first, after white space."""
    return bool(_SIGNATURE.match(head.lstrip("\ufeff")))


class _Stream:
    """Successive JSON values from a text file, decoded with raw_decode over a sliding buffer."""

    def __init__(self, handle: IO[str], source: SourceFile) -> None:
        self._handle = handle
        self._source = source
        self._decoder = json.JSONDecoder()
        self._buffer = ""
        self._pos = 0
        self._eof = False
        self._line = 1  # line number of the buffer's start

    def _fill(self) -> bool:
        """Read more; the read size doubles with the pending text, so re-decoding a big value stays linear."""
        if self._eof:
            return False
        chunk = self._handle.read(max(_CHUNK, len(self._buffer) - self._pos))
        if not chunk:
            self._eof = True
            return False
        self._line += self._buffer.count("\n", 0, self._pos)
        self._buffer = self._buffer[self._pos :] + chunk
        self._pos = 0
        return True

    def peek(self) -> str:
        """The next non-space character, '' at the end of the file."""
        while True:
            while self._pos < len(self._buffer) and self._buffer[self._pos].isspace():
                self._pos += 1
            if self._pos < len(self._buffer) or not self._fill():
                return self._buffer[self._pos : self._pos + 1]

    def take(self, char: str) -> bool:
        if self.peek() == char:
            self._pos += 1
            return True
        return False

    def value(self) -> Any:
        while True:
            self.peek()
            try:
                value, end = self._decoder.raw_decode(self._buffer, self._pos)
            except json.JSONDecodeError as exc:
                if self._fill():
                    continue
                raise self._error(exc) from exc
            if end == len(self._buffer) and self._fill():
                continue  # a number or literal may go on in the next chunk
            self._pos = end
            return value

    def rest(self) -> str:
        """The remaining text (at most _TRAILING_KEEP characters)."""
        while len(self._buffer) - self._pos < _TRAILING_KEEP and self._fill():
            pass
        return self._buffer[self._pos : self._pos + _TRAILING_KEEP]

    def _error(self, exc: json.JSONDecodeError) -> Exception:
        line = self._line + self._buffer.count("\n", 0, exc.pos)
        return self._source.error(
            f"the JSON is not valid ({exc.msg})",
            "check the file is complete JSON or JSON Lines (one object per line)",
            line=line,
        )


def read(source: SourceFile) -> Iterator[Record]:
    """Stream the records of a JSON / JSONL file."""
    with source.open_lines() as handle:
        stream = _Stream(handle, source)
        if stream.take("["):
            yield from _records(_array_items(stream, source), source, "")
            return
        first = stream.value()
        if stream.peek() in ("{", "["):
            yield from _records(_values(first, stream), source, "")  # JSON Lines / concatenated
            return
        trailing = stream.rest().strip()
        yield from _from_document(first, source, trailing)


def _array_items(stream: _Stream, source: SourceFile) -> Iterator[Any]:
    if stream.take("]"):
        return
    while True:
        yield stream.value()
        if stream.take(","):
            continue
        if stream.take("]"):
            return
        raise source.error(
            "the JSON list is not closed with ']' or its items are not separated by ','",
            "check the file is complete JSON",
        )


def _values(first: Any, stream: _Stream) -> Iterator[Any]:
    yield first
    while stream.peek():
        yield stream.value()


def _from_document(document: Any, source: SourceFile, trailing: str) -> Iterator[Record]:
    items, database = _unwrap(document)
    count = 0
    for record in _records(iter(items), source, database):
        count += 1
        if trailing and count == 1 and len(items) == 1:
            record.extra["trailing_text"] = trailing
        yield record
    if trailing and count != 1:
        log.warning("%s: text after the JSON value was ignored", source.name)


def _unwrap(document: Any) -> tuple[list[Any], str]:
    """The record objects inside an API envelope (or the document itself) and the source's name."""
    if isinstance(document, list):
        return document, ""
    if not isinstance(document, dict):
        return [], ""
    message = document.get("message")
    if isinstance(message, dict):
        items = message.get("items")
        return (items if isinstance(items, list) else [message]), "Crossref"
    response = document.get("response")
    if isinstance(response, dict) and isinstance(response.get("docs"), list):
        return response["docs"], "ERIC"
    for key, database in _ENVELOPES:
        if isinstance(document.get(key), list):
            return document[key], database
    if _RECORD_KEYS & {key.lower() for key in document}:
        return [document], ""
    return [], ""


def _records(items: Iterator[Any], source: SourceFile, database: str) -> Iterator[Record]:
    position = 0
    for item in items:
        if not isinstance(item, dict):
            log.warning("%s: item %d is not a JSON object and was skipped", source.name, position + 1)
            continue
        position += 1
        yield record_from_mapping(item, source.name, position, database)


# ---------------------------------------------------------------------------------------------
# One JSON object -> Record
# ---------------------------------------------------------------------------------------------


class _Fields:
    """Case-insensitive access to one JSON object's keys."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.lower: dict[str, str] = {}
        for key in data:
            self.lower.setdefault(key.lower(), key)
        self.used: set[str] = set()

    def get(self, *names: str) -> Any:
        for name in names:
            key = self.lower.get(name.lower())
            if key is not None and data_present(self.data[key]):
                self.used.add(key)
                return self.data[key]
        return None

    def text(self, *names: str) -> str:
        return _as_text(self.get(*names))


def data_present(value: Any) -> bool:
    return value not in (None, "", [], {})


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(_as_text(item) for item in value if data_present(item))
    if isinstance(value, dict):
        return _as_text(value.get("name") or value.get("display_name") or value.get("value"))
    return str(value).strip()


def record_from_mapping(data: dict[str, Any], source_name: str, position: int, database: str = "") -> Record:
    """Map one JSON record object (OpenAlex, Semantic Scholar, Crossref, ERIC, generic) to a Record."""
    fields = _Fields(data)
    journal = _dict(fields.get("journal"))  # Semantic Scholar: {name, volume, pages}
    biblio = _dict(fields.get("biblio"))  # OpenAlex: {volume, issue, first_page, last_page}
    location = _dict(fields.get("primary_location"))  # OpenAlex
    host = _dict(location.get("source"))
    own_id = fields.text(*_ID_KEYS[:-1]) or (fields.text("DOI") if database == "Crossref" else "")
    return Record(
        id=own_id or str(position),
        source_format=FORMAT,
        source_file=source_name,
        position=position,
        title=fields.text("title", "display_name"),
        authors=_authors(fields.get("authors", "author", "authorships")),
        year=year_from(
            fields.get("year", "publication_year", "publicationdateyear"),
            _date_year(fields.get("issued", "published", "published-print", "published-online", "created")),
            fields.text("publicationDate", "publication_date", "date"),
        ),
        doi=fields.text("doi") or _as_text(_dict(fields.get("externalIds")).get("DOI")),
        venue=(
            fields.text("venue", "container-title", "PeriodicalName")
            or _as_text(journal.get("name") if journal else fields.get("journal"))
            or _as_text(host.get("display_name"))
            or ("" if database == "Crossref" else fields.text("source"))  # Crossref's 'source' is itself
        ),
        volume=fields.text("volume") or _as_text(journal.get("volume") or biblio.get("volume")),
        issue=fields.text("issue", "number") or _as_text(biblio.get("issue")),
        pages=fields.text("page", "pages") or _as_text(journal.get("pages")) or _pages(biblio),
        keywords=_keywords(fields.get("keywords", "subject", "subjects")),
        abstract=abstract_text(_abstract(fields)),
        publisher=fields.text("publisher"),
        doc_type=fields.text("type", "publicationTypes", "publicationtype", "documentType", "document_type"),
        url=fields.text("url", "URL", "link") or _as_text(location.get("landing_page_url")),
        issn=fields.text("ISSN", "issn") or _as_text(host.get("issn_l")),
        language=fields.text("language"),
        database=database or fields.text("database", "platform"),
        extra=_extra(fields),
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _authors(value: Any) -> list[str]:
    """Strings ('A. Smith' or 'Smith, A; Jones, B'), {name}, {given, family}, {author: {display_name}}."""
    if isinstance(value, str):
        return split_authors(value)
    if not isinstance(value, list):
        return []
    names = []
    for item in value:
        if isinstance(item, str):
            name = item.strip()
        elif isinstance(item, dict):
            inner: dict[str, Any] = _dict(item.get("author")) or item
            name = _as_text(inner.get("name") or inner.get("display_name") or inner.get("raw_author_name"))
            if not name and (inner.get("family") or inner.get("given")):
                name = ", ".join(part for part in (_as_text(inner.get("family")), _as_text(inner.get("given"))) if part)
        else:
            name = ""
        if name:
            names.append(name)
    return names


def _keywords(value: Any) -> list[str]:
    if isinstance(value, str):
        return split_keywords(value)
    if not isinstance(value, list):
        return []
    words = (
        _as_text(item.get("display_name") or item.get("keyword") or item.get("name"))
        if isinstance(item, dict)
        else _as_text(item)
        for item in value
    )
    return unique(words)


def _abstract(fields: _Fields) -> str:
    text = fields.text("abstract", "description", "abstractText")
    if text:
        return text
    inverted = fields.get("abstract_inverted_index")
    return inverted_index_text(inverted) if isinstance(inverted, dict) else ""


def inverted_index_text(index: dict[str, list[int]]) -> str:
    """OpenAlex's {word: [positions]} back into running text."""
    slots: dict[int, str] = {}
    for word, positions in index.items():
        for position in positions or ():
            if isinstance(position, int):
                slots[position] = word
    return " ".join(slots[i] for i in sorted(slots))


def _date_year(value: Any) -> int | None:
    """Crossref {'date-parts': [[2020, 11, 26]]}."""
    if isinstance(value, dict):
        parts = value.get("date-parts")
        if isinstance(parts, list) and parts and isinstance(parts[0], list) and parts[0]:
            return year_from(parts[0][0])
    return None


def _pages(biblio: dict[str, Any]) -> str:
    return page_range(_as_text(biblio.get("first_page")), _as_text(biblio.get("last_page")))


def _extra(fields: _Fields) -> dict[str, str]:
    """Scalar fields not read into the Record, for provenance (lists and objects are left out)."""
    return {
        key: str(value)
        for key, value in fields.data.items()
        if key not in fields.used and isinstance(value, _SCALARS) and value != ""
    }
