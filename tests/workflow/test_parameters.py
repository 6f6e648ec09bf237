"""Parameter declarations and the coercion of overrides."""

import pytest

from forgeline.errors import ParameterError, PipelineDefinitionError
from forgeline.workflow import ParameterBoolean, ParameterFloat, ParameterInteger, ParameterString
from forgeline.workflow.parameters import parameter_from_request, resolve_parameter_values


def test_overrides_are_coerced_to_the_declared_type() -> None:
    params = [ParameterInteger("Epochs", 3), ParameterFloat("Ratio", 0.8), ParameterBoolean("Fast", False),
              ParameterString("Mode", "daily", enum_values=["daily", "monthly"])]
    values = resolve_parameter_values(params, {"Epochs": "5", "Ratio": "0.5", "Fast": "true", "Mode": "monthly"})
    assert values == {"Epochs": 5, "Ratio": 0.5, "Fast": True, "Mode": "monthly"}
    assert resolve_parameter_values(params, {}) == {"Epochs": 3, "Ratio": 0.8, "Fast": False, "Mode": "daily"}


@pytest.mark.parametrize(("override", "fragment"), [
    ({"Nope": 1}, "'Nope'"),
    ({"Epochs": "three"}, "'Epochs' expects Integer"),
    ({"Epochs": 2.5}, "'Epochs'"),
    ({"Epochs": True}, "'Epochs'"),
    ({"Ratio": "abc"}, "'Ratio' expects Float"),
    ({"Fast": "maybe"}, "'Fast' expects Boolean"),
    ({"Mode": "weekly"}, "'Mode' must be one of"),
    ({"Mode": 3}, "'Mode' expects String"),
])
def test_bad_overrides_name_the_parameter(override: dict, fragment: str) -> None:
    params = [ParameterInteger("Epochs", 3), ParameterFloat("Ratio", 0.8), ParameterBoolean("Fast", False),
              ParameterString("Mode", "daily", enum_values=["daily", "monthly"])]
    with pytest.raises(ParameterError, match=fragment.replace("(", r"\(")):
        resolve_parameter_values(params, override)


def test_a_parameter_without_default_must_be_given() -> None:
    with pytest.raises(ParameterError, match="'Data' has no default"):
        resolve_parameter_values([ParameterString("Data")], {})
    assert resolve_parameter_values([ParameterString("Data")], {"Data": "x"}) == {"Data": "x"}


def test_default_outside_enum_is_a_definition_error() -> None:
    with pytest.raises(PipelineDefinitionError, match="not one of"):
        ParameterString("Mode", "weekly", enum_values=["daily"])


def test_declaration_round_trip() -> None:
    for p in (ParameterInteger("A", 1, enum_values=[1, 2]), ParameterFloat("B", 0.5), ParameterBoolean("C", True),
              ParameterString("D")):
        rebuilt = parameter_from_request(p.to_request())
        assert type(rebuilt) is type(p) and rebuilt.to_request() == p.to_request()
