"""Package ids: the one parser every layer uses for ``group/7``, ``group@7``, ``group@approved``, ``group@latest``."""

from __future__ import annotations

import pytest

from forgeline.workflow.models import PackageId, parse_package_arn, parse_package_id


@pytest.mark.parametrize(("text", "expected"), [
    ("digits-cnn/7", PackageId("digits-cnn", "7")),
    ("digits-cnn@7", PackageId("digits-cnn", "7")),
    (" payments@007 ", PackageId("payments", "7")),
    ("payments@Approved", PackageId("payments", "approved")),
    ("payments@latest", PackageId("payments", "latest")),
])
def test_every_spelling_of_a_package_parses_to_one_value(text: str, expected: PackageId) -> None:
    assert parse_package_id(text) == expected


@pytest.mark.parametrize("text", ["payments", "payments@", "@7", "/7", "payments/", "payments@newest",
                                  "payments/approved", "payments/latest", "payments@-1"])
def test_text_that_names_no_package_is_none(text: str) -> None:
    assert parse_package_id(text) is None


def test_a_version_is_known_only_for_a_numbered_package() -> None:
    assert PackageId("g", "3").version == 3
    assert PackageId("g", "approved").version is None
    assert str(parse_package_id("g/3")) == "g@3"


def test_package_arns_name_exactly_one_version() -> None:
    assert parse_package_arn("digits-cnn/7") == ("digits-cnn", 7)
    assert parse_package_arn("digits-cnn@7") == ("digits-cnn", 7)
    assert parse_package_arn("digits-cnn@approved") is None
    assert parse_package_arn("digits-cnn") is None
