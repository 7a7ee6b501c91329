"""CSV, semicolon CSV, TSV and Web of Science tab-delimited exports -> Records, streamed row by row.

Columns are recognised through the alias table in column_aliases.yaml (data, not code), so a new
database's CSV is supported by editing that file. The module also holds the small field parsers
(authors, keywords, year, abstract placeholders) the other structured readers share.
"""

from __future__ import annotations

import csv
import functools
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.ingest.source import SourceFile
from pipeline.records import Record

log = logging.getLogger(__name__)

FORMAT = "csv"
SUFFIXES = (".csv", ".tsv", ".tab")
ALIASES_PATH = Path(__file__).with_name("column_aliases.yaml")

# Record fields a column can fill, plus the helper fields combined in code (see the YAML header).
CANONICAL_FIELDS = frozenset(
    "id title authors year doi venue volume issue pages keywords abstract publisher doc_type url issn language"
    " database page_start page_end date source_citation".split()
)
_DELIMITERS = (",", ";", "\t")
_MAX_FIELD_CHARS = 16 * 1024 * 1024  # a longer field means an unclosed quote swallowed the file
_MISSING = frozenset({"NA"})  # R's write.csv marks a missing value with a bare NA

# ---------------------------------------------------------------------------------------------
# Field parsers shared by the structured readers (bibtex, endnote_xml, json_records).
# ---------------------------------------------------------------------------------------------

_YEAR = re.compile(r"(?<!\d)(1[5-9]\d\d|20\d\d)(?!\d)")
_NO_ABSTRACT = re.compile(r"^\[?\s*no abstract(?: is)? available\.?\s*\]?$|^n/?a$", re.IGNORECASE)
_NO_AUTHOR = re.compile(r"^\[?\s*no author(?: name)? available\s*\]?$", re.IGNORECASE)
_EMAIL_NOTE = re.compile(r"\s*\([^()]*@[^()]*\)")
_INITIALS_TAIL = re.compile(r"^\S.*\s(?:[A-Z][a-z]?\.(?:\s?-?\s?[A-Z][a-z]?\.)*|[A-Z]{1,3})$")
_WOS_RUN_TOGETHER = re.compile(r"([^,;]+?, [A-Z]{1,4})(?=[A-Z][a-z]|$)")
_PERIOD_RUN_TOGETHER = re.compile(r"(?<=\.)(?=[A-Z][a-z])")
_CASE_RUN_TOGETHER = re.compile(r"(?<=[a-z]{3})(?=[A-Z][a-z])")
_BIBTEX_AND = re.compile(r"\s+and\s+")


def parse_year(*texts: object) -> int | None:
    """The first plausible four-digit year (1500-2099) in the given values, else None."""
    for text in texts:
        if text is None or text == "":
            continue
        if isinstance(text, int) and not isinstance(text, bool):
            return text if 1500 <= text <= 2099 else None
        match = _YEAR.search(str(text))
        if match:
            return int(match.group(1))
    return None


def clean_abstract(text: str) -> str:
    """The abstract, or '' for the placeholders databases write instead of one."""
    text = text.strip()
    return "" if _NO_ABSTRACT.match(text) else text


def split_keywords(text: str) -> list[str]:
    """Split on ';' when present, else on ',' outside parentheses ('cyst (diagnosis, surgery)')."""
    text = text.strip()
    if not text:
        return []
    parts = _split_outside_parentheses(text, ";" if ";" in text else ",")
    return [part.strip() for part in parts if part.strip()]


def _split_outside_parentheses(text: str, separator: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(0, depth - 1)
        elif char == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def split_authors(text: str) -> list[str]:
    """One string per author, from the list forms databases write.

    Handles 'Last, F; Last2, G' (WoS, Zotero, IEEE), 'Last, F and Last2, G' (BibTeX style),
    'Last F., Last2 G.' (Scopus, Embase), 'First Last, First2 Last2, ...' and the run-together forms
    some exports produce: 'Roach, MCThompson, FR' (Current Contents), 'Adeli K.Lewis G. F.' (ASySD)
    and 'Araz R. AlievNigar T. Ismayilova' (SpringerLink). A single author is returned unsplit.
    """
    text = _EMAIL_NOTE.sub("", text).strip().strip(";,").strip()
    if not text or _NO_AUTHOR.match(text):
        return []
    if ";" in text:
        parts: list[str] = text.split(";")
    elif "," in text and _BIBTEX_AND.search(text):
        parts = _BIBTEX_AND.split(text)
    elif "," in text:
        parts = _split_comma_authors(text)
    else:
        parts = _split_run_together(text)
    return [name for name in (part.strip().strip(",").strip() for part in parts) if name]


def _split_comma_authors(text: str) -> list[str]:
    run_together = _WOS_RUN_TOGETHER.findall(text)
    if len(run_together) > 1 and "".join(run_together) == text:
        return run_together
    pieces = [piece.strip() for piece in text.split(",") if piece.strip()]
    if len(pieces) < 2:
        return [text]
    with_initials = sum(1 for piece in pieces if _INITIALS_TAIL.match(piece))
    if with_initials * 3 >= len(pieces) * 2:  # 'Craig C., Mazerolle M.J.' (Scopus, Embase)
        return pieces
    if len(pieces) >= 3 and all(" " in piece for piece in pieces):  # 'P. Kogge, J. Shalf, T. Lin'
        return pieces
    return [text]  # 'Rotter, Carina': one author, family name first


def _split_run_together(text: str) -> list[str]:
    parts = _PERIOD_RUN_TOGETHER.split(text)
    if len(parts) > 1:
        return parts
    parts = _CASE_RUN_TOGETHER.split(text)
    # Only when every piece is itself a full name: keeps 'John FitzGerald' whole.
    if len(parts) > 1 and all(len(part.split()) >= 2 for part in parts):
        return parts
    return [text]


# ---------------------------------------------------------------------------------------------
# The alias table
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """A family of exports recognised by the columns its header contains."""

    name: str
    when_columns: tuple[str, ...] = ()
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source_format: str = FORMAT
    database: str = ""
    database_from_id_prefix: dict[str, str] = field(default_factory=dict)
    extra_cells_after: str = ""

    def matches(self, header: set[str]) -> bool:
        return bool(self.when_columns) and all(name.lower() in header for name in self.when_columns)


@dataclass(frozen=True)
class AliasTable:
    profiles: tuple[Profile, ...]
    default: Profile

    def choose(self, header: Sequence[str]) -> Profile:
        names = {_norm(name) for name in header}
        return next((profile for profile in self.profiles if profile.matches(names)), self.default)

    @functools.cached_property
    def title_aliases(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for profile in (self.default, *self.profiles):
            seen.update(dict.fromkeys(profile.columns.get("title", ())))
        return tuple(seen)


def load_aliases(path: Path | None = None) -> AliasTable:
    """The alias table (column_aliases.yaml unless `path` is given), validated and cached."""
    return _load_aliases(Path(path or ALIASES_PATH))


@functools.lru_cache(maxsize=4)
def _load_aliases(path: Path) -> AliasTable:
    """Read and validate the alias table; every problem is reported at once."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(path, [f"cannot be read as YAML: {exc}"]) from exc
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError(path, ["the top level must be a mapping with 'columns' and 'profiles'"])
    default_columns = _columns(data.get("columns"), "columns", problems)
    default = Profile(name="default", columns=default_columns)
    profiles = []
    for index, raw in enumerate(data.get("profiles") or []):
        profile = _profile(raw, f"profiles[{index}]", default_columns, problems)
        if profile is not None:
            profiles.append(profile)
    if "title" not in default_columns:
        problems.append("columns: a 'title' list is required")
    if problems:
        raise ConfigError(path, problems)
    return AliasTable(profiles=tuple(profiles), default=default)


def _columns(raw: Any, where: str, problems: list[str]) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(f"{where}: must map canonical fields to lists of column names")
        return {}
    columns = {}
    for name, aliases in raw.items():
        if name not in CANONICAL_FIELDS:
            problems.append(f"{where}.{name}: unknown field (known: {', '.join(sorted(CANONICAL_FIELDS))})")
        elif not isinstance(aliases, list) or not all(isinstance(alias, str) for alias in aliases):
            problems.append(f"{where}.{name}: must be a list of column names")
        else:
            columns[name] = tuple(aliases)
    return columns


def _profile(raw: Any, where: str, default: dict[str, tuple[str, ...]], problems: list[str]) -> Profile | None:
    if not isinstance(raw, dict) or not raw.get("name") or not raw.get("when_columns"):
        problems.append(f"{where}: a profile needs a 'name' and a non-empty 'when_columns' list")
        return None
    known = {
        "name",
        "when_columns",
        "columns",
        "source_format",
        "database",
        "inherit",
        "database_from_id_prefix",
        "extra_cells_after",
    }
    unknown = set(raw) - known
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    own = _columns(raw.get("columns"), f"{where}.columns", problems)
    columns = {**default, **own} if raw.get("inherit", True) else own
    return Profile(
        name=str(raw["name"]),
        when_columns=tuple(str(name) for name in raw["when_columns"]),
        columns=columns,
        source_format=str(raw.get("source_format") or FORMAT),
        database=str(raw.get("database") or ""),
        database_from_id_prefix={str(k).upper(): str(v) for k, v in (raw.get("database_from_id_prefix") or {}).items()},
        extra_cells_after=str(raw.get("extra_cells_after") or ""),
    )


def _norm(name: str) -> str:
    return name.strip().lstrip("\ufeff").strip().lower()


# ---------------------------------------------------------------------------------------------
# Detection and reading
# ---------------------------------------------------------------------------------------------


def looks_like(head: str) -> bool:
    """A header line with at least two columns, one of them a recognised title column."""
    line = _first_line(head)
    if not line:
        return False
    delimiter = _sniff_delimiter(line)
    header = next(csv.reader([line], delimiter=delimiter), [])
    if len(header) < 2:
        return False
    titles = {alias.lower() for alias in load_aliases().title_aliases}
    return any(_norm(name) in titles for name in header)


def _first_line(head: str) -> str:
    for line in head.lstrip("\ufeff").splitlines():
        if line.strip():
            return line
    return ""


def _sniff_delimiter(line: str) -> str:
    counts = {delimiter: line.count(delimiter) for delimiter in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


@dataclass(frozen=True)
class _ColumnMap:
    """Which cell indexes feed each field, and which columns only go to `extra`."""

    header: tuple[str, ...]
    fields: dict[str, tuple[int, ...]]
    unmapped: tuple[int, ...]
    surplus_after: int | None  # index of the column a row's surplus cells follow, if the profile says

    def realign(self, cells: list[str]) -> tuple[list[str], list[str]]:
        """Cells aligned with the header, and the surplus cells (if any) taken out."""
        surplus = len(cells) - len(self.header)
        if surplus <= 0 or self.surplus_after is None or not any(cells[len(self.header) :]):
            return cells, []
        cut = self.surplus_after + 1
        return cells[:cut] + cells[cut + surplus :], cells[cut : cut + surplus]

    @classmethod
    def build(cls, header: Sequence[str], profile: Profile) -> _ColumnMap:
        positions: dict[str, int] = {}
        for index, name in enumerate(header):
            positions.setdefault(_norm(name), index)
        fields = {}
        used: set[int] = set()
        for name, aliases in profile.columns.items():
            indexes = tuple(dict.fromkeys(positions[a.lower()] for a in aliases if a.lower() in positions))
            if indexes:
                fields[name] = indexes
                used.update(indexes)
        unmapped = tuple(i for i, name in enumerate(header) if i not in used and name.strip())
        prefix = profile.extra_cells_after.lower()
        after = [i for i, name in enumerate(header) if prefix and _norm(name).startswith(prefix)]
        return cls(header=tuple(header), fields=fields, unmapped=unmapped, surplus_after=after[-1] if after else None)


def read(source: SourceFile) -> Iterator[Record]:
    """Stream the rows of a delimited export as Records; entirely empty rows are skipped."""
    aliases = load_aliases()
    delimiter = _sniff_delimiter(_first_line(source.head))
    if csv.field_size_limit() < _MAX_FIELD_CHARS:
        csv.field_size_limit(_MAX_FIELD_CHARS)  # the default 128 KiB is too small for cited-reference fields
    with source.open_raw() as handle:
        rows = csv.reader(handle, delimiter=delimiter, strict=True)
        header = [name.strip().lstrip("\ufeff").strip() for name in _next_row(rows, source) or []]
        profile = aliases.choose(header)
        if profile.source_format == "wos_tab":
            # WoS never quotes: a title that starts with '"' must not swallow the next rows.
            rows = csv.reader(handle, delimiter=delimiter, quoting=csv.QUOTE_NONE)
        columns = _ColumnMap.build(header, profile)
        if "title" not in columns.fields:
            raise _no_title_error(source, header, aliases)
        log.debug("%s: profile %s, delimiter %r", source.name, profile.name, delimiter)
        position = 0
        while (cells := _next_row(rows, source)) is not None:
            if not any(cell.strip() for cell in cells):
                continue
            position += 1
            yield _record(cells, columns, profile, source, position)


def _next_row(rows: Any, source: SourceFile) -> list[str] | None:
    try:
        return next(rows, None)
    except csv.Error as exc:
        raise source.error(
            f"the file cannot be split into rows ({exc}), probably an unclosed quote",
            "check the quoting of that row or export the file again",
            line=rows.line_num,
        ) from exc


def _no_title_error(source: SourceFile, header: Sequence[str], aliases: AliasTable) -> Exception:
    seen = [name for name in header if name] or ["(none)"]
    shown = ", ".join(repr(name) for name in seen[:40]) + (", ..." if len(seen) > 40 else "")
    known = ", ".join(repr(name) for name in aliases.title_aliases)
    return source.error(
        f"no title column was found; the columns are {shown}",
        f"name the title column one of {known} (case does not matter), or add its name under 'title' in {ALIASES_PATH}",
    )


def _record(cells: list[str], columns: _ColumnMap, profile: Profile, source: SourceFile, position: int) -> Record:
    cells, surplus = columns.realign(cells)

    def value(name: str) -> str:
        for index in columns.fields.get(name, ()):
            if index < len(cells):
                cell = cells[index].strip()
                if cell and cell not in _MISSING:
                    return cell
        return ""

    cited = _parse_citation(value("source_citation"))
    own_id = value("id")
    record = Record(
        id=own_id or str(position),
        source_format=profile.source_format,
        source_file=source.name,
        position=position,
        title=value("title"),
        authors=split_authors(value("authors")),
        year=parse_year(value("year"), value("date"), cited.get("year")),
        doi=value("doi"),
        venue=value("venue") or cited.get("venue", ""),
        volume=value("volume") or cited.get("volume", ""),
        issue=value("issue") or cited.get("issue", ""),
        pages=value("pages") or _join_pages(value("page_start"), value("page_end")) or cited.get("pages", ""),
        keywords=_keywords(cells, columns.fields.get("keywords", ())),
        abstract=clean_abstract(value("abstract")),
        publisher=value("publisher"),
        doc_type=value("doc_type"),
        url=value("url"),
        issn=value("issn"),
        language=value("language"),
        database=value("database") or _database_from_id(own_id, profile) or profile.database,
        extra=_extra(cells, columns),
    )
    if surplus and columns.surplus_after is not None:
        record.extra[f"{columns.header[columns.surplus_after]} (more)"] = "; ".join(
            c.strip() for c in surplus if c.strip()
        )
    return record


def _keywords(cells: list[str], indexes: Iterable[int]) -> list[str]:
    seen: dict[str, None] = {}
    for index in indexes:
        if index < len(cells) and cells[index].strip() not in _MISSING:
            seen.update(dict.fromkeys(split_keywords(cells[index])))
    return list(seen)


def _join_pages(start: str, end: str) -> str:
    if start and end and end != start:
        return f"{start}-{end}"
    return start


def _database_from_id(own_id: str, profile: Profile) -> str:
    prefix, colon, _ = own_id.partition(":")
    return profile.database_from_id_prefix.get(prefix.strip().upper(), "") if colon else ""


def _extra(cells: list[str], columns: _ColumnMap) -> dict[str, str]:
    extra = {}
    for index in columns.unmapped:
        if index < len(cells):
            cell = cells[index].strip()
            if cell and cell not in _MISSING:
                extra[columns.header[index]] = cell
    for index in range(len(columns.header), len(cells)):  # cells beyond the header (WoS trailing tab)
        if cells[index].strip():
            extra[f"column {index + 1}"] = cells[index].strip()
    return extra


_CITATION = re.compile(
    r"^(?P<venue>.+?)\s*\((?P<year>\d{4})\)\s*(?P<volume>[^\s:(]+)?(?::(?P<issue>[^\s(]+))?"
    r"\s*(?:\((?P<pages>[^)]*)\))?"
)


def _parse_citation(text: str) -> dict[str, str]:
    """'Cancer (2004) 102:4 (253-258). Date of Publication: ...' -> venue, year, volume, issue, pages."""
    match = _CITATION.match(text) if text else None
    if not match:
        return {"venue": text} if text else {}
    return {name: part.strip() for name, part in match.groupdict().items() if part}
