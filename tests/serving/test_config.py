"""Endpoint configurations: model references, variant specs, settings and their JSON form."""

from __future__ import annotations

import pytest

from forgeline.errors import EndpointError
from forgeline.serving.config import EndpointConfig, ModelRef, VariantConfig


def test_model_references_name_a_version_the_approved_or_the_latest() -> None:
    assert ModelRef.parse("payments-de@7") == ModelRef("payments-de", "7")
    assert ModelRef.parse("payments-de@Approved").follows_registry
    assert str(ModelRef.parse("features@latest")) == "features@latest"
    assert not ModelRef.parse("g@3").follows_registry
    assert ModelRef.parse("payments-de/7") == ModelRef("payments-de", "7")  # a registry package id names it too


@pytest.mark.parametrize("text", ["payments", "payments@", "@7", "payments@0", "payments@newest"])
def test_a_malformed_model_reference_says_how_to_write_one(text: str) -> None:
    with pytest.raises(EndpointError, match="group@version"):
        ModelRef.parse(text)


def test_a_variant_spec_holds_a_pipeline_and_a_weight() -> None:
    variant = VariantConfig.parse("canary=features@3,payments-de@8:10")
    assert variant == VariantConfig("canary", (ModelRef("features", "3"), ModelRef("payments-de", "8")), 10.0)
    assert str(variant) == "canary=features@3,payments-de@8:10"
    with pytest.raises(EndpointError, match="name=group@version:weight"):
        VariantConfig.parse("payments-de@8:10")
    with pytest.raises(EndpointError, match="not a number"):
        VariantConfig.parse("canary=payments@8:ten")


def test_configs_round_trip_through_json_and_updates_keep_what_is_not_given() -> None:
    config = EndpointConfig.build(variants=["current=p@7:90", "canary=p@8:10"], max_batch_size=64, capture=0.05)
    assert EndpointConfig.from_json(config.to_json()) == config

    swapped = config.updated(models=["p@8"])
    assert [(v.name, v.weight) for v in swapped.variants] == [("AllTraffic", 1.0)]
    assert (swapped.max_batch_size, swapped.capture) == (64, 0.05)
    single = EndpointConfig.build(models=["f@1", "p@2"]).updated(models=["p@3"], max_batch_wait_us=0)
    assert single.variants[0].name == "AllTraffic" and single.max_batch_wait_us == 0


@pytest.mark.parametrize(("arguments", "message"), [
    ({}, "at least one model"),
    ({"variants": ["a=p@1:1", "a=p@2:1"]}, "variant names must differ"),
    ({"variants": ["a=p@1:0"]}, "weight above 0"),
    ({"variants": ["a=p@1:-1"]}, "0 or more"),
    ({"models": ["p@1"], "max_batch_size": 0}, "max batch size"),
    ({"models": ["p@1"], "capture": 1.5}, "capture"),
    ({"models": ["p@1"], "variants": ["a=p@1:1"]}, "not both"),
])
def test_bad_settings_are_refused_with_what_to_do(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(EndpointError, match=message):
        EndpointConfig.build(**arguments)  # type: ignore[arg-type]
