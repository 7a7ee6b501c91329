"""Field normalisation for duplicate detection: DOI, title, authors, journal, pages, year, abstract.

Every function takes the raw value as the readers give it (a string, possibly empty or NaN) and
returns a comparable form. None of them raises on odd input: an unusable value becomes empty.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

# --- generic text -------------------------------------------------------------------------

_INLINE_TAG = re.compile(r"</?(?:sup|sub|i|b|em|strong|span|inf|scp|u)\b[^>]{0,100}>", re.I)
_TAG = re.compile(r"<[^>]{1,200}>")
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_SPACES = re.compile(r"\s+")
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
# Greek letters are spelt out by some databases and kept as symbols by others.
_GREEK = str.maketrans(
    {
        "α": " alpha ",
        "β": " beta ",
        "γ": " gamma ",
        "δ": " delta ",
        "ε": " epsilon ",
        "κ": " kappa ",
        "λ": " lambda ",
        "μ": " mu ",
        "ω": " omega ",
        "τ": " tau ",
        "θ": " theta ",
        "σ": " sigma ",
    }
)


def text(value: Any) -> str:
    """A cell as a stripped string: NaN, None and pandas NA become ''."""
    if value is None:
        return ""
    if isinstance(value, str):
        result = value.strip()
    elif isinstance(value, float) and value != value:
        return ""
    elif type(value).__name__ in {"NAType", "NaTType"}:
        return ""
    else:
        result = str(value).strip()
    return "" if result.lower() in _MISSING else result


_MISSING = frozenset({"nan", "na", "none", "null", "<na>"})


def fold(value: str) -> str:
    """Lower-case, accents removed, Greek letters spelt out, punctuation turned into single spaces.

    Non-Latin scripts keep their letters (Cyrillic, CJK): only combining marks are dropped.
    """
    if not value:
        return ""
    if "&" in value or "<" in value:
        value = _TAG.sub(" ", _INLINE_TAG.sub("", html.unescape(value)))  # 'Ca<sup>2+</sup>' -> 'Ca2+'
    value = value.casefold().translate(_GREEK)
    if not value.isascii():
        value = _COMBINING.sub("", unicodedata.normalize("NFKD", value))
    value = value.replace("&", " and ")
    return " ".join(_NON_WORD.sub(" ", value).split())


# --- DOI ----------------------------------------------------------------------------------

_DOI_PREFIX = re.compile(
    r"^(?:https?://)?(?:dx\.)?(?:www\.)?doi\.org/|^doi\s*[:=]?\s*|^https?://[^ ]*?/doi/(?:abs/|full/|pdf/)?", re.I
)
_DOI_CORE = re.compile(r"10\.\d{3,9}/\S+")
# Preprint servers: a preprint and its published version are the same work with two DOIs.
_PREPRINT_DOI = re.compile(
    r"^10\.(?:48550/arxiv|2139/ssrn|1101/|31219/osf|31234/osf|31235/osf|35542/osf|20944/preprints|21203/rs|"
    r"36227/techrxiv|26434/chemrxiv|22541/au|31124/advance|1590/scielopreprints)"
)


def normalise_doi(value: Any) -> str:
    """'https://doi.org/10.1000/ABC.' -> '10.1000/abc'; the first DOI when several are given; '' if none."""
    raw = text(value)
    if not raw:
        return ""
    from urllib.parse import unquote

    raw = unquote(raw).strip()
    raw = _DOI_PREFIX.sub("", raw)
    match = _DOI_CORE.search(raw)
    if not match:
        return ""
    doi = match.group(0).lower()
    return doi.rstrip(".,;:)]}>'\"").removesuffix("/")


def is_preprint_doi(doi: str) -> bool:
    return bool(doi) and bool(_PREPRINT_DOI.match(doi))


# --- titles -------------------------------------------------------------------------------

# A bracketed tag at the end (or start) of a title: '[Chinese]', '[Article in German]', '[Review]', '[1]'.
_BRACKET_TAG = re.compile(r"\s*\[[A-Za-z0-9 ,;.'-]{1,60}\]\s*\.?\s*$")
_LEADING_TAG = re.compile(r"^\s*\[[A-Za-z ,;.'-]{2,40}\]\s*")
_TRAILING_NOTE = re.compile(
    r"\s*\((?:retracted article|abstracts?|review|editorial|letter|multiple letters|in press|author'?s transl)"
    r"[^)]*\)\s*\.?\s*$",
    re.I,
)
# Notes a database appends about OTHER items: '[Erratum appears in J Pediatr. 2003 Jun...]', '[Comment in: ...]'.
_ABOUT_OTHERS = re.compile(
    r"\s*\.?\s*\[(?:erratum|comment|retraction|retracted|corrected|republished|update|summary for patients|"
    r"expression of concern|reprint|see comment|published erratum|correction)\b.*$",
    re.I | re.S,
)
# Tails that make a title a notice: WoS '(vol 142, pg 310, 2003)', Embase '(N Engl J Med (2009) 360 (542-544))'.
_CORRECTION_TAILS = (
    re.compile(r"\s*\(vol\.?\s*\d+[^)]*?\bpg\.?\s*\w+[^)]*\)?\s*\.?$", re.I),
    re.compile(r"\s*\((?:the )?[A-Z][^()]{2,120}\(\s*(?:19|20)\d\d\s*\)\s*[\w\s.]*(?:\([^()]*\)?)?\)?\s*\.?$"),
)
_NOTICE_TAIL = re.compile(
    r"[\"\u201d']?\s*[:.\-\u2013\u2014]\s*(?:a\s+)?(correction|corrigendum|erratum|retraction|retracted)\b(?:\s+(?:to|of|for|on)\b.*)?\s*\.?$",
    re.I,
)
_REPLY_TAIL = re.compile(
    r"(?:\s+[-\u2013\u2014]\s*|\s*[:.(\[]\s*)(?:authors?'?s?'?\s+)?(?:reply|response)(?:\s+to\b[^)\]]*)?[)\]]?\s*\.?$"
    r"|\s+authors?'?s?'?\s+(?:reply|response)\s*\.?$",
    re.I,
)
# A parenthesis or bracket cut off by a database's length limit.
_UNCLOSED = re.compile(r"\s*[(\[][^)\]]*$")

# Notices about another work: never the same work as the paper they are about.
_NOTICE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "retraction",
        re.compile(
            r"^(?:notice of )?(?:retraction|retracted|withdrawn|withdrawal)\b"
            r"|^expression of concern\b|^statement of retraction\b"
        ),
    ),
    (
        "correction",
        re.compile(
            r"^(?:correction|corrigendum|corrigenda|erratum|errata|addendum|correcting)\b"
            r"|^author correction\b|^publisher'?s? (?:correction|note|erratum)\b"
        ),
    ),
    (
        "companion",
        re.compile(
            r"^(?:context and implications document|supplementary (?:material|information|data)"
            r"|supporting information)\b"
        ),
    ),
    (
        "comment",
        re.compile(
            r"^(?:comments? on|commentary on|comment|re)\b\s*[:\-]|^comments? on\b|^commentary on\b|^a comment on\b"
        ),
    ),
    ("reply", re.compile(r"^(?:reply|response|author'?s? reply|authors'? reply|in reply|in response)\b")),
)

# Titles that name a kind of item rather than a work: equal titles say nothing about identity.
_GENERIC_TITLES = frozenset(
    {
        "editorial",
        "guest editorial",
        "introduction",
        "preface",
        "foreword",
        "book review",
        "book reviews",
        "review",
        "letter",
        "letters",
        "letter to the editor",
        "letters to the editor",
        "reply",
        "response",
        "author reply",
        "authors reply",
        "in reply",
        "correspondence",
        "commentary",
        "comment",
        "comments",
        "news",
        "correction",
        "corrections",
        "erratum",
        "errata",
        "corrigendum",
        "retraction",
        "abstract",
        "abstracts",
        "conference abstracts",
        "meeting abstracts",
        "poster abstracts",
        "announcement",
        "announcements",
        "obituary",
        "index",
        "author index",
        "subject index",
        "contents",
        "table of contents",
        "in this issue",
        "editors note",
        "editor s note",
        "from the editor",
        "acknowledgements",
        "acknowledgments",
        "reviewers",
        "thank you to our reviewers",
        "highlights",
        "overview",
        "summary",
        "conclusion",
        "conclusions",
        "discussion",
        "untitled",
        "no title",
        "notice",
        "case report",
        "proceedings",
        "program",
        "programme",
        "calendar",
        "books received",
        "new books",
        "miscellaneous",
        "letter from the editor",
        "introduction to the special issue",
        "editorial introduction",
        "special issue",
        "abstracts of papers",
        "oral presentations",
        "poster presentations",
        "posters",
        "poster session",
        "session",
        "plenary session",
        "workshop",
        "keynote",
        "invited talk",
        "panel",
        "preface to the special issue",
        "front matter",
        "back matter",
        "masthead",
        "cover",
        "about the authors",
        "contributors",
        "notes on contributors",
        "editor s comments",
        "editors comments",
        "editorial notes",
        "editor s notes",
        "editors notes",
        "editor s comment",
        "editorial comments",
        "editorial comment",
        "from the editors",
        "from the editor in chief",
        "editor s introduction",
        "editors introduction",
        "message from the editor",
        "issues and opinions",
        "research commentary",
        "erratum to",
        "letter to editor",
    }
)


@dataclass(frozen=True, slots=True)
class TitleKey:
    """The comparable forms of one title."""

    norm: str  # folded, tags and notice prefixes kept
    core: str  # folded, without a notice prefix ('correction to x' -> 'x')
    main: str  # core up to the first subtitle separator (':' ' - ' '?' '.'), when that leaves >= 3 words
    notice: str  # '', 'correction', 'retraction', 'comment', 'reply', 'companion'
    generic: bool
    tail: str = ""  # core after a short leading label ('How I did it ... X', 'Case report: X' -> 'x'), else ''

    def __reduce__(self) -> tuple[type[TitleKey], tuple[str, str, str, str, bool, str]]:
        # Pickled by value: a saved dedupe index holds one per title, and dataclass unpickling is ~50x slower.
        return TitleKey, (self.norm, self.core, self.main, self.notice, self.generic, self.tail)


def _strip_tags(title: str) -> str:
    stripped = title.strip().rstrip(".").strip()
    previous = None
    while previous != stripped:
        previous = stripped
        stripped = _BRACKET_TAG.sub("", stripped).rstrip(". ") or previous
        stripped = _TRAILING_NOTE.sub("", stripped) or stripped
    if not (stripped.startswith("[") and stripped.endswith("]")):
        stripped = _LEADING_TAG.sub("", stripped) or stripped
    stripped = stripped.strip().rstrip(".").strip()
    # A whole title in brackets is MEDLINE's mark of a translated title: keep its content.
    if stripped.startswith("[") and stripped.endswith("]") and stripped.count("[") == 1:
        stripped = stripped[1:-1].strip().rstrip(".")
    return stripped


def _notice_tail(title: str) -> tuple[str, str]:
    """(title without a notice tail, notice kind or '')."""
    match = _NOTICE_TAIL.search(title)
    if match and match.start() >= 10:
        kind = "retraction" if match.group(1).lower().startswith("retract") else "correction"
        return title[: match.start()].strip(" \"'\u201c\u201d"), kind
    for pattern in _CORRECTION_TAILS:
        cut = pattern.sub("", title)
        if cut != title and len(cut) >= 10:
            return cut, "correction"
    cut = _REPLY_TAIL.sub("", title)
    if cut != title and len(cut) >= 10:
        return cut, "reply"
    return title, ""


def _clean_title(raw: str) -> tuple[str, str]:
    """(title without notes, tags and cut-off tails, notice kind found in its tail)."""
    title = _ABOUT_OTHERS.sub("", raw).strip()
    title, notice = _notice_tail(title)
    cut = _UNCLOSED.sub("", title)
    if cut != title and len(cut) >= 20:
        title = cut
    return _strip_tags(title), notice


_NOTICE_PREFIX = re.compile(
    r"^(?:notice of |statement of |author |publisher'?s? )?"
    r"(?:retraction|retracted|withdrawn|withdrawal|expression of concern|correction|corrigendum|corrigenda|erratum|"
    r"errata|addendum|comments?|commentary|reply|response|in reply|in response|context and implications document|"
    r"supplementary material|re)\b"
    r"(?:\s+(?:to|on|for|of|regarding|about|concerning))?(?:\s+(?:the|article|paper))*\s*[:\-\"']*\s*",
)
_SUBTITLE = re.compile(r"\s*(?::|\s-{1,2}\s|\s–\s|\s—\s|\?|\.\s)\s*")


def clear_record_caches() -> None:
    """Drop the memo tables of the per-record normalisers once the features are built: they keep every raw title,
    author list and venue they saw as a key, with its key object (a million records: ~0.5 GB), and nothing reads
    them afterwards."""
    for cached in (title_key, author_key, venue_key):
        cached.cache_clear()


@lru_cache(maxsize=200_000)
def title_key(raw: str) -> TitleKey:
    stripped, notice = _clean_title(raw)
    norm = fold(stripped)
    lowered = stripped.casefold().lstrip("\"'[( ")
    for kind, pattern in _NOTICE_PATTERNS:
        if notice:
            break
        if pattern.search(lowered):
            notice = kind
            break
    core = norm
    if notice:
        core = fold(_NOTICE_PREFIX.sub("", lowered, count=1)) or norm
    main = core
    tail = ""
    parts = _SUBTITLE.split(stripped, maxsplit=1)
    if len(parts) == 2:
        head = fold(_NOTICE_PREFIX.sub("", parts[0].casefold(), count=1)) if notice else fold(parts[0])
        if len(head.split()) >= 3:
            main = head
        rest = fold(parts[1])
        # A section label or column name one database puts before the title and another leaves out.
        if 1 <= len(head.split()) <= _LABEL_WORDS and len(rest) >= 25:
            tail = rest
    generic = _is_generic(core, notice)
    return TitleKey(norm=norm, core=core, main=main, notice=notice, generic=generic, tail=tail)


_LABEL_WORDS = 4


def _is_generic(core: str, notice: str) -> bool:
    if not core:
        return True
    if core in _GENERIC_TITLES:
        return True
    words = core.split()
    # One short word ('Diabetes', 'Obesity') names a topic, not a work; CJK titles have no spaces.
    return len(words) == 1 and len(core) < 20 and core.isascii()


def normalise_title(value: Any) -> str:
    """Folded title without translation tags, HTML or punctuation ('' if none)."""
    raw = text(value)
    return title_key(raw).norm if raw else ""


# --- authors ------------------------------------------------------------------------------

_ET_AL = re.compile(r"\bet\.?\s*al\.?|\band others\b|\bet al\b", re.I)
# ASySD-style concatenation: 'Adeli K.Lewis G. F.' (a full stop directly followed by a capital).
_GLUED = re.compile(r"(?<=[A-Z]\.)(?=[A-Z][a-z\u00C0-\u024F])")
_INITIALS_TOKEN = re.compile(r"^(?:[A-Z]\.?-?){1,3}$|^(?:[A-Z]\.)+[A-Z]?$")
_PARTICLES = frozenset(
    {
        "van",
        "von",
        "der",
        "den",
        "de",
        "del",
        "della",
        "di",
        "da",
        "du",
        "le",
        "la",
        "dos",
        "das",
        "ter",
        "ten",
        "van't",
        "bin",
        "al",
        "el",
    }
)


@dataclass(frozen=True, slots=True)
class AuthorKey:
    surnames: tuple[str, ...]  # folded, letters only
    initials: tuple[str, ...]  # first initial of the given names ('' if unknown)
    truncated: bool  # 'et al.' seen
    words: tuple[frozenset[str], ...]  # every name word of 3+ letters: 'Le, Quintrec M.' ~ 'Le Quintrec, M.'

    def __reduce__(self) -> tuple[type[AuthorKey], tuple[object, ...]]:
        return AuthorKey, (self.surnames, self.initials, self.truncated, self.words)  # see TitleKey.__reduce__


_SURNAME_INITIALS = re.compile(r"^[^\W\d_][^,]*\s(?:[A-Z]\.?-?){1,3}$")  # 'Smith J', 'van der Berg JA'


def split_authors(value: Any) -> list[str]:
    """One name per element from '; '-joined, BibTeX ' and '-joined, comma-joined or ASySD glued author strings."""
    raw = text(value)
    if not raw:
        return []
    raw = _ET_AL.sub(" ", raw).strip(" ,;")
    parts: list[str]
    if ";" in raw:
        parts = raw.split(";")
    elif " and " in raw:
        parts = raw.split(" and ")
    elif _GLUED.search(raw):
        parts = _GLUED.split(raw)
    elif "," in raw and all(_SURNAME_INITIALS.match(p.strip()) for p in raw.split(",") if p.strip()):
        parts = raw.split(",")  # 'Smith J, Jones K'
    elif re.search(r"^[^,]+,\s*(?:[A-Z]\.?\s*-?){1,3},", raw):
        parts = _rejoin_surname_initials(re.split(r"(?<=[A-Z.]),\s*", raw))  # 'Smith, J., Jones, K.'
    elif raw.count(",") >= 2:
        parts = raw.split(",")  # 'A Smith, B Jones, C Lee'
    else:
        parts = [raw]
    return [p.strip(" .,") for p in parts if p.strip(" .,")]


def _rejoin_surname_initials(parts: list[str]) -> list[str]:
    names: list[str] = []
    for part in parts:
        part = part.strip()
        if names and _INITIALS_TOKEN.match(part.replace(" ", "")) and "," not in names[-1]:
            names[-1] = f"{names[-1]}, {part}"
        else:
            names.append(part)
    return names


def _parse_name(name: str) -> tuple[str, str]:
    """(surname, first initial) of one name in any usual order."""
    name = name.strip()
    if "," in name:
        surname, _, given = name.partition(",")
        return surname, given.strip()[:1]
    tokens = name.replace(".", ". ").split()
    if not tokens:
        return "", ""
    if len(tokens) == 1:
        return tokens[0], ""
    trailing = 0
    while trailing < len(tokens) - 1 and _INITIALS_TOKEN.match(tokens[-1 - trailing]):
        trailing += 1
    if trailing:  # 'Zhai Q. J.' / 'Le Quintrec M'
        return " ".join(tokens[: len(tokens) - trailing]), tokens[len(tokens) - trailing][:1]
    leading = 0
    while leading < len(tokens) - 1 and _INITIALS_TOKEN.match(tokens[leading]):
        leading += 1
    if leading:  # 'R. E. Zuna'
        return " ".join(tokens[leading:]), tokens[0][:1]
    # 'Chaoqun Deng', 'Ludwig van Beethoven': the surname starts at the first particle or is the last word.
    for index in range(1, len(tokens)):
        if tokens[index].lower() in _PARTICLES:
            return " ".join(tokens[index:]), tokens[0][:1]
    return tokens[-1], tokens[0][:1]


def _fold_surname(surname: str) -> str:
    return fold(surname).replace(" ", "")


@lru_cache(maxsize=200_000)
def author_key(raw: str) -> AuthorKey:
    truncated = bool(_ET_AL.search(raw))
    surnames: list[str] = []
    initials: list[str] = []
    words: list[frozenset[str]] = []
    for name in split_authors(raw):
        surname, initial = _parse_name(name)
        folded = _fold_surname(surname)
        if folded:
            surnames.append(folded)
            initials.append(fold(initial)[:1])
            words.append(frozenset(w for w in fold(name).split() if len(w) >= 3 and w not in _PARTICLES))
    return AuthorKey(tuple(surnames), tuple(initials), truncated, tuple(words))


def normalise_authors(value: Any) -> list[str]:
    """Folded surnames in the given order: 'Zuna, R E and Wang, S S' -> ['zuna', 'wang']."""
    raw = text(value)
    return list(author_key(raw).surnames) if raw else []


# --- journals -----------------------------------------------------------------------------

_VENUE_STOPWORDS = frozenset(
    {
        "the",
        "of",
        "and",
        "in",
        "for",
        "on",
        "de",
        "la",
        "le",
        "du",
        "des",
        "et",
        "und",
        "der",
        "die",
        "fur",
        "a",
        "an",
        "official",
        "publication",
        "annual",
        "proceedings",
        "proc",
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
        "seventh",
        "eighth",
        "ninth",
        "tenth",
    }
)
# Embase: 'Pediatric Nephrology.Conference: 44th Annual Meeting...' is the journal that printed the abstracts.
_CONFERENCE_SUFFIX = re.compile(r"\.\s*Conference\b", re.I)
# Where a venue's own name ends: 'Stroke; a journal of...', 'Brain: A Journal of Neurology',
# 'International journal of cancer.Journal international du cancer', 'X = Chinese journal of Y', 'X / from the Y'.
_VENUE_SUBTITLE = re.compile(r"\s*[:;=]\s*|\s+[/\-\u2013\u2014]\s+|(?<=[a-z]{3})\.(?=[A-Z])|-(?=The\b)")
_VENUE_ASIDE = re.compile(r"\s*[(\[][^)\]]*[)\]]")
_ORDINAL = re.compile(r"^\d+(?:st|nd|rd|th)?$")


@dataclass(frozen=True, slots=True)
class VenueKey:
    full: tuple[str, ...]  # every word of the venue name (asides in brackets dropped)
    head: tuple[str, ...]  # the words before a subtitle ('stroke' of 'Stroke; a journal of cerebral circulation')
    supplement: bool  # an Embase conference supplement ('Journal.Conference: ...')
    meeting: tuple[str, ...] = ()  # the meeting named after 'Conference:' in such a supplement

    def __reduce__(self) -> tuple[type[VenueKey], tuple[object, ...]]:
        return VenueKey, (self.full, self.head, self.supplement, self.meeting)  # see TitleKey.__reduce__

    def __bool__(self) -> bool:
        return bool(self.full)

    def words(self) -> str:
        return " ".join(self.full)


@lru_cache(maxsize=1)
def _abbreviations() -> dict[str, str]:
    import yaml

    data = resources.files("pipeline.dedupe").joinpath("journal_abbreviations.yaml").read_text(encoding="utf-8")
    loaded = yaml.safe_load(data) or {}
    return {fold(str(k)): fold(str(v)) for k, v in (loaded.get("words") or {}).items()}


def _venue_words(raw: str) -> tuple[str, ...]:
    expansions = _abbreviations()
    words: list[str] = []
    for word in fold(raw).split():
        if word in _VENUE_STOPWORDS or _ORDINAL.match(word):
            continue
        words.extend(_american(part) for part in expansions.get(word, word).split())
    return tuple(words)


@lru_cache(maxsize=100_000)
def venue_key(raw: str) -> VenueKey:
    """Venue words (folded; no stop words, years or ordinals; non-prefix abbreviations expanded: ny -> new york)."""
    parts = _CONFERENCE_SUFFIX.split(raw, maxsplit=1)
    name = _VENUE_ASIDE.sub(" ", parts[0]).strip(" .\"'")
    full = _venue_words(name)
    head = _venue_words(_VENUE_SUBTITLE.split(name, maxsplit=1)[0])
    meeting = _venue_words(_VENUE_ASIDE.sub(" ", parts[1]).strip(" :.")) if len(parts) > 1 else ()
    return VenueKey(full=full, head=head or full, supplement=len(parts) > 1, meeting=meeting)


def venue_tokens(raw: str) -> tuple[str, ...]:
    return venue_key(raw).full


def venue_is_conference_supplement(raw: str) -> bool:
    return venue_key(raw).supplement


def _american(word: str) -> str:
    """One spelling for both sides: 'haematology' -> 'hematology', 'behaviour' -> 'behavior'."""
    word = word.replace("ae", "e").replace("oe", "e")
    if word.endswith("our"):
        word = word[:-3] + "or"
    elif word.endswith("tre"):
        word = word[:-3] + "ter"
    return word


def normalise_journal(value: Any) -> str:
    raw = text(value)
    return " ".join(venue_key(raw).full) if raw else ""


def venues_compatible(a: VenueKey | tuple[str, ...], b: VenueKey | tuple[str, ...]) -> bool:
    """True when one venue is the other or an abbreviation of it ('nat rev nephrol' ~ 'nature reviews nephrology'),
    comparing whole names and names without their subtitles."""
    if isinstance(a, tuple) or isinstance(b, tuple):
        return _words_compatible(
            tuple(a if isinstance(a, tuple) else a.full), tuple(b if isinstance(b, tuple) else b.full)
        )
    if not a.full or not b.full:
        return False
    if any(_words_compatible(x, y) for x in {a.full, a.head} for y in {b.full, b.head}):
        return True
    # 'J Thromb Haemost.Conference: 23rd Congress of the ISTH' ~ '23rd Congress of the ISTH'
    return (bool(a.meeting) and _words_compatible(a.meeting, b.full)) or (
        bool(b.meeting) and _words_compatible(b.meeting, a.full)
    )


def _abbreviates(x: str, y: str) -> bool:
    return x.startswith(y) or y.startswith(x)


@lru_cache(maxsize=200_000)
def _words_compatible(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    if not a or not b:
        return False
    if a == b or "".join(a) == "".join(b):  # 'jpen' vs 'j pen'
        return True
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    if len(long) - len(short) <= 2 and _aligned(short, long):
        return True
    if len(short) >= 3 and _aligned(short, long[: len(short)]):
        return True  # a longer name that starts with the shorter one: 'Journal of Reproductive Medicine for the ...'
    if len(short) == 1 and 3 <= len(short[0]) <= 8 and _acronym(short[0], long):
        return True  # 'ICIS' ~ 'International Conference on Information Systems', 'AMCIS' ~ 'Americas Conference ...'
    if len(long) > 2 and _acronym(long[-1], long[:-1]) and _words_compatible(short, long[:-1]):
        return True  # 'International Conference on Information Systems, ICIS'
    return sorted(short) == sorted(long)  # the same words in another order


def _acronym(letters: str, words: tuple[str, ...]) -> bool:
    """Is `letters` a leading piece of each word, in order ('amcis' = AMericas Conference Information Systems)?"""
    if not letters or not words:
        return not letters and not words
    return any(
        words[0].startswith(letters[:k]) and _acronym(letters[k:], words[1:])
        for k in range(1, min(len(letters), 3) + 1)
    )


# Words a database may add to or drop from a venue name without naming another venue.
_OPTIONAL_VENUE_WORDS = frozenset({"online", "series", "ser", "supplement", "supplements", "suppl", "supp"})


def _aligned(short: tuple[str, ...], long: tuple[str, ...]) -> bool:
    """Each word of `long` is abbreviated by (or abbreviates) the next word of `short`, or is optional."""
    index = 0
    for word in long:
        if index < len(short) and _abbreviates(short[index], word):
            index += 1
        elif word not in _OPTIONAL_VENUE_WORDS:
            return False
    return index == len(short)


# --- pages, volume, year ------------------------------------------------------------------

_PAGE_RANGE = re.compile(r"^\s*([A-Za-z]{0,3})(\d+)\s*(?:-{1,2}|–|—|to)\s*([A-Za-z]{0,3})(\d+)")
_PAGE_SINGLE = re.compile(r"^\s*([A-Za-z]{0,3})(\d+)")


def normalise_pages(value: Any) -> tuple[str, str]:
    """(first, last) page with the last page expanded: '73-6' -> ('73', '76'); ('', '') if unknown."""
    raw = text(value)
    if not raw:
        return "", ""
    match = _PAGE_RANGE.match(raw)
    if match:
        prefix, first, prefix_last, last = match.groups()
        first = first.lstrip("0") or "0"
        last = last.lstrip("0") or "0"
        if len(last) < len(first):
            last = first[: len(first) - len(last)] + last
        return (prefix.lower() + first, (prefix_last or prefix).lower() + last)
    match = _PAGE_SINGLE.match(raw)
    if match:
        first = match.group(1).lower() + (match.group(2).lstrip("0") or "0")
        return first, first
    return fold(raw)[:20], ""


_LEADING_NUMBER = re.compile(r"^\s*(?:v(?:ol(?:ume)?)?\.?\s*|no\.?\s*)?(\d+)(?![\d)\]])")


def normalise_volume(value: Any) -> str:
    """The leading number of a volume or issue ('12 Suppl 1' -> '12', 'Vol. 7' -> '7');
    '' for garbled values such as '1)' (left over from '64 (Suppl. 1)') or 'UNKNOWN'."""
    raw = text(value)
    if not raw:
        return ""
    match = _LEADING_NUMBER.match(raw)
    if match:
        return match.group(1).lstrip("0") or "0"
    folded = fold(raw)
    return "" if folded in {"unknown", "n a", "na"} or any(ch.isdigit() for ch in folded) else folded


_SUPPLEMENT = re.compile(r"\bsup(?:p|pl|plement)?\.?\s*(\d+)|^s(\d+)$", re.I)


def supplement_number(value: Any) -> str:
    """The supplement number in an issue field ('SUPPL. 1' -> '1', 'S2' -> '2'), else ''."""
    match = _SUPPLEMENT.search(text(value))
    return (match.group(1) or match.group(2)).lstrip("0") if match else ""


def normalise_year(value: Any) -> int | None:
    """A four-digit year between 1000 and 2999, or None."""
    raw = text(value)
    if not raw:
        return None
    match = re.search(r"(?<!\d)([12]\d{3})(?!\d)", raw)
    return int(match.group(1)) if match else None


# --- abstracts ----------------------------------------------------------------------------

_ABSTRACT_CHARS = 1200  # enough to tell abstracts apart and to see a truncated copy as a prefix
_ELLIPSIS = re.compile(r"(?:\.\.\.|…|\[\.\.\.\]|\(\.\.\.\)|\[truncated\])\s*$")
_COPYRIGHT = re.compile(r"(?:©|\(c\)|copyright)\s.*$", re.I)


def abstract_key(value: Any) -> tuple[str, bool]:
    """(folded abstract, truncated?): a trailing '...' marks a cut copy, whose text is a prefix of the full one."""
    raw = text(value)
    return _abstract_key(raw) if raw else ("", False)


@lru_cache(maxsize=100_000)
def _abstract_key(raw: str) -> tuple[str, bool]:
    truncated = bool(_ELLIPSIS.search(raw))
    if truncated:
        raw = _ELLIPSIS.sub("", raw)
    capped = len(raw) > _ABSTRACT_CHARS
    folded = fold(_COPYRIGHT.sub("", raw[:_ABSTRACT_CHARS]))
    if (truncated or capped) and " " in folded:
        folded = folded.rsplit(" ", 1)[0]  # the last word may be cut in the middle
    return folded, truncated
