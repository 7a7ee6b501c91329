"""BibTeX (Scopus, Web of Science, Zotero, JabRef, ...) -> Records, streamed entry by entry.

bibtexparser 1.x was tried on the real exports and does not do the job here: it reads the whole
file into memory, takes 4-9 s per 1.5-3 MB file and silently drops entries whose key repeats (the
Scopus export has two). So entries are split off the line stream here (brace depth per line) and
each small entry is parsed on its own; bibtexparser's LaTeX table (latexenc) turns accents and
escapes into Unicode.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pipeline.ingest.fields import abstract_text, split_keywords, unique, year_from
from pipeline.ingest.source import SourceFile
from pipeline.records import Record

log = logging.getLogger(__name__)

FORMAT = "bibtex"
SUFFIXES = (".bib", ".bibtex")

_SIGNATURE = re.compile(r"(?m)^[ \t]*@[ \t]*[A-Za-z]+[ \t]*\{[ \t]*[^\s,{}=\"#%]+[ \t]*,")
_ENTRY_START = re.compile(r"[ \t]*@[ \t]*([A-Za-z][\w-]*)[ \t]*([{(])")
_NEW_ENTRY_AT_COLUMN_0 = re.compile(r"@[A-Za-z][\w-]*[ \t]*[{(]")
_KEY = re.compile(r"\s*([^,\s{}()]*)\s*")
_FIELD_NAME = re.compile(r"\s*([^\s=,{}()\"#]+)\s*=\s*")
_BARE_VALUE = re.compile(r"[^\s,#{}()\"]+")
_QUOTE_OR_BRACE = re.compile(r'\\["{}]|["{}]')
_AND = re.compile(r"[{}]|\s+and\s+", re.IGNORECASE)  # braces too: 'and' inside them is text
_SPACE = re.compile(r"\s+")
_MONTHS = {
    name[:3].lower(): name
    for name in "January February March April May June July August September October November December".split()
}
# Text commands bibtexparser's latexenc leaves alone; `\textless{}`, `{\textless}` and `\textless 5` alike.
_TEXT_COMMANDS = {
    "textless": "<",
    "textgreater": ">",
    "textbackslash": "\\",
    "textbar": "|",
    "textendash": "\u2013",
    "textemdash": "\u2014",
    "textquoteright": "\u2019",
    "textquoteleft": "\u2018",
    "textquotedblleft": "\u201c",
    "textquotedblright": "\u201d",
    "textregistered": "\u00ae",
    "texttrademark": "\u2122",
    "textcopyright": "\u00a9",
    "textdegree": "\u00b0",
    "textasciitilde": "~",
    "textperiodcentered": "\u00b7",
    "textbullet": "\u2022",
    "textmu": "\u00b5",
    "textpm": "\u00b1",
}
_TEXT_COMMAND = re.compile(
    r"\{?\\(" + "|".join(sorted(_TEXT_COMMANDS, key=len, reverse=True)) + r")(?![A-Za-z])(?:\{\}|[ \t]*)\}?"
)
_FORMATTING = re.compile(
    r"\\(?:emph|textit|textbf|textsc|textrm|textsf|texttt|textup|textnormal|textsuperscript|textsubscript"
    r"|mathrm|mathit|mathbf|mbox|text|url|href\{[^{}]*\})\s*(?=\{)"
)
_ESCAPED = re.compile(r"\\([&%$#_{}])")
# BibTeX fields read into Record fields (lower case); the rest go to `extra`.
_TITLE, _AUTHOR = "title", "author"
_VENUE = ("journal", "journaltitle", "booktitle", "series")
_KEYWORDS = ("keywords", "author_keywords", "author-keywords", "keywords-plus", "mesh", "mesh_terms")
_MAPPED = frozenset(
    [_TITLE, _AUTHOR, *_VENUE, *_KEYWORDS]
    + "year date doi volume number issue pages abstract publisher document_type type url issn language source".split()
)


def looks_like(head: str) -> bool:
    """BibTeX: an '@type{key,' entry at the start of a line."""
    return bool(_SIGNATURE.search(head))


def read(source: SourceFile) -> Iterator[Record]:
    """Stream the entries as Records; @string macros apply, @comment and @preamble are skipped."""
    macros = dict(_MONTHS)
    position = 0
    with source.open_lines() as lines:
        for line_number, text in _entries(lines, source):
            entry = _Entry.parse(text, macros)
            if entry.type in ("comment", "preamble"):
                continue
            if entry.type == "string":
                macros.update({name.lower(): value for name, value in entry.fields})
                continue
            position += 1
            record = _record(entry, source, position)
            if entry.repaired:
                log.warning(
                    "%s, line %d: unbalanced braces in entry %r; read field by line",
                    source.name,
                    line_number,
                    entry.key,
                )
                record.flags.append("bibtex_unbalanced_braces")
            yield record


def _entries(lines: Iterable[str], source: SourceFile) -> Iterator[tuple[int, str]]:
    """(first line number, text) of each @entry, found by brace depth so values may span lines.

    An entry ends where its braces balance on a line that ends with its closer. If they never
    balance (Scopus writes stray braces in abstracts), an '@type{' at the start of a line still
    begins the next entry, and the broken one is parsed leniently; only the end of the file inside
    an entry (a truncated export) is an error.
    """
    buffer: list[str] = []
    depth, start, closer = 0, 0, "}"
    for number, line in enumerate(lines, 1):
        if number == 1:
            line = line.lstrip("\ufeff")
        if buffer and _NEW_ENTRY_AT_COLUMN_0.match(line):
            yield start, "".join(buffer)
            buffer = []
        if not buffer:
            match = _ENTRY_START.match(line)
            if not match:
                continue  # text between entries is a comment in BibTeX
            depth, start, closer = 0, number, "}" if match.group(2) == "{" else ")"
        buffer.append(line)
        depth += _brace_delta(line)
        if depth <= 0 and line.rstrip().endswith(closer):
            yield start, "".join(buffer)
            buffer = []
    if buffer and "".join(buffer).strip():
        raise source.error(
            "the file ends inside this entry, so it is probably truncated",
            "export the file again, or close the entry with '}'",
            line=start,
        )


def _brace_delta(line: str) -> int:
    escaped_open, escaped_close = line.count("\\{"), line.count("\\}")
    return (line.count("{") - escaped_open) - (line.count("}") - escaped_close)


@dataclass
class _Entry:
    """One entry: type, key and (field name, raw value) pairs; raw values keep their LaTeX."""

    type: str
    key: str = ""
    fields: list[tuple[str, str]] = field(default_factory=list)
    repaired: bool = False  # a value's braces did not balance: it was read to the end of its line

    @classmethod
    def parse(cls, text: str, macros: dict[str, str]) -> _Entry:
        match = _ENTRY_START.match(text)
        assert match is not None  # _entries only yields text that starts an entry
        entry = cls(type=match.group(1).lower())
        if entry.type in ("comment", "preamble"):
            return entry
        stripped = text.rstrip()
        end = len(stripped) - 1 if stripped.endswith(("}", ")")) else len(stripped)  # the entry's own closer
        pos = match.end()
        if entry.type != "string":
            key_match = _KEY.match(text, pos)
            if key_match and text.startswith(",", key_match.end()):
                entry.key, pos = key_match.group(1), key_match.end() + 1
        while pos < end:
            name_match = _FIELD_NAME.match(text, pos)
            if name_match:
                value, pos = entry._value(text, name_match.end(), end, macros)
                entry.fields.append((name_match.group(1).lower(), value))
            else:
                pos = entry._skip(text, pos, end)
        return entry

    def _skip(self, text: str, pos: int, end: int) -> int:
        """Past separators; past the rest of the line if something unreadable is there."""
        while pos < end and (text[pos].isspace() or text[pos] == ","):
            pos += 1
        if pos < end and not _FIELD_NAME.match(text, pos):
            self.repaired = True
            newline = text.find("\n", pos)
            pos = end if newline < 0 else newline + 1
        return pos

    def _value(self, text: str, pos: int, end: int, macros: dict[str, str]) -> tuple[str, int]:
        """{braced}, "quoted", a number or a @string macro, joined with '#'."""
        parts = []
        while True:
            while pos < end and text[pos].isspace():
                pos += 1
            char = text[pos : pos + 1]
            if char in ("{", '"'):
                close = _closing(text, pos, end)
                if close is None:  # unbalanced: take the rest of the line, as exports write one field a line
                    self.repaired = True
                    newline = text.find("\n", pos)
                    line_end = end if newline < 0 or newline > end else newline
                    parts.append(
                        text[pos + 1 : line_end]
                        .rstrip()
                        .rstrip(",")
                        .rstrip()
                        .removesuffix(char if char == '"' else "}")
                    )
                    return "".join(parts), line_end
                parts.append(text[pos + 1 : close])
                pos = close + 1
            else:
                bare = _BARE_VALUE.match(text, pos)
                if not bare:
                    break
                word = bare.group(0)
                parts.append(word if word.isdigit() else macros.get(word.lower(), word))
                pos = bare.end()
            while pos < end and text[pos].isspace():
                pos += 1
            if text[pos : pos + 1] != "#":
                break
            pos += 1
        return "".join(parts), pos


def _closing(text: str, pos: int, end: int) -> int | None:
    """Index of the brace or quote that closes the value opened at `pos`, within the entry."""
    quoted = text[pos] == '"'
    depth = 0
    for match in _QUOTE_OR_BRACE.finditer(text, pos + 1 if quoted else pos, end):
        token = match.group(0)
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
            if depth == 0 and not quoted:
                return match.start()
            if depth < 0:
                return None
        elif token == '"' and quoted and depth == 0:
            return match.start()
    return None


# ---------------------------------------------------------------------------------------------
# LaTeX -> text
# ---------------------------------------------------------------------------------------------


def latex_to_text(value: str) -> str:
    """LaTeX accents, escapes and protective braces -> plain Unicode text, whitespace collapsed."""
    text = _SPACE.sub(" ", value).strip()
    if "\\" in text:
        from bibtexparser.latexenc import latex_to_unicode

        text = _TEXT_COMMAND.sub(lambda m: _TEXT_COMMANDS[m.group(1)], text)
        text = _FORMATTING.sub("", text)
        text = _ESCAPED.sub(lambda m: "\x00" + m.group(1), text)  # protect \{ \} \& ... from latexenc
        text = latex_to_unicode(text.replace("\x00{", "\x01").replace("\x00}", "\x02"))
        text = text.replace("\x00", "").replace("\x01", "{").replace("\x02", "}")
        return _SPACE.sub(" ", text).strip()
    return _SPACE.sub(" ", text.replace("{", "").replace("}", "")).strip()


def _plain(value: str) -> str:
    """Identifiers and links: braces and escapes removed, nothing else touched."""
    return _ESCAPED.sub(r"\1", _SPACE.sub("", value).replace("{", "").replace("}", "")) if value else ""


def split_bibtex_authors(value: str) -> list[str]:
    """'Last, First and Last2, First2' split at 'and' outside braces ('{Barnes and Noble}' is one)."""
    names, depth, start = [], 0, 0
    for match in _AND.finditer(value):
        token = match.group(0)
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
        elif depth == 0:
            names.append(value[start : match.start()])
            start = match.end()
    names.append(value[start:])
    texts = (latex_to_text(name.replace("~", " ")) for name in names)
    return [name for name in texts if name and name.lower() != "others"]


def _record(entry: _Entry, source: SourceFile, position: int) -> Record:
    entry_type = entry.type
    fields: dict[str, str] = {}
    for name, value in entry.fields:  # a repeated field keeps its first value, as BibTeX does
        fields.setdefault(name, value)

    def text(*names: str) -> str:
        for name in names:
            value = latex_to_text(fields.get(name, ""))
            if value:
                return value
        return ""

    key = entry.key.strip()
    return Record(
        id=key or str(position),
        source_format=FORMAT,
        source_file=source.name,
        position=position,
        title=text(_TITLE),
        authors=split_bibtex_authors(fields.get(_AUTHOR, "")),
        year=year_from(text("year"), text("date")),
        doi=_plain(fields.get("doi", "")),
        venue=text(*_VENUE),
        volume=text("volume"),
        issue=text("number", "issue"),
        pages=text("pages").replace("--", "-"),
        keywords=unique(keyword for name in _KEYWORDS for keyword in split_keywords(text(name))),
        abstract=abstract_text(text("abstract")),
        publisher=text("publisher"),
        doc_type=text("document_type", "type") or entry_type,
        url=_plain(fields.get("url", "")),
        issn=text("issn"),
        language=text("language"),
        database=text("source") or _database_from_key(key, fields),
        extra={"entry_type": entry_type, **_extra(fields)},
    )


def _database_from_key(key: str, fields: dict[str, str]) -> str:
    """Web of Science keys its entries 'ISI:000...' / 'WOS:000...'."""
    unique = (fields.get("unique-id", "") or key).strip("{} ").upper()
    return "Web of Science Core Collection" if unique.startswith(("ISI:", "WOS:")) else ""


def _extra(fields: dict[str, str]) -> dict[str, str]:
    extra = {}
    for name, value in fields.items():
        if name not in _MAPPED:
            converted = latex_to_text(value)
            if converted:
                extra[name] = converted
    return extra
