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
from a cut fragment, and an InputFileError names the line where it started.

The small field helpers here (`year_from`, `bare_doi`, `abstract_text`, ...) are shared by the
other tagged-format readers (MEDLINE, WoS plain text, ProQuest).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote

from pipeline.ingest.source import SourceFile
from pipeline.records import Record

log = logging.getLogger(__name__)

FORMAT = "ris"
SUFFIXES: tuple[str, ...] = (".ris",)

UNTERMINATED_FLAG = "unterminated_record"

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

NO_ABSTRACT = "[no abstract available]"
_YEAR = re.compile(r"(?<!\d)((?:1[5-9]|20)\d\d)(?:(?!\d)|(?=\d{4}(?!\d)))")
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*|doi\s+)", re.IGNORECASE)
_DOI_IN_TEXT = re.compile(r"\b(10\.\d{4,9}/[^\s&?#\"<>]+)")
_ISSN = re.compile(r"^\d{4}-?\d{3}[\dXx]$")
_NO_PAGES = re.compile(r"^(?:no (?:pagination )?specified|n/?a)$", re.IGNORECASE)  # Ovid: SP 'No', EP 'Specified'


# --- helpers shared by the tagged-format readers -------------------------------------------


def year_from(text: str) -> int | None:
    """The first plausible year in a date as exported ('2019//', 'Jan.-Feb. 2019', '20151207')."""
    match = _YEAR.search(text or "")
    return int(match.group(1)) if match else None


def bare_doi(text: str) -> str:
    """A DOI without its URL or 'doi:' prefix and ' [doi]' suffix; otherwise as given."""
    value = (text or "").strip()
    value = re.sub(r"\s*\[doi\]$", "", value, flags=re.IGNORECASE)
    return _DOI_PREFIX.sub("", value).strip()


def doi_in_text(text: str) -> str:
    """A DOI found inside a link or note (URL-encoded or not), or ''."""
    match = _DOI_IN_TEXT.search(unquote(text or ""))
    return match.group(1).rstrip(".,;)]") if match else ""


def abstract_text(text: str) -> str:
    """The abstract, or '' when the export says there is none."""
    value = (text or "").strip()
    return "" if value.lower() == NO_ABSTRACT else value


def join_lines(lines: Iterable[str]) -> str:
    """Wrapped lines of one value as one line: each stripped, joined with single spaces."""
    return " ".join(stripped for line in lines if (stripped := line.strip()))


def page_range(first: str, last: str) -> str:
    """'42' and '47' give '42-47'; a first page that is already a range is kept as it is."""
    first, last = first.strip(), last.strip()
    if _NO_PAGES.match(f"{first} {last}".strip()):
        return ""
    if not first or "-" in first or not last or last == first:
        return first or last
    return f"{first}-{last}"


def issn_from(values: Iterable[str]) -> str:
    """The first ISSN among SN-like values ('03064530 (ISSN)', '0894-9867, 0894-9867'); ISBNs skipped."""
    for value in values:
        for token in re.split(r"[;,\s]+", re.sub(r"\(.*?\)", " ", value)):
            if _ISSN.match(token):
                return token
    return ""


# --- the reader ------------------------------------------------------------------------------


@dataclass
class _RawRecord:
    """The tags of one record in file order, each with its lines (first line + continuations)."""

    start_line: int
    tags: list[tuple[str, list[str]]] = field(default_factory=list)
    closed: bool = False  # its ER was seen
    _by_tag: dict[str, list[list[str]]] | None = field(default=None, repr=False)

    def add(self, tag: str, value: str) -> None:
        self.tags.append((tag, [value] if value else []))

    def extend(self, line: str) -> None:
        if self.tags:
            self.tags[-1][1].append(line)
        else:  # text straight after TY: keep it rather than lose it
            self.tags.append(("TY", [line]))

    def occurrences(self, tag: str) -> list[list[str]]:
        if self._by_tag is None:  # built once the record is complete: the mapping reads each tag often
            self._by_tag = {}
            for name, lines in self.tags:
                self._by_tag.setdefault(name, []).append(lines)
        return self._by_tag.get(tag, [])

    def texts(self, tag: str) -> list[str]:
        """Each occurrence of a text tag, its lines joined with spaces."""
        return [text for lines in self.occurrences(tag) if (text := join_lines(lines))]

    def items(self, tag: str) -> list[str]:
        """Each line of each occurrence of a list tag, as one item."""
        return [stripped for lines in self.occurrences(tag) for line in lines if (stripped := line.strip())]

    def first(self, tags: Iterable[str]) -> str:
        for tag in tags:
            for lines in self.occurrences(tag):
                if text := join_lines(lines):
                    return text
        return ""


def looks_like(head: str) -> bool:
    """A `TY  - ` line (after a BOM, blank lines or Ovid numbers) followed by another RIS tag."""
    match = _TY_IN_HEAD.search(head)
    return match is not None and _ANY_TAG_IN_HEAD.search(head, match.end()) is not None


def read(source: SourceFile) -> Iterator[Record]:
    """Stream the records of a RIS file, in file order."""
    position = 0
    for raw in _raw_records(source):
        position += 1
        yield _to_record(raw, source, position)


def _raw_records(source: SourceFile) -> Iterator[_RawRecord]:
    current: _RawRecord | None = None
    with source.open_lines() as lines:
        for number, line in enumerate(lines, start=1):
            text = line.replace("\ufeff", "").rstrip()
            match = _TAG_LINE.match(text.lstrip())
            if match is None:
                _continue(current, text)
                continue
            tag, value = match.group(1), (match.group(2) or "").strip()
            if tag == "TY":
                if current is not None:
                    yield _finished(current, source)
                current = _RawRecord(start_line=number)
                current.add(tag, value)
            elif current is None:
                log.debug("%s line %d: RIS tag %s before the first TY ignored", source.name, number, tag)
            elif tag == "ER":
                current.closed = True
            else:
                current.add(tag, value)  # after ER too: Ovid writes NL there
    if current is not None:
        yield _finished(current, source)


def _continue(current: _RawRecord | None, text: str) -> None:
    """An untagged line: a continuation inside an open record, else preamble or trailer."""
    if current is None or current.closed or not text.strip():
        return
    current.extend(text)


def _finished(raw: _RawRecord, source: SourceFile) -> _RawRecord:
    if raw.closed:
        return raw
    if not raw.first(_TITLE_TAGS):
        raise source.error(
            "this RIS record has no title and no 'ER  -' end line, so the file looks cut short here",
            "export the records again, or end the record with a line 'ER  - '",
            line=raw.start_line,
        )
    log.warning("%s line %d: RIS record without its 'ER  -' line, kept", source.name, raw.start_line)
    return raw


def _to_record(raw: _RawRecord, source: SourceFile, position: int) -> Record:
    own_id = raw.first(("ID",))
    record = Record(
        id=own_id or str(position),
        source_format=FORMAT,
        source_file=source.name,
        position=position,
        title=raw.first(_TITLE_TAGS),
        authors=_authors(raw),
        year=_year(raw),
        doi=_doi(raw),
        venue=raw.first(_VENUE_TAGS),
        volume=raw.first(("VL", "VO")),
        issue=raw.first(("IS",)),
        pages=page_range(raw.first(("SP",)), raw.first(("EP",))),
        keywords=raw.items("KW"),
        abstract=abstract_text(raw.first(("AB", "N2"))),
        publisher=raw.first(("PB",)),
        doc_type=raw.first(("TY",)),
        url=_url(raw),
        issn=issn_from(raw.texts("SN")),
        language=raw.first(("LA",)),
        database=_database(raw),
        extra=_extra(raw),
    )
    if not raw.closed:
        record.flags.append(UNTERMINATED_FLAG)
    return record


def _authors(raw: _RawRecord) -> list[str]:
    """AU and A1 in file order (both are primary authors; A2-A4 are editors and the like)."""
    return [line.strip() for name, lines in raw.tags if name in _AUTHOR_TAGS for line in lines if line.strip()]


def _year(raw: _RawRecord) -> int | None:
    for tag in _YEAR_TAGS:
        for text in raw.texts(tag):
            if (year := year_from(text)) is not None:
                return year
    return None


def _doi(raw: _RawRecord) -> str:
    for text in raw.texts("DO"):
        if doi := bare_doi(text):
            return doi
    for tag in _URL_DOI_TAGS:
        for text in raw.texts(tag):
            if doi := doi_in_text(text):
                return doi
    return ""


def _url(raw: _RawRecord) -> str:
    """The first link of UR (some exports list several, comma-separated), else of L2."""
    for tag in ("UR", "L2"):
        for text in raw.texts(tag):
            for token in re.split(r"[\s,]+", text):
                if token.startswith(("http://", "https://")):
                    return token
    return ""


def _database(raw: _RawRecord) -> str:
    """The DB tag; else what the record itself says about where it comes from."""
    if database := raw.first(("DB",)):
        return database
    if raw.first(("DP",)).upper() == "NLM":
        return "PubMed"
    if raw.first(("AN",)).upper().startswith("WOS:") or raw.texts("WE"):
        return "Web of Science"
    if any("scopus.com" in text for text in raw.texts("UR")):
        return "Scopus"
    return ""


def _extra(raw: _RawRecord) -> dict[str, str]:
    """Tags without a Record field, occurrences and continuation lines joined with newlines."""
    extra: dict[str, list[str]] = {}
    for tag, lines in raw.tags:
        if tag in _MAPPED:
            continue
        text = "\n".join(line.strip() for line in lines if line.strip())
        if text:
            extra.setdefault(tag, []).append(text)
    if raw.texts("AB") and raw.texts("N2"):  # both given: AB is the abstract, keep N2 too
        extra["N2"] = raw.texts("N2")
    return {tag: "\n".join(values) for tag, values in extra.items()}
