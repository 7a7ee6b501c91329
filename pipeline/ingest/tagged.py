"""Tagged-line exports (RIS, MEDLINE, Web of Science plain text) -> blocks of (tag, lines), streamed.

The three formats differ only in their layout, which `TagLayout` describes: what a tag line looks
like, which tag opens a record, which closes it, whether an indented line may still be a tag line
and whether a blank line separates records. `tagged_records` applies a layout to a file line by
line; the readers then map each `TaggedRecord` to a Record. ProQuest's text export uses the same
record container and line source, with its own 'Document N of M' blocks.

A record whose end tag is missing (a truncated file, or a new start tag before the end tag) is
still returned if it has a title, left open (`closed` False) so the reader flags it; without a title
it cannot be told from a cut fragment, and an InputFileError names the line where it started.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Container, Iterator
from dataclasses import dataclass, field

from pipeline.ingest.fields import join_lines
from pipeline.ingest.source import SourceFile

log = logging.getLogger(__name__)

UNTERMINATED_FLAG = "unterminated_record"


class _EveryTag:
    """Contains every tag: `unmapped(..., per_line=EVERY_TAG)` keeps each line of every tag as one value."""

    def __contains__(self, item: object) -> bool:
        return True


EVERY_TAG: Container[str] = _EveryTag()


@dataclass
class TaggedRecord:
    """The tags of one record in file order, each with its lines (first line + continuations)."""

    start_line: int
    tags: list[tuple[str, list[str]]] = field(default_factory=list)
    closed: bool = False  # its end tag was seen
    # tag -> its occurrences, kept as tags are added: mapping a record to a Record reads each tag often
    _index: dict[str, list[list[str]]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def add(self, tag: str, value: str) -> None:
        """A new tag line; an empty value gives an occurrence with no lines yet."""
        lines = [value] if value else []
        self.tags.append((tag, lines))
        self._index.setdefault(tag, []).append(lines)

    def extend(self, line: str) -> None:
        """One more line of the last tag (a wrapped value or one more list item)."""
        if self.tags:
            self.tags[-1][1].append(line)

    def texts(self, *tags: str) -> list[str]:
        """Each occurrence of the tags (in file order), its lines joined with spaces; empty ones left out."""
        return [text for lines in self._occurrences(tags) if (text := join_lines(lines))]

    def items(self, *tags: str) -> list[str]:
        """Each line of each occurrence of the tags (in file order) as one item: for one-per-line lists."""
        return [stripped for lines in self._occurrences(tags) for line in lines if (stripped := line.strip())]

    def first(self, *tags: str) -> str:
        """The first non-empty text of the first tag (in the order given) that has one, else ''."""
        for tag in tags:
            for lines in self._index.get(tag, ()):
                if text := join_lines(lines):
                    return text
        return ""

    def unmapped(self, mapped: Container[str], per_line: Container[str] = ()) -> dict[str, list[str]]:
        """The values of the tags not in `mapped`, for Record.extra: a `per_line` tag gives one value
        per line, any other one value per occurrence (its lines joined with spaces)."""
        extra: dict[str, list[str]] = {}
        for tag, lines in self.tags:
            if tag in mapped:
                continue
            if tag in per_line:
                values = [stripped for line in lines if (stripped := line.strip())]
            else:
                values = [text] if (text := join_lines(lines)) else []
            if values:
                extra.setdefault(tag, []).extend(values)
        return extra

    def _occurrences(self, tags: tuple[str, ...]) -> list[list[str]]:
        if len(tags) == 1:
            return self._index.get(tags[0], [])
        return [lines for name, lines in self.tags if name in tags]


@dataclass(frozen=True)
class TagLayout:
    """How one tagged format lays out its records."""

    label: str  # the format's name in messages ('RIS')
    tag_line: re.Pattern[str]  # group 1 the tag, group 2 (may be absent) the value
    start_tag: str  # opens a record (RIS 'TY')
    end_tag: str = ""  # closes a record (RIS 'ER'); '' when the format has none
    end_line: str = ""  # the end line as written, for the message about a missing one ('ER  - ')
    title_tags: tuple[str, ...] = ()  # an unclosed record is kept only if one of these has text
    indented_tags: bool = False  # a tag line may be indented; else an indented line continues the last tag
    blank_line_separates: bool = False  # MEDLINE: after a blank line, any tag opens a record
    tags_after_end: bool = False  # RIS: tags between the end tag and the next start (Ovid's NL) are kept
    ignored_tags: frozenset[str] = frozenset()  # file header and footer tags (WoS 'FN', 'VR', 'EF')


def numbered_lines(source: SourceFile) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) with BOMs removed and trailing white space stripped, streamed."""
    with source.open_lines() as lines:
        for number, line in enumerate(lines, start=1):
            yield number, line.replace("\ufeff", "").rstrip()


def tagged_records(source: SourceFile, layout: TagLayout) -> Iterator[TaggedRecord]:
    """Stream the records of a tagged file, in file order; text outside records is skipped."""
    current: TaggedRecord | None = None
    after_blank = True
    for number, text in numbered_lines(source):
        if not text:
            after_blank = True
            continue
        match = _tag_match(text, layout)
        if match is None:
            _continue(current, text, source, number)
            continue
        tag, value = match.group(1), (match.group(2) or "").strip()
        if tag in layout.ignored_tags:
            continue
        if _opens_record(current, tag, after_blank, layout):
            if current is not None:
                yield _finished(current, source, layout)
            current = TaggedRecord(start_line=number)
        after_blank = False
        if current is None:
            log.debug("%s line %d: %s tag %s before the first record ignored", source.name, number, layout.label, tag)
        elif layout.end_tag and tag == layout.end_tag:
            current.closed = True
        elif not current.closed or layout.tags_after_end:
            current.add(tag, value)
    if current is not None:
        yield _finished(current, source, layout)


def _tag_match(text: str, layout: TagLayout) -> re.Match[str] | None:
    if layout.indented_tags:
        return layout.tag_line.match(text.lstrip())
    return None if text[0].isspace() else layout.tag_line.match(text)


def _opens_record(current: TaggedRecord | None, tag: str, after_blank: bool, layout: TagLayout) -> bool:
    if not layout.blank_line_separates:
        return tag == layout.start_tag
    # Records are separated by blank lines; the start tag separates them too (a file without blank
    # lines), once the record already holds one with a value.
    return after_blank or (tag == layout.start_tag and current is not None and bool(current.first(tag)))


def _continue(current: TaggedRecord | None, text: str, source: SourceFile, number: int) -> None:
    """An untagged line: a continuation inside an open record, else preamble or trailer."""
    if current is None or current.closed:
        log.debug("%s line %d: text outside a record ignored", source.name, number)
        return
    current.extend(text.strip())


def _finished(record: TaggedRecord, source: SourceFile, layout: TagLayout) -> TaggedRecord:
    if record.closed or not layout.end_tag:
        return record
    if not record.first(*layout.title_tags):
        raise source.error(
            f"this {layout.label} record has no title and no '{layout.end_line.strip()}' end line,"
            " so the file looks cut short here",
            f"export the records again, or end the record with a line '{layout.end_line}'",
            line=record.start_line,
        )
    log.warning(
        "%s line %d: %s record without its '%s' line, kept",
        source.name,
        record.start_line,
        layout.label,
        layout.end_line.strip(),
    )
    return record
