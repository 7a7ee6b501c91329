from __future__ import annotations

import pandas as pd

from pipeline.assign import ASSIGNMENT_COLUMNS, assign, assignment_id


def _hits(method_rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"id": s, "code": c, "category": c.split(".")[0], "direction": "", "evidence": e, "confidence": conf}
            for s, c, e, conf in method_rows
        ]
    )


def test_rule_beats_topic_for_the_same_code() -> None:
    rules = _hits([("s1", "barriers.funding", "Funding was cut.", 0.9)])
    topics = _hits([("s1", "barriers.funding", "topic quote", 0.5), ("s1", "benefits.equity", "fairer", 0.4)])
    out = assign(rules, topics)
    assert list(out.columns) == ASSIGNMENT_COLUMNS
    assert out.set_index("code").loc["barriers.funding", "method"] == "rule"
    assert out.set_index("code").loc["benefits.equity", "method"] == "topic"
    assert len(out) == 2


def test_reviewer_wins_and_rejections_stick() -> None:
    rules = _hits([("s1", "barriers.funding", "Funding was cut.", 0.9), ("s2", "reasons.equity", "x", 0.8)])
    reviewer = pd.DataFrame(
        [
            {
                "assignment_id": assignment_id("s1", "barriers.funding", "own quote"),
                "study_id": "s1",
                "code": "barriers.funding",
                "category": "barriers",
                "direction": "",
                "evidence": "own quote",
                "method": "reviewer",
                "confidence": 1.0,
                "rule": "",
                "decided_by": "ana",
            }
        ]
    )
    out = assign(rules, None, reviewer_rows=reviewer, rejected={("s2", "reasons.equity")})
    assert out.to_dict("records")[0]["decided_by"] == "ana"
    assert ("s2", "reasons.equity") not in set(zip(out.study_id, out.code))


def test_assignment_ids_are_stable_and_whitespace_insensitive() -> None:
    assert assignment_id("s", "c", "a  b\n c") == assignment_id("s", "c", "a b c")
    assert assignment_id("s", "c", "a") != assignment_id("s", "d", "a")


def test_output_is_deterministic_whatever_the_input_order() -> None:
    rows = [("s2", "b.x", "q2", 0.5), ("s1", "a.y", "q1", 0.7), ("s1", "a.y", "q3", 0.9)]
    first = assign(_hits(rows), None)
    second = assign(_hits(list(reversed(rows))), None)
    pd.testing.assert_frame_equal(first, second)
    assert first.loc[0, "evidence"] == "q3"
