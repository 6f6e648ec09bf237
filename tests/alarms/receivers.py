"""Real receivers on 127.0.0.1 for alarm deliveries: an HTTP server for webhooks and an SMTP server (aiosmtpd).

Each records what arrives; tests wait on what arrived (``wait_for``) with a generous deadline.
"""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword

DEADLINE_SECONDS = 120.0


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], deadline: float = DEADLINE_SECONDS) -> Any:
    """Poll ``check`` until it returns something truthy; AssertionError naming ``what`` when time runs out."""
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out after {deadline:g} s waiting for {what}")


@dataclass
class WebhookReceiver:
    """An HTTP server recording every POSTed JSON body; answers ``failures`` 500s before it accepts."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    failures: int = 0


@contextmanager
def webhook_receiver(failures: int = 0) -> Iterator[WebhookReceiver]:
    """A webhook receiver on a free loopback port, for the duration of the block."""
    receiver = WebhookReceiver(url="", failures=failures)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                if receiver.refused < receiver.failures:
                    receiver.refused += 1
                    status = 500
                else:
                    receiver.bodies.append(json.loads(body))
                    status = 200
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"busy, try later" if status == 500 else b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class SmtpSink:
    """An SMTP server on loopback recording every message (parsed) with its envelope recipients."""

    port: int
    messages: list[tuple[list[str], Message]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:  # noqa: N802
        """Keep the message."""
        content = envelope.original_content or b""
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(content, policy=policy.default)))
        return "250 OK"


@contextmanager
def smtp_sink(*, tls: ssl.SSLContext | None = None, starttls: bool = False, implicit_tls: bool = False,
              login: tuple[str, str] | None = None) -> Iterator[SmtpSink]:
    """An aiosmtpd server on a free loopback port: plain, STARTTLS required (``starttls``), TLS from the first
    byte (``implicit_tls``), and/or with a login."""
    sink = SmtpSink(port=free_port())

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and login is not None and (
            data.login.decode(), data.password.decode()) == login
        if ok:
            sink.logins.append(data.login.decode())
        return AuthResult(success=ok)

    options: dict[str, Any] = {}
    if starttls:
        options.update(tls_context=tls, require_starttls=True)
    if implicit_tls:
        options.update(ssl_context=tls)
    if login is not None:
        options.update(authenticator=authenticate, auth_require_tls=starttls)
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port, **options)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, written to ``folder`` (the certificate is its own authority)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_tls_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """The SMTP server's side of TLS with that certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context
