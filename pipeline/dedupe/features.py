"""Normalised fields of every record, compact enough for a million records.

Features are built chunk by chunk (a chunk's cells become Python strings only while it is processed) and
equal values share one object (duplicates repeat titles, authors, venues and pages). One feature is
corpus-wide: a DOI given to records with different titles (a *container* DOI: a supplement, proceedings or
book) identifies none of them, so adding records can change the DOI, preprint and meeting-abstract features
of earlier ones; `extend` reports those rows.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import pandas as pd
from rapidfuzz import fuzz

from pipeline.dedupe import normalise as nz

# The record columns deduplication reads (besides record_id and id).
FEATURE_COLUMNS = ("title", "authors", "doi", "year", "venue", "volume", "issue", "pages", "abstract", "doc_type")
CHUNK_ROWS = 20_000
# A column of abstract_keys() may stand in for `abstract`: a million-record corpus then need not hold every raw
# abstract while its features are built (the keys are computed a chunk at a time, e.g. from the store).
ABSTRACT_KEY = "abstract_key"
FEATURE_INPUTS = (*FEATURE_COLUMNS, ABSTRACT_KEY)
SUPPLEMENT_DOI = "supplement doi"

_CONFERENCE_TYPE = re.compile(
    r"conf|proceed|inproceedings|congress|meeting|abstract|symposium|workshop|poster|cpaper", re.I
)
_JOURNAL_TYPE = re.compile(
    r"^(?:article|journal|jour|jnl|journal article|journalarticle|review|research article|ja)$", re.I
)
_CONFERENCE_VENUE = re.compile(
    r"\b(?:conference|proceedings|proc|symposium|workshop|congress|meeting|amcis|icis|ecis|hicss|pacis)\b"
)
_PREPRINT_VENUE = re.compile(
    r"\b(?:arxiv|biorxiv|medrxiv|ssrn|preprint|preprints|research square|psyarxiv|socarxiv|edarxiv|osf)\b"
)
_NUMBER_WORDS = re.compile(r"\d+|\b(?:i{1,3}|iv|v|vi{1,3}|ix|x)\b")
# Signs of a meeting abstract (not of a full proceedings paper): 'Conference Abstract', 'Meeting Abstract', 'Poster'.
_ABSTRACT_TYPE = re.compile(r"abstract|poster|meeting", re.I)
_ABSTRACT_BOOK = re.compile(r"\babstract book\b|\b(?:meeting|conference|congress|poster) abstracts?\b|^abstracts?\b")
_SUPPLEMENT_ISSUE = re.compile(r"\bsup(?:p|pl|plement)?\b\.?|\bsup(?:p|pl)?\.?\s*\d|^s\d+[a-z]?$", re.I)
_PAGE = re.compile(r"^([a-z]{0,2})(\d+)$")
_CONTAINER_SIMILARITY = 70  # token-set ratio below which two titles on one DOI are different works


def page_range(pages: tuple[str, str]) -> tuple[str, int, int] | None:
    """(letter prefix, first, last) of a clean page range; None for article numbers or garbled pages."""
    first, last = _PAGE.match(pages[0]), _PAGE.match(pages[1] or pages[0])
    if not first or not last or first.group(1) != last.group(1):
        return None
    start, end = int(first.group(2)), int(last.group(2))
    return (first.group(1), start, end) if end >= start else None


class _PageRanges:
    """`page_range[i]` computed on demand from the pages (it is read for few pairs; storing it costs ~80 B/record)."""

    __slots__ = ("_pages",)

    def __init__(self, pages: list[tuple[str, str]]) -> None:
        self._pages = pages

    def __getitem__(self, i: int) -> tuple[str, int, int] | None:
        return page_range(self._pages[i])

    def __len__(self) -> int:
        return len(self._pages)


def _kind(doc_type: str, venue: nz.VenueKey) -> str:
    """'conference', 'journal' or '' (a book chapter, report, or unknown)."""
    words = venue.words()
    if venue.supplement or _CONFERENCE_TYPE.search(doc_type) or _CONFERENCE_VENUE.search(words):
        return "conference"
    if _JOURNAL_TYPE.match(doc_type) or (not doc_type and words):
        return "journal"  # a record with a venue and no type is a journal article far more often than not
    return ""


def _meeting_abstract(doc_type: str, issue: str, volume: str, venue: nz.VenueKey) -> str:
    """Why a record is a meeting abstract printed in a journal ('' if nothing says so): Embase's
    'Journal.Conference: ...' venue, an abstract document type, an abstract book, a supplement issue.

    A proceedings paper (ICIS, AMCIS, HICSS) is a full paper, not an abstract: its booktitle alone does not count.
    """
    if venue.supplement:
        return "conference supplement"
    if _ABSTRACT_TYPE.search(doc_type):
        return "abstract type"
    if _ABSTRACT_BOOK.search(venue.words()):
        return "abstract book"
    if _SUPPLEMENT_ISSUE.search(issue) or _SUPPLEMENT_ISSUE.search(volume):
        return "supplement issue"
    return ""


def _abstract(value: Any) -> tuple[str, bool]:
    # Not through abstract_key's cache: it would keep 100,000 raw abstracts alive after the run.
    raw = nz.text(value)
    return nz._abstract_key.__wrapped__(raw) if raw else ("", False)


def abstract_keys(values: Iterable[Any], shared: dict[Any, Any] | None = None) -> list[tuple[str, bool]]:
    """The abstract feature of each raw abstract, for an ABSTRACT_KEY column. Equal keys share one object, also
    across calls given the same `shared` dict (a corpus read in chunks holds each distinct key once)."""
    pool = {} if shared is None else shared
    return [pool.setdefault(key, key) for key in map(_abstract, values)]


def is_container(cores: Iterable[str]) -> bool:
    """Do the titles on one DOI name different works? (compared with the first titled record's title)"""
    distinct = list(dict.fromkeys(core for core in cores if core))
    if len(distinct) < 2:
        return False
    first = distinct[0]
    return any(fuzz.token_set_ratio(first, other) < _CONTAINER_SIMILARITY for other in distinct[1:])


class _Pool:
    """Equal values share one object while features are built (dropped afterwards)."""

    def __init__(self) -> None:
        self._values: dict[Any, Any] = {}

    def __call__(self, value: Any) -> Any:
        return self._values.setdefault(value, value)

    def authors(self, key: nz.AuthorKey) -> nz.AuthorKey:
        """The shared AuthorKey equal to `key`; a new one shares its names and name words with earlier keys."""
        found = self._values.get(key)
        if found is None:
            found = nz.AuthorKey(
                tuple(self(s) for s in key.surnames), key.initials, key.truncated, tuple(self(w) for w in key.words)
            )
            self._values[found] = found
        return found


def _chunks(frame: pd.DataFrame) -> Iterator[dict[str, list[Any]]]:
    n = len(frame)
    for start in range(0, n, CHUNK_ROWS):
        part = frame.iloc[start : start + CHUNK_ROWS]
        chunk = {name: part[name].tolist() if name in frame.columns else [""] * len(part) for name in FEATURE_COLUMNS}
        if ABSTRACT_KEY in frame.columns:
            chunk[ABSTRACT_KEY] = part[ABSTRACT_KEY].tolist()
        yield chunk


_MEMOISED_KEYS = (nz.title_key, nz.author_key, nz.venue_key)
_UNMEMOISED_KEYS = (nz.title_key.__wrapped__, nz.author_key.__wrapped__, nz.venue_key.__wrapped__)


class Features:
    """Normalised fields of every record, as plain lists indexed by row position (fast in loops)."""

    def __init__(self, frame: pd.DataFrame | None = None, *, memo: bool = True) -> None:
        """`memo=False` for a few records read once (a study's members): the normalisers' memo tables, kept for
        the life of the process, would otherwise fill with every record of the corpus (~0.5 GB at a million)."""
        self.size = 0
        self._keys = _MEMOISED_KEYS if memo else _UNMEMOISED_KEYS
        self.title: list[nz.TitleKey] = []
        self.authors: list[nz.AuthorKey] = []
        self.doi: list[str] = []  # '' for a container DOI
        self.year: list[int | None] = []
        self.venue: list[nz.VenueKey] = []
        self.volume: list[str] = []
        self.issue: list[str] = []
        self.supplement: list[str] = []
        self.pages: list[tuple[str, str]] = []
        self.abstract: list[tuple[str, bool]] = []
        self.kind: list[str] = []
        self.preprint: list[bool] = []
        self.numbers: list[frozenset[str]] = []
        self.meeting: list[str] = []
        self.venue_id: list[int] = []  # venues as small ints (0 = none): comparing two is a cached dict lookup
        self.page_range = _PageRanges(self.pages)
        self.containers: set[str] = set()
        self._container_rows: dict[int, str] = {}  # row -> the container DOI it was given
        self._venue_ids: dict[nz.VenueKey, int] = {}
        self._venue_pairs: dict[tuple[int, int], bool] = {}
        if frame is not None and len(frame):
            self.extend(frame)

    # --- building -------------------------------------------------------------------------

    def extend(self, frame: pd.DataFrame) -> list[int]:
        """Add the records of `frame` as the next rows. Returns the earlier rows whose DOI, preprint or
        meeting-abstract feature changed because a DOI they share turned out to be a container (or stopped being one).
        """
        start = self.size
        pool = _Pool()
        given: list[str] = []
        for chunk in _chunks(frame):
            given.extend(self._add_chunk(chunk, pool))
        self.size = len(self.title)
        return self._settle_dois(start, given)

    def _add_chunk(self, chunk: dict[str, list[Any]], pool: _Pool) -> list[str]:
        """Per-record features of one chunk; returns the chunk's normalised DOIs (containers not yet known)."""
        title_key, author_key, venue_key = self._keys
        titles = [pool(title_key(nz.text(v))) for v in chunk["title"]]
        years = [pool(nz.normalise_year(v)) for v in chunk["year"]]
        venues = [pool(venue_key(nz.text(v))) for v in chunk["venue"]]
        doc_types = [nz.text(v) for v in chunk["doc_type"]]
        pages = [pool(nz.normalise_pages(v)) for v in chunk["pages"]]
        self.title.extend(titles)
        self.authors.extend(pool.authors(author_key(nz.text(v))) for v in chunk["authors"])
        self.year.extend(years)
        self.venue.extend(venues)
        # A volume equal to the record's year is the year put in the volume field ('2016' vs '94'): no volume.
        self.volume.extend(
            pool("" if year and volume == str(year) else volume)
            for volume, year in zip((nz.normalise_volume(v) for v in chunk["volume"]), years, strict=True)
        )
        self.issue.extend(pool(nz.normalise_volume(v)) for v in chunk["issue"])
        self.supplement.extend(pool(nz.supplement_number(v)) for v in chunk["issue"])
        self.pages.extend(pages)
        keys = chunk.get(ABSTRACT_KEY)
        if keys is None:
            keys = [_abstract(v) for v in chunk["abstract"]]
        self.abstract.extend(pool(key) for key in keys)
        kinds = [_kind(t, v) for t, v in zip(doc_types, venues, strict=True)]
        self.kind.extend(kinds)
        self.numbers.extend(pool(frozenset(_NUMBER_WORDS.findall(t.core))) for t in titles)
        self.meeting.extend(
            _meeting_abstract(t, nz.text(i), nz.text(v), venue)
            for t, i, v, venue in zip(doc_types, chunk["issue"], chunk["volume"], venues, strict=True)
        )
        ids = self._venue_ids
        self.venue_id.extend(ids.setdefault(v, len(ids) + 1) if v else 0 for v in venues)
        return [pool(nz.normalise_doi(v)) for v in chunk["doi"]]

    def _settle_dois(self, start: int, given: list[str]) -> list[int]:
        """Set the DOI-derived features of rows start.. and update those of earlier rows sharing their DOIs."""
        self.doi.extend(given)
        self.preprint.extend(False for _ in given)
        counts = Counter(d for d in given if d)
        # Only a DOI carried by two records or more can be a container.
        check = {d for d, n in counts.items() if n > 1}
        if start:
            before = self._doi_set(start) | self.containers
            check |= {d for d in counts if d in before}
        rows: dict[str, list[int]] = {d: [] for d in check}
        for row in range(self.size):
            doi = self._given_doi(row)
            if doi in rows:
                rows[doi].append(row)
        changed: list[int] = []
        for doi, members in rows.items():
            container = is_container(self.title[r].core for r in members)
            if container:
                self.containers.add(doi)
            else:
                self.containers.discard(doi)
            for row in members:
                if self._set_doi(row, doi, container) and row < start:
                    changed.append(row)
        for row in range(start, self.size):
            if given[row - start] not in rows:
                self._set_doi(row, given[row - start], False)
        return sorted(changed)

    def _doi_set(self, stop: int) -> set[str]:
        return {d for d in self.doi[:stop] if d}

    def _given_doi(self, row: int) -> str:
        return self._container_rows.get(row) or self.doi[row]

    def _set_doi(self, row: int, doi: str, container: bool) -> bool:
        """Give row its DOI features; True when they changed."""
        before = (self.doi[row], self.preprint[row], self.meeting[row])
        own_cue = "" if self.meeting[row] == SUPPLEMENT_DOI else self.meeting[row]
        if container:
            self._container_rows[row] = doi
            self.doi[row] = ""
        else:
            self._container_rows.pop(row, None)
            self.doi[row] = doi
        d = self.doi[row]
        self.preprint[row] = nz.is_preprint_doi(d) or bool(_PREPRINT_VENUE.search(self.venue[row].words()))
        supplement = container and self.kind[row] == "journal"
        self.meeting[row] = own_cue or (SUPPLEMENT_DOI if supplement else "")
        return (self.doi[row], self.preprint[row], self.meeting[row]) != before

    # --- reading --------------------------------------------------------------------------

    def same_venue(self, i: int, j: int) -> bool:
        """Both venues given and one names (or abbreviates) the other."""
        a, b = self.venue_id[i], self.venue_id[j]
        if not a or not b:
            return False
        if a == b:
            return True
        key = (a, b) if a < b else (b, a)
        found = self._venue_pairs.get(key)
        if found is None:
            if len(self._venue_pairs) > 500_000:
                self._venue_pairs.clear()  # a cache, bounded: a million records meet many venue pairs
            found = self._venue_pairs[key] = nz.venues_compatible(self.venue[i], self.venue[j])
        return found

    def completeness(self, i: int) -> float:
        """How complete record i is: the canonical record of a group is the most complete one."""
        score = 0.0
        score += 2.0 if self.title[i].core else 0.0
        score += 1.5 if self.doi[i] else 0.0
        score += 1.0 if self.authors[i].surnames else 0.0
        score += 0.5 * bool(self.year[i]) + 0.5 * bool(self.venue[i]) + 0.3 * bool(self.volume[i])
        score += 0.3 * bool(self.pages[i][0]) + 0.2 * bool(self.issue[i])
        text, truncated = self.abstract[i]
        score += (0.5 if truncated else 1.5) if text else 0.0
        score += min(len(text), 3000) / 3000.0
        score -= 1.0 if self.title[i].notice else 0.0
        return score

    # --- persistence and reordering -------------------------------------------------------

    _LISTS = (
        "title",
        "authors",
        "doi",
        "year",
        "venue",
        "volume",
        "issue",
        "supplement",
        "pages",
        "abstract",
        "kind",
        "preprint",
        "numbers",
        "meeting",
        "venue_id",
    )

    def __getstate__(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in self._LISTS}
        state.update(
            size=self.size, containers=self.containers, container_rows=self._container_rows, venue_ids=self._venue_ids
        )
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name in self._LISTS:
            setattr(self, name, state[name])
        self.size = state["size"]
        self.containers = state["containers"]
        self._container_rows = state["container_rows"]
        self.page_range = _PageRanges(self.pages)
        self._venue_ids = state.get("venue_ids") or self._venue_ids_of(self.venue, self.venue_id)
        self._venue_pairs = {}
        self._keys = _MEMOISED_KEYS  # dedupe's own features (an index, a reordered corpus)

    @staticmethod
    def _venue_ids_of(venues: list[nz.VenueKey], ids: list[int]) -> dict[nz.VenueKey, int]:
        found: dict[nz.VenueKey, int] = {}
        for venue, vid in zip(venues, ids, strict=True):
            if vid:
                found.setdefault(venue, vid)
        return found

    def take(self, rows: list[int]) -> Features:
        """The features of `rows`, in that order (a reordered or reduced corpus)."""
        taken = Features.__new__(Features)
        state: dict[str, Any] = {name: [getattr(self, name)[r] for r in rows] for name in self._LISTS}
        position = {old: new for new, old in enumerate(rows)}
        state.update(
            size=len(rows),
            containers=set(self.containers),
            container_rows={position[r]: d for r, d in self._container_rows.items() if r in position},
            venue_ids=None,
        )
        taken.__setstate__(state)
        return taken


__all__ = [
    "ABSTRACT_KEY",
    "CHUNK_ROWS",
    "FEATURE_COLUMNS",
    "FEATURE_INPUTS",
    "Features",
    "abstract_keys",
    "is_container",
    "page_range",
]
