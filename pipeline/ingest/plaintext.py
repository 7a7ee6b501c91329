"""Plain-text abstracts: the fallback reader, used only when no other format matches.

Two layouts are recognised, from the file's first paragraphs:

* an abstract dump (seeds 000, 001, 002): one record per abstract. Paragraphs are separated by blank
  lines; inside a block of lines, each line is its own paragraph when the lines read as one text per
  line (most end a sentence, or they are long), else the block is one hard-wrapped paragraph whose
  lines are joined. An 'Abstract'/'Abstract:' label line gathers the paragraphs after it into one
  abstract (until a 'Keywords: ...' line, a heading or another label); without a label each paragraph
  is an abstract. 'Keywords: ...' goes to the keywords of the abstract before it. A short heading-like
  line just before an abstract becomes its title, and a line of names after that title its authors.
  A blurb (boilerplate.yaml, e.g. the scite footer) is not an abstract and is dropped. Each record's
  id is its position; extra['line'] is the line its abstract starts on.
* a document with a front matter (seed 004, a 'Context and Implications Document'): a title
  paragraph, then an author line (and no second title-and-authors pair soon after, which would make
  it a list of entries) ('Paul Wilfred Armstrong¹ , Chris Brown² and ...'), affiliations,
  then sections under short headings. ONE record: the title, the authors (superscripts removed, as
  'Surname, Given names'), the year and DOI found in the front matter (a DOI of the article the
  document accompanies is kept in extra['related_doi'], not as the record's DOI), the abstract from
  the section headed Abstract/Summary/Introduction (else the first section), other sections in
  extra['section: <heading>'].

The file is read line by line and paragraph by paragraph, never whole; a line or paragraph over
MAX_PARAGRAPH_CHARS is an error (such a file is not a list of abstracts).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import TYPE_CHECKING, TextIO

from pipeline.ingest.source import SourceFile
from pipeline.records import Record

if TYPE_CHECKING:
    from pipeline.clean import Boilerplate

log = logging.getLogger(__name__)

FORMAT = "text"
SUFFIXES: tuple[str, ...] = (".txt", ".md")

MAX_PARAGRAPH_CHARS = 1_000_000
MAX_ABSTRACT_CHARS = 20_000  # a labelled abstract stops gathering paragraphs past this
MAX_SECTION_CHARS = 100_000  # text kept per document section
_DECIDE_AFTER = 20  # lines of a block looked at to decide 'one text per line' or 'wrapped'
_LONG_LINE = 150  # hard-wrapped text rarely has lines this long

_TERMINAL = re.compile(r"(?:[.!?…]|\.\.\.)[\"'”’)\]]*$")
_LABEL = re.compile(r"(?:abstract|summary)\s*[:.]?", re.IGNORECASE)
_KEYWORDS = re.compile(r"(?:key ?words|index terms)\s*[:：]\s*(?P<body>.*)", re.IGNORECASE | re.DOTALL)
_SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹*†‡§"
_NAME_WORD = (
    r"(?:(?:Mc|Mac|O'|D'|O’|D’)?[A-Z][a-z]+(?:[-'’][A-Z]?[a-z]+)*"  # Armstrong, O'Brien, Smith-Jones
    r"|[A-Z]\.(?:\s?[A-Z]\.)*"  # initials: P. W.
    r"|van|von|de|der|den|da|di|del|la|le|du|dos|das)"
)
_NAME = re.compile(rf"{_NAME_WORD}(?:\s+{_NAME_WORD}){{1,4}}")
_NAME_SEPARATORS = re.compile(r"\s*(?:,|;|&|\band\b)\s*")
_DOI = re.compile(r"10\.\d{4,9}/[^\s<>\"'\]]+")
_YEAR = re.compile(r"\((?P<year>(?:19|20)\d{2})[a-z]?\)|\b(?P<bare>(?:19|20)\d{2})\b")
_COMPANION = re.compile(r"\b(?:accompan|companion|supplement|guide to|commentary on|summary of)", re.IGNORECASE)
_STANDALONE = re.compile(r"(?:key ?words|index terms)\s*[:：]|(?:abstract|summary)\s*[:.]?$", re.IGNORECASE)
_ABSTRACT_HEADING = re.compile(r"abstract|summary|introduction|overview", re.IGNORECASE)

_TAGGED_LINE = re.compile(
    r"^(?:[A-Z][A-Z0-9]  - |[A-Z]{2,4} ?- |[A-Z][A-Z0-9] \S|%[A-Z0-9] |\d+\.\s|_{10,}|"
    r"[A-Z][A-Za-z /]{1,40}:\s|\s*-?\s*[A-Za-z_][\w-]*:(?:\s|$))"
)


_YAML_START = re.compile(r"^(?:---|[a-z_][\w-]*:)\s*$")  # 'interactions:' (a recorded HTTP cassette)


def looks_like(head: str) -> bool:
    """Prose: lines of several mostly lower-case words, and not tagged lines (RIS, MEDLINE, WoS,
    'Field: value', YAML keys, numbered lists), markup, JSON, BibTeX or a delimited table."""
    lines = [line for line in head.lstrip("\ufeff").splitlines()[:300] if line.strip()]
    if not lines or lines[0].lstrip()[:1] in ("{", "[", "<", "@", '"') or _YAML_START.match(lines[0]):
        return False
    tagged = sum(1 for line in lines if _TAGGED_LINE.match(line))
    if tagged >= max(3, len(lines) // 4) or _is_table(lines):
        return False
    wordy = sum(1 for line in lines if len(line.split()) >= 4)
    words = re.findall(r"[^\W\d_]+", head)
    lower = sum(1 for word in words if word.islower())
    return wordy >= 0.5 * len(lines) and len(words) >= 20 and lower >= 0.5 * len(words)


def _is_table(lines: list[str]) -> bool:
    """A delimited table: a first line with 3+ tabs, or 3+ commas/semicolons between short fields."""
    first = lines[0]
    if first.count("\t") >= 3:
        return True
    for delimiter in (",", ";"):
        fields = first.split(delimiter)
        if len(fields) >= 4 and sum(len(cell.strip()) for cell in fields) / len(fields) < 30:
            return True
    return False


# ---------------------------------------------------------------------------------------------------
# Lines -> paragraphs


@dataclass
class Paragraph:
    line: int  # 1-based line number of its first line
    text: str  # lines joined with single spaces


def read(source: SourceFile) -> Iterator[Record]:
    """Stream the records of a plain-text file, in file order."""
    from pipeline.clean import load_boilerplate

    rules = load_boilerplate()
    with source.open_lines() as handle:
        paragraphs = (p for p in _paragraphs(_lines(handle, source), source) if not _is_blurb(p, rules, source))
        first = list(islice(paragraphs, _LOOKAHEAD))
        everything = chain(first, paragraphs)
        if _is_document([p.text for p in first]):
            yield _document_record(everything, source)
        else:
            yield from _dump_records(everything, source)


_LOOKAHEAD = 10  # paragraphs looked at to tell one document from a list of abstracts


def _is_document(texts: list[str]) -> bool:
    """A title then an author line, and no second title-and-authors pair in the next paragraphs (a list
    of 'title, authors, abstract' entries is a dump, not one document)."""
    if len(texts) < 3 or not (_is_title(texts[0]) and _author_names(texts[1])):
        return False
    return not any(_is_title(a) and _author_names(b) for a, b in zip(texts[2:], texts[3:], strict=False))


def _is_blurb(paragraph: Paragraph, rules: Boilerplate, source: SourceFile) -> bool:
    if rules.is_blurb(paragraph.text):
        log.info("%s, line %d: dropped a blurb that is not an abstract", source.name, paragraph.line)
        return True
    return False


def _lines(handle: TextIO, source: SourceFile) -> Iterator[tuple[int, str]]:
    """(line number, stripped line); a line too long to be text raises a clear error."""
    number = 0
    while True:
        line = handle.readline(MAX_PARAGRAPH_CHARS + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_PARAGRAPH_CHARS:
            raise _too_long(source, number)
        yield number, line.strip()


def _too_long(source: SourceFile, line: int) -> Exception:
    return source.error(
        f"a paragraph longer than {MAX_PARAGRAPH_CHARS:,} characters with no blank line is not a list of abstracts",
        "put each abstract on its own line or separate abstracts with blank lines",
        line=line,
    )


def _paragraphs(lines: Iterable[tuple[int, str]], source: SourceFile) -> Iterator[Paragraph]:
    """Blocks of non-blank lines, split into one paragraph per line or joined as one wrapped paragraph.
    The decision is taken on a block's first lines, so a long block streams. A 'Keywords: ...' or
    'Abstract:' line is always a paragraph of its own, even with no blank line before it."""
    splitter = _BlockSplitter(source)
    for number, line in lines:
        if not line:
            yield from splitter.end_block()
        elif _STANDALONE.match(line):
            yield from splitter.end_block()
            yield Paragraph(number, line)
        else:
            yield from splitter.add(number, line)
    yield from splitter.end_block()


class _BlockSplitter:
    """The block being read: undecided (its first lines buffered), one text per line, or wrapped."""

    def __init__(self, source: SourceFile) -> None:
        self.source = source
        self.block: list[tuple[int, str]] = []
        self.per_line: bool | None = None
        self.wrapped: _Wrapped | None = None

    def add(self, number: int, line: str) -> Iterator[Paragraph]:
        if self.per_line:
            yield Paragraph(number, line)
        elif self.wrapped is not None:
            self.wrapped.add(number, line)
        else:
            self.block.append((number, line))
            if len(self.block) == _DECIDE_AFTER:
                yield from self._decide()

    def end_block(self) -> Iterator[Paragraph]:
        if self.block:
            yield from self._decide()
        if self.wrapped is not None and self.wrapped.parts:
            yield self.wrapped.paragraph()
        self.block, self.per_line, self.wrapped = [], None, None

    def _decide(self) -> Iterator[Paragraph]:
        self.per_line = _one_text_per_line([text for _, text in self.block])
        if self.per_line:
            yield from (Paragraph(number, text) for number, text in self.block)
        else:
            self.wrapped = _Wrapped(self.source)
            for number, text in self.block:
                self.wrapped.add(number, text)
        self.block = []


@dataclass
class _Wrapped:
    """A hard-wrapped paragraph being joined, with its size checked as it grows."""

    source: SourceFile
    parts: list[str] = field(default_factory=list)
    line: int = 0
    size: int = 0

    def add(self, number: int, text: str) -> None:
        if not self.parts:
            self.line = number
        self.size += len(text) + 1
        if self.size > MAX_PARAGRAPH_CHARS:
            raise _too_long(self.source, self.line)
        self.parts.append(text)

    def paragraph(self) -> Paragraph:
        return Paragraph(self.line, _join_wrapped(self.parts))


def _join_wrapped(parts: list[str]) -> str:
    """Join hard-wrapped lines; a line ending in a hyphen is joined without a space ('school-' +
    'to-school'), the hyphen kept, since it cannot be told from a word broken at the margin."""
    text = parts[0]
    for part in parts[1:]:
        text += part if text.endswith("-") and text[-2:-1].isalpha() else " " + part
    return text


def _one_text_per_line(lines: list[str]) -> bool:
    """Several lines, most of which end a sentence (or are longer than wrapped text ever is)."""
    if len(lines) < 2:
        return False
    ending = sum(1 for line in lines if _TERMINAL.search(line))
    long_lines = sum(1 for line in lines if len(line) > _LONG_LINE)
    return ending >= 0.8 * len(lines) or long_lines >= 0.5 * len(lines)


# ---------------------------------------------------------------------------------------------------
# Abstract dumps


@dataclass
class _Pending:
    """The record being built: its abstract paragraphs, keywords and title."""

    line: int
    paragraphs: list[str]
    title: str = ""
    authors: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    size: int = 0


class _DumpBuilder:
    """One record per abstract. A record is emitted only when the next abstract starts (or at the end)
    so that a 'Keywords: ...' paragraph after it can still attach to it."""

    def __init__(self, source: SourceFile) -> None:
        self.source = source
        self.position = 0
        self.pending: _Pending | None = None
        self.title = ""  # a heading waiting for the abstract under it
        self.authors: list[str] = []  # an author line under that heading
        self.gathering = False  # after an 'Abstract' label: paragraphs join the same abstract

    def feed(self, paragraph: Paragraph) -> Iterator[Record]:
        text = paragraph.text
        keywords = _KEYWORDS.fullmatch(text)
        if keywords:
            if self.pending is not None:
                self.pending.keywords.extend(_split_keyword_line(keywords.group("body")))
            self.gathering = False
        elif _LABEL.fullmatch(text):
            yield from self.finish()
            self.gathering = True
        elif self.title and not self.authors and _author_names(text):
            self.authors = _author_names(text)
        elif _is_heading(text):
            self.title, self.authors, self.gathering = text, [], False
        elif self.gathering and self.pending is not None and self.pending.size < MAX_ABSTRACT_CHARS:
            self.pending.paragraphs.append(text)
            self.pending.size += len(text)
        else:
            yield from self.finish()
            self.pending = _Pending(paragraph.line, [text], self.title, self.authors, size=len(text))
            self.title, self.authors = "", []

    def finish(self) -> Iterator[Record]:
        if self.pending is None:
            return
        pending, self.pending = self.pending, None
        self.position += 1
        yield Record(
            id=str(self.position),
            source_format=FORMAT,
            source_file=self.source.name,
            position=self.position,
            title=pending.title,
            authors=pending.authors,
            abstract="\n\n".join(pending.paragraphs),
            keywords=pending.keywords,
            extra={"line": str(pending.line)},
        )


def _dump_records(paragraphs: Iterable[Paragraph], source: SourceFile) -> Iterator[Record]:
    builder = _DumpBuilder(source)
    for paragraph in paragraphs:
        yield from builder.feed(paragraph)
    yield from builder.finish()


def _split_keyword_line(body: str) -> list[str]:
    """'a; b' or 'a, b' (or the OCR comma marks '«'/'¢' of seed 000) -> ['a', 'b']; a final '.' dropped."""
    separators = r"\s*;\s*" if ";" in body else r"\s*[,«¢]\s*"
    parts = (part.strip().rstrip(".").strip() for part in re.split(separators, " ".join(body.split())))
    return [part for part in parts if part]


def _is_heading(text: str) -> bool:
    """A short title-like line with no closing punctuation: 'Authors' Introduction', 'Networks of schools'."""
    return len(text) <= 80 and 1 <= len(text.split()) <= 12 and text[:1].isupper() and not _CLOSING.search(text)


_CLOSING = re.compile(r"[.!?:;,…]$")


def _is_title(text: str) -> bool:
    """A document title: one line, not a sentence-ending paragraph, not too long."""
    return 10 <= len(text) <= 300 and not _TERMINAL.search(text) and not _LABEL.fullmatch(text)


# ---------------------------------------------------------------------------------------------------
# Documents with a front matter


def _author_names(text: str) -> list[str]:
    """'Paul Wilfred Armstrong¹ , Chris Brown² and Christopher Chapman³' ->
    ['Armstrong, Paul Wilfred', 'Brown, Chris', 'Chapman, Christopher']; [] when it is not a list of names."""
    if len(text) > 1000:
        return []
    plain = re.sub(rf"[{_SUPERSCRIPTS}]|(?<=[a-z])\d+", " ", text)
    parts = [" ".join(part.split()) for part in _NAME_SEPARATORS.split(plain)]
    parts = [part for part in parts if part]
    if not parts or not all(_NAME.fullmatch(part) for part in parts):
        return []
    return [_surname_first(part) for part in parts]


def _surname_first(name: str) -> str:
    words = name.split()
    return f"{words[-1]}, {' '.join(words[:-1])}"


@dataclass
class _Document:
    title: str
    authors: list[str]
    front: list[str] = field(default_factory=list)  # paragraphs before the first heading
    sections: dict[str, list[str]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)

    def add(self, heading: str, text: str) -> None:
        size = self.sizes.get(heading, 0)
        if size >= MAX_SECTION_CHARS:
            return
        self.sections.setdefault(heading, []).append(text)
        self.sizes[heading] = size + len(text)


def _document_record(paragraphs: Iterable[Paragraph], source: SourceFile) -> Record:
    iterator = iter(paragraphs)
    title = next(iterator).text
    authors = _author_names(next(iterator).text)
    document = _Document(title, authors)
    heading = ""
    for paragraph in iterator:
        if _is_heading(paragraph.text):
            heading = paragraph.text
        elif heading:
            document.add(heading, paragraph.text)
        else:
            document.front.append(paragraph.text)
    return _build_document(document, source)


def _build_document(document: _Document, source: SourceFile) -> Record:
    extra: dict[str, str] = {}
    doi, year = "", None
    for text in document.front:
        if text[:1] in _SUPERSCRIPTS or re.match(r"\d\s*[A-Z]", text):
            extra["affiliations"] = "; ".join(_split_affiliations(text))
            continue
        found = _DOI.search(text)
        if found:
            value = found.group(0).rstrip(".,;)>")
            if _COMPANION.search(text):
                extra["related_doi"], extra["related_citation"] = value, text
            else:
                doi = value
        year = year or _year(text)
    abstract_heading = next((h for h in document.sections if _ABSTRACT_HEADING.search(h)), None)
    if abstract_heading is None and document.sections:
        abstract_heading = next(iter(document.sections))
    for heading, texts in document.sections.items():
        if heading != abstract_heading:
            extra[f"section: {heading}"] = "\n\n".join(texts)
    return Record(
        id="1",
        source_format=FORMAT,
        source_file=source.name,
        position=1,
        title=document.title,
        authors=document.authors,
        year=year,
        doi=doi,
        abstract="\n\n".join(document.sections.get(abstract_heading or "", [])),
        extra=extra,
    )


def _split_affiliations(text: str) -> list[str]:
    parts = re.split(rf"[{_SUPERSCRIPTS}]|(?:(?<=^)|(?<=, ))\d(?=\s*[A-Z])", text)
    return [part.strip(" ,;") for part in parts if part.strip(" ,;")]


def _year(text: str) -> int | None:
    match = _YEAR.search(text)
    if not match:
        return None
    return int(match.group("year") or match.group("bare"))
