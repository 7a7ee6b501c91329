"""Codebook YAML -> Codebook, validated on load with every problem reported at once.

A codebook names its categories (each with the cue words that decide that a sentence speaks of it),
the modifiers that suppress a code or turn a benefit's direction (negation, evidence gaps, conditionals),
and its codes. Each code carries its definition for human coders and its rules for the engine:

- ``phrases`` / ``lemmas`` / ``patterns`` / ``regexes``: the concept ("trust between heads"); the
  category is decided by the nearest category cue in the same sentence ("hindered", "enablers", "led to");
- ``standalone``: phrases that name the category themselves ("mistrust", "lack of time") and need no cue.

Problems are located as ``codes -> barriers.funding -> patterns -> 2: unknown token attribute 'LEMA'``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.errors import ConfigError

CATEGORIES: tuple[str, ...] = ("reasons", "facilitators", "barriers", "benefits")
DIRECTIONS: tuple[str, ...] = ("supporting", "contrasting", "mixed")
ORIGINS: tuple[str, ...] = ("deductive", "inductive")
MODIFIER_KINDS: tuple[str, ...] = (
    "negation",
    "pseudo_negation",
    "gap",
    "conditional",
    "inquiry",
    "finding",
    "clause_breaks",
    "blockers",
)

REQUIRED_CODE_IDS: tuple[str, ...] = (
    "reasons.policy_mandate",
    "reasons.school_improvement",
    "reasons.support_struggling",
    "reasons.equity",
    "reasons.resources",
    "reasons.professional_learning",
    "reasons.isolation",
    "reasons.accountability_pressure",
    "facilitators.trust_relationships",
    "facilitators.shared_vision",
    "facilitators.leadership",
    "facilitators.brokerage",
    "facilitators.time_resources",
    "facilitators.matching",
    "facilitators.proximity",
    "facilitators.structures",
    "facilitators.enquiry_evidence",
    "facilitators.reciprocity",
    "barriers.competition",
    "barriers.accountability",
    "barriers.time_workload",
    "barriers.funding",
    "barriers.distance",
    "barriers.power_imbalance",
    "barriers.lack_of_trust",
    "barriers.turnover",
    "barriers.fragmentation",
    "benefits.student_outcomes",
    "benefits.teacher_development",
    "benefits.leadership_capacity",
    "benefits.practice_improvement",
    "benefits.school_performance",
    "benefits.equity",
    "benefits.wider_opportunities",
    "benefits.system_capacity",
    "benefits.mutual_support",
    "benefits.culture_expectations",
)

_ID_RE = re.compile(r"^([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)$")
_RULE_FIELDS = ("phrases", "lemmas", "standalone")

# ---------------------------------------------------------------- dataclasses (what the engine uses)


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    direction: str = ""  # only for categories with directions (benefits)


@dataclass(frozen=True, slots=True)
class Code:
    id: str
    category: str
    name: str
    label: str
    definition: str
    include: str = ""
    exclude: str = ""
    examples: tuple[Example, ...] = ()
    phrases: tuple[str, ...] = ()  # matched on the lower-cased text; category from a cue
    lemmas: tuple[str, ...] = ()  # matched on lemmas; category from a cue
    patterns: tuple[tuple[dict[str, Any], ...], ...] = ()  # spaCy Matcher token patterns; category from a cue
    regexes: tuple[str, ...] = ()  # over the lower-cased sentence; category from a cue
    standalone: tuple[str, ...] = ()  # lemma phrases that carry the category themselves
    seed_words: tuple[str, ...] = ()
    origin: str = "deductive"


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    label: str
    definition: str
    cues: tuple[str, ...]  # lemma phrases ("barrier to", "hinder")
    cue_regexes: tuple[str, ...] = ()  # over the lower-cased sentence ("motivat\w*")
    directional: bool = False  # codes of this category carry supporting/contrasting/mixed


@dataclass(frozen=True, slots=True)
class Modifiers:
    negation: tuple[str, ...] = ()  # "no", "did not", "no evidence": suppress, or make a benefit contrasting
    gap: tuple[str, ...] = ()  # "little research", "few studies": an evidence gap, not a finding
    conditional: tuple[str, ...] = ()  # "under certain conditions": a benefit becomes mixed
    inquiry: tuple[str, ...] = ()  # "whether", "we examine": a question, not a benefit found
    finding: tuple[str, ...] = ()  # "found", "show": a finding, which overrides an inquiry word
    clause_breaks: tuple[str, ...] = ()  # "but", "however", ";": where negation scope stops
    pseudo_negation: tuple[str, ...] = ()  # "not only", "no doubt": look like negation, are not
    blockers: tuple[str, ...] = ()  # "academy trust": words that look like a concept but are not


@dataclass(frozen=True, slots=True)
class Codebook:
    name: str
    version: str
    description: str
    categories: dict[str, Category]
    codes: tuple[Code, ...]
    modifiers: Modifiers
    directions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # contrasting/mixed cue phrases
    lenses: dict[str, tuple[str, ...]] = field(default_factory=dict)  # theoretical lens -> phrases
    scope: tuple[str, ...] = ()  # words that put a study in the review's domain; none of them: not coded
    # Where it was read from, for messages only: not part of what the codebook is, so a review moved to another
    # folder keeps its coding cache and topic model (their keys hash the repr).
    path: str = field(default="", repr=False, compare=False)

    def fingerprint(self) -> str:
        """A hash of everything the codebook says (its repr: every code, rule and cue; not its path): the coding
        cache and the topic model are keyed by it, so any edit invalidates them."""
        return hashlib.sha256(repr(self).encode("utf-8")).hexdigest()

    def code(self, code_id: str) -> Code:
        for code in self.codes:
            if code.id == code_id:
                return code
        raise KeyError(code_id)

    def ids(self) -> list[str]:
        return [code.id for code in self.codes]


# ---------------------------------------------------------------- schema (shape only; meaning checked below)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _ExampleModel(_Strict):
    text: str
    direction: str = ""


class _CodeModel(_Strict):
    id: str
    label: str
    definition: str
    include: str = ""
    exclude: str = ""
    examples: list[str | _ExampleModel] = Field(default_factory=list)
    phrases: list[str] = Field(default_factory=list)
    lemmas: list[str] = Field(default_factory=list)
    patterns: list[list[dict[str, Any]]] = Field(default_factory=list)
    regexes: list[str] = Field(default_factory=list)
    standalone: list[str] = Field(default_factory=list)
    seed_words: list[str] = Field(default_factory=list)
    origin: Literal["deductive", "inductive"] = "deductive"


class _CategoryModel(_Strict):
    label: str
    definition: str
    cues: list[str] = Field(default_factory=list)
    cue_regexes: list[str] = Field(default_factory=list)
    directional: bool = False


class _ModifiersModel(_Strict):
    negation: list[str] = Field(default_factory=list)
    gap: list[str] = Field(default_factory=list)
    conditional: list[str] = Field(default_factory=list)
    inquiry: list[str] = Field(default_factory=list)
    finding: list[str] = Field(default_factory=list)
    clause_breaks: list[str] = Field(default_factory=list)
    pseudo_negation: list[str] = Field(default_factory=list)
    blockers: list[str] = Field(default_factory=list)


class _CodebookModel(_Strict):
    name: str
    version: str | int = "1"
    description: str = ""
    categories: dict[str, _CategoryModel]
    modifiers: _ModifiersModel = Field(default_factory=_ModifiersModel)
    directions: dict[str, list[str]] = Field(default_factory=dict)
    lenses: dict[str, list[str]] = Field(default_factory=dict)
    scope: list[str] = Field(default_factory=list)
    codes: list[_CodeModel]


# ---------------------------------------------------------------- public API


def load_codebook(path: str | Path) -> Codebook:
    """Read and validate a codebook; raise ConfigError listing every problem with its location."""
    model, problems = _parse(Path(path))
    if problems or model is None:
        raise ConfigError(path, problems or ["the codebook is empty"])
    return _to_codebook(model, str(path))


def check_codebook(path: str | Path) -> list[str]:
    """Every problem in a codebook file, each with its location; an empty list when it is valid."""
    return _parse(Path(path))[1]


def codebook_from_dict(data: dict[str, Any], *, path: str = "<dict>") -> Codebook:
    """Validate an already-parsed codebook (tests, generated codebooks)."""
    model, problems = _validate(data, source=path)
    if problems or model is None:
        raise ConfigError(path, problems or ["the codebook is empty"])
    return _to_codebook(model, path)


# ---------------------------------------------------------------- parsing and checks


def _parse(path: Path) -> tuple[_CodebookModel | None, list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [f"file not found: {path} (give the path of a codebook YAML file)"]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"cannot read the file as UTF-8 text: {exc}"]
    data, problems = _load_yaml(text)
    if data is None:
        return None, problems
    model, more = _validate(data, source=str(path))
    return model, problems + more


def _load_yaml(text: str) -> tuple[Any, list[str]]:
    """Parse YAML, reporting duplicate mapping keys (which plain YAML would silently overwrite)."""
    import yaml

    duplicates: list[str] = []

    class _Loader(yaml.SafeLoader):
        pass

    def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                duplicates.append(f"line {line}: duplicate key {key!r} (first at line {seen[key]})")
            else:
                seen[key] = line
        return loader.construct_mapping(node)

    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        return None, [f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"]
    if not isinstance(data, dict):
        return None, ["the codebook must be a YAML mapping with 'name', 'categories' and 'codes'"]
    return data, duplicates


def _validate(data: dict[str, Any], *, source: str) -> tuple[_CodebookModel | None, list[str]]:
    problems: list[str] = []
    try:
        model = _CodebookModel.model_validate(data)
    except ValidationError as exc:
        problems.extend(_schema_problems(exc, data))
        model = None
    problems.extend(_meaning_problems(data))
    return model, problems


def _code_label(data: dict[str, Any], index: int) -> str:
    """Name a code in a location by its id when it has one, else by its position."""
    codes = data.get("codes")
    if isinstance(codes, list) and index < len(codes):
        item = codes[index]
        if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"].strip():
            return item["id"]
    return str(index)


def _location(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    parts = [str(p) for p in loc]
    if len(loc) >= 2 and loc[0] == "codes" and isinstance(loc[1], int):
        parts[1] = _code_label(data, loc[1])
    # pydantic names union branches ('str', '_ExampleModel'); they are noise to a reviewer
    return " -> ".join(p for p in parts if p not in ("str", "_ExampleModel", "int") and not p.startswith("list["))


def _schema_problems(exc: ValidationError, data: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for error in exc.errors():
        loc = tuple(error["loc"])
        if error["type"] == "extra_forbidden":
            message = f"{_location(loc[:-1], data) or 'top level'}: unknown key {loc[-1]!r}"
        elif error["type"] == "missing":
            message = f"{_location(loc[:-1], data) or 'top level'}: missing key {loc[-1]!r}"
        elif error["type"] == "literal_error" and loc and loc[-1] == "origin":
            message = f"{_location(loc, data)}: must be 'deductive' or 'inductive', not {error.get('input')!r}"
        else:
            message = f"{_location(loc, data)}: {error['msg'].lower()}"
        if message not in seen:
            seen.add(message)
            problems.append(message)
    return _drop_union_noise(problems)


def _drop_union_noise(problems: list[str]) -> list[str]:
    """An example that is neither a string nor a mapping gives one error per branch; keep one."""
    kept: list[str] = []
    for problem in problems:
        where = problem.split(":", 1)[0]
        if "examples" in where and any(k.split(":", 1)[0] == where for k in kept):
            continue
        kept.append(problem)
    return kept


def _meaning_problems(data: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    categories = data.get("categories")
    known = set(categories).intersection(CATEGORIES) if isinstance(categories, dict) else set(CATEGORIES)
    if isinstance(categories, dict):
        problems.extend(_category_problems(categories))
    problems.extend(_direction_problems(data.get("directions")))
    problems.extend(_modifier_problems(data.get("modifiers")))
    problems.extend(_string_list_problems(data.get("scope"), "scope"))
    codes = data.get("codes")
    if isinstance(codes, list):
        problems.extend(_codes_problems(codes, known, categories if isinstance(categories, dict) else {}))
    return problems


def _category_problems(categories: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for name, body in categories.items():
        where = f"categories -> {name}"
        if name not in CATEGORIES:
            problems.append(f"{where}: unknown category {name!r} (use one of {', '.join(CATEGORIES)})")
        if not isinstance(body, dict):
            continue
        for key in ("label", "definition"):
            if isinstance(body.get(key), str) and not body[key].strip():
                problems.append(f"{where} -> {key}: must not be empty")
        problems.extend(_string_list_problems(body.get("cues"), f"{where} -> cues"))
        problems.extend(_regex_problems(body.get("cue_regexes"), f"{where} -> cue_regexes"))
    return problems


def _direction_problems(directions: Any) -> list[str]:
    if not isinstance(directions, dict):
        return []
    problems: list[str] = []
    for name, words in directions.items():
        where = f"directions -> {name}"
        if name not in DIRECTIONS or name == "supporting":
            problems.append(f"{where}: unknown direction {name!r} (cue lists exist for 'contrasting' and 'mixed')")
        problems.extend(_string_list_problems(words, where))
    return problems


def _modifier_problems(modifiers: Any) -> list[str]:
    if not isinstance(modifiers, dict):
        return []
    problems: list[str] = []
    for kind, words in modifiers.items():
        problems.extend(_string_list_problems(words, f"modifiers -> {kind}"))
    return problems


def _string_list_problems(values: Any, where: str) -> list[str]:
    if not isinstance(values, list):
        return []
    return [f"{where} -> {i}: must not be empty" for i, v in enumerate(values) if isinstance(v, str) and not v.strip()]


def _regex_problems(values: Any, where: str) -> list[str]:
    problems: list[str] = []
    for i, value in enumerate(values if isinstance(values, list) else []):
        if not isinstance(value, str):
            continue
        try:
            re.compile(value)
        except re.error as exc:
            problems.append(f"{where} -> {i}: broken regular expression {value!r} ({exc})")
    return problems


def _codes_problems(codes: list[Any], known: set[str], categories: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    first_seen: dict[str, int] = {}
    matcher = _pattern_matcher()
    for index, code in enumerate(codes):
        if not isinstance(code, dict):
            continue
        label = code.get("id") if isinstance(code.get("id"), str) and code.get("id", "").strip() else str(index)
        where = f"codes -> {label}"
        problems.extend(_id_problems(code.get("id"), where, index, known, first_seen))
        problems.extend(_text_problems(code, where))
        problems.extend(_rule_problems(code, where, matcher))
        category = label.split(".", 1)[0] if "." in label else ""
        directional = bool(isinstance(categories.get(category), dict) and categories[category].get("directional"))
        problems.extend(_example_problems(code.get("examples"), where, directional))
    return problems


def _id_problems(code_id: Any, where: str, index: int, known: set[str], first_seen: dict[str, int]) -> list[str]:
    if not isinstance(code_id, str):
        return []
    if not code_id.strip():
        return [f"{where} -> id: must not be empty"]
    match = _ID_RE.match(code_id)
    if not match:
        return [f"{where} -> id: {code_id!r} is not of the form category.name (lower case, digits, underscores)"]
    problems = []
    if match.group(1) not in known:
        problems.append(f"{where} -> id: unknown category {match.group(1)!r} (use one of {', '.join(sorted(known))})")
    if code_id in first_seen:
        problems.append(f"{where} -> id: duplicate id {code_id!r} (first defined as code number {first_seen[code_id]})")
    else:
        first_seen[code_id] = index + 1
    return problems


def _text_problems(code: dict[str, Any], where: str) -> list[str]:
    problems = []
    for key in ("label", "definition"):
        if isinstance(code.get(key), str) and not code[key].strip():
            problems.append(f"{where} -> {key}: must not be empty")
    for key in _RULE_FIELDS + ("seed_words",):
        problems.extend(_string_list_problems(code.get(key), f"{where} -> {key}"))
    has_rule = any(code.get(key) for key in _RULE_FIELDS + ("patterns", "regexes"))
    if not has_rule and isinstance(code.get("id"), str):
        problems.append(f"{where}: no rules (give phrases, lemmas, patterns, regexes or standalone)")
    return problems


def _example_problems(examples: Any, where: str, directional: bool) -> list[str]:
    problems: list[str] = []
    for i, example in enumerate(examples if isinstance(examples, list) else []):
        text = example if isinstance(example, str) else example.get("text") if isinstance(example, dict) else None
        if isinstance(text, str) and not text.strip():
            problems.append(f"{where} -> examples -> {i}: must not be empty")
        direction = example.get("direction", "") if isinstance(example, dict) else ""
        if not isinstance(direction, str) or not direction:
            continue
        if not directional:
            problems.append(f"{where} -> examples -> {i} -> direction: only codes of a directional category have one")
        elif direction not in DIRECTIONS:
            problems.append(
                f"{where} -> examples -> {i} -> direction: unknown direction {direction!r} "
                f"(use one of {', '.join(DIRECTIONS)})"
            )
    return problems


def _rule_problems(code: dict[str, Any], where: str, matcher: Any) -> list[str]:
    problems = _regex_problems(code.get("regexes"), f"{where} -> regexes")
    patterns = code.get("patterns")
    for i, pattern in enumerate(patterns if isinstance(patterns, list) else []):
        if isinstance(pattern, list) and all(isinstance(t, dict) for t in pattern):
            problems.extend(f"{where} -> patterns -> {i}{p}" for p in _pattern_problems(pattern, matcher))
    return problems


def _pattern_matcher() -> Any:
    from pipeline.light_imports import import_spacy

    spacy = import_spacy()
    from spacy.matcher import Matcher

    return Matcher(spacy.blank("en").vocab, validate=True)


_SPACY_ERROR_RE = re.compile(r"^- \[pattern -> (\d+)((?: -> [^\]]+)?)\] (.*)$")
_ANCHOR_ATTRS = ("LOWER", "LEMMA", "ORTH", "TEXT")
_NO_ANCHOR = (
    ": no required token has a literal LOWER, LEMMA, ORTH or TEXT value (or a REGEX on one), "
    "so the pre-filter cannot find it"
)


def _pattern_problems(pattern: list[dict[str, Any]], matcher: Any) -> list[str]:
    """Validate one token pattern with spaCy's own Matcher validation; problems start with ': ' or ' -> '."""
    from spacy.errors import MatchPatternError

    if not pattern:
        return [": a token pattern must have at least one token"]
    try:
        matcher.add("_check", [pattern])
    except MatchPatternError as exc:
        return _spacy_pattern_messages(str(exc))
    except re.error as exc:
        return [f": broken regular expression in a REGEX value ({exc})"]
    except (ValueError, TypeError, KeyError) as exc:
        return [f": spaCy rejects the pattern ({exc})"]
    finally:
        if "_check" in matcher:
            matcher.remove("_check")
    if not any(_anchor_values(token) for token in pattern):
        return [_NO_ANCHOR]
    return []


def _spacy_pattern_messages(text: str) -> list[str]:
    messages = []
    for line in text.splitlines():
        match = _SPACY_ERROR_RE.match(line.strip())
        if not match:
            continue
        token, path, message = match.groups()
        keys = [k for k in path.split(" -> ") if k]
        if message == "Extra inputs are not permitted" and len(keys) == 1:
            where = f" (token {token})" if int(token) else ""
            messages.append(f": unknown token attribute {keys[0]!r}{where}")
        elif message == "Extra inputs are not permitted":
            messages.append(f" -> {token} -> {keys[0]}: unknown key {keys[-1]!r}")
        else:
            keys = [k for k in keys if not k.startswith(("str", "constrained", "TokenPattern", "int", "bool"))]
            messages.append(f" -> {token}{''.join(' -> ' + k for k in keys)}: {message.lower()}")
    return list(dict.fromkeys(messages)) or [": spaCy rejects the pattern"]


def _anchor_values(token: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(attribute, value, is_regex) a required token carries; the pre-filter looks for them in the raw text."""
    if token.get("OP") in ("?", "*", "!"):
        return []
    values: list[tuple[str, str, bool]] = []
    for attr in _ANCHOR_ATTRS:
        spec = token.get(attr)
        if isinstance(spec, str):
            values.append((attr, spec, False))
        elif isinstance(spec, dict):
            if isinstance(spec.get("IN"), list):
                values.extend((attr, v, False) for v in spec["IN"] if isinstance(v, str))
            if isinstance(spec.get("REGEX"), str):
                values.append((attr, spec["REGEX"], True))
    return values


# ---------------------------------------------------------------- model -> dataclasses


def _to_codebook(model: _CodebookModel, path: str) -> Codebook:
    categories = {
        name: Category(
            name=name,
            label=body.label,
            definition=body.definition,
            cues=tuple(body.cues),
            cue_regexes=tuple(body.cue_regexes),
            directional=body.directional,
        )
        for name, body in model.categories.items()
    }
    codes = tuple(_to_code(code) for code in model.codes)
    mods = model.modifiers
    return Codebook(
        name=model.name,
        version=str(model.version),
        description=model.description,
        categories=categories,
        codes=codes,
        modifiers=Modifiers(
            negation=tuple(mods.negation),
            gap=tuple(mods.gap),
            conditional=tuple(mods.conditional),
            inquiry=tuple(mods.inquiry),
            finding=tuple(mods.finding),
            clause_breaks=tuple(mods.clause_breaks),
            pseudo_negation=tuple(mods.pseudo_negation),
            blockers=tuple(mods.blockers),
        ),
        directions={k: tuple(v) for k, v in model.directions.items()},
        lenses={k: tuple(v) for k, v in model.lenses.items()},
        scope=tuple(model.scope),
        path=path,
    )


def _to_code(code: _CodeModel) -> Code:
    category, name = code.id.split(".", 1)
    examples = tuple(
        Example(text=e) if isinstance(e, str) else Example(text=e.text, direction=e.direction) for e in code.examples
    )
    return Code(
        id=code.id,
        category=category,
        name=name,
        label=code.label,
        definition=code.definition,
        include=code.include,
        exclude=code.exclude,
        examples=examples,
        phrases=tuple(code.phrases),
        lemmas=tuple(code.lemmas),
        patterns=tuple(tuple(token for token in p) for p in code.patterns),
        regexes=tuple(code.regexes),
        standalone=tuple(code.standalone),
        seed_words=tuple(code.seed_words),
        origin=code.origin,
    )


def anchor_values(token: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Public for the engine's pre-filter: the literal values (or regexes) a pattern token requires."""
    return _anchor_values(token)
