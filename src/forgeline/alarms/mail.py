"""Email alarms over SMTP: ``smtp://user:password@host:port``, ``smtps://`` for TLS, ``?starttls=true`` for STARTTLS."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from forgeline.alarms.settings import SMTP_URL_ENV
from forgeline.errors import AlarmError, ConfigurationError

_DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
# Headers on one line up to the RFC 5322 limit: folding a subject that starts with "[" makes clients show a space.
_POLICY = policy.SMTP.clone(max_line_length=998)


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to send mail; the password is never shown."""

    host: str
    port: int
    tls: bool = False  # smtps://: TLS from the first byte
    starttls: bool = False  # smtp://...?starttls=true: upgrade the plain connection
    user: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        """Parse FORGELINE_SMTP_URL; ConfigurationError (never echoing the password) when it is not one."""
        example = "write e.g. smtp://user:password@mail.example.com:587?starttls=true"
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ConfigurationError(f"{SMTP_URL_ENV} must be an smtp:// or smtps:// URL with a host; {example}")
        try:
            port = parts.port or _DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise ConfigurationError(f"{SMTP_URL_ENV} has a port that is not a number; {example}") from None
        query = parse_qs(parts.query)
        starttls = query.get("starttls", ["false"])[-1].lower() in ("1", "true", "yes", "on")
        return cls(host=parts.hostname, port=port, tls=parts.scheme == "smtps", starttls=starttls,
                   user=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None)


def send_mail(server: SmtpServer, sender: str, recipients: tuple[str, ...], subject: str, text: str, *,
              timeout: float) -> None:
    """Send one plain-text message; AlarmError says what the server or the connection refused."""
    message = EmailMessage(policy=_POLICY)
    message["From"], message["To"], message["Subject"] = sender, ", ".join(recipients), subject
    message.set_content(text)
    context = ssl.create_default_context()  # honours SSL_CERT_FILE for a private certificate authority
    try:
        smtp: smtplib.SMTP
        if server.tls:
            smtp = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(server.host, server.port, timeout=timeout)
        with smtp:
            if server.starttls:
                smtp.starttls(context=context)
            if server.user is not None:
                smtp.login(server.user, server.password or "")
            smtp.send_message(message, from_addr=sender, to_addrs=list(recipients))
    except smtplib.SMTPException as error:
        raise AlarmError(f"SMTP server {server.host}:{server.port} refused the mail: {error}") from None
    except (OSError, ssl.SSLError) as error:
        raise AlarmError(f"cannot reach SMTP server {server.host}:{server.port}: {error}") from None
