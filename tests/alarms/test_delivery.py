"""Delivering one message: a webhook to a real HTTP server, email to a real SMTP server, a real command."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alarms.receivers import self_signed_certificate, server_tls_context, smtp_sink, webhook_receiver
from forgeline.alarms.delivery import deliver
from forgeline.alarms.mail import SmtpServer
from forgeline.alarms.messages import render_message
from forgeline.alarms.settings import AlarmSettings
from forgeline.errors import AlarmError, ConfigurationError
from forgeline.store.metadata.alarm_store import AlarmEventRecord

EVENT = AlarmEventRecord(id=7, kind="step.failed", subject="exec-1", dispatched=True,
                         created_at=datetime(2026, 12, 1, tzinfo=UTC),
                         payload={"execution_id": "exec-1", "pipeline": "packaging-training", "step": "Train",
                                  "failure_reason": "JobFailed: exit code 1"})
MESSAGE = render_message("failures", None, EVENT)


def test_a_webhook_gets_a_slack_text_and_the_event_fields() -> None:
    with webhook_receiver() as receiver:
        deliver(f"webhook:{receiver.url}", MESSAGE, AlarmSettings())
    (body,) = receiver.bodies
    assert body["text"].startswith("[forgeline] step Train of packaging-training failed (execution exec-1)")
    assert "JobFailed: exit code 1" in body["text"] and "forgeline executions describe exec-1" in body["text"]
    assert (body["alarm"], body["event"], body["event_id"], body["step"]) == ("failures", "step.failed", 7, "Train")


def test_a_webhook_that_answers_an_error_is_a_failed_delivery() -> None:
    with webhook_receiver(failures=1) as receiver, pytest.raises(AlarmError, match="answered 500: busy"):
        deliver(f"webhook:{receiver.url}", MESSAGE, AlarmSettings())
    with pytest.raises(AlarmError, match="unreachable"):
        deliver(f"webhook:{receiver.url}", MESSAGE, AlarmSettings(timeout_seconds=2))


def test_email_over_plain_smtp_with_a_login() -> None:
    with smtp_sink(login=("forgeline", "s3cret")) as sink:
        settings = AlarmSettings(smtp_url=f"smtp://forgeline:s3cret@127.0.0.1:{sink.port}",
                                 smtp_from="forgeline@example.com")
        deliver("email:ml-team@example.com,oncall@example.com", MESSAGE, settings)
    ((recipients, message),) = sink.messages
    assert recipients == ["ml-team@example.com", "oncall@example.com"] and sink.logins == ["forgeline"]
    assert message["From"] == "forgeline@example.com"
    assert message["Subject"] == "[forgeline] step Train of packaging-training failed (execution exec-1)"
    assert "reason: JobFailed: exit code 1" in message.get_payload(decode=True).decode()


def test_email_over_starttls_with_a_private_authority(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # what the server's environment would name
    with smtp_sink(tls=server_tls_context(cert, key), starttls=True, login=("ops", "pw")) as sink:
        url = f"smtp://ops:pw@127.0.0.1:{sink.port}?starttls=true"
        deliver("email:ml-team@example.com", MESSAGE, AlarmSettings(smtp_url=url))
        assert len(sink.messages) == 1 and sink.logins == ["ops"]
        # Without STARTTLS the server refuses, and the error says so in one line.
        with pytest.raises(AlarmError, match="refused the mail"):
            deliver("email:ml-team@example.com", MESSAGE,
                    AlarmSettings(smtp_url=f"smtp://ops:pw@127.0.0.1:{sink.port}"))


def test_email_over_smtps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with smtp_sink(tls=server_tls_context(cert, key), implicit_tls=True) as sink:
        deliver("email:ml-team@example.com", MESSAGE, AlarmSettings(smtp_url=f"smtps://127.0.0.1:{sink.port}"))
        assert [recipients for recipients, _ in sink.messages] == [["ml-team@example.com"]]
    monkeypatch.delenv("SSL_CERT_FILE")  # a certificate no authority vouches for is refused
    with smtp_sink(tls=server_tls_context(cert, key), implicit_tls=True) as sink, \
            pytest.raises(AlarmError, match="CERTIFICATE_VERIFY_FAILED"):
        deliver("email:ml-team@example.com", MESSAGE, AlarmSettings(smtp_url=f"smtps://127.0.0.1:{sink.port}"))


def test_email_without_a_server_setting_or_reachable_server_fails_clearly() -> None:
    with pytest.raises(AlarmError, match="FORGELINE_SMTP_URL is not set"):
        deliver("email:ml-team@example.com", MESSAGE, AlarmSettings())
    with smtp_sink() as sink:
        port = sink.port
    with pytest.raises(AlarmError, match=f"cannot reach SMTP server 127.0.0.1:{port}"):
        deliver("email:ml-team@example.com", MESSAGE, AlarmSettings(smtp_url=f"smtp://127.0.0.1:{port}"))


def test_an_smtp_url_is_parsed_and_a_bad_one_never_shows_its_password() -> None:
    assert SmtpServer.from_url("smtps://u%40x:p%2Fw@mail.example.com") == SmtpServer(
        host="mail.example.com", port=465, tls=True, user="u@x", password="p/w")
    assert SmtpServer.from_url("smtp://mail.example.com:587?starttls=true").starttls
    with pytest.raises(ConfigurationError) as caught:
        SmtpServer.from_url("http://user:hunter2@mail.example.com")
    assert "hunter2" not in str(caught.value) and "FORGELINE_SMTP_URL" in str(caught.value)


def test_a_command_gets_the_event_as_json_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "event.json"
    script = tmp_path / "page.py"
    script.write_text("import sys, pathlib; pathlib.Path(sys.argv[1]).write_text(sys.stdin.read())\n")
    deliver(f"command:{sys.executable} {script} {out}", MESSAGE, AlarmSettings())
    received = json.loads(out.read_text())
    assert received["event"] == "step.failed" and received["failure_reason"] == "JobFailed: exit code 1"


def test_a_failing_or_missing_command_is_a_failed_delivery(tmp_path: Path) -> None:
    with pytest.raises(AlarmError, match="exited with 3: no pager today"):
        deliver(f"command:{sys.executable} -c \"import sys; sys.exit('no pager today') if 0 else "
                "(print('no pager today', file=sys.stderr), sys.exit(3))\"", MESSAGE, AlarmSettings())
    with pytest.raises(AlarmError, match="not found"):
        deliver(f"command:{tmp_path / 'missing'}", MESSAGE, AlarmSettings())
