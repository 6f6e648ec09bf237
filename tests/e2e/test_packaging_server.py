"""The packaging example run by a server: a dropped file starts the weekly training, alarms send the emails.

A real ``forgeline server`` watches a folder; each JSON file dropped there (model type and parameters) starts
one training run. Alarms email a real SMTP server on 127.0.0.1 (aiosmtpd): every approve/reject with the
comparison figures, a deviation beyond a threshold (a metric condition on the Compare step), every failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

from alarms.receivers import smtp_sink, wait_for
from api.conftest import StartServer, start_server  # noqa: F401 - the fixture, for this module
from conftest import REPO_ROOT, Cli

pytest.importorskip("duckdb_engine", reason="the packaging example needs duckdb and duckdb-engine "
                                            "(pip install -e '.[examples]')")

TEAM = "ml-team@example.com"
DRIFT = ("steps.Compare.properties.deviation.label_shift > 0.05 "
         "or steps.Compare.properties.deviation.score_drop > 0.05")


def generate(warehouse: str, *args: str) -> None:
    done = subprocess.run([sys.executable, "examples/packaging/generate.py", "--warehouse", warehouse, *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def drop(folder: Path, name: str, parameters: dict[str, object]) -> None:
    """Write the file whole, then rename it into the watched folder, as an export job would."""
    staging = folder.parent / f".{name}.part"
    staging.write_text(json.dumps({"pipeline_parameters": parameters, "exported_by": "warehouse"}))
    staging.rename(folder / name)


@pytest.mark.timeout(900)  # three training runs on a shared 2-core machine
def test_a_dropped_file_trains_and_the_team_hears_of_every_decision_drift_and_failure(
        cli: Cli, start_server: StartServer, tmp_path: Path) -> None:  # noqa: F811
    warehouse = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    exports = tmp_path / "exports"
    exports.mkdir()
    generate(warehouse)  # week 1
    with smtp_sink() as sink:
        def mails(fragment: str) -> list[EmailMessage]:
            return [message for _, message in sink.messages if fragment in str(message["Subject"])]

        server = start_server(env={"FORGELINE_SMTP_URL": f"smtp://127.0.0.1:{sink.port}",
                                   "FORGELINE_SMTP_FROM": "forgeline@example.com",
                                   "FORGELINE_ALARM_POLL_SECONDS": "0.2"})
        admin = {"FORGELINE_URL": server.url, "FORGELINE_TOKEN": server.token_for("admin")}
        for alarm in (
            ["failures", "--on", "execution.failed", "--on", "step.failed", "--pipeline", "packaging-training"],
            ["approvals", "--on", "model.approved", "--on", "model.rejected", "--group", "packaging-mailer"],
            ["drift", "--on", "metric", "--pipeline", "packaging-training", "--when", DRIFT],
        ):
            made = cli("alarms", "create", *alarm, "--to", f"email:{TEAM}", env=admin)
            assert made.returncode == 0, made
        made = cli("triggers", "create", "weekly-training", "--pipeline", "examples/packaging/training.py",
                   "--watch", str(exports), "--pattern", "*.json", "--poll-seconds", "0.5",
                   "-p", "PackageTypes=mailer", "-p", f"Warehouse={warehouse}",
                   "-p", f"NotificationDir={tmp_path / 'notifications'}")
        assert made.returncode == 0, made

        # Week 1: the first model of its group is approved; the email says there was nothing to compare with.
        drop(exports, "week-1.json", {"ModelType": "gradient_boosting", "ModelParams": '{"max_depth": 3}'})
        (approved,) = wait_for("the approval email", lambda: mails("model packaging-mailer/1 approved"), 300)
        body = approved.get_content()
        assert approved["To"] == TEAM and "figures (no approved model before it):" in body
        assert "metrics.roc_auc.value:" in body and "data.training_rows: 800" in body

        # Week 3's careless carrier: half the good shipments reported damaged. Rejected, with the figures, and
        # the label distribution moved beyond the drift alarm's threshold.
        generate(warehouse, "--drift", "0.5")
        drop(exports, "week-2.json", {"ModelType": "gradient_boosting", "ModelParams": '{"max_depth": 3}'})
        (rejected,) = wait_for("the rejection email", lambda: mails("model packaging-mailer/2 rejected"), 300)
        body = rejected.get_content()
        assert "description: rejected: " in body and "the share shipped fine moved by" in body
        assert "figures (against packaging-mailer/1):" in body and "data.ok_rate: " in body and " -> " in body
        (drift,) = wait_for("the drift email", lambda: mails("condition met on step Package-mailer-Compare"), 120)
        drift_body = drift.get_content()
        assert "steps.Compare.properties.deviation.label_shift = " in drift_body
        assert "forgeline executions describe" in drift_body

        # A file naming a model type the training script does not know: the Train step fails, and says why.
        drop(exports, "typo.json", {"ModelType": "gradient_bossting"})
        (failed_step,) = wait_for("the failed step email", lambda: mails("step Package-mailer-Train of "
                                                                         "packaging-training failed"), 300)
        assert "unknown model type 'gradient_bossting'" in failed_step.get_content()
        wait_for("the failed execution email", lambda: [m for m in mails("of packaging-training failed")
                                                        if str(m["Subject"]).startswith("[forgeline] execution ")], 120)

    history = cli("alarms", "history", "--json")
    deliveries = json.loads(history.stdout)
    assert {d["status"] for d in deliveries} == {"delivered"}
    assert {d["alarm_name"] for d in deliveries} == {"failures", "approvals", "drift"}
    assert not mails("model packaging-mailer/3")  # the failed run registered nothing
