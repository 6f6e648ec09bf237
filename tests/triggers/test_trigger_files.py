"""Trigger files: JSON or YAML with pipeline_parameters; anything else is refused with the reason."""

from __future__ import annotations

import pytest

from forgeline.triggers.trigger_files import TriggerFileError, read_trigger_parameters


def test_json_and_yaml_give_their_pipeline_parameters_and_ignore_other_keys() -> None:
    assert read_trigger_parameters(b'{"pipeline_parameters": {"ModelType": "hgb", "TrainRatio": 0.8}, "by": "x"}',
                                   "a.json") == {"ModelType": "hgb", "TrainRatio": 0.8}
    assert read_trigger_parameters(b"pipeline_parameters:\n  ModelType: rf\nnote: weekly\n", "a.yaml") == {
        "ModelType": "rf"}
    assert read_trigger_parameters(b'{"export": "done"}', "a.json") == {}
    assert read_trigger_parameters(b"", "empty.yaml") == {}


@pytest.mark.parametrize(("data", "key", "reason"), [
    (b'{"pipeline_parameters": ', "a.json", "a.json: not valid JSON"),
    (b"a: [b", "a.yaml", "a.yaml: not valid JSON or YAML"),
    (b"- 1\n- 2\n", "a.yaml", "expected a mapping with 'pipeline_parameters', got a list"),
    (b'{"pipeline_parameters": [1]}', "a.json", "'pipeline_parameters' must map parameter names to values"),
    (b"\xff\xfe", "a.json", "a.json: not UTF-8 text"),
])
def test_what_cannot_start_anything_says_why(data: bytes, key: str, reason: str) -> None:
    with pytest.raises(TriggerFileError) as raised:
        read_trigger_parameters(data, key)
    assert reason in str(raised.value) and "\n" not in str(raised.value)
