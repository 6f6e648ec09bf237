"""Metric conditions: the grammar users write after --when, and how it reads a step's property document."""

from __future__ import annotations

import pytest

from forgeline.alarms.conditions import parse_condition
from forgeline.errors import AlarmError

COMPARE = {"outputs": {}, "metrics": {"train_auc": 0.93},
           "Return": {"deviation": {"score_drop": 0.08, "label_shift": 0.01}, "status": "Rejected",
                      "checks": {"size_change": -0.6}, "reasons": ["a", "b"]}}


@pytest.mark.parametrize(("text", "expected"), [
    ("steps.Compare.properties.deviation.score_drop > 0.05", True),
    ("steps.Compare.properties.deviation.score_drop > 0.1", False),
    ("steps.Compare.properties.deviation.score_drop >= 0.08", True),
    ("steps.Compare.properties.checks.size_change < -0.5", True),
    ("steps.Compare.properties.status == 'Rejected'", True),
    ('steps.Compare.properties.status != "Rejected"', False),
    ("steps.Compare.metrics.train_auc <= 0.9", False),
    ("steps.Compare.return.reasons.1 == 'b'", True),
    ("steps.Compare.properties.deviation.score_drop > 0.1 or steps.Compare.properties.deviation.label_shift > 0",
     True),
    ("steps.Compare.properties.deviation.score_drop > 0.05 and steps.Compare.properties.deviation.label_shift > 0.05",
     False),
    ("(steps.Compare.properties.deviation.score_drop > 0.1 or steps.Compare.metrics.train_auc > 0.9) "
     "AND steps.Compare.properties.status == 'Rejected'", True),
    ("steps.Compare.properties.missing.value > 0", False),  # a missing value never rings
    ("steps.Compare.properties.status > 3", False),  # text against a number does not hold
])
def test_conditions_evaluate_on_the_property_document(text: str, expected: bool) -> None:
    assert parse_condition(text).holds(COMPARE) is expected


def test_a_condition_knows_its_step_and_its_foreach_copies() -> None:
    condition = parse_condition("steps.Compare.properties.deviation.score_drop > 0.05")
    assert condition.step == "Compare"
    assert condition.matches_step("Compare") and condition.matches_step("Package-mailer-Compare")
    assert not condition.matches_step("Comparex") and not condition.matches_step("Package-mailer-Register")
    assert [c.path for c in condition.comparisons()] == ["steps.Compare.properties.deviation.score_drop"]


@pytest.mark.parametrize(("text", "message"), [
    ("", "condition is empty"),
    ("steps.Compare.properties.x >> 0.05", "unexpected '>' at position 28"),
    ("steps.Compare.properties.x > ", "ends too early"),
    ("steps.Compare.properties.x = 1", "unexpected '=' at position 27"),
    ("Compare.properties.x > 1", "path 'Compare.properties.x' at position 0 must read steps.<Step>."),
    ("steps.Compare.score > 1", "must read steps.<Step>.<properties|metrics|outputs|return>"),
    ("steps.Compare.properties.x > 1 steps.Compare.properties.y > 2", "unexpected 'steps.Compare.properties.y'"),
    ("steps.Compare.properties.x > 1; rm -rf /", "unexpected ';' at position 30"),
    ("__import__('os').system('true') > 1", "unexpected '.' at position 16"),
    ("(steps.A.properties.x > 1", "ends too early: expected ')'"),
    ("steps.A.properties.x > 1 and steps.B.metrics.y > 2", "names several steps (A, B)"),
    ("steps.A.properties.x > foo", "unexpected 'foo'"),
])
def test_a_bad_condition_is_refused_naming_the_token(text: str, message: str) -> None:
    with pytest.raises(AlarmError) as caught:
        parse_condition(text)
    assert message in str(caught.value) and "\n" not in str(caught.value)
