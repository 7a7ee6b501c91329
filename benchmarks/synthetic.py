"""Synthetic review corpora of any size, as the export files a review team would drop into corpus/files/.

    python benchmarks/synthetic.py OUT --records 100000                 corpus + truth.csv + manifest.json
    python benchmarks/synthetic.py OUT --records 100000 --update UPD    also a 1% update file in UPD

Every record is made of real parts: titles, abstracts' sentences, author lists, venues and keywords of
the real records in ../shared/data (exports and recorded API responses, read with pipeline.ingest), and,
for the on-topic share (30% of works by default), abstracts made of the sentences of the seed abstracts
and of the hand-coded validation set (tests/data/coding/gold.jsonl), under school-collaboration titles,
so the coder does real work. (The one recorded ERIC response and the OpenAlex page are about blockchain
and public health; they feed the off-topic pool.)

A *work* is a function of (seed, index): an off-topic work joins the first half of one real title to the
second half of another, with the abstract of the first (a sentence sometimes swapped for another
abstract's), the authors of a third record and the venue of a fourth; the (first, second) pair is a
bijection of the index, so titles do not repeat (up to ~20M off-topic works from the 4,500 real titles;
on-topic titles are a bijection onto 5.9M combinations of head, place, design, count and phase). Works are written as records into shards of four
formats: Scopus-like CSV, Web of Science-like RIS, Zotero-like BibTeX and PubMed MEDLINE (.nbib).
`duplicate_share` of the records are copies of a work (any work, drawn uniformly), nearly always in
another format than the work's first record, perturbed as databases and typists do: typos, case and
punctuation changes, abstracts cut and ended with '...', reordered or fewer authors, missing DOIs,
pages, abstracts, a year off by one. truth.csv says which work each record is (file, own_id, work).

Records are streamed: works are regenerated from their index when copied, so memory is the pool of real
parts whatever the size (the process peaks at ~150 MB for 10k and for 1M records: 1M took 67 s of CPU, 1.7 GB
of files); the same seed gives byte-identical files.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import math
import random
import re
import sys
import bisect
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.errors import InputFileError, ReviewError  # noqa: E402
from pipeline.io import write_json  # noqa: E402

SHARED = ROOT.parent / "shared"
GENERATOR_VERSION = 1
TRUTH_NAME = "truth.csv"
MANIFEST_NAME = "manifest.json"
FILES_DIR = "files"  # the export files; truth.csv and manifest.json sit beside this folder, not in it
TRUTH_COLUMNS = ["file", "own_id", "work", "role"]
DEFAULT_FORMATS = {"csv": 0.35, "ris": 0.30, "bibtex": 0.15, "medline": 0.20}
SAME_FORMAT_COPY = 0.1  # a copy in the work's own format: two overlapping searches of one database
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")
_INITIALS = re.compile(r"(?:[A-Z]\.?-?){1,4}")
_BIBTEX_SPECIAL = re.compile(r"([&%$#_{}])")
_PERMUTATION_MULTIPLIER = 2_654_435_761  # Knuth's multiplicative hash constant, prime
# Notices (errata, replies) are kept apart from their work by design: as parts of made-up works they
# would make copies that the deduplicator rightly refuses to join, so they stay out of the pool.
_NOTICE = re.compile(r"\b(?:errat|corrigend|correction|retract|reply|replies|comment on)|\(vol\b", re.IGNORECASE)
_NOT_A_NAME = re.compile(r"^(?:et al\.?|al\.?|anonymous|\[?no author.*)$", re.IGNORECASE)

log = logging.getLogger(__name__)


# --- the pool of real parts -------------------------------------------------------------------


@dataclass
class Pool:
    """Real parts to build works from. `abstracts[i]` holds the sentences of the abstract of `titles[i]`."""

    titles: list[str]
    abstracts: list[list[str]]
    author_lists: list[list[tuple[str, str]]]
    venues: list[tuple[str, str, str]]  # venue, publisher, ISSN
    keywords: list[list[str]]
    years: list[int | None]
    on_topic_sentences: list[str]

    def fingerprint(self) -> str:
        """A hash of the parts: an update must be made from the very pool its corpus was made from."""
        digest = hashlib.sha256()
        for part in (self.titles, self.on_topic_sentences, [v[0] for v in self.venues]):
            digest.update("\x1f".join(part).encode("utf-8"))
        digest.update(str(len(self.author_lists)).encode())
        return digest.hexdigest()[:16]


def default_pool_files(shared: Path = SHARED) -> list[Path]:
    """Every export file and recorded API response under shared/data that pipeline.ingest reads."""
    data = shared / "data"
    exports = sorted(p for p in (data / "exports").rglob("*") if p.is_file())
    responses = sorted(p for p in (data / "api-responses").rglob("*.json") if p.is_file())
    return exports + responses


def load_pool(files: Sequence[Path] | None = None, shared: Path = SHARED) -> Pool:
    """Read the real records (files the readers reject are skipped) and the on-topic sentences."""
    from pipeline.ingest import read_file

    titles: dict[str, tuple[str, list[str], list[str], int | None]] = {}
    author_lists: dict[tuple[tuple[str, str], ...], None] = {}
    venues: dict[tuple[str, str, str], None] = {}
    for path in files if files is not None else default_pool_files(shared):
        try:
            records = list(read_file(path))
        except (InputFileError, ReviewError) as exc:
            log.info("pool: skipped %s (%s)", path.name, exc)
            continue
        for record in records:
            title = _squash(record.title)
            key = re.sub(r"\W+", " ", title.lower()).strip()
            if 4 <= len(title.split()) <= 40 and key not in titles and not _NOTICE.search(title):
                sentences = [s for s in _SENTENCE_END.split(_squash(record.abstract)) if s]
                titles[key] = (title, sentences, [_squash(k) for k in record.keywords[:6] if k.strip()], record.year)
            names = tuple(
                split_name(_squash(a)) for a in record.authors[:12] if not _NOT_A_NAME.match(a.strip() or "al")
            )
            if names and all(last for last, _ in names):
                author_lists.setdefault(names, None)
            if record.venue.strip():
                venues.setdefault((_squash(record.venue), _squash(record.publisher), record.issn.strip()), None)
    if len(titles) < 10 or not author_lists or not venues:
        raise ReviewError(
            f"the pool of real records is too small ({len(titles)} titles); "
            f"check that {shared / 'data'} holds the exports"
        )
    entries = list(titles.values())
    return Pool(
        titles=[e[0] for e in entries],
        abstracts=[e[1] for e in entries],
        keywords=[e[2] for e in entries],
        years=[e[3] for e in entries],
        author_lists=[list(names) for names in author_lists],
        venues=list(venues),
        on_topic_sentences=on_topic_sentences(shared),
    )


def on_topic_sentences(shared: Path = SHARED) -> list[str]:
    """Sentences of the seed abstracts and of the hand-coded validation set (as coding_bench.py uses)."""
    from benchmarks.coding_bench import on_topic_sentences as sentences  # the benchmark's definition, not a copy

    return [_squash(s) for s in sentences(shared)]


def split_name(name: str) -> tuple[str, str]:
    """'Smith, J.' / 'Smith J.' / 'John Smith' -> ('Smith', 'J.' or 'John')."""
    if "," in name:
        last, given = name.split(",", 1)
        return last.strip(), given.strip()
    parts = name.split()
    if len(parts) == 1:
        return name, ""
    if _INITIALS.fullmatch(parts[-1]):
        return " ".join(parts[:-1]), parts[-1]
    return parts[-1], " ".join(parts[:-1])


def _squash(text: str) -> str:
    return " ".join(str(text or "").split())


# --- works --------------------------------------------------------------------------------------

# School-collaboration titles: head, place, design, number and phase of schools (5.9M combinations).
_HEADS = (
    "School-to-school collaboration", "School partnerships", "Networks of schools", "School federations",
    "Collaborative school improvement", "Inter-school collaboration", "Peer review between schools",
    "System leadership across schools", "Multi-academy trusts", "Teaching school alliances",
    "Collaborative enquiry across schools", "School clusters", "Cross-school professional learning communities",
    "Partnerships between schools", "School improvement partnerships", "Lateral collaboration between schools",
    "Schools working together", "Executive headship and school federations", "Joint practice development",
    "School networks",
)
_PLACES = (
    "England", "Scotland", "Wales", "Egypt", "China", "Shanghai", "Chile", "New Zealand", "Australia", "Ontario",
    "the Netherlands", "Finland", "Singapore", "Hong Kong", "Norway", "Sweden", "Ireland", "the United States",
    "South Africa", "rural districts", "urban areas", "London", "Greater Manchester", "Northern Ireland",
    "Denmark", "Germany", "Israel", "Kenya", "India", "Brazil",
)
_DESIGNS = (
    "a case study", "a mixed-methods study", "a longitudinal study", "a survey", "an ethnography",
    "a comparative study", "a realist evaluation", "a qualitative study", "an evaluation", "a social network analysis",
)
_PHASES = (
    "primary", "secondary", "rural primary", "special", "urban secondary", "all-through", "faith", "small rural",
    "disadvantaged", "high-poverty",
)
_SCHOOL_COUNTS = range(2, 100)
_EDUCATION_VENUES = (
    ("Review of Education", "Wiley"), ("School Effectiveness and School Improvement", "Taylor & Francis"),
    ("Journal of Educational Change", "Springer"), ("Educational Management Administration & Leadership", "SAGE"),
    ("School Leadership & Management", "Taylor & Francis"), ("Oxford Review of Education", "Taylor & Francis"),
    ("British Educational Research Journal", "Wiley"), ("Journal of Professional Capital and Community", "Emerald"),
    ("Educational Review", "Taylor & Francis"), ("International Journal of Educational Management", "Emerald"),
    ("Improving Schools", "SAGE"), ("Journal of Education Policy", "Taylor & Francis"),
    ("Cambridge Journal of Education", "Taylor & Francis"), ("Educational Research", "Taylor & Francis"),
)
_EDUCATION_KEYWORDS = (
    "school-to-school collaboration", "school improvement", "networks", "partnerships", "system leadership",
    "collaboration", "educational equity", "professional learning", "school federations", "multi-academy trusts",
    "teacher leadership", "social capital", "collaborative enquiry", "school autonomy", "accountability",
)
_DOI_PREFIXES = ("10.1080", "10.1016", "10.1002", "10.1007", "10.1177", "10.1111", "10.3390", "10.1108")


@dataclass(slots=True)
class Work:
    """One publication; records are (perturbed) renderings of it."""

    index: int
    on_topic: bool
    title: str
    authors: list[tuple[str, str]]
    year: int | None
    venue: str
    publisher: str
    issn: str
    volume: str
    issue: str
    first_page: str
    last_page: str
    doi: str
    abstract: str
    keywords: list[str] = field(default_factory=list)


def _permute(index: int, size: int, offset: int) -> int:
    """A bijection of range(size) (index * prime + offset mod size; the prime is coprime with size)."""
    multiplier = _PERMUTATION_MULTIPLIER
    while math.gcd(multiplier, size) != 1:
        multiplier += 2
    return (index * multiplier + offset) % size


def _mixed_radix(number: int, radices: Sequence[int]) -> list[int]:
    digits = []
    for radix in radices:
        number, digit = divmod(number, radix)
        digits.append(digit)
    return digits


class WorkFactory:
    """work(i) is a pure function of (pool, seed, i, on_topic_share): copies regenerate it instead of storing it."""

    def __init__(self, pool: Pool, seed: int, on_topic_share: float) -> None:
        self.pool = pool
        self.seed = seed
        self.on_topic_share = on_topic_share
        self._title_space = len(pool.titles) ** 2
        self._radices = (len(_HEADS), len(_PLACES), len(_DESIGNS), len(_SCHOOL_COUNTS), len(_PHASES))
        self._on_topic_space = math.prod(self._radices)
        offsets = random.Random(seed)
        self._title_offset = offsets.randrange(self._title_space)
        self._on_topic_offset = offsets.randrange(self._on_topic_space)

    def work(self, index: int) -> Work:
        rng = random.Random((self.seed << 40) | index)
        if rng.random() < self.on_topic_share:
            work = self._on_topic(index, rng)
        else:
            work = self._off_topic(index, rng)
        self._add_numbers(work, rng)
        return work

    def _on_topic(self, index: int, rng: random.Random) -> Work:
        head, place, design, count, phase = _mixed_radix(
            _permute(index, self._on_topic_space, self._on_topic_offset), self._radices
        )
        title = (
            f"{_HEADS[head]} in {_PLACES[place]}: {_DESIGNS[design]} of {_SCHOOL_COUNTS[count]} "
            f"{_PHASES[phase]} schools"
        )
        sentences = self.pool.on_topic_sentences
        abstract = " ".join(rng.sample(sentences, min(len(sentences), rng.randint(4, 9))))
        venue, publisher = rng.choice(_EDUCATION_VENUES)
        return Work(
            index=index,
            on_topic=True,
            title=title,
            authors=list(rng.choice(self.pool.author_lists)),
            year=rng.randint(2000, 2025),
            venue=venue,
            publisher=publisher,
            issn="",
            volume="",
            issue="",
            first_page="",
            last_page="",
            doi="",
            abstract=abstract,
            keywords=rng.sample(_EDUCATION_KEYWORDS, rng.randint(3, 6)),
        )

    def _off_topic(self, index: int, rng: random.Random) -> Work:
        pool = self.pool
        first, second = divmod(_permute(index, self._title_space, self._title_offset), len(pool.titles))
        head_words, tail_words = pool.titles[first].split(), pool.titles[second].split()
        title = " ".join(head_words[: max(3, (len(head_words) + 1) // 2)] + tail_words[len(tail_words) // 2 :])
        sentences = list(pool.abstracts[first] or pool.abstracts[second])
        if sentences and rng.random() < 0.5:
            other = pool.abstracts[rng.randrange(len(pool.abstracts))]
            if other:
                sentences[rng.randrange(len(sentences))] = rng.choice(other)
        venue, publisher, issn = rng.choice(pool.venues)
        year = pool.years[first]
        return Work(
            index=index,
            on_topic=False,
            title=title,
            authors=list(rng.choice(pool.author_lists)),
            year=(year + rng.randint(-2, 2)) if year else rng.randint(1990, 2024),
            venue=venue,
            publisher=publisher,
            issn=issn,
            volume="",
            issue="",
            first_page="",
            last_page="",
            doi="",
            abstract=" ".join(sentences) if rng.random() > 0.05 else "",
            keywords=list(pool.keywords[first]),
        )

    @staticmethod
    def _add_numbers(work: Work, rng: random.Random) -> None:
        work.volume = str(rng.randint(1, 80))
        work.issue = str(rng.randint(1, 12))
        start = rng.randint(1, 1500)
        work.first_page, work.last_page = str(start), str(start + rng.randint(4, 30))
        if rng.random() < 0.9:
            work.doi = f"{rng.choice(_DOI_PREFIXES)}/syn.{work.year or 0}.{work.index:07d}"


# --- perturbation -----------------------------------------------------------------------------


def typo(text: str, rng: random.Random) -> str:
    """One edit: a letter dropped, two swapped or one replaced (shared with benchmarks/dedup_bench.py)."""
    if len(text) < 5:
        return text
    i = rng.randrange(len(text) - 1)
    kind = rng.random()
    if kind < 0.33:
        return text[:i] + text[i + 1 :]
    if kind < 0.66:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz") + text[i + 1 :]


def _punctuation(title: str, rng: random.Random) -> str:
    choice = rng.random()
    if choice < 0.4:
        return title[:-1] if title.endswith(".") else title + "."
    if choice < 0.7 and ":" in title:
        return title.replace(":", " -", 1)
    return title.replace("-", " ")


def _cut_abstract(abstract: str, rng: random.Random) -> str:
    """An aggregator's cut: 100-300 characters at a word boundary, then '...'."""
    limit = rng.randint(100, 300)
    if len(abstract) <= limit + 20:
        return abstract
    return abstract[:limit].rsplit(" ", 1)[0] + "..."


def perturb(work: Work, rng: random.Random) -> Work:
    """A copy of the work as another database (or a typist) records it."""
    copy = replace(work, authors=list(work.authors))
    if rng.random() < 0.25:
        copy.title = typo(copy.title, rng)
    if rng.random() < 0.1:
        copy.title = copy.title.upper() if rng.random() < 0.5 else copy.title.lower()
    if rng.random() < 0.15:
        copy.title = _punctuation(copy.title, rng)
    if len(copy.authors) > 2 and rng.random() < 0.15:
        rest = copy.authors[1:]
        rng.shuffle(rest)
        copy.authors = [copy.authors[0], *rest]
    if len(copy.authors) > 3 and rng.random() < 0.1:
        copy.authors = copy.authors[:3]
    if rng.random() < 0.4:
        copy.doi = ""
    elif rng.random() < 0.1:
        copy.doi = copy.doi.upper()
    if copy.abstract and rng.random() < 0.2:
        copy.abstract = _cut_abstract(copy.abstract, rng)
    elif rng.random() < 0.08:
        copy.abstract = ""
    if rng.random() < 0.2:
        copy.first_page = copy.last_page = ""
    if copy.year and rng.random() < 0.05:
        copy.year += rng.choice((-1, 1))  # online-first and print years
    if rng.random() < 0.1:
        copy.venue = copy.venue.upper()
    return copy


# --- formats ----------------------------------------------------------------------------------


def _initials(given: str, dots: bool = True) -> str:
    letters = [part[0] for part in re.split(r"[\s.\-]+", given) if part]
    return "".join(f"{letter}." if dots else letter for letter in letters)


def _full_name(name: tuple[str, str]) -> str:
    last, given = name
    return f"{last}, {given}" if given else last


class ShardWriter:
    """Records of one format, in files of at most `shard_size` records named <prefix>_NNNN<suffix>."""

    prefix = ""
    suffix = ""
    database = ""
    encoding = "utf-8"

    def __init__(self, folder: Path, shard_size: int) -> None:
        self.folder = folder
        self.shard_size = shard_size
        self.counts: dict[str, int] = {}  # file name -> records, in the order the files were opened
        self._handle: IO[str] | None = None
        self._name = ""

    def write(self, work: Work, number: int) -> tuple[str, str]:
        """Write one record; returns (file name, own id)."""
        if self._handle is None or self.counts[self._name] >= self.shard_size:
            self._open_next()
        assert self._handle is not None
        own_id = self.own_id(number)
        self._handle.write(self.render(work, own_id))
        self.counts[self._name] += 1
        return self._name, own_id

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _open_next(self) -> None:
        self.close()
        self._name = f"{self.prefix}_{len(self.counts) + 1:04d}{self.suffix}"
        self.counts[self._name] = 0
        self._handle = open(self.folder / self._name, "w", encoding=self.encoding, newline="")  # noqa: SIM115
        self.start_file(self._handle)

    def start_file(self, handle: IO[str]) -> None:
        """Write what a file of this format starts with."""

    def own_id(self, number: int) -> str:
        raise NotImplementedError

    def render(self, work: Work, own_id: str) -> str:
        raise NotImplementedError


class RisWriter(ShardWriter):
    """Web of Science-like RIS: TY..ER records, DB tag."""

    prefix, suffix, database = "wos_ris", ".ris", "Web of Science"

    def own_id(self, number: int) -> str:
        return f"WOS:{number + 1:015d}"

    def render(self, work: Work, own_id: str) -> str:
        lines = ["TY  - JOUR", f"ID  - {own_id}"]
        lines += [f"AU  - {_full_name(name)}" for name in work.authors]
        lines.append(f"TI  - {work.title}")
        for tag, value in (
            ("PY", str(work.year or "")), ("T2", work.venue), ("VL", work.volume), ("IS", work.issue),
            ("SP", work.first_page), ("EP", work.last_page), ("DO", work.doi), ("AB", work.abstract),
        ):
            if value:
                lines.append(f"{tag}  - {value}")
        lines += [f"KW  - {keyword}" for keyword in work.keywords]
        for tag, value in (("PB", work.publisher), ("SN", work.issn), ("DB", self.database)):
            if value:
                lines.append(f"{tag}  - {value}")
        lines.append("ER  - ")
        return "\n".join(lines) + "\n\n"


class ScopusCsvWriter(ShardWriter):
    """Scopus-like CSV (UTF-8 with BOM, EID ids, 'Last I.' authors joined by ', ')."""

    prefix, suffix, database, encoding = "scopus_csv", ".csv", "Scopus", "utf-8-sig"
    header = (
        "Authors", "Title", "Year", "Source title", "Volume", "Issue", "Page start", "Page end", "DOI", "Link",
        "Abstract", "Author Keywords", "Publisher", "ISSN", "Language of Original Document", "Document Type",
        "Source", "EID",
    )

    def start_file(self, handle: IO[str]) -> None:
        self._csv = csv.writer(handle, lineterminator="\n")
        self._csv.writerow(self.header)

    def own_id(self, number: int) -> str:
        return f"2-s2.0-{85_000_000_000 + number}"

    def write(self, work: Work, number: int) -> tuple[str, str]:
        if self._handle is None or self.counts[self._name] >= self.shard_size:
            self._open_next()
        own_id = self.own_id(number)
        authors = ", ".join(f"{last} {_initials(given)}".strip() for last, given in work.authors)
        self._csv.writerow(
            (
                authors, work.title, work.year or "", work.venue, work.volume, work.issue, work.first_page,
                work.last_page, work.doi, f"https://www.scopus.com/inward/record.uri?eid={own_id}&origin=resultslist",
                work.abstract or "[No abstract available]", "; ".join(work.keywords), work.publisher, work.issn,
                "English", "Article", "Scopus", own_id,
            )
        )
        self.counts[self._name] += 1
        return self._name, own_id


class BibtexWriter(ShardWriter):
    """Zotero-like BibTeX: braced values, LaTeX specials escaped, authors joined by ' and '."""

    prefix, suffix = "zotero_bibtex", ".bib"

    def own_id(self, number: int) -> str:
        return f"syn{number + 1:09d}"

    def render(self, work: Work, own_id: str) -> str:
        fields = [
            ("author", " and ".join(_full_name(name) for name in work.authors)),
            ("title", work.title), ("journal", work.venue), ("year", str(work.year or "")), ("volume", work.volume),
            ("number", work.issue),
            ("pages", f"{work.first_page}--{work.last_page}" if work.first_page else ""),
            ("doi", work.doi), ("abstract", work.abstract), ("keywords", "; ".join(work.keywords)),
            ("publisher", work.publisher), ("issn", work.issn),
        ]
        body = ",\n".join(f"\t{name} = {{{_bibtex_escape(value)}}}" for name, value in fields if value)
        return f"@article{{{own_id},\n{body}\n}}\n\n"


def _bibtex_escape(text: str) -> str:
    return _BIBTEX_SPECIAL.sub(r"\\\1", text.replace("\\", "/"))


class MedlineWriter(ShardWriter):
    """PubMed MEDLINE (.nbib): PMID-first records, 4-character tags, 6-space continuation lines."""

    prefix, suffix, database = "pubmed_medline", ".nbib", "PubMed"

    def own_id(self, number: int) -> str:
        return str(40_000_000 + number)

    def render(self, work: Work, own_id: str) -> str:
        lines = [f"PMID- {own_id}", "OWN - NLM", "STAT- MEDLINE"]
        if work.year:
            lines.append(f"DP  - {work.year}")
        lines += _wrapped("TI", work.title)
        if work.first_page:
            lines.append(f"PG  - {work.first_page}-{work.last_page}")
        if work.doi:
            lines.append(f"LID - {work.doi} [doi]")
        if work.abstract:
            lines += _wrapped("AB", work.abstract)
        for last, given in work.authors:
            lines.append(f"FAU - {_full_name((last, given))}")
            lines.append(f"AU  - {last} {_initials(given, dots=False)}".rstrip())
        lines += ["LA  - eng", "PT  - Journal Article"]
        for tag, value in (("VI", work.volume), ("IP", work.issue), ("JT", work.venue), ("IS", work.issn)):
            if value:
                lines.append(f"{tag:<4}- {value}")
        lines += [f"OT  - {keyword}" for keyword in work.keywords]
        if work.doi:
            lines.append(f"AID - {work.doi} [doi]")
        return "\n".join(lines) + "\n\n"


def _wrapped(tag: str, text: str, width: int = 82) -> list[str]:
    """Greedy wrap at spaces (textwrap.wrap is 10x slower and most of a 1M-record run's time)."""
    lines = []
    while len(text) > width:
        cut = text.rfind(" ", 0, width + 1)
        if cut <= 0:
            cut = text.find(" ", width)  # a word longer than the line stays whole
            if cut < 0:
                break
        lines.append(text[:cut])
        text = text[cut + 1 :]
    lines.append(text)
    return [f"{tag:<4}- {lines[0]}", *(f"      {line}" for line in lines[1:])]


WRITERS: dict[str, type[ShardWriter]] = {
    "csv": ScopusCsvWriter,
    "ris": RisWriter,
    "bibtex": BibtexWriter,
    "medline": MedlineWriter,
}


# --- corpora ----------------------------------------------------------------------------------


@dataclass
class CorpusSummary:
    """What a generate_* call wrote: files with their record counts, and the counts of works and copies."""

    folder: Path
    records: int
    works: int
    copies: int
    on_topic_records: int
    files: dict[str, int]
    seconds: float
    truth: Path

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "works": self.works,
            "copies": self.copies,
            "on_topic_records": self.on_topic_records,
            "files": self.files,
        }


class _Emitter:
    """Writes records into the format writers and their truth rows into truth.csv."""

    def __init__(self, folder: Path, formats: dict[str, float], shard_size: int) -> None:
        (folder / FILES_DIR).mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.names = list(formats)
        self.weights = list(formats.values())
        self._cumulative = [sum(self.weights[: i + 1]) / sum(self.weights) for i in range(len(self.weights))]
        self.writers = {name: WRITERS[name](folder / FILES_DIR, shard_size) for name in self.names}
        self._truth_handle = open(folder / TRUTH_NAME, "w", encoding="utf-8", newline="")  # noqa: SIM115
        self._truth = csv.writer(self._truth_handle, lineterminator="\n")
        self._truth.writerow(TRUTH_COLUMNS)
        self.on_topic = 0

    def home_format(self, index: int, seed: int) -> str:
        """The format of a work's first record: a function of the work, so copies can avoid it."""
        mixed = ((index + 1) * 0x9E3779B97F4A7C15 + seed * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        position = bisect.bisect_right(self._cumulative, (mixed >> 11) / 2**53)
        return self.names[min(position, len(self.names) - 1)]

    def copy_format(self, home: str, rng: random.Random) -> str:
        others = [name for name in self.names if name != home]
        if not others or rng.random() < SAME_FORMAT_COPY:
            return home
        return rng.choices(others, [self.weights[self.names.index(n)] for n in others])[0]

    def emit(self, work: Work, fmt: str, number: int, role: str) -> None:
        name, own_id = self.writers[fmt].write(work, number)
        self._truth.writerow((name, own_id, work.index, role))
        self.on_topic += work.on_topic

    def close(self) -> dict[str, int]:
        for writer in self.writers.values():
            writer.close()
        self._truth_handle.close()
        return {name: n for writer in self.writers.values() for name, n in writer.counts.items()}


def generate_corpus(
    folder: str | Path,
    records: int,
    *,
    seed: int = 7,
    on_topic_share: float = 0.3,
    duplicate_share: float = 0.3,
    shard_size: int = 20_000,
    formats: dict[str, float] | None = None,
    pool: Pool | None = None,
) -> CorpusSummary:
    """Write `records` records (export files, truth.csv, manifest.json) into `folder`, streamed."""
    if records < 1:
        raise ReviewError(f"a corpus needs at least one record, not {records}; pass --records N with N >= 1")
    started = time.perf_counter()
    folder = Path(folder)
    pool = pool or load_pool()
    formats = dict(formats or DEFAULT_FORMATS)
    factory = WorkFactory(pool, seed, on_topic_share)
    works = max(1, round(records * (1 - duplicate_share)))
    emitter = _Emitter(folder, formats, shard_size)
    rng = random.Random(seed)
    next_work = copies = 0
    for number in range(records):
        copies_left = (records - works) - copies
        if copies_left and rng.random() < copies_left / (records - number):
            index = rng.randrange(works)
            work = perturb(factory.work(index), rng)
            emitter.emit(work, emitter.copy_format(emitter.home_format(index, seed), rng), number, "copy")
            copies += 1
        else:
            work = factory.work(next_work)
            emitter.emit(work, emitter.home_format(next_work, seed), number, "original")
            next_work += 1
    files = emitter.close()
    summary = CorpusSummary(
        folder, records, works, copies, emitter.on_topic, files, time.perf_counter() - started, folder / TRUTH_NAME
    )
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "on_topic_share": on_topic_share,
        "duplicate_share": duplicate_share,
        "shard_size": shard_size,
        "formats": formats,
        "pool": pool.fingerprint(),
        **summary.as_dict(),
    }
    write_json(manifest, folder / MANIFEST_NAME)
    return summary


def read_manifest(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise ReviewError(
            f"{path} does not exist; generate the corpus first (python benchmarks/synthetic.py DIR --records N)"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def generate_update(
    corpus_folder: str | Path,
    folder: str | Path,
    *,
    share: float = 0.01,
    new_work_share: float = 0.5,
    fmt: str = "ris",
    pool: Pool | None = None,
) -> CorpusSummary:
    """A living-review update for a generated corpus: `share` x its records, in one file of format `fmt`.

    `new_work_share` of them are works the corpus does not have; the rest are copies of its works (another
    database's records of them). Record numbers continue the corpus's, so every own id stays unique.
    """
    started = time.perf_counter()
    manifest = read_manifest(corpus_folder)
    pool = pool or load_pool()
    if pool.fingerprint() != manifest["pool"]:
        raise ReviewError(
            f"the pool of real records differs from the one {corpus_folder} was made from; regenerate the corpus"
        )
    seed, works, first_number = manifest["seed"], manifest["works"], manifest["records"]
    factory = WorkFactory(pool, seed, manifest["on_topic_share"])
    total = max(1, math.ceil(first_number * share))
    new_works = round(total * new_work_share)
    emitter = _Emitter(Path(folder), {fmt: 1.0}, shard_size=total)
    emitter.writers[fmt].prefix = f"update_{emitter.writers[fmt].prefix}"
    rng = random.Random(f"{seed}:update")
    for offset in range(total):
        if offset < new_works:
            emitter.emit(factory.work(works + offset), fmt, first_number + offset, "original")
        else:
            emitter.emit(perturb(factory.work(rng.randrange(works)), rng), fmt, first_number + offset, "copy")
    files = emitter.close()
    summary = CorpusSummary(
        Path(folder), total, new_works, total - new_works, emitter.on_topic, files,
        time.perf_counter() - started, Path(folder) / TRUTH_NAME,
    )
    write_json({"generator_version": GENERATOR_VERSION, "update_of": str(corpus_folder), **summary.as_dict()},
               Path(folder) / MANIFEST_NAME)
    return summary


# --- scoring against the truth ----------------------------------------------------------------


def read_truth(paths: Iterable[str | Path]) -> dict[tuple[str, str], int]:
    """(file name, own id) -> work index, from one or more truth.csv files."""
    truth: dict[tuple[str, str], int] = {}
    for path in paths:
        with open(path, encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                truth[(row["file"], row["own_id"])] = int(row["work"])
    return truth


def pair_scores(truth: dict[tuple[str, str], int], predicted: Iterable[tuple[str, str, str]]) -> dict[str, float]:
    """Pairwise precision, recall and F1 of predicted groups ((file, own id, group) rows) against the truth.

    Counted from group sizes (sum of n*(n-1)/2), never by listing pairs, so 1M records take seconds.
    Records the truth does not know (e.g. the seeds of a workspace) are left out.
    """
    group_sizes: Counter[str] = Counter()
    work_sizes: Counter[int] = Counter()
    both: Counter[tuple[str, int]] = Counter()
    for file_name, own_id, group in predicted:
        work = truth.get((file_name, own_id))
        if work is None:
            continue
        group_sizes[group] += 1
        work_sizes[work] += 1
        both[(group, work)] += 1

    def pairs(sizes: Iterable[int]) -> int:
        return sum(n * (n - 1) // 2 for n in sizes)

    predicted_pairs, true_pairs, hits = pairs(group_sizes.values()), pairs(work_sizes.values()), pairs(both.values())
    precision = hits / predicted_pairs if predicted_pairs else 1.0
    recall = hits / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "records": sum(group_sizes.values()),
        "true_pairs": true_pairs,
        "predicted_pairs": predicted_pairs,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "false_pairs": predicted_pairs - hits,
        "missed_pairs": true_pairs - hits,
    }


# --- command line -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="where to write the export files, truth.csv and manifest.json")
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--on-topic-share", type=float, default=0.3)
    parser.add_argument("--duplicate-share", type=float, default=0.3)
    parser.add_argument("--shard-size", type=int, default=20_000)
    parser.add_argument("--update", type=Path, help="also write a 1%% update file into this folder")
    args = parser.parse_args(argv)
    import resource

    started = time.perf_counter()
    pool = load_pool()
    print(f"pool: {len(pool.titles)} titles, {len(pool.author_lists)} author lists, {len(pool.venues)} venues, "
          f"{len(pool.on_topic_sentences)} on-topic sentences ({time.perf_counter() - started:.1f} s)")
    summary = generate_corpus(
        args.folder, args.records, seed=args.seed, on_topic_share=args.on_topic_share,
        duplicate_share=args.duplicate_share, shard_size=args.shard_size, pool=pool,
    )
    print(f"corpus: {summary.records} records ({summary.works} works, {summary.copies} copies, "
          f"{summary.on_topic_records} on-topic) in {len(summary.files)} files; {summary.seconds:.1f} s, "
          f"{summary.records / summary.seconds:,.0f} records/s")
    if args.update:
        update = generate_update(args.folder, args.update, pool=pool)
        print(f"update: {update.records} records ({update.works} new works, {update.copies} copies) "
              f"in {', '.join(update.files)}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
