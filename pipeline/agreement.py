"""Agreement statistics from the decisions ledger: reviewer vs reviewer, machine vs reviewers, rule precision.

Items are (study, code) pairs. What a reviewer says about an item is the outcome of their latest decision on it:

    keep[:direction]        accept, add, change_direction (the code applies; for benefits, with that direction)
    reject                  reject
    change_code:<new code>  change_code

Reviewer vs reviewer compares these outcomes on the items both reviewers decided (pairwise: percent agreement,
Cohen's kappa, Krippendorff's alpha; all reviewers together: pairwise percent agreement and Krippendorff's alpha,
which allows any number of reviewers and missing decisions). Machine vs reviewers asks one question per item,
"does the code apply to the study?": the machine says yes for every code it assigned (method rule or topic) and
no otherwise; a reviewer says yes for keep, no for reject, and, on a change_code, no for the old code and yes for
the new one. Rule precision counts, per rule and per code, the machine codes reviewers kept against those they
removed (decisions in force).

Kappa and alpha are NaN where they are undefined: fewer than two items, or a single value used throughout.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import pandas as pd

from pipeline.ledger import KEEPS, MACHINE_METHODS, REMOVES, in_force, keys_of, latest_by_reviewer

ALL = "(all codes)"
IN_FORCE = "(decisions in force)"
PAIR_COLUMNS = ["reviewer_a", "reviewer_b", "code", "n_items", "n_agree", "percent_agreement", "cohen_kappa",
                "krippendorff_alpha"]
GROUP_COLUMNS = ["code", "n_items", "n_reviewers", "percent_agreement", "krippendorff_alpha"]
MACHINE_COLUMNS = ["reviewer", "code", "n_items", "n_agree", "percent_agreement", "cohen_kappa", "krippendorff_alpha"]
RULE_COLUMNS = ["method", "rule", "n_reviewed", "n_kept", "n_removed", "precision"]
CODE_COLUMNS = ["code", "n_machine", "n_reviewed", "n_kept", "n_direction_changed", "n_removed", "n_added",
                "precision"]


# ---------------------------------------------------------------- the statistics


def percent_agreement(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Share of items on which two raters gave the same value (NaN without items)."""
    if len(a) != len(b):
        raise ValueError("both raters must rate the same items")
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a) if a else math.nan


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's kappa (scikit-learn); NaN when undefined (under two items, or one value used by both raters)."""
    from sklearn.metrics import cohen_kappa_score

    labels = sorted({str(v) for v in itertools.chain(a, b)})
    if len(a) < 2 or len(labels) < 2:
        return math.nan
    return float(cohen_kappa_score([str(v) for v in a], [str(v) for v in b], labels=labels))


def krippendorff_alpha(units: Iterable[Sequence[Hashable]]) -> float:
    """Krippendorff's alpha for nominal data, from its definition (Krippendorff 2011, "Computing Krippendorff's
    Alpha-Reliability"): alpha = 1 - D_o / D_e over the coincidence matrix of values paired within units.

    `units` holds, per unit, the values the raters who rated it gave (missing ratings left out); units with fewer
    than two values are not pairable and are ignored. NaN when undefined (no pairable values, or one value only).
    """
    coincidence: Counter[tuple[Hashable, Hashable]] = Counter()
    for values in units:
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                coincidence[(c, k)] += n_c * (n_k - (c == k)) / (m - 1)
    totals: Counter[Hashable] = Counter()
    for (c, _k), value in coincidence.items():
        totals[c] += value
    n = sum(totals.values())
    expected = (n * n - sum(v * v for v in totals.values())) / (n - 1) if n > 1 else 0.0
    if expected <= 0:
        return math.nan
    observed = sum(value for (c, k), value in coincidence.items() if c != k)
    return 1.0 - observed / expected


# ---------------------------------------------------------------- outcomes


def outcome(decision: str, new_code: str = "", new_direction: str = "") -> str:
    """What a decision says about its item, as one nominal value."""
    if decision in KEEPS:
        return "keep" + (f":{new_direction}" if new_direction else "")
    if decision == "change_code":
        return f"change_code:{new_code}"
    return "reject"


def _reviewer_outcomes(ledger: pd.DataFrame) -> dict[str, dict[tuple[str, str], str]]:
    """reviewer -> {(study, code): outcome}."""
    out: dict[str, dict[tuple[str, str], str]] = {}
    for rec in latest_by_reviewer(ledger).to_dict("records"):
        key = (str(rec["study_id"]), str(rec["code"]))
        out.setdefault(str(rec["reviewer"]), {})[key] = outcome(rec["decision"], rec["new_code"], rec["new_direction"])
    return out


def _presence(decisions: pd.DataFrame) -> dict[tuple[str, str], int]:
    """(study, code) -> 1 if the decisions say the code applies, 0 if not (a change_code speaks of two codes)."""
    said: dict[tuple[str, str], int] = {}
    for rec in decisions.sort_values("sequence", kind="stable").to_dict("records"):
        key = (str(rec["study_id"]), str(rec["code"]))
        said[key] = 1 if rec["decision"] in KEEPS else 0
        if rec["decision"] == "change_code":
            said[(key[0], str(rec["new_code"]))] = 1
    return said


def _machine_keys(ledger: pd.DataFrame, assignments: pd.DataFrame | None) -> set[tuple[str, str]]:
    keys = {key for key, m in zip(keys_of(ledger), ledger["machine_method"], strict=True) if m in MACHINE_METHODS}
    if assignments is not None and not assignments.empty:
        machine = assignments[assignments["method"].isin(MACHINE_METHODS)]
        keys |= set(keys_of(machine))
    return keys


# ---------------------------------------------------------------- tables


def reviewer_pairs(ledger: pd.DataFrame) -> pd.DataFrame:
    """Each pair of reviewers on the items both decided, overall and per code (PAIR_COLUMNS)."""
    outcomes = _reviewer_outcomes(ledger)
    rows = []
    for a, b in itertools.combinations(sorted(outcomes), 2):
        shared = sorted(set(outcomes[a]) & set(outcomes[b]))
        for code, keys in _by_code(shared):
            x = [outcomes[a][k] for k in keys]
            y = [outcomes[b][k] for k in keys]
            rows.append([a, b, code, len(keys), sum(p == q for p, q in zip(x, y, strict=True)), percent_agreement(x, y),
                         cohen_kappa(x, y), krippendorff_alpha(list(zip(x, y, strict=True)))])
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def reviewer_group(ledger: pd.DataFrame) -> pd.DataFrame:
    """All reviewers together on the items at least two decided, overall and per code (GROUP_COLUMNS)."""
    outcomes = _reviewer_outcomes(ledger)
    units: dict[tuple[str, str], list[str]] = {}
    for said in outcomes.values():
        for key, value in said.items():
            units.setdefault(key, []).append(value)
    shared = sorted(k for k, v in units.items() if len(v) >= 2)
    rows = []
    for code, keys in _by_code(shared):
        values = [units[k] for k in keys]
        pairs = [(p, q) for v in values for p, q in itertools.combinations(v, 2)]
        agree = sum(p == q for p, q in pairs) / len(pairs) if pairs else math.nan
        n_reviewers = len({r for r, said in outcomes.items() if any(k in said for k in keys)})
        rows.append([code, len(keys), n_reviewers, agree, krippendorff_alpha(values)])
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


def machine_vs_reviewers(ledger: pd.DataFrame, assignments: pd.DataFrame | None = None) -> pd.DataFrame:
    """Machine vs each reviewer, and vs the decisions in force, on 'does the code apply?' (MACHINE_COLUMNS)."""
    machine = _machine_keys(ledger, assignments)
    latest = latest_by_reviewer(ledger)
    groups = [(str(r), latest[latest["reviewer"] == r]) for r in sorted(set(latest["reviewer"]))]
    groups.append((IN_FORCE, in_force(ledger)))
    rows = []
    for name, decisions in groups:
        said = _presence(decisions)
        for code, keys in _by_code(sorted(said)):
            x = [int(k in machine) for k in keys]
            y = [said[k] for k in keys]
            rows.append([name, code, len(keys), sum(p == q for p, q in zip(x, y, strict=True)), percent_agreement(x, y),
                         cohen_kappa(x, y), krippendorff_alpha(list(zip(x, y, strict=True)))])
    return pd.DataFrame(rows, columns=MACHINE_COLUMNS)


def rule_precision(ledger: pd.DataFrame) -> pd.DataFrame:
    """Per machine rule: of the codes it produced that a decision in force covers, the share reviewers kept."""
    force = in_force(ledger)
    force = force[force["machine_method"].isin(MACHINE_METHODS)]
    rows = []
    for (method, rule), group in force.groupby(["machine_method", "machine_rule"], sort=True):
        kept = int(group["decision"].isin(KEEPS).sum())
        removed = int(group["decision"].isin(REMOVES).sum())
        rows.append([method, rule, len(group), kept, removed, _ratio(kept, kept + removed)])
    return pd.DataFrame(rows, columns=RULE_COLUMNS)


def code_precision(ledger: pd.DataFrame, assignments: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per code: machine codes, how many a decision in force covers, kept / direction changed / removed, codes
    reviewers added that the machine missed, and precision = kept / (kept + removed) (CODE_COLUMNS)."""
    force = in_force(ledger)
    machine = _machine_keys(ledger, assignments)
    machine_counts = Counter(code for _s, code in machine)
    unknown_to_machine = pd.Series([key not in machine for key in keys_of(force)], index=force.index, dtype=bool)
    reviewed = force[~unknown_to_machine]
    added = force[(force["decision"] == "add") & unknown_to_machine]
    changed_to = Counter(str(c) for c in force.loc[force["decision"] == "change_code", "new_code"])
    codes = sorted(set(machine_counts) | set(force["code"].astype(str)) | set(changed_to))
    rows = []
    for code in codes:
        mine = reviewed[reviewed["code"] == code]
        kept = int(mine["decision"].isin(KEEPS).sum())
        removed = int(mine["decision"].isin(REMOVES).sum())
        rows.append([code, machine_counts.get(code, 0), len(mine), kept,
                     int((mine["decision"] == "change_direction").sum()), removed,
                     int((added["code"] == code).sum()) + changed_to.get(code, 0), _ratio(kept, kept + removed)])
    return pd.DataFrame(rows, columns=CODE_COLUMNS)


def agreement_report(ledger: pd.DataFrame, assignments: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Every agreement table, ready for the CLI, an XLSX sheet each, or the HTML report:

    reviewer_pairs, reviewers_all, machine_vs_reviewers, rule_precision, code_precision.
    """
    return {
        "reviewer_pairs": reviewer_pairs(ledger),
        "reviewers_all": reviewer_group(ledger),
        "machine_vs_reviewers": machine_vs_reviewers(ledger, assignments),
        "rule_precision": rule_precision(ledger),
        "code_precision": code_precision(ledger, assignments),
    }


def summary_lines(report: dict[str, pd.DataFrame]) -> list[str]:
    """The overall figures as short lines for the command line."""
    lines = []
    for rec in _overall(report["reviewer_pairs"]):
        lines.append(f"{rec['reviewer_a']} vs {rec['reviewer_b']}: {rec['n_items']} shared items, "
                     f"{_pct(rec['percent_agreement'])} agreement, kappa {_num(rec['cohen_kappa'])}, "
                     f"alpha {_num(rec['krippendorff_alpha'])}")
    for rec in _overall(report["reviewers_all"]):
        lines.append(f"all {rec['n_reviewers']} reviewers: {rec['n_items']} items, alpha "
                     f"{_num(rec['krippendorff_alpha'])}")
    for rec in _overall(report["machine_vs_reviewers"]):
        lines.append(f"machine vs {rec['reviewer']}: {rec['n_items']} items, {_pct(rec['percent_agreement'])} "
                     f"agreement, kappa {_num(rec['cohen_kappa'])}")
    codes = report["code_precision"]
    kept, removed = int(codes["n_kept"].sum()), int(codes["n_removed"].sum())
    lines.append(f"machine codes reviewed: {kept + removed}, kept {kept}, removed {removed}, precision "
                 f"{_pct(_ratio(kept, kept + removed))}")
    return lines


# ---------------------------------------------------------------- helpers


def _by_code(keys: list[tuple[str, str]]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The overall group first, then one group per code; nothing when there are no keys."""
    if not keys:
        return []
    codes = sorted({code for _s, code in keys})
    return [(ALL, keys)] + [(code, [k for k in keys if k[1] == code]) for code in codes]


def _overall(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame[frame["code"] == ALL].to_dict("records") if not frame.empty else []


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else math.nan


def _pct(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def _num(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"
