"""Sending one rendered alarm to one target: a webhook POST, an email, or a command with the event on stdin."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import httpx

from forgeline.alarms.mail import SmtpServer, send_mail
from forgeline.alarms.messages import AlarmMessage
from forgeline.alarms.settings import SMTP_URL_ENV, AlarmSettings
from forgeline.alarms.targets import Target, TargetKind, parse_target
from forgeline.errors import AlarmError

_ERROR_TAIL = 500


def deliver(target_text: str, message: AlarmMessage, settings: AlarmSettings,
            http: httpx.Client | None = None) -> None:
    """Send the message to the target once; AlarmError says why it did not arrive.

    ``http``: a client whose connections webhooks reuse (a dispatcher keeps one); None opens one for this call.
    """
    target = parse_target(target_text)
    if target.kind is not TargetKind.WEBHOOK:
        _SENDERS[target.kind](target, message, settings)
    elif http is not None:
        _post_webhook(target, message, settings, http)
    else:
        with httpx.Client() as client:
            _post_webhook(target, message, settings, client)


def _post_webhook(target: Target, message: AlarmMessage, settings: AlarmSettings, http: httpx.Client) -> None:
    try:
        response = http.post(target.url, json=message.body, timeout=settings.timeout_seconds)
    except httpx.HTTPError as error:
        raise AlarmError(f"webhook {target.url} unreachable: {type(error).__name__}: {error}") from None
    if not response.is_success:
        raise AlarmError(f"webhook {target.url} answered {response.status_code}: {response.text[:_ERROR_TAIL]}")


def _send_email(target: Target, message: AlarmMessage, settings: AlarmSettings) -> None:
    if settings.smtp_url is None:
        raise AlarmError(f"{SMTP_URL_ENV} is not set where the server runs; set it (e.g. "
                         "smtp://user:password@mail.example.com:587?starttls=true) and restart `forgeline server`")
    send_mail(SmtpServer.from_url(settings.smtp_url), settings.smtp_from, target.addresses, message.subject,
              message.text, timeout=settings.timeout_seconds)


def _run_command(target: Target, message: AlarmMessage, settings: AlarmSettings) -> None:
    try:
        done = subprocess.run(list(target.argv), input=json.dumps(message.body), text=True, capture_output=True,
                              timeout=settings.command_timeout_seconds, check=False)
    except FileNotFoundError:
        raise AlarmError(f"command {target.argv[0]!r} not found") from None
    except subprocess.TimeoutExpired:
        raise AlarmError(f"command {target.argv[0]!r} ran longer than {settings.command_timeout_seconds:g} s "
                         "and was stopped") from None
    except OSError as error:
        raise AlarmError(f"command {target.argv[0]!r} could not start: {error}") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip()[-_ERROR_TAIL:]
        raise AlarmError(f"command {target.argv[0]!r} exited with {done.returncode}" + (f": {said}" if said else ""))


_SENDERS: dict[TargetKind, Callable[[Target, AlarmMessage, AlarmSettings], None]] = {
    TargetKind.EMAIL: _send_email,
    TargetKind.COMMAND: _run_command,
}
