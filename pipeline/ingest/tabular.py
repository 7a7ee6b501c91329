"""CSV, semicolon CSV, TSV and Web of Science tab-delimited exports -> Records, streamed row by row.

Columns are recognised through the alias table in column_aliases.yaml (data, not code), so a new
database's CSV is supported by editing that file. Field values are normalised by fields.py.
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
from pipeline.ingest.fields import abstract_text, page_range, split_authors, split_keywords, unique, year_from
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
        year=year_from(value("year"), value("date"), cited.get("year")),
        doi=value("doi"),
        venue=value("venue") or cited.get("venue", ""),
        volume=value("volume") or cited.get("volume", ""),
        issue=value("issue") or cited.get("issue", ""),
        pages=value("pages") or page_range(value("page_start"), value("page_end")) or cited.get("pages", ""),
        keywords=_keywords(cells, columns.fields.get("keywords", ())),
        abstract=abstract_text(value("abstract")),
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
    """The keywords of every keyword column, each once."""
    present = (cells[index] for index in indexes if index < len(cells) and cells[index].strip() not in _MISSING)
    return unique(keyword for cell in present for keyword in split_keywords(cell))


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
