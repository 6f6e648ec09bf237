"""The alarm dispatcher's settings: SMTP server and sender, polling, retries and timeouts, read once at the edge."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from forgeline.config import parse_seconds
from forgeline.errors import ConfigurationError

SMTP_URL_ENV = "FORGELINE_SMTP_URL"
SMTP_FROM_ENV = "FORGELINE_SMTP_FROM"
POLL_ENV = "FORGELINE_ALARM_POLL_SECONDS"
RETRY_ENV = "FORGELINE_ALARM_RETRY_SECONDS"
ATTEMPTS_ENV = "FORGELINE_ALARM_MAX_ATTEMPTS"


@dataclass(frozen=True)
class AlarmSettings:
    """How alarms are delivered; ``retry_seconds`` doubles after each failed try up to ``max_retry_seconds``."""

    smtp_url: str | None = None  # smtp://user:password@host:port, smtps:// for TLS, ?starttls=true for STARTTLS
    smtp_from: str = "forgeline@localhost"
    poll_seconds: float = 1.0
    retry_seconds: float = 30.0
    max_retry_seconds: float = 3600.0
    max_attempts: int = 8
    timeout_seconds: float = 10.0  # one webhook call or SMTP conversation
    command_timeout_seconds: float = 15.0  # with the lease renewed every 10 s, a try ends within the 30 s lease

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AlarmSettings:
        """Settings from FORGELINE_SMTP_URL, FORGELINE_SMTP_FROM and FORGELINE_ALARM_* variables."""
        env = os.environ if environ is None else environ
        attempts_text = env.get(ATTEMPTS_ENV) or "8"
        if not attempts_text.strip().isdigit() or int(attempts_text) < 1:
            raise ConfigurationError(f"{ATTEMPTS_ENV}={attempts_text!r} is not a whole number of tries; write e.g. 8")
        return cls(
            smtp_url=env.get(SMTP_URL_ENV) or None,
            smtp_from=env.get(SMTP_FROM_ENV) or f"forgeline@{socket.getfqdn() or 'localhost'}",
            poll_seconds=parse_seconds(env.get(POLL_ENV), POLL_ENV, cls.poll_seconds),
            retry_seconds=parse_seconds(env.get(RETRY_ENV), RETRY_ENV, cls.retry_seconds),
            max_attempts=int(attempts_text),
        )

    def retry_delay(self, attempts: int) -> float | None:
        """Seconds to wait after the ``attempts``-th failed try; None when that was the last one."""
        if attempts >= self.max_attempts:
            return None
        return float(min(self.retry_seconds * 2 ** (attempts - 1), self.max_retry_seconds))
