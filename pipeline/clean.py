"""Clean stage: records -> records, each kind of change recorded as a flag on the record.

What `clean_text` does to one string (title, abstract or keyword):

1. control characters, lone surrogates, zero-width spaces and soft hyphens removed      `unicode_fixed`
2. mojibake repaired and Unicode normalised to NFC with ftfy (ligatures, full-width forms) `mojibake_fixed`
   when an encoding was repaired, else `unicode_fixed`. Curly quotes are kept (they are correct text).
   ftfy runs only on text that could hold mojibake (a UTF-8 lead byte read as Latin-1/Windows-1252
   before a continuation byte, C1 controls, ligatures, full-width forms); other text is NFC-normalised.
3. JATS/HTML tags and character entities removed with lxml (Crossref `<jats:p>`, `<jats:sec>`,
   `<jats:italic>`; a `<jats:title>` becomes a 'Background: ' label; entity-escaped markup such as
   '&lt;p&gt;' is unescaped, then removed; 'p &lt; 0.05' becomes 'p < 0.05' and stays text) `markup_removed`
4. the typographic hyphens U+2010 and U+2011 become '-': they look the same to a reader but break
   phrase matching and dedup ('school‐to‐school' vs 'school-to-school'); en and em dashes and the
   minus sign are kept                                                                   `unicode_fixed`
5. white space collapsed to single spaces (line breaks included)                       `whitespace_collapsed`
6. boilerplate from pipeline/boilerplate.yaml removed (aggregator lines such as '引用次数: 6', the
   scite blurb, copyright statements, placeholders such as '[No abstract available]')  `boilerplate_removed`
   and, for abstracts, a leading 'Abstract'/'ABSTRACT:'/'Summary' label                 `leading_label_removed`
7. English text only (a non-English text is left alone):
   OCR punctuation: 'Approach¢ and', 'other« reinforces', 'schools«interms' are commas, and so is the 'c'
   of 'schoolsc and' when 'schools' is a dictionary word and 'schoolsc' is not (never in -ic/-iac words:
   music, Arabic, maniac)                                                                `ocr_punctuation_fixed`
   run-together words split with wordninja ('asauniversal' -> 'as a universal') only when the token is
   not a word (nor a British spelling or a derived form of one: 'randomised', 'marketised') and the split
   is clearly better: common words, a function word among them, a content word last, and far more
   probable than the token by the unigram table of spacy-lookups-data                    `words_split`

Steps 1-6 repeat until nothing changes, and so do the English repairs with them, so the result is a
fixed point: cleaning it again changes nothing and adds no flag (hypothesis tests in tests/test_clean.py).

`clean_record` cleans the title, the abstract and every keyword, moves a trailing 'Keywords: ...' out
of the abstract into `keywords` (`keywords_moved`), flags an abstract ending in '...'/'…' as
`truncated` (the text is kept), and adds the detected language of the abstract (the title when there
is none): `language:<code>`, plus `non_english:<code>` when it is not English, or `language_uncertain`
for texts under 40 characters or a guess below 50% (py3langid; a text where common English function
words are frequent is English without asking it). `clean_records` then flags abstracts that are a
prefix of another record's abstract: `truncated` and `prefix_of:<record_id>` (`flag_truncated_prefixes`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import html
import json
import logging
import pickle
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

from pipeline.errors import ConfigError
from pipeline.io import atomic_write, default_cache_dir
from pipeline.records import Record

log = logging.getLogger(__name__)

TextKind = Literal["text", "title", "abstract", "keyword"]

BOILERPLATE_PATH = Path(__file__).with_name("boilerplate.yaml")
MIN_LANGUAGE_CHARS = 40  # shorter texts get `language_uncertain` rather than a guess
MIN_LANGUAGE_CONFIDENCE = 0.5
MIN_PREFIX_CHARS = 40  # letters and digits a truncated abstract must keep to be matched as a prefix
_MAX_ROUNDS = 4  # passes to reach a fixed point (two suffice in practice)
_LANGUAGE_SAMPLE = 600  # characters given to the language identifier (speed; enough for a stable guess)

CHANGE_FLAGS = frozenset(
    {
        "unicode_fixed",
        "mojibake_fixed",
        "markup_removed",
        "whitespace_collapsed",
        "boilerplate_removed",
        "leading_label_removed",
        "ocr_punctuation_fixed",
        "words_split",
        "keywords_moved",
    }
)

# ---------------------------------------------------------------------------------------------------
# Boilerplate patterns (data: pipeline/boilerplate.yaml)


@dataclass(frozen=True)
class Pattern:
    name: str
    regex: re.Pattern[str]
    max_chars: int = 0
    blurb: bool = False
    hints: tuple[str, ...] = ()  # lower-case substrings; when given, one must occur for the regex to be tried

    def may_match(self, lowered: str) -> bool:
        return not self.hints or any(hint in lowered for hint in self.hints)


@dataclass(frozen=True)
class Boilerplate:
    anywhere: tuple[Pattern, ...]
    whole_text: tuple[Pattern, ...]
    trailing: tuple[Pattern, ...]
    leading: tuple[Pattern, ...]
    leading_labels: tuple[Pattern, ...]

    def is_blurb(self, paragraph: str) -> bool:
        """Is this paragraph a known blurb (not an abstract), e.g. the scite footer?"""
        text = " ".join(paragraph.split())
        return any(p.blurb and p.regex.match(text) for p in self.trailing)


_SECTIONS = ("anywhere", "whole_text", "trailing", "leading", "leading_labels")
_ENTRY_KEYS = {"name", "pattern", "case_sensitive", "max_chars", "blurb", "hints"}


def load_boilerplate(path: str | Path | None = None) -> Boilerplate:
    """Read and compile a boilerplate YAML file; every problem is reported at once with its location."""
    return _load_boilerplate(str(path or BOILERPLATE_PATH))


@lru_cache(maxsize=8)
def _load_boilerplate(path: str) -> Boilerplate:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(path, [f"cannot read it as YAML ({exc})"]) from None
    if not isinstance(data, dict):
        raise ConfigError(path, ["the file must be a mapping with the sections " + ", ".join(_SECTIONS)])
    problems: list[str] = [f"unknown section {key!r}" for key in data if key not in (*_SECTIONS, "version")]
    sections = {name: _compile_section(data.get(name) or [], name, problems) for name in _SECTIONS}
    if problems:
        raise ConfigError(path, problems)
    return Boilerplate(**sections)


def _compile_section(entries: Any, section: str, problems: list[str]) -> tuple[Pattern, ...]:
    if not isinstance(entries, list):
        problems.append(f"{section}: must be a list of entries")
        return ()
    compiled = []
    for index, entry in enumerate(entries):
        where = f"{section}[{index}]"
        if not isinstance(entry, dict) or "pattern" not in entry or "name" not in entry:
            problems.append(f"{where}: needs a name and a pattern")
            continue
        problems.extend(f"{where}: unknown key {key!r}" for key in entry if key not in _ENTRY_KEYS)
        flags = 0 if entry.get("case_sensitive") else re.IGNORECASE
        try:
            regex = re.compile(str(entry["pattern"]), flags)
        except re.error as exc:
            problems.append(f"{where} ({entry['name']}): bad regular expression: {exc}")
            continue
        max_chars = entry.get("max_chars", 0) or 0
        if not isinstance(max_chars, int) or (section == "trailing" and max_chars <= 0):
            problems.append(f"{where} ({entry['name']}): a trailing pattern needs max_chars > 0")
        hints = entry.get("hints") or []
        if not isinstance(hints, list) or not all(isinstance(h, str) and h == h.lower() for h in hints):
            problems.append(f"{where} ({entry['name']}): hints must be a list of lower-case strings")
            continue
        blurb = bool(entry.get("blurb", False))
        compiled.append(Pattern(str(entry["name"]), regex, int(max_chars), blurb, tuple(hints)))
    return tuple(compiled)


# ---------------------------------------------------------------------------------------------------
# Step 1-2: characters and ftfy

_INVISIBLE = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f\u00ad\u200b\u2060\ufeff\ud800-\udfff]")
_MOJIBAKE_STEPS = {"decode_inconsistent_utf8", "replace_lossy_sequences", "fix_c1_controls", "restore_byte_a0"}


def _fix_characters(text: str, flags: set[str]) -> str:
    fixed = _INVISIBLE.sub("", text)
    if fixed != text:
        flags.add("unicode_fixed")
    if fixed.isascii():
        return fixed  # nothing for ftfy to do on ASCII once control characters are gone
    if not _FTFY_NEEDED.search(fixed):
        # no UTF-8 lead byte read as Latin-1/Windows-1252 before a continuation byte, no C1 control,
        # ligature or full-width form: ftfy would only normalise (and its checks cost ~1 ms a text)
        normalised = unicodedata.normalize("NFC", fixed)
        if normalised != fixed:
            flags.add("unicode_fixed")
        return normalised
    import ftfy

    explained = ftfy.fix_and_explain(fixed, _ftfy_config())
    if explained.text != fixed:
        steps = explained.explanation or []
        mojibake = any(action != "apply" and action != "normalize" or arg in _MOJIBAKE_STEPS for action, arg in steps)
        flags.add("mojibake_fixed" if mojibake else "unicode_fixed")
    return explained.text


_FTFY_NEEDED = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ]|[ÂÃ] |[\u0080-\u009f\ufb00-\ufb4f\uff00-\uffef\u3000]"
)


@lru_cache(maxsize=1)
def _ftfy_config() -> Any:
    import ftfy

    # HTML is handled by the markup step (with a parser); curly quotes are correct text, not errors.
    return ftfy.TextFixerConfig(unescape_html=False, uncurl_quotes=False, normalization="NFC")


def _fix_hyphens(text: str, flags: set[str]) -> str:
    if "\u2010" not in text and "\u2011" not in text:
        return text
    flags.add("unicode_fixed")
    return text.replace("\u2010", "-").replace("\u2011", "-")


# ---------------------------------------------------------------------------------------------------
# Step 3: markup

_TAG_NAMES = (
    r"jats:[\w.-]+|mml:[\w.-]+|p|i|b|u|s|q|a|em|strong|sub|sup|sc|br|hr|div|span|sec|title|italic|bold|"
    r"list|list-item|li|ul|ol|h[1-6]|abstract|label|caption|table|tbody|thead|tr|td|th|font|small|big|tt|"
    r"code|pre|blockquote|cite|inline-formula|disp-formula|tex-math|ext-link|xref|named-content|underline|"
    r"monospace|strike|del|ins|mark|math|mi|mo|mn|msub|msup|mrow|mtext|section|article|body|center"
)
_TAG = re.compile(rf"</?(?:{_TAG_NAMES})(?:\s[^<>]*)?/?>", re.IGNORECASE)
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_BLOCK_TAGS = {
    "p",
    "sec",
    "div",
    "li",
    "list-item",
    "br",
    "hr",
    "tr",
    "td",
    "th",
    "section",
    "abstract",
    "list",
    "label",
}
_TITLE_TAGS = {"title", "h1", "h2", "h3", "h4", "h5", "h6"}
_MAX_MARKUP_ROUNDS = 10


def _remove_markup(text: str, flags: set[str]) -> str:
    """Strip tags and decode entities until neither is left (entity-escaped markup takes two rounds)."""
    current = text
    for _ in range(_MAX_MARKUP_ROUNDS):
        if _TAG.search(current):
            stripped = _strip_tags(current)
        elif "&" in current:
            stripped = _ENTITY.sub(_decode_entity, current)
        else:
            break
        if stripped == current:
            break
        current = stripped
    if current != text:
        flags.add("markup_removed")
        current = _INVISIBLE.sub("", current)  # entities can encode control characters
    return current


def _decode_entity(match: re.Match[str]) -> str:
    return html.unescape(match.group(0))


def _strip_tags(text: str) -> str:
    """Parse with lxml; any '<' or '&' that is not a known tag or entity is escaped first, so that
    'p < 0.05' or 'AT&T' inside a JATS abstract stays text."""
    import lxml.etree
    import lxml.html

    pieces = []
    last = 0
    for match in _TAG.finditer(text):
        pieces.append(_escape_text(text[last : match.start()]))
        pieces.append(match.group(0))
        last = match.end()
    pieces.append(_escape_text(text[last:]))
    try:
        root = lxml.html.fragment_fromstring("".join(pieces), create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        log.debug("lxml could not parse markup; falling back to removing the tags", exc_info=True)
        return _ENTITY.sub(_decode_entity, _TAG.sub(" ", text))
    out: list[str] = []
    _walk(root, out)
    return "".join(out)


def _escape_text(segment: str) -> str:
    escaped = segment.replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"&(?!#?[0-9A-Za-z]+;)", "&amp;", escaped)


def _walk(element: Any, out: list[str]) -> None:
    name = element.tag.rsplit(":", 1)[-1].lower() if isinstance(element.tag, str) else ""
    if name in _TITLE_TAGS:
        label = " ".join(element.text_content().split())
        if label:
            out.append(f" {label}{'' if label[-1] in ':.?!' else ':'} ")
        out.append(element.tail or "")
        return
    if name in _BLOCK_TAGS:
        out.append(" ")
    out.append(element.text or "")
    for child in element:
        _walk(child, out)
    if name in _BLOCK_TAGS:
        out.append(" ")
    out.append(element.tail or "")


# ---------------------------------------------------------------------------------------------------
# Step 5-6: white space and boilerplate


def _collapse_whitespace(text: str, flags: set[str]) -> str:
    collapsed = " ".join(text.split())
    if collapsed != text.strip():
        flags.add("whitespace_collapsed")
    return collapsed


_MAX_PLACEHOLDER_CHARS = 200  # a whole_text pattern is only tried on a text this short


def _remove_boilerplate(text: str, kind: TextKind, rules: Boilerplate, flags: set[str]) -> str:
    current = text
    for _ in range(10):  # a removal can expose another (a label after a leading copyright line)
        before = current
        lowered = current.lower()
        current = _apply_anywhere(current, lowered, rules)
        if kind == "abstract":
            current = _apply_trailing(current, lowered, rules)
            current = _apply_leading(current, rules.leading)
        if current != before:
            flags.add("boilerplate_removed")
        if kind == "abstract":
            unlabelled = _apply_leading(current, rules.leading_labels)
            if unlabelled != current:
                flags.add("leading_label_removed")
                current = unlabelled
        if current == before:
            break
    placeholder = kind == "abstract" and 0 < len(current) <= _MAX_PLACEHOLDER_CHARS
    if placeholder and any(p.regex.fullmatch(current) for p in rules.whole_text):
        flags.add("boilerplate_removed")
        return ""
    return current


def _apply_anywhere(text: str, lowered: str, rules: Boilerplate) -> str:
    for pattern in rules.anywhere:
        if pattern.may_match(lowered) and pattern.regex.search(text):
            text = " ".join(pattern.regex.sub(" ", text).split())
    return text


def _apply_trailing(text: str, lowered: str, rules: Boilerplate) -> str:
    for pattern in rules.trailing:
        if not pattern.may_match(lowered):
            continue
        # only the last max_chars can be cut: search there (lookbehinds still see the text before)
        for match in pattern.regex.finditer(text, max(0, len(text) - pattern.max_chars)):
            text = text[: match.start()].rstrip()
            break
    return text


def _apply_leading(text: str, patterns: tuple[Pattern, ...]) -> str:
    for pattern in patterns:
        match = pattern.regex.match(text)
        if match and match.end() > 0:
            text = text[match.end() :].lstrip()
    return text


# ---------------------------------------------------------------------------------------------------
# Step 7: English-only repairs (dictionary: the word list shipped with wordninja)

_OCR_COMMA_GLUED = re.compile(r"(?<=[A-Za-z])[«¢](?=[A-Za-z])")
_OCR_COMMA_SPACED = re.compile(r"(?<=[A-Za-z])[«¢](?=\s|$)")
_C_COMMA = re.compile(r"(?<![\w\-/.@'’])([A-Za-z]{4,})c(?=\s+[A-Za-z])")
_LOWER_RUN = re.compile(r"(?<![a-z])[a-z]{6,}")  # cheap pre-filter for _RUN_TOGETHER
_RUN_TOGETHER = re.compile(r"(?<![\w\-/.@&#%+=~:'’])([a-z]{6,})(?=$|[\s,;!?)\]}\"”]|[.:](?:\s|$))")
_COMMON_RANK = 30000  # parts of a split must be among the 30,000 most frequent words
_UNKNOWN_LOG_PROB = -20.0
_NAME_MARGIN = 1.0
_MIN_PART_LOG_PROB = -15.5  # 'universal' -11.2, 'prevalence' -13.4; 'thant' -17.4
_SPLIT_MARGIN = 2.0  # natural-log units: the split must be e^2 (7x) more probable than the glued token
_LATIN_ENDINGS = ("ia", "ae", "um", "us", "is", "ii")  # species and medical terms (termitaria, dorsalis)
# A split is accepted only when one of its parts is a function word: glued function words are what
# OCR and copy-paste lose ('asauniversal', 'interms'); two glued content words ('con figurative',
# 'endo phytic') are too often one real technical word.
_FUNCTION_WORDS = frozenset(
    "a an the of to in on at as by for with from and or but is are was were be been its it that this "
    "these those which who whom into onto than then not we our their they has have had can will may "
    "should would could between within among about upon via each".split()
)
# Two function words in a row only when the second opens a noun phrase or a verb ('as a', 'of the',
# 'to be'): 'a or to pulmonary' and 'to no filaments' are not English.
_SECOND_OF_PAIR = frozenset("a an the be been its their our this these those that".split())
# A two-part split whose first part is also an English prefix ('in' + 'growth', 'per' + 'acute') is
# accepted only when the glued token is a known error that the split far outscores ('interms').
_PREFIX_LIKE = frozenset("a an in on for per".split())
_BRITISH = (
    ("isations", "izations"), ("isation", "ization"), ("ising", "izing"), ("ised", "ized"), ("ises", "izes"),
    ("iser", "izer"), ("ise", "ize"), ("ysing", "yzing"), ("ysed", "yzed"), ("yse", "yze"),
    ("ouring", "oring"), ("oured", "ored"), ("ours", "ors"), ("our", "or"), ("mmes", "ms"), ("mme", "m"),
    ("tres", "ters"), ("tre", "ter"), ("ogues", "ogs"), ("ogue", "og"), ("lled", "led"), ("lling", "ling"),
    ("ence", "ense"),
)  # fmt: skip
_SUFFIXES = (
    "isations", "izations", "isation", "ization", "ations", "ation", "ments", "ment", "ness", "ities", "ity",
    "ising", "izing", "ised", "ized", "ises", "izes", "ise", "ize", "ally", "ing", "ers", "er", "ed", "es",
    "ly", "al", "s", "ism", "isms", "ist", "ists", "ful", "less", "able", "ible", "ship", "wards", "ward",
    "like", "wise", "d",
)  # fmt: skip
_PREFIXES = (
    "un", "re", "pre", "non", "co", "inter", "intra", "multi", "sub", "over", "under", "post", "anti", "self",
    "cross", "semi", "mis", "dis", "trans", "micro", "macro", "meta", "mega", "bio", "eco", "geo", "neo",
    "pseudo", "socio", "psycho", "hyper", "hypo", "auto", "counter", "extra", "ultra", "mid", "mini", "poly",
    "mono", "pro", "peri", "para", "out", "a",
)  # fmt: skip
_BRITISH_INSIDE = (("ae", "e"), ("oe", "e"))  # paediatric, oesophagus


@lru_cache(maxsize=1)
def _word_ranks() -> dict[str, int]:
    """English words by frequency rank (0 = most frequent), from the list wordninja ships."""
    import wordninja

    path = Path(wordninja.__file__).with_name("wordninja") / "wordninja_words.txt.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        words = handle.read().split()
    return {word: rank for rank, word in reversed(list(enumerate(words)))}


def _is_word(word: str, *, allow_prefix: bool = True) -> bool:
    """A dictionary word, or one derived from a dictionary word (British spelling, suffix, prefix)."""
    ranks = _word_ranks()
    if word in ranks:
        return True
    for british, american in _BRITISH:
        if word.endswith(british) and word[: -len(british)] + american in ranks:
            return True
    for british, american in _BRITISH_INSIDE:
        if british in word and word.replace(british, american) in ranks:
            return True
    for suffix in _SUFFIXES:
        if word.endswith(suffix):
            stem = word[: -len(suffix)]
            if len(stem) >= 4 and (stem in ranks or stem + "e" in ranks):
                return True
    if allow_prefix:
        for prefix in _PREFIXES:
            if word.startswith(prefix) and len(word) - len(prefix) >= 4:
                if _is_word(word[len(prefix) :], allow_prefix=False):
                    return True
    return False


def _fix_ocr_punctuation(text: str, flags: set[str]) -> str:
    fixed = text
    if "«" in fixed or "¢" in fixed:
        keep_guillemets = "»" in fixed  # a real guillemet pair: leave '«' alone, still fix '¢'
        fixed = _OCR_COMMA_GLUED.sub(lambda m: m.group(0) if keep_guillemets and m.group(0) == "«" else ", ", fixed)
        fixed = _OCR_COMMA_SPACED.sub(lambda m: m.group(0) if keep_guillemets and m.group(0) == "«" else ",", fixed)
    if "c " in fixed and any(_c_candidate(word) for word in fixed.split(" ")):
        fixed = _C_COMMA.sub(_c_comma, fixed)
    if fixed != text:
        flags.add("ocr_punctuation_fixed")
    return fixed


def _c_candidate(word: str) -> bool:
    """Cheap pre-filter for _C_COMMA: a word of 5+ letters ending in 'c' but not in '-ic'/'-iac'."""
    return len(word) >= 5 and word.endswith("c") and not word.endswith(("ic", "iac")) and word.isalpha()


def _c_comma(match: re.Match[str]) -> str:
    """'schoolsc' -> 'schools,' only when 'schools' is a word and 'schoolsc' is not. Words in -ic and
    -iac (music, Arabic, maniac, Ivanovic) are never touched: their stems are rarely words anyway."""
    stem = match.group(1)
    word = match.group(0)
    lower = word.lower()
    if word.isupper() or lower.endswith(("ic", "iac")) or _is_word(lower) or not _is_word(stem.lower()):
        return word
    return stem + ","


def _split_run_together(text: str, flags: set[str]) -> str:
    unknown = set(_LOWER_RUN.findall(text)).difference(_word_ranks())
    replacements = {token: _split_word(token) for token in unknown}
    if all(token == split for token, split in replacements.items()):
        return text
    fixed = _RUN_TOGETHER.sub(lambda m: replacements.get(m.group(1), m.group(1)), text)
    if fixed != text:
        flags.add("words_split")
    return fixed


@lru_cache(maxsize=200_000)  # vocabularies repeat (Zipf): most tokens are decided once per process
def _split_word(token: str) -> str:
    # cheapest tests first: most unknown tokens are technical words no split could explain
    if token.endswith(_LATIN_ENDINGS) or not _segmentable(token) or _is_word(token):
        return token
    import wordninja

    parts = wordninja.split(token)
    if not _plausible_split(token, parts):
        return token
    return " ".join(parts)


def _segmentable(token: str) -> bool:
    """Can the token be cut into allowed parts at all (function words, common words of 4+ letters)?
    A cheap test (a few hundred set look-ups) that spares wordninja's search for most technical words."""
    allowed = _allowed_parts()
    reachable = [True] + [False] * len(token)
    for end in range(1, len(token) + 1):
        for start in range(max(0, end - _MAX_PART_CHARS), end):
            if reachable[start] and token[start:end] in allowed:
                reachable[end] = True
                break
    return reachable[-1]


_MAX_PART_CHARS = 20


@lru_cache(maxsize=1)
def _allowed_parts() -> frozenset[str]:
    common = (word for word, rank in _word_ranks().items() if rank < _COMMON_RANK and 4 <= len(word) <= _MAX_PART_CHARS)
    return frozenset(common) | _FUNCTION_WORDS


def _plausible_split(token: str, parts: list[str]) -> bool:
    """Is the split clearly better than the token? Every part a function word or a common lower-case
    word of 4+ letters (not a name), at least one function word, a content word last ('as a universal',
    'in terms'; not 'his to logical', 'dorsal is'), and, when the token is itself a known (rare) token,
    a split far more probable than it (unigram log-probabilities from spacy-lookups-data)."""
    if len(parts) < 2 or "".join(parts) != token or parts[-1] in _FUNCTION_WORDS:
        return False
    if not _FUNCTION_WORDS.intersection(parts):
        return False
    for first, second in zip(parts, parts[1:], strict=False):
        if first in _FUNCTION_WORDS and second in _FUNCTION_WORDS and second not in _SECOND_OF_PAIR:
            return False
    if not all(map(_good_part, parts)):
        return False
    probs = _token_log_probs()
    if token not in probs:
        return not (len(parts) == 2 and parts[0] in _PREFIX_LIKE)
    split_prob = sum(probs.get(part, _UNKNOWN_LOG_PROB) for part in parts)
    return split_prob >= probs[token] + _SPLIT_MARGIN


def _good_part(part: str) -> bool:
    if part in _FUNCTION_WORDS:
        return True
    if len(part) < 4 or _word_ranks().get(part, _COMMON_RANK) >= _COMMON_RANK:
        return False
    probs = _token_log_probs()
    lower = probs.get(part, _UNKNOWN_LOG_PROB)
    # common as a lower-case word, and not a name ('Stan', 'Neal' are far more frequent capitalised)
    return lower >= _MIN_PART_LOG_PROB and probs.get(part.capitalize(), _UNKNOWN_LOG_PROB) < lower + _NAME_MARGIN


@lru_cache(maxsize=1)
def _token_log_probs() -> dict[str, float]:
    """Unigram log-probabilities of English tokens (spacy-lookups-data's en_lexeme_prob, 1M entries),
    kept for the words wordninja knows (lower-case and capitalised, for the name test) and for the
    lower-case alphabetic tokens of 6+ letters it does not (the candidates for splitting): 400k entries.
    Loaded once per process, on the first token that needs it. Made from the two packages' files takes ~3 s
    (every run pays it, and every Dask worker), so the table is kept in the user cache, keyed by their versions:
    read from there it takes ~0.2 s."""
    from importlib import metadata

    versions = f"{metadata.version('spacy-lookups-data')}-{metadata.version('wordninja')}"
    path = default_cache_dir() / f"lexeme-log-probs-{_LEXEME_TABLE_VERSION}-{versions}.pickle"
    with contextlib.suppress(OSError, pickle.UnpicklingError, EOFError, ValueError):
        with path.open("rb") as handle:
            return pickle.load(handle)  # noqa: S301 - the user's own cache, written below
    table = _token_log_probs_from_packages()
    with contextlib.suppress(OSError):
        with atomic_write(path, "wb", encoding=None, newline=None) as handle:
            pickle.dump(table, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return table


_LEXEME_TABLE_VERSION = 1  # bump when _token_log_probs_from_packages keeps other tokens


def _token_log_probs_from_packages() -> dict[str, float]:
    import spacy_lookups_data

    path = Path(spacy_lookups_data.__file__).parent / "data" / "en_lexeme_prob.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        table: dict[str, float] = json.load(handle)
    ranks = _word_ranks()
    return {
        token: prob
        for token, prob in table.items()
        if token in ranks or token.lower() in ranks or (len(token) >= 6 and token.isalpha() and token.islower())
    }


def release_caches() -> None:
    """Drop cleaning's tables and memos: the word and lexeme tables, the language model, the per-token and
    per-keyword memos (~0.14 GB after 60,000 records). Their entries are made among the batches' texts, so they
    also pin memory the texts gave back. The flow calls this once ingest is done; a later clean loads them again."""
    for cached in (_load_boilerplate, _ftfy_config, _word_ranks, _split_word, _allowed_parts, _token_log_probs,
                   _language_identifier, _clean_keyword):
        cached.cache_clear()


# ---------------------------------------------------------------------------------------------------
# Language


@lru_cache(maxsize=1)
def _language_identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> tuple[str, float]:
    """('en', 0.99): py3langid's most likely language of a text and its probability; ('', 0.0) when
    the text is too short to guess."""
    sample = text[:_LANGUAGE_SAMPLE]
    if len(sample.strip()) < MIN_LANGUAGE_CHARS:
        return "", 0.0
    code, confidence = _language_identifier().classify(sample)
    return str(code), float(confidence)


# Words that only English uses this often. In the 3,865 real abstracts under ../shared/data, every
# non-English text had at most 1% of them and 97% of the English ones at least 10%: above 8% the text
# is English without asking py3langid, which costs ~0.4 ms per abstract (most of the stage's time).
_ENGLISH_MARKERS = frozenset(
    "the of and to that with for was were which this these from have has been their are".split()
)
_ENGLISH_SHARE = 0.08
_LOWER_WORD = re.compile(r"[a-z]+")


def _language_of(text: str) -> tuple[str, float]:
    words = _LOWER_WORD.findall(text[:_LANGUAGE_SAMPLE].lower())
    if len(words) >= 20:
        share = sum(1 for word in words if word in _ENGLISH_MARKERS) / len(words)
        if share >= _ENGLISH_SHARE:
            return "en", 1.0
    return detect_language(text)


def language_flags(text: str, detected: tuple[str, float] | None = None) -> list[str]:
    """['language:en'], ['language:pt', 'non_english:pt'] or ['language_uncertain']."""
    code, confidence = detected if detected is not None else _language_of(text)
    if not code or confidence < MIN_LANGUAGE_CONFIDENCE:
        return ["language_uncertain"]
    return [f"language:{code}"] if code == "en" else [f"language:{code}", f"non_english:{code}"]


def _looks_english(text: str, detected: tuple[str, float] | None = None) -> bool:
    """Gate for the dictionary-based repairs: a language guess for long texts, word coverage for short."""
    code, _ = detected if detected is not None else _language_of(text)
    if code:
        return code == "en"
    words = re.findall(r"[A-Za-z]+", text)
    if len(words) < 2:
        return False
    ranks = _word_ranks()
    known = sum(1 for word in words if word.lower() in ranks)
    return known >= 0.6 * len(words)


# ---------------------------------------------------------------------------------------------------
# Public API


def clean_text(
    text: str,
    *,
    kind: TextKind = "text",
    english: bool | None = None,
    boilerplate: Boilerplate | None = None,
) -> tuple[str, list[str]]:
    """Clean one title, abstract or keyword string: (cleaned text, sorted change flags).

    `kind="abstract"` also strips trailing boilerplate (copyright, blurbs), placeholders and a leading
    'Abstract' label; a 'Keywords: ...' trailer is left in place here (`clean_record` moves it to the
    keywords). `english` decides whether the English-only repairs run; None guesses it from the text.
    """
    rules = boilerplate or load_boilerplate()
    flags: set[str] = set()
    cleaned = _clean_base(text, kind, rules, flags)
    if english is None:
        english = _looks_english(cleaned)
    cleaned, _ = _settle(cleaned, kind, rules, flags, english=english, move_keywords=False)
    return cleaned, sorted(flags)


def _settle(
    text: str, kind: TextKind, rules: Boilerplate, flags: set[str], *, english: bool, move_keywords: bool
) -> tuple[str, list[str]]:
    """From a `_clean_base` output: move a keywords trailer, then apply the English repairs and the base
    steps again until nothing changes (a repair can, rarely, give ftfy or a pattern something to do), so
    that the result is a fixed point and a second cleaning changes nothing."""
    trailer: list[str] = []
    if move_keywords:
        text, trailer = _move_keywords_trailer(text)
    for _ in range(_MAX_ROUNDS if english else 0):
        repaired = _clean_english(text, flags)
        if repaired == text:
            break
        text = _clean_base(repaired, kind, rules, flags)
        if move_keywords:
            text, more = _move_keywords_trailer(text)
            trailer.extend(more)
    return text, trailer


def _clean_base(text: str, kind: TextKind, rules: Boilerplate, flags: set[str]) -> str:
    """Steps 1-6, the language-independent ones, repeated until nothing changes: one step can, rarely,
    give an earlier one something to do (collapsing 'Â\\r0' to 'Â 0' lets ftfy read 'Â ' as a broken
    no-break space), and the result must be a fixed point for cleaning to be idempotent."""
    current = text
    for _ in range(_MAX_ROUNDS):
        cleaned = _base_pass(current, kind, rules, flags)
        if cleaned == current:
            break
        current = cleaned
    return current


def _base_pass(text: str, kind: TextKind, rules: Boilerplate, flags: set[str]) -> str:
    cleaned = _fix_characters(text, flags)
    if "<" in cleaned or "&" in cleaned:
        before = cleaned
        cleaned = _remove_markup(cleaned, flags)
        if cleaned != before:
            cleaned = _fix_characters(cleaned, flags)
    cleaned = _fix_hyphens(cleaned, flags)
    cleaned = _collapse_whitespace(cleaned, flags)
    return _remove_boilerplate(cleaned, kind, rules, flags)


def _clean_english(text: str, flags: set[str]) -> str:
    """Step 7: the dictionary-based repairs, for English text only."""
    if not text:
        return text
    return _split_run_together(_fix_ocr_punctuation(text, flags), flags)


_KEYWORDS_TRAILER = re.compile(
    r"(?:Key ?words|KEY ?WORDS|Key ?Words|Index [Tt]erms|INDEX TERMS)\s*[:：.—–-]\s*(?P<keywords>[^:]{1,500})$"
)
_SENTENCE_END = re.compile(r"[.!?;)\]] ?$")


def _split_keywords(trailer: str) -> list[str]:
    separator = ";" if ";" in trailer else ","
    parts = (part.strip().rstrip(".").strip() for part in trailer.split(separator))
    return [part for part in parts if part]


def _is_truncated(abstract: str) -> bool:
    return abstract.rstrip(")]\"'”’ ").endswith(("...", "…"))


def clean_record(record: Record, *, boilerplate: Boilerplate | None = None) -> Record:
    """A cleaned copy of a record: title, abstract and keywords cleaned, flags appended (no duplicates).

    The English gate is decided once per record, on the abstract (the title when there is none) after
    the language-independent steps, and applies to the title and keywords too.
    """
    rules = boilerplate or load_boilerplate()
    flags: set[str] = set()
    abstract, trailer = _move_keywords_trailer(_clean_base(record.abstract, "abstract", rules, flags))
    title = _clean_base(record.title, "title", rules, flags)
    gate_text = abstract or title
    gate_language = _language_of(gate_text)
    english = _looks_english(gate_text, gate_language)
    abstract, more = _settle(abstract, "abstract", rules, flags, english=english, move_keywords=True)
    title, _ = _settle(title, "title", rules, flags, english=english, move_keywords=False)
    trailer.extend(more)
    if trailer:
        flags.add("keywords_moved")
    keywords = _clean_keywords(record.keywords, trailer, english, rules, flags)
    new_flags = sorted(flags)
    if _is_truncated(abstract):
        new_flags.append("truncated")
    final_text = abstract or title
    final_language = gate_language if final_text == gate_text else _language_of(final_text)
    new_flags.extend(language_flags(final_text, final_language))
    merged = list(record.flags)
    _append_flags(merged, new_flags)
    return dataclasses.replace(
        record,
        title=title,
        abstract=abstract,
        keywords=keywords,
        authors=list(record.authors),
        flags=merged,
        extra=dict(record.extra),
    )


def _clean_keywords(
    keywords: list[str], trailer: list[str], english: bool, rules: Boilerplate, flags: set[str]
) -> list[str]:
    """Clean each keyword (one emptied by cleaning is dropped); a moved trailer adds only new ones."""
    result = []
    for keyword in keywords:
        text, keyword_flags = _clean_keyword(keyword, english, rules)
        flags.update(keyword_flags)
        if text:
            result.append(text)
    seen = {keyword.casefold() for keyword in result}
    for moved in trailer:  # cleaned whole, then split: an OCR comma ('Collaboration« school') separates too
        text, keyword_flags = _clean_keyword(moved, english, rules)
        flags.update(keyword_flags)
        for keyword in _split_keywords(text):
            if keyword.casefold() not in seen:
                seen.add(keyword.casefold())
                result.append(keyword)
    return result


@lru_cache(maxsize=100_000)  # the same keywords (MeSH terms, subject headings) recur across records
def _clean_keyword(keyword: str, english: bool, rules: Boilerplate) -> tuple[str, frozenset[str]]:
    flags: set[str] = set()
    text = _clean_base(keyword, "keyword", rules, flags)
    text, _ = _settle(text, "keyword", rules, flags, english=english, move_keywords=False)
    return text, frozenset(flags)


def _move_keywords_trailer(abstract: str) -> tuple[str, list[str]]:
    """'... of the review. Keywords: a; b' -> ('... of the review.', ['a; b'])."""
    match = _KEYWORDS_TRAILER.search(abstract, max(0, len(abstract) - 530))
    if not match:
        return abstract, []
    before = abstract[: match.start()]
    if before and not _SENTENCE_END.search(before):
        return abstract, []  # 'the keywords: ...' inside a sentence
    return before.rstrip(), [match.group("keywords")]


def _append_flags(flags: list[str], new: Iterable[str]) -> None:
    present = set(flags)
    for flag in new:
        if flag not in present:
            present.add(flag)
            flags.append(flag)


def clean_records(
    records: Iterable[Record], *, find_prefixes: bool = True, boilerplate: Boilerplate | None = None
) -> Iterator[Record]:
    """Clean every record; then (when `find_prefixes`) flag abstracts that are a prefix of another's.

    The prefix pass needs the whole corpus, so with `find_prefixes` the records are held in memory
    (a list of cleaned records) before they are yielded; without it the stage streams.
    """
    rules = boilerplate or load_boilerplate()
    if not find_prefixes:
        for record in records:
            yield clean_record(record, boilerplate=rules)
        return
    cleaned = [clean_record(record, boilerplate=rules) for record in records]
    flagged = flag_truncated_prefixes(cleaned)
    log.info("cleaned %d records; %d abstracts are truncated copies of another", len(cleaned), flagged)
    yield from cleaned


_NOT_ALNUM = re.compile(r"[\W_]+")
_TRAILING = " \t)]\"'”’"
_HEAD_CHARS = 160  # raw characters normalised for the grouping key (enough for 40 letters and digits)


def _prefix_key(abstract: str) -> str:
    """Letters and digits only, case-folded, trailing ellipsis dropped: 'school‐to‐school c...' and
    'school-to-school collaboration' compare equal up to the cut."""
    text = abstract.rstrip(_TRAILING)
    if text.endswith("..."):
        text = text[:-3]
    elif text.endswith("…"):
        text = text[:-1]
    return _NOT_ALNUM.sub("", text.casefold())


def _head_key(abstract: str, min_chars: int) -> str:
    """The first `min_chars` letters and digits of the abstract (shorter when the abstract is)."""
    head = _NOT_ALNUM.sub("", abstract[:_HEAD_CHARS].casefold())
    if len(head) < min_chars and len(abstract) > _HEAD_CHARS:
        head = _prefix_key(abstract)
    return head[:min_chars]


def prefix_head(abstract: str, min_chars: int = MIN_PREFIX_CHARS) -> str | None:
    """The key `flag_truncated_prefixes` groups abstracts by: their first `min_chars` letters and digits,
    case-folded; None when the abstract has fewer (it is then never matched as a prefix, nor extended).

    Two abstracts can only be prefix and extension when their heads are equal, so a store keeps this
    key in an indexed column and compares full texts only within a head (`pipeline.batches`).
    """
    head = _head_key(abstract, min_chars)
    return head if len(head) == min_chars else None


def flag_truncated_prefixes(records: Sequence[Record], *, min_chars: int = MIN_PREFIX_CHARS) -> int:
    """Flag (in place) each record whose abstract is a strict prefix of another record's abstract:
    `truncated` and `prefix_of:<id of the longest such record>` (of equally long ones, the first in
    `records`). Returns how many were flagged.

    A prefix keeps at least `min_chars` letters and digits, so abstracts are first grouped by their
    first `min_chars` (`prefix_head`: cheap, from the start of the text only); only groups of two or
    more get full keys, which a sort then orders so that every key sits just before the keys it is a
    prefix of: O(n log n) overall, no pairwise comparison, and most abstracts are never normalised in
    full. Groups are independent: flagging any sub-list that holds whole groups, in the same relative
    order, flags those records exactly as the whole list does (what the bounded-memory pass relies on).
    """
    groups: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        head = prefix_head(record.abstract, min_chars)
        if head is not None:
            groups.setdefault(head, []).append(index)
    flagged = 0
    for members in groups.values():
        if len(members) > 1:
            flagged += _flag_group(records, members, min_chars)
    return flagged


def _flag_group(records: Sequence[Record], members: list[int], min_chars: int) -> int:
    by_key: dict[str, list[int]] = {}
    keys_of: dict[str, str] = {}  # a group's members often share their abstract (the same work from two sources)
    for index in members:
        abstract = records[index].abstract
        key = keys_of.get(abstract)
        if key is None:
            key = keys_of[abstract] = _prefix_key(abstract)
        if len(key) >= min_chars:
            by_key.setdefault(key, []).append(index)
    keys = sorted(by_key)
    flagged = 0
    for position, key in enumerate(keys):
        longest = _longest_extension(keys, position)
        if longest is None:
            continue
        target = records[min(by_key[longest])]
        target_id = target.record_id or target.id
        for index in by_key[key]:
            _append_flags(records[index].flags, ["truncated", f"prefix_of:{target_id}"])
            flagged += 1
    return flagged


def _longest_extension(keys: list[str], position: int) -> str | None:
    key = keys[position]
    longest = None
    for other in keys[position + 1 :]:
        if not other.startswith(key):
            break
        if longest is None or len(other) > len(longest):
            longest = other
    return longest


__all__ = [
    "Boilerplate",
    "CHANGE_FLAGS",
    "clean_record",
    "clean_records",
    "clean_text",
    "detect_language",
    "flag_truncated_prefixes",
    "language_flags",
    "load_boilerplate",
    "prefix_head",
]
