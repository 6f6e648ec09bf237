"""The dispatcher's settings: the backoff schedule and the variables they come from."""

from __future__ import annotations

import pytest

from forgeline.alarms.settings import AlarmSettings
from forgeline.errors import ConfigurationError


def test_the_delay_doubles_up_to_its_cap_and_stops_after_the_last_try() -> None:
    settings = AlarmSettings(retry_seconds=30, max_retry_seconds=300, max_attempts=6)
    assert [settings.retry_delay(n) for n in range(1, 7)] == [30, 60, 120, 240, 300, None]


def test_settings_come_from_the_environment() -> None:
    settings = AlarmSettings.from_env({"FORGELINE_SMTP_URL": "smtp://127.0.0.1:2525", "FORGELINE_SMTP_FROM":
                                       "forgeline@example.com", "FORGELINE_ALARM_RETRY_SECONDS": "0.5",
                                       "FORGELINE_ALARM_MAX_ATTEMPTS": "3", "FORGELINE_ALARM_POLL_SECONDS": "0.2"})
    assert (settings.smtp_url, settings.smtp_from, settings.retry_seconds, settings.max_attempts,
            settings.poll_seconds) == ("smtp://127.0.0.1:2525", "forgeline@example.com", 0.5, 3, 0.2)
    assert AlarmSettings.from_env({}).smtp_url is None


@pytest.mark.parametrize(("name", "value"), [("FORGELINE_ALARM_MAX_ATTEMPTS", "0"),
                                             ("FORGELINE_ALARM_MAX_ATTEMPTS", "many"),
                                             ("FORGELINE_ALARM_RETRY_SECONDS", "-1")])
def test_a_bad_value_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        AlarmSettings.from_env({name: value})
