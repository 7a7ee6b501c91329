"""Field normalisers shared by every reader: one function per job, none raises on any string it is given.

They turn a value as an export writes it into the value a Record holds: a year, a bare DOI, a page
range, an ISSN, an abstract or '' for the placeholders databases write instead of one, and lists of
authors or keywords. Format-specific parsing (LaTeX in BibTeX, tags in RIS) stays in the readers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

# A year 1500-2099 not inside a longer number; '20151207' (a compact date) still gives 2015.
_YEAR = re.compile(r"(?<!\d)((?:1[5-9]|20)\d\d)(?:(?!\d)|(?=\d{4}(?!\d)))")
_FIRST_YEAR, _LAST_YEAR = 1500, 2099
# Repeated, so that 'doi: https://doi.org/10.1/x' is bare in one pass (bare_doi is idempotent).
_DOI_PREFIX = re.compile(r"^(?:(?:https?://(?:dx\.)?doi\.org/|doi:|doi\s)\s*)+", re.IGNORECASE)
_DOI_SUFFIX = re.compile(r"(?:\s*\[doi\])+$", re.IGNORECASE)  # MEDLINE: '10.1016/x [doi]'
_DOI_IN_TEXT = re.compile(r"\b(10\.\d{4,9}/[^\s&?#\"<>]+)")
_NO_ABSTRACT = re.compile(r"^\[?\s*no abstract(?: is)? available\.?\s*\]?$|^n/?a$", re.IGNORECASE)
_NO_PAGES = re.compile(r"^(?:no (?:pagination )?specified|n/?a)$", re.IGNORECASE)  # Ovid: SP 'No', EP 'Specified'
_ISSN_TOKEN = r"\d{4}-?\d{3}[\dXx]"
_ISSN = re.compile(rf"^{_ISSN_TOKEN}$")
_ISSN_LIST = re.compile(rf"\s*{_ISSN_TOKEN}(?:[\s,;]+{_ISSN_TOKEN})*\s*")
_ISSN_SEPARATORS = re.compile(r"[;,\s]+")
_PARENTHESISED = re.compile(r"\(.*?\)")  # '03064530 (ISSN)', '978-1-... (ISBN)'

_NO_AUTHOR = re.compile(r"^\[?\s*no author(?: name)? available\s*\]?$", re.IGNORECASE)
_EMAIL_NOTE = re.compile(r"\s*\([^()]*@[^()]*\)")
_INITIALS_TAIL = re.compile(r"^\S.*\s(?:[A-Z][a-z]?\.(?:\s?-?\s?[A-Z][a-z]?\.)*|[A-Z]{1,3})$")
_WOS_RUN_TOGETHER = re.compile(r"([^,;]+?, [A-Z]{1,4})(?=[A-Z][a-z]|$)")
_PERIOD_RUN_TOGETHER = re.compile(r"(?<=\.)(?=[A-Z][a-z])")
_CASE_RUN_TOGETHER = re.compile(r"(?<=[a-z]{3})(?=[A-Z][a-z])")
_AND_BETWEEN_NAMES = re.compile(r"\s+and\s+")


# --- years, identifiers, pages ---------------------------------------------------------------


def year_from(*values: object) -> int | None:
    """The first plausible year (1500-2099) in the values, tried in order; None if there is none.

    Strings are searched as exported dates ('2019//', 'Jan.-Feb. 2019', '20151207'); an int is
    taken as a year when it is in range (JSON APIs give years as numbers); None and '' are skipped.
    """
    for value in values:
        if value is None or value == "":
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            if _FIRST_YEAR <= value <= _LAST_YEAR:
                return value
            continue
        match = _YEAR.search(str(value))
        if match:
            return int(match.group(1))
    return None


def bare_doi(text: str) -> str:
    """A DOI without its URL or 'doi:' prefixes and ' [doi]' suffix; otherwise as given (stripped)."""
    value = _DOI_SUFFIX.sub("", (text or "").strip())
    return _DOI_PREFIX.sub("", value).strip()


def doi_in_text(text: str) -> str:
    """A DOI found inside a link or note (URL-encoded or not), or ''."""
    match = _DOI_IN_TEXT.search(unquote(text or ""))
    return match.group(1).rstrip(".,;)]") if match else ""


def page_range(first: str, last: str) -> str:
    """'42' and '47' give '42-47'; a first page that is already a range, or a lone page, is kept."""
    first, last = (first or "").strip(), (last or "").strip()
    if _NO_PAGES.match(f"{first} {last}".strip()):
        return ""
    if not first or "-" in first or not last or last == first:
        return first or last
    return f"{first}-{last}"


def issn_from(values: Iterable[str]) -> str:
    """The first ISSN among SN-like values ('03064530 (ISSN)', '0894-9867, 0894-9867'); ISBNs skipped."""
    for value in values:
        for token in _ISSN_SEPARATORS.split(_PARENTHESISED.sub(" ", value or "")):
            if _ISSN.match(token):
                return token
    return ""


def is_issn_list(text: str) -> bool:
    """True when the value is one or more ISSNs and nothing else (EndNote puts ISSN or ISBN in one field)."""
    return _ISSN_LIST.fullmatch(text or "") is not None


# --- text --------------------------------------------------------------------------------------


def abstract_text(text: str) -> str:
    """The abstract, stripped, or '' for the placeholders databases write instead of one.

    Placeholders: '[No abstract available]', 'No abstract is available.', 'NA', 'N/A' (any case).
    """
    value = (text or "").strip()
    return "" if _NO_ABSTRACT.match(value) else value


def join_lines(lines: Iterable[str]) -> str:
    """Wrapped lines of one value as one line: each stripped, joined with single spaces."""
    return " ".join(stripped for line in lines if (stripped := line.strip()))


# --- lists -------------------------------------------------------------------------------------


def split_list(text: str, separator: str) -> list[str]:
    """The non-empty, stripped items of a list written with one separator ('a; b;; c' -> a, b, c)."""
    return [item.strip() for item in (text or "").split(separator) if item.strip()]


def unique(items: Iterable[str]) -> list[str]:
    """Each non-empty item once, in first-seen order (keyword fields overlap, e.g. DE and ID)."""
    return [item for item in dict.fromkeys(items) if item]


def split_keywords(text: str) -> list[str]:
    """Split on ';' when present, else on ',' outside brackets ('cyst (diagnosis, surgery)' stays whole)."""
    text = (text or "").strip()
    if not text:
        return []
    parts = _split_outside_brackets(text, ";" if ";" in text else ",")
    return [part.strip() for part in parts if part.strip()]


def _split_outside_brackets(text: str, separator: str) -> list[str]:
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
    and 'Araz R. AlievNigar T. Ismayilova' (SpringerLink). A single author is returned unsplit;
    '[No author name available]' gives no author.
    """
    text = _EMAIL_NOTE.sub("", text or "").strip().strip(";,").strip()
    if not text or _NO_AUTHOR.match(text):
        return []
    if ";" in text:
        parts: list[str] = text.split(";")
    elif "," in text and _AND_BETWEEN_NAMES.search(text):
        parts = _AND_BETWEEN_NAMES.split(text)
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
