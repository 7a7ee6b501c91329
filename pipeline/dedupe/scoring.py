"""Pairwise evidence: normalised features per record, and a verdict per pair of records.

A verdict is one of four levels:
  MATCH     the same work (the rule and its scores say why);
  MAYBE     similar, but the evidence is not enough, or it conflicts: shown to a reviewer, never merged;
  NO        no sign that the records are the same work;
  CONFLICT  positive evidence that they are different works (a notice and its paper, different DOIs, years, pages).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd
from rapidfuzz import fuzz, process

from pipeline.dedupe import normalise as nz

MATCH, MAYBE, NO, CONFLICT = 2, 1, 0, -1
LEVEL_NAMES = {MATCH: "match", MAYBE: "maybe", NO: "no", CONFLICT: "conflict"}

_CONFERENCE_TYPE = re.compile(
    r"conf|proceed|inproceedings|congress|meeting|abstract|symposium|workshop|poster|cpaper", re.I
)
_JOURNAL_TYPE = re.compile(
    r"^(?:article|journal|jour|jnl|journal article|journalarticle|review|research article|ja)$", re.I
)
_JOURNAL_VENUE = re.compile(
    r"\b(?:journal|j|quarterly|review|transactions|letters|magazine|annals|bulletin|archives)\b"
)
_CONFERENCE_VENUE = re.compile(
    r"\b(?:conference|proceedings|proc|symposium|workshop|congress|meeting|amcis|icis|ecis|hicss|pacis)\b"
)
_PREPRINT_VENUE = re.compile(
    r"\b(?:arxiv|biorxiv|medrxiv|ssrn|preprint|preprints|research square|psyarxiv|socarxiv|edarxiv|osf)\b"
)
_NUMBER_WORDS = re.compile(r"\d+|\b(?:i{1,3}|iv|v|vi{1,3}|ix|x)\b")


@dataclass(frozen=True, slots=True)
class Verdict:
    level: int
    score: float  # 0..1, higher is more alike; orders merges
    rule: str  # 'doi', 'title', 'bibliographic', 'abstract', 'companion', 'reviewer', or why not
    detail: str  # 'title=0.97 authors=0.91 year=same'
    # A MAYBE that only lacks evidence (a missing page, a typo too many) does not keep a record out of a
    # group whose other members it matches; a MAYBE with evidence against identity (doubt) does.
    doubt: bool = True

    @property
    def reason(self) -> str:
        return f"{self.rule}: {self.detail}" if self.detail else self.rule


def _identifying_dois(dois: list[str], titles: list[nz.TitleKey]) -> list[str]:
    """DOIs with the DOI of a whole supplement, proceedings or book removed.

    Such a container DOI is given to many records with different titles; it identifies none of them.
    """
    by_doi: dict[str, list[int]] = {}
    for i, doi in enumerate(dois):
        if doi:
            by_doi.setdefault(doi, []).append(i)
    shared = set()
    for doi, rows in by_doi.items():
        cores = {titles[i].core for i in rows if titles[i].core}
        if len(cores) > 1:
            first = next(iter(cores))
            if any(fuzz.token_set_ratio(first, other) < 70 for other in cores):
                shared.add(doi)
    return ["" if doi in shared else doi for doi in dois]


class Features:
    """Normalised fields of every record, as plain lists indexed by row position (fast in loops)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        n = len(frame)
        column = lambda name: frame[name].tolist() if name in frame.columns else [""] * n  # noqa: E731
        self.size = n
        self.title = [nz.title_key(nz.text(v)) for v in column("title")]
        self.authors = [nz.author_key(nz.text(v)) for v in column("authors")]
        self.doi = _identifying_dois([nz.normalise_doi(v) for v in column("doi")], self.title)
        self.year = [nz.normalise_year(v) for v in column("year")]
        self.venue = [nz.venue_key(nz.text(v)) for v in column("venue")]
        self.volume = [nz.normalise_volume(v) for v in column("volume")]
        issues = column("issue")
        self.issue = [nz.normalise_volume(v) for v in issues]
        self.supplement = [nz.supplement_number(v) for v in issues]
        self.pages = [nz.normalise_pages(v) for v in column("pages")]
        self.page_range = [_page_range(p) for p in self.pages]
        self.abstract = [nz.abstract_key(v) for v in column("abstract")]
        doc_types = [nz.text(v) for v in column("doc_type")]
        self.kind = [self._kind(t, v) for t, v in zip(doc_types, self.venue, strict=True)]
        self.preprint = [
            nz.is_preprint_doi(d) or bool(_PREPRINT_VENUE.search(v.words()))
            for d, v in zip(self.doi, self.venue, strict=True)
        ]
        self.numbers = [frozenset(_NUMBER_WORDS.findall(t.core)) for t in self.title]
        # Venues as small ints (0 = none): comparing two venues is then a cached dict lookup.
        ids: dict[nz.VenueKey, int] = {}
        self.venue_id = [ids.setdefault(v, len(ids) + 1) if v else 0 for v in self.venue]
        self._venue_pairs: dict[tuple[int, int], bool] = {}

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
            found = self._venue_pairs[key] = nz.venues_compatible(self.venue[i], self.venue[j])
        return found

    @staticmethod
    def _kind(doc_type: str, venue: nz.VenueKey) -> str:
        """'conference', 'journal' or '' (a book chapter, report, or unknown)."""
        words = venue.words()
        if venue.supplement or _CONFERENCE_TYPE.search(doc_type) or _CONFERENCE_VENUE.search(words):
            return "conference"
        if _JOURNAL_TYPE.match(doc_type) or (not doc_type and words):
            return "journal"  # a record with a venue and no type is a journal article far more often than not
        return ""

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


# --- similarity measures ------------------------------------------------------------------


def title_similarity(a: nz.TitleKey, b: nz.TitleKey) -> float | None:
    """0..1 similarity of two titles: edit distance, word order, and prefix (truncation, dropped subtitle).

    Scores below 0.5 come back as 0.0 (rapidfuzz stops early): no rule uses them."""
    x, y = a.core, b.core
    if not x or not y:
        return None
    if x == y:
        return 1.0
    score = fuzz.ratio(x, y, score_cutoff=50.0) / 100.0
    if score < 0.97:
        score = max(score, 0.99 * fuzz.token_sort_ratio(x, y, score_cutoff=50.0) / 100.0)
        short, long = (x, y) if len(x) <= len(y) else (y, x)
        if len(short) >= 30 and long.startswith(short):
            score = max(score, 0.95)  # truncated title, or the subtitle dropped
        elif len(short) >= 30 and score < 0.93:
            # A truncated title with a typo of its own: compare it with the same length of the other.
            start = fuzz.ratio(short, long[: len(short)], score_cutoff=90.0) / 100.0
            score = max(score, 0.96 * start)
        if (len(a.main) >= 25 and a.main == y) or (len(b.main) >= 25 and b.main == x):
            score = max(score, 0.93)  # the subtitle dropped by one database
    return score


_MAX_AUTHORS = 40  # consortium papers list hundreds; the first 40 are plenty to compare


def author_similarity(a: nz.AuthorKey, b: nz.AuthorKey) -> tuple[float | None, bool]:
    """(share of the shorter author list found in the longer one, first authors agree); None if one is missing."""
    if not a.surnames or not b.surnames:
        return None, False
    if a.surnames == b.surnames:
        return 1.0, True
    names_a, names_b = a.surnames[:_MAX_AUTHORS], b.surnames[:_MAX_AUTHORS]
    short, long = (names_a, names_b) if len(names_a) <= len(names_b) else (names_b, names_a)
    pool = set(long)
    found = sum(1 for name in short if name in pool or _fuzzy_in(name, long))
    first = (
        _same_name(names_a[0], names_b[0])
        # Databases sometimes reorder the first two authors, or split compound surnames differently.
        or names_a[0] in names_b[:2]
        or names_b[0] in names_a[:2]
        or bool(a.words[0] & b.words[0])
    )
    if not first or found < len(short):
        found = max(found, _word_overlap(a, b))
    return found / len(short), first


def _word_overlap(a: nz.AuthorKey, b: nz.AuthorKey) -> int:
    """Authors of the shorter list sharing a name word with one of the longer ('Lopez, Rubio M.' ~ 'Rubio, M. L.')."""
    words_a, words_b = a.words[:_MAX_AUTHORS], b.words[:_MAX_AUTHORS]
    short, long = (words_a, words_b) if len(words_a) <= len(words_b) else (words_b, words_a)
    pool = frozenset().union(*long) if long else frozenset()
    return sum(1 for words in short if words & pool)


def _same_name(x: str, y: str) -> bool:
    if x == y:
        return True
    if min(len(x), len(y)) >= 4 and (x.startswith(y) or y.startswith(x) or x.endswith(y) or y.endswith(x)):
        return True  # 'quintrec' ~ 'lequintrec'
    return fuzz.ratio(x, y, score_cutoff=80.0) > 0  # a typo or transliteration: 'jammal' ~ 'jamal'


def _fuzzy_in(name: str, names: tuple[str, ...]) -> bool:
    if process.extractOne(name, names, scorer=fuzz.ratio, score_cutoff=80.0) is not None:
        return True
    if len(name) < 4:
        return False
    return any(
        len(other) >= 4
        and (other.startswith(name) or name.startswith(other) or other.endswith(name) or name.endswith(other))
        for other in names
    )


def abstract_similarity(a: tuple[str, bool], b: tuple[str, bool]) -> float | None:
    """1.0 when one abstract is a prefix of the other (a truncated copy); else an edit-distance ratio of the starts."""
    (x, _), (y, _) = a, b
    if len(x) < 60 or len(y) < 60:
        return None
    short, long = (x, y) if len(x) <= len(y) else (y, x)
    if long.startswith(short):
        return 1.0
    return fuzz.ratio(x[:400], y[:400]) / 100.0


# --- the verdict --------------------------------------------------------------------------


_NOTHING = Verdict(NO, 0.0, "different", "")


def compare(f: Features, i: int, j: int) -> Verdict:
    """The verdict on records i and j (see the module docstring for the levels)."""
    ti, tj = f.title[i], f.title[j]
    if ti.notice != tj.notice:
        return _notice_verdict(f, i, j)
    doi_i, doi_j = f.doi[i], f.doi[j]
    same_doi = bool(doi_i) and doi_i == doi_j
    t = title_similarity(ti, tj)
    generic = ti.generic or tj.generic
    if t is not None and t < 0.80 and not same_doi and not generic and not _same_address(f, i, j):
        return _NOTHING  # most candidate pairs end here, cheaply
    a, first = author_similarity(f.authors[i], f.authors[j])
    if same_doi:
        return _same_doi(t, a, f, i, j)
    conflicts = _conflicts(f, i, j, t)
    details = _details(t, a, f, i, j)
    if generic or t is None:
        return _weak_title(f, i, j, t, a, first, conflicts, details)
    if t >= 0.97 or (t >= 0.93 and _support(f, i, j)):
        return _strong_title(f, i, j, t, a, first, conflicts, details)
    if t >= 0.80:
        return _fair_title(f, i, j, t, a, first, conflicts, details)
    verdict = _bibliographic(f, i, j, a, first, conflicts, details)
    if verdict.level == MATCH:
        return verdict
    return Verdict(CONFLICT if conflicts else NO, t * 0.5, "different", details)


def _same_address(f: Features, i: int, j: int) -> bool:
    """Same volume and first page: the precondition of the bibliographic rule."""
    return bool(f.volume[i]) and f.volume[i] == f.volume[j] and bool(f.pages[i][0]) and f.pages[i][0] == f.pages[j][0]


def _notice_verdict(f: Features, i: int, j: int) -> Verdict:
    """A correction, retraction, comment or reply is never the work it is about; a companion document joins it."""
    kinds = {f.title[i].notice, f.title[j].notice}
    if kinds == {"companion", ""}:
        same_doi = bool(f.doi[i]) and f.doi[i] == f.doi[j]
        same_title = bool(f.title[i].core) and f.title[i].core == f.title[j].core
        if same_doi or same_title:
            return Verdict(MATCH, 0.9, "companion", "doi=same" if same_doi else "title=1.00 (companion document)")
    kind = (kinds - {""}).pop() if len(kinds - {""}) == 1 else "notice"
    return Verdict(CONFLICT, 0.0, "different", f"{kind} notice vs the work it is about")


def _same_doi(t: float | None, a: float | None, f: Features, i: int, j: int) -> Verdict:
    detail = _details(t, a, f, i, j)
    if t is None or t >= 0.6 or (a is not None and a >= 0.8 and t >= 0.4):
        return Verdict(MATCH, 1.0, "doi", detail)
    # One DOI on two different titles: a book DOI on its chapters, or a database error.
    return Verdict(MAYBE, 0.5, "doi (titles differ)", detail)


def _conflicts(f: Features, i: int, j: int, t: float | None) -> list[str]:
    """Evidence that the records are different works, whatever their titles say."""
    found: list[str] = []
    preprint = f.preprint[i] or f.preprint[j]
    if f.doi[i] and f.doi[j] and not preprint and not _doi_typo(f, i, j, t):
        found.append("doi")
    yi, yj = f.year[i], f.year[j]
    if yi and yj and abs(yi - yj) >= (3 if preprint else 2):
        found.append("year")
    if not preprint:
        # Within one issue of one journal, the same title and authors are one work whatever the pages say
        # (electronic and supplement pages are often garbled: 'e8-e9' vs 'e3').
        same_issue = bool(f.issue[i]) and f.issue[i] == f.issue[j] and bool(f.volume[i]) and f.volume[i] == f.volume[j]
        if not same_issue and _pages_differ(f.pages[i], f.pages[j], f.page_range[i], f.page_range[j]):
            found.append("pages")
        vi, vj = f.volume[i], f.volume[j]
        # The same page range in the same year outweighs a volume mismatch.
        same_pages = bool(f.pages[i][0]) and f.pages[i] == f.pages[j] and yi == yj
        if _volumes_differ(f, i, j) and not same_pages:
            found.append("volume")
        # The same column in every issue ('Editor's Comments', pages 'iii-iv' or none): only the issue tells.
        weak_pages = not (f.pages[i][0] and f.pages[j][0]) or f.title[i].generic or f.title[j].generic
        if vi and vi == vj and weak_pages and _issues_differ(f.issue[i], f.issue[j]):
            found.append("issue")
    ni, nj = f.numbers[i], f.numbers[j]
    same_address = (
        bool(f.volume[i]) and f.volume[i] == f.volume[j] and f.pages[i][1] != f.pages[i][0] and f.pages[i] == f.pages[j]
    )
    if ni and nj and not (ni <= nj or nj <= ni) and not same_address:
        found.append("title numbers")  # 'Part 1' vs 'Part 2', 'phase II' vs 'phase III'
    # The same volume and issue under two names is one journal translated or transliterated
    # ('Jinko Chino Gakkai Ronbunshi' = 'Transactions of the Japanese Society for Artificial Intelligence').
    same_issue_numbers = (
        bool(f.volume[i]) and f.volume[i] == f.volume[j] and bool(f.issue[i]) and f.issue[i] == f.issue[j]
    )
    if f.venue_id[i] and f.venue_id[j] and not preprint and not same_issue_numbers and not f.same_venue(i, j):
        kinds = {f.kind[i], f.kind[j]}
        if kinds == {"conference", "journal"}:
            found.append("conference vs journal")  # a conference paper and its journal extension
        elif kinds <= {"conference", "journal"} and not (f.pages[i][0] and f.pages[i][0] == f.pages[j][0]):
            found.append("venue")  # one abstract at two meetings, or a reprint in another journal
    return found


_PAGE = re.compile(r"^([a-z]{0,2})(\d+)$")


def _volumes_differ(f: Features, i: int, j: int) -> bool:
    """Different volume numbers, unless one is the other's supplement number filed as volume ('1' vs '58 Suppl 1')."""
    vi, vj = f.volume[i], f.volume[j]
    return _numbers_differ(vi, vj) and vi != f.supplement[j] and vj != f.supplement[i]


def _doi_typo(f: Features, i: int, j: int, t: float | None) -> bool:
    """Two DOIs on records that agree on everything else (title, year, venue, first page): one DOI is wrong."""
    return (
        t is not None
        and t >= 0.97
        and not f.title[i].generic
        and not _volumes_differ(f, i, j)
        and not _numbers_differ(f.issue[i], f.issue[j])
        and f.year[i] is not None
        and f.year[i] == f.year[j]
        and bool(f.pages[i][0])
        and f.pages[i][0] == f.pages[j][0]
        and f.same_venue(i, j)
    )


def _numbers_differ(a: str, b: str) -> bool:
    return bool(a) and bool(b) and a.isdigit() and b.isdigit() and a != b


def _issues_differ(a: str, b: str) -> bool:
    """Different small issue numbers (some exports put a record number of 4+ digits in the issue field)."""
    return _numbers_differ(a, b) and len(a) <= 2 and len(b) <= 2


def _page_range(pages: tuple[str, str]) -> tuple[str, int, int] | None:
    """(letter prefix, first, last) of a clean page range; None for article numbers or garbled pages."""
    first, last = _PAGE.match(pages[0]), _PAGE.match(pages[1] or pages[0])
    if not first or not last or first.group(1) != last.group(1):
        return None
    start, end = int(first.group(2)), int(last.group(2))
    return (first.group(1), start, end) if end >= start else None


def _pages_differ(
    a: tuple[str, str], b: tuple[str, str], range_a: tuple[str, int, int] | None, range_b: tuple[str, int, int] | None
) -> bool:
    """Two clean page ranges with the same prefix that do not overlap ('73-76' vs '80-84').

    Overlapping ranges are not a conflict: one database gives the first page, another the last,
    and typos are common ('2297-2108' vs '2097-2108')."""
    if range_a is None or range_b is None or range_a[0] != range_b[0]:
        return False
    if range_a[2] < range_b[1] or range_b[2] < range_a[1]:
        return not (a[1] and a[1] == b[1])
    return False


def _details(t: float | None, a: float | None, f: Features, i: int, j: int) -> str:
    parts = []
    if t is not None:
        parts.append(f"title={t:.2f}")
    if a is not None:
        parts.append(f"authors={a:.2f}")
    yi, yj = f.year[i], f.year[j]
    if yi and yj:
        parts.append("year=same" if yi == yj else f"year={yi}/{yj}")
    if f.doi[i] and f.doi[j]:
        parts.append("doi=same" if f.doi[i] == f.doi[j] else "doi=different")
    return " ".join(parts)


def _year_gap(f: Features, i: int, j: int) -> int | None:
    yi, yj = f.year[i], f.year[j]
    return abs(yi - yj) if yi and yj else None


def _support(f: Features, i: int, j: int) -> list[str]:
    """Bibliographic agreement beyond the title: venue, volume, first page, abstract."""
    found: list[str] = []
    if f.same_venue(i, j):
        found.append("venue")
    if f.volume[i] and f.volume[i] == f.volume[j]:
        found.append("volume")
    if f.pages[i][0] and f.pages[i][0] == f.pages[j][0]:
        found.append("pages")
    s = abstract_similarity(f.abstract[i], f.abstract[j])
    if s is not None and s >= 0.9:
        found.append("abstract")
    return found


def _with(details: str, extra: list[str]) -> str:
    return f"{details} {'+'.join(extra)}=same".strip() if extra else details


def _doubtful(t: float, a: float | None) -> bool:
    return t < 0.9 or (a is not None and a < 0.75)


def _strong_title(
    f: Features, i: int, j: int, t: float, a: float | None, first: bool, conflicts: list[str], details: str
) -> Verdict:
    support = _support(f, i, j)
    gap = _year_gap(f, i, j)
    if conflicts:
        return Verdict(MAYBE, t * 0.8, "similar title, but " + "/".join(conflicts) + " differ", details)
    authors_ok = a is not None and (
        (a >= 0.75 and first) or (a >= 0.85 and min(len(f.authors[i].surnames), len(f.authors[j].surnames)) >= 3)
    )
    # A year apart: online-first vs print, or a meeting abstract vs the later article; only the same
    # volume, pages or abstract tell the first from the second. Proceedings are often indexed under
    # the year after the meeting: for two conference records the venue is enough.
    both_conference = f.kind[i] == f.kind[j] == "conference"
    if authors_ok and f.preprint[i] != f.preprint[j]:
        # A preprint and its published version: other year, venue and DOI are expected.
        return Verdict(
            MATCH, 0.5 + t * 0.25 + (a or 0.0) * 0.25, "title (preprint and published version)", _with(details, support)
        )
    if authors_ok and (gap in (0, None) or set(support) - {"venue"} or (both_conference and support)):
        return Verdict(MATCH, 0.5 + t * 0.25 + (a or 0.0) * 0.25, "title", _with(details, support))
    if a is None and gap in (0, None) and (support or t >= 0.99):
        return Verdict(MATCH, 0.5 + t * 0.25, "title", _with(details, support))
    if a is not None and not authors_ok and "pages" in support and len(support) >= 2 and gap == 0:
        return Verdict(MATCH, 0.5 + t * 0.2, "title+bibliographic", _with(details, support))
    return Verdict(MAYBE, t * 0.8, "similar title, too little other evidence", _with(details, support), _doubtful(t, a))


def _fair_title(
    f: Features, i: int, j: int, t: float, a: float | None, first: bool, conflicts: list[str], details: str
) -> Verdict:
    support = _support(f, i, j)
    gap = _year_gap(f, i, j)
    # A reworded title needs more than the same journal volume: the same pages or abstract.
    if (
        not conflicts
        and a is not None
        and a >= 0.8
        and first
        and gap in (0, None)
        and set(support) - {"venue", "volume"}
    ):
        return Verdict(MATCH, 0.4 + t * 0.3 + a * 0.2, "title", _with(details, support))
    verdict = _bibliographic(f, i, j, a, first, conflicts, details)
    if verdict.level == MATCH:
        return verdict
    if t >= 0.88 and (a is None or a >= 0.5):
        return Verdict(
            MAYBE, t * 0.7, "similar title, too little other evidence", _with(details, support), _doubtful(t, a)
        )
    return Verdict(CONFLICT if conflicts else NO, t * 0.5, "different", details)


def _bibliographic(
    f: Features, i: int, j: int, a: float | None, first: bool, conflicts: list[str], details: str
) -> Verdict:
    """Same first author, year, venue, volume and first page: the same article whatever its title says."""
    if conflicts or a is None or not first or a < 0.8:
        return Verdict(NO, 0.0, "different", details)
    if _year_gap(f, i, j) != 0:
        return Verdict(NO, 0.0, "different", details)
    support = _support(f, i, j)
    if not {"venue", "volume", "pages"} <= set(support):
        return Verdict(NO, 0.0, "different", details)
    # Abstracts in a supplement share a page: a single page is not an address unless the titles agree.
    t = title_similarity(f.title[i], f.title[j])
    ranged = f.pages[i][1] != f.pages[i][0] or f.pages[j][1] != f.pages[j][0]
    if t is not None and t < (0.5 if ranged else 0.7):
        return Verdict(NO, 0.0, "different", details)
    return Verdict(MATCH, 0.6 + 0.2 * a, "bibliographic", _with(details, support))


def _weak_title(
    f: Features, i: int, j: int, t: float | None, a: float | None, first: bool, conflicts: list[str], details: str
) -> Verdict:
    """A generic or missing title: only the abstract or the bibliographic data can tell."""
    s = abstract_similarity(f.abstract[i], f.abstract[j])
    if s is not None and s >= 0.97 and not conflicts and (a is None or a >= 0.5):
        return Verdict(MATCH, 0.5 + 0.4 * s, "abstract", f"{details} abstract={s:.2f}".strip())
    verdict = _bibliographic(f, i, j, a, first, conflicts, details)
    if verdict.level == MATCH and (t is None or t >= 0.9):
        return verdict
    if conflicts:
        return Verdict(CONFLICT, 0.0, "different", details)
    if t is not None and t >= 0.93:
        return Verdict(MAYBE, 0.3, "generic title, too little other evidence", details)
    return Verdict(NO, 0.0, "different", details)
