"""Pairwise evidence: normalised features per record, and a verdict per pair of records.

A verdict is one of four levels:
  MATCH     the same work (the rule and its scores say why);
  MAYBE     similar, but the evidence is not enough, or it conflicts: shown to a reviewer, never merged;
  NO        no sign that the records are the same work;
  CONFLICT  positive evidence that they are different works (a notice and its paper, different DOIs, years, pages).
"""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz import fuzz, process

from pipeline.dedupe import normalise as nz
from pipeline.dedupe.features import Features

MATCH, MAYBE, NO, CONFLICT = 2, 1, 0, -1
LEVEL_NAMES = {MATCH: "match", MAYBE: "maybe", NO: "no", CONFLICT: "conflict"}


@dataclass(frozen=True, slots=True)
class Verdict:
    level: int
    score: float  # 0..1, higher is more alike; orders merges
    # 'doi', 'title', 'bibliographic', 'abstract', 'companion', 'conference_version', 'retitled', 'republished',
    # 'reviewer', or why not
    rule: str
    detail: str  # 'title=0.97 authors=0.91 year=same'
    # A MAYBE that only lacks evidence (a missing page, a typo too many) does not keep a record out of a
    # group whose other members it matches; a MAYBE with evidence against identity (doubt) does.
    doubt: bool = True

    @property
    def reason(self) -> str:
        return f"{self.rule}: {self.detail}" if self.detail else self.rule


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
        if (a.tail and a.tail == y) or (b.tail and b.tail == x):
            score = max(score, 0.95)  # a section label before the title dropped by one database
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
        if t < 0.75 or _online_first(f, i, j) is None:
            return _NOTHING  # most candidate pairs end here, cheaply
    a, first = author_similarity(f.authors[i], f.authors[j])
    if same_doi:
        return _same_doi(t, a, f, i, j)
    conflicts = _conflicts(f, i, j, t)
    details = _details(t, a, f, i, j)
    if generic or t is None:
        return _weak_title(f, i, j, t, a, first, conflicts, details)
    if t >= 0.97 or (t >= 0.93 and _support(f, i, j)):
        verdict = _strong_title(f, i, j, t, a, first, conflicts, details)
    elif t >= 0.80:
        verdict = _fair_title(f, i, j, t, a, first, conflicts, details)
    else:
        verdict = _bibliographic(f, i, j, a, first, conflicts, details)
        if verdict.level != MATCH:
            verdict = Verdict(CONFLICT if conflicts else NO, t * 0.5, "different", details)
    if verdict.level != MATCH and not ti.notice:
        if t >= 0.93:
            other = _conference_version(f, i, j, t, a, first, conflicts, details) or _republished(
                f, i, j, t, a, first, conflicts, details
            )
        else:
            other = _retitled(f, i, j, t, a, first, conflicts, details)
        # A 'maybe' that only lacks evidence keeps that status (see Verdict.doubt).
        if other is not None and (other.level == MATCH or verdict.level < MAYBE or verdict.doubt):
            return other
    return verdict


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


def _online_first(f: Features, i: int, j: int) -> int | None:
    """The record of the pair that has neither volume nor pages (an online-first record) when the other has
    both; None otherwise."""
    bare_i = not f.volume[i] and not f.pages[i][0]
    bare_j = not f.volume[j] and not f.pages[j][0]
    if bare_i == bare_j:
        return None
    other = j if bare_i else i
    return (i if bare_i else j) if f.volume[other] and f.pages[other][0] else None


def _retitled(
    f: Features, i: int, j: int, t: float, a: float | None, first: bool, conflicts: list[str], details: str
) -> Verdict | None:
    """A title the journal changed between the online-first record and the printed issue
    ('Complement Blockade in Severe Shiga-Toxin-Associated HUS' -> 'Eculizumab in Severe ...').

    The reworded title must keep most of its words, the author lists agree name by name (at least four
    names: a long list in one order is a fingerprint of one paper), in the same journal within a year,
    and nothing conflicts.
    """
    if conflicts or t < 0.75 or f.title[i].generic or f.title[j].generic:
        return None
    if a is None or a < 0.9 or not first or min(len(f.authors[i].surnames), len(f.authors[j].surnames)) < 4:
        return None
    gap = _year_gap(f, i, j)
    if gap is None or gap > 1 or not f.same_venue(i, j) or _online_first(f, i, j) is None:
        return None
    words = fuzz.token_set_ratio(f.title[i].core, f.title[j].core) / 100.0
    if words < 0.85:
        return None
    return Verdict(MATCH, 0.4 + 0.2 * t + 0.2 * a, "retitled", f"{details} words={words:.2f} venue=same online-first")


_REPUBLISHED_TOLERATES = frozenset({"doi", "pages", "volume", "issue"})
_REPUBLISHED_ABSTRACT = 500  # folded characters: a long abstract repeated word for word is the same text


def _republished(
    f: Features, i: int, j: int, t: float, a: float | None, first: bool, conflicts: list[str], details: str
) -> Verdict | None:
    """One text printed twice by one journal (a reprint, or an issue reprinted after a production error):
    the same title, authors and long abstract word for word, in the same journal within a year, whatever the
    two DOIs, volumes and pages say.

    The same abstract in two journals is not enough: the labelled sets keep one abstract presented at two
    meetings apart.
    """
    if t < 0.97 or set(conflicts) - _REPUBLISHED_TOLERATES or f.title[i].generic or f.title[j].generic:
        return None
    if a is None or a < 0.9 or not first or not f.same_venue(i, j):
        return None
    gap = _year_gap(f, i, j)
    if gap is None or gap > 1:
        return None
    x, y = f.abstract[i][0], f.abstract[j][0]
    if min(len(x), len(y)) < _REPUBLISHED_ABSTRACT or abstract_similarity(f.abstract[i], f.abstract[j]) != 1.0:
        return None
    return Verdict(MATCH, 0.5 + 0.2 * t + 0.2 * a, "republished", f"{details} abstract=1.00 venue=same")


# What a meeting abstract and the article of its study may disagree on.
_CONFERENCE_TOLERATES = frozenset({"doi", "pages", "volume", "issue", "venue", "conference vs journal"})


def _conference_version(
    f: Features, i: int, j: int, t: float, a: float | None, first: bool, conflicts: list[str], details: str
) -> Verdict | None:
    """A meeting abstract and the journal article of the same study, or two abstracts of it: one work (issue 3).

    Pages, volume and DOI are expected to differ. The title must match strongly, the first author and most
    authors agree (an abstract often lists fewer), and one record must be recognisably a meeting abstract
    (`_abstract_cue`). Merged: an abstract printed by the journal of the article in the same year, and one
    abstract printed by two meetings' journals in one year. An abstract and an article in another journal or
    year are only a 'maybe' for the reviewer: the labelled benchmarks keep them apart. A full proceedings paper
    and its journal extension stay two works.
    """
    if set(conflicts) - _CONFERENCE_TOLERATES - {"year"} or f.title[i].generic or f.title[j].generic:
        return None
    if a is None or not first or a < 0.75 or f.preprint[i] or f.preprint[j]:
        return None
    if min(len(f.title[i].core.split()), len(f.title[j].core.split())) < 4:
        return None
    gap = _year_gap(f, i, j)
    if gap is None or gap > 2:
        return None
    if gap == 0:
        cue = _abstract_cue(f, i, j) if f.same_venue(i, j) else _two_meetings(f, i, j, t, a)
        if cue:
            score = 0.45 + 0.25 * t + 0.2 * a
            return Verdict(MATCH, score, "conference_version", f"{details} {cue}".strip())
    roles = {_role(f, i), _role(f, j)}
    if "abstract" in roles and "paper" not in roles:
        why = "years differ" if gap else "journals differ" if not f.same_venue(i, j) else "abstract after the article"
        cues = "; ".join(f.meeting[k] for k in (i, j) if f.meeting[k])
        rule = f"possible conference_version (not merged: {why})"
        return Verdict(MAYBE, 0.7 * t, rule, f"{details} abstract: {cues}")
    return None


def _two_meetings(f: Features, i: int, j: int, t: float, a: float) -> str:
    """One abstract (the same title and the same authors) printed by two meetings' journals in one year."""
    if f.meeting[i] and f.meeting[j] and t >= 0.97 and a >= 0.9:
        return f"one abstract at two meetings ({f.meeting[i]}; {f.meeting[j]})"
    return ""


def _role(f: Features, k: int) -> str:
    if f.meeting[k]:
        return "abstract"
    return "paper" if f.kind[k] == "conference" else "article"


def _abstract_cue(f: Features, i: int, j: int) -> str:
    """How two records of one journal and year are a meeting abstract and its article (or two abstracts
    of one study), '' if nothing says so."""
    roles = (_role(f, i), _role(f, j))
    if "paper" in roles:
        return ""
    if roles == ("abstract", "abstract"):
        return f"venue=same two meeting abstracts ({f.meeting[i]}; {f.meeting[j]})"
    if roles == ("article", "article"):
        return _positional_cue(f, i, j)
    abstract, article = (i, j) if roles[0] == "abstract" else (j, i)
    # An abstract in a later volume than the article was printed after it: not merged (a 'maybe').
    va, vb = f.volume[abstract], f.volume[article]
    if _volumes_differ(f, i, j) and va.isdigit() and vb.isdigit() and int(va) > int(vb):
        return ""
    return f"venue=same meeting abstract ({f.meeting[abstract]}) vs article"


def _positional_cue(f: Features, i: int, j: int) -> str:
    """Two records of one journal volume told apart as abstract and article by their pages only.

    A one-page record printed BEFORE the article in the same volume is its meeting abstract (many journals
    print their society's abstracts in a regular issue); a one-page record printed after it is more likely
    an erratum without a marker, and is not merged. Two one-page records with the same title on adjacent
    pages are two abstracts of one study printed together.
    """
    if _volumes_differ(f, i, j):
        return ""
    single_i, single_j = _single_page(f, i), _single_page(f, j)
    if single_i is not None and single_j is not None:
        adjacent = abs(single_i - single_j) == 1
        return "venue=same two meeting abstracts (one page each, adjacent pages)" if adjacent else ""
    if (single_i is None) == (single_j is None) or not (f.volume[i] and f.volume[j]):
        return ""
    page, article = (single_i, j) if single_i is not None else (single_j, i)
    span = f.page_range[article]
    if span is None or span[2] == span[1] or page is None or page >= span[1]:
        return ""
    return "venue=same meeting abstract (one page, printed before the article in its volume) vs article"


def _single_page(f: Features, k: int) -> int | None:
    """The page of a one-page record ('1875' or '1875-1875'), None otherwise."""
    span = f.page_range[k]
    return span[1] if span is not None and span[1] == span[2] and not span[0] else None


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
