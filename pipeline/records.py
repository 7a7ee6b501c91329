"""The bibliographic record every reader produces and every later stage consumes."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Iterable

import pandas as pd

LIST_SEPARATOR = "; "


@dataclass(slots=True)
class Record:
    """One bibliographic record as read from one input (file row, API item, seed abstract).

    `id` is the record's own identifier in its input (an ID/id/record_id column, a RIS ID tag,
    a BibTeX key, a JSON id), else its 1-based position in the file, as a string.
    `record_id` is the stable identifier inside the store: a hash of the source key and `id`.
    """

    id: str
    source_format: str  # ris, bibtex, csv, wos_tab, wos_plain, medline, endnote_xml, proquest, json, text, api
    source_file: str  # file name (or API source name)
    position: int  # 1-based position in the input
    title: str = ""
    authors: list[str] = field(default_factory=list)
    year: int | None = None
    doi: str = ""
    venue: str = ""  # journal, book or conference title
    volume: str = ""
    issue: str = ""
    pages: str = ""
    keywords: list[str] = field(default_factory=list)
    abstract: str = ""
    publisher: str = ""
    doc_type: str = ""  # as given by the source (JOUR, Article, journalArticle, ...)
    url: str = ""
    issn: str = ""
    language: str = ""  # language declared by the source (not detected)
    database: str = ""  # Scopus, Web of Science, Embase, PubMed, ... when the export says so
    record_id: str = ""  # filled by `assign_record_ids`
    flags: list[str] = field(default_factory=list)  # cleaning flags, e.g. "mojibake_fixed"
    extra: dict[str, str] = field(default_factory=dict)  # source fields kept for provenance

    def has_abstract(self) -> bool:
        return bool(self.abstract.strip())


RECORD_COLUMNS: list[str] = [f.name for f in fields(Record)]
FRAME_COLUMNS: list[str] = [c for c in RECORD_COLUMNS if c != "extra"]  # records_to_frame's: the flat record
LIST_COLUMNS = ("authors", "keywords", "flags")


def make_record_id(source_key: str, own_id: str) -> str:
    """Stable id: the same source (file content hash or API source) and own id give the same id."""
    digest = hashlib.sha256(f"{source_key}\x1f{own_id}".encode("utf-8")).hexdigest()
    return "r" + digest[:15]


def record_to_dict(record: Record) -> dict[str, Any]:
    return asdict(record)


def record_from_dict(data: dict[str, Any]) -> Record:
    known = {name: data[name] for name in RECORD_COLUMNS if name in data}
    for name in LIST_COLUMNS:
        value = known.get(name)
        if isinstance(value, str):
            known[name] = [part for part in value.split(LIST_SEPARATOR) if part]
    if known.get("year") in ("", None) or (isinstance(known.get("year"), float) and pd.isna(known["year"])):
        known["year"] = None
    elif "year" in known:
        known["year"] = int(known["year"])
    known["id"] = str(known.get("id", ""))
    known.setdefault("extra", {})
    return Record(**known)


def records_to_frame(records: Iterable[Record]) -> pd.DataFrame:
    """A flat frame (lists joined with '; ', extra dropped) for CSV output and dedup."""
    rows = []
    for record in records:
        row = asdict(record)
        row.pop("extra")
        for name in LIST_COLUMNS:
            row[name] = LIST_SEPARATOR.join(row[name])
        rows.append(row)
    frame = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    frame["year"] = frame["year"].astype("Int64")
    return frame
