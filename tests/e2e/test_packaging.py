"""The packaging scenario: weekly training decides through the registry which model daily inference uses.

A real DuckDB warehouse (a file under the test's tmp folder; PostgreSQL through its own test) is filled by the
example's generator; the example's two pipelines run as a user runs them, one week after another.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from forgeline.config import Settings
from forgeline.registry import Registry

pytest.importorskip("duckdb_engine", reason="the packaging example needs duckdb and duckdb-engine "
                                            "(pip install -e '.[examples]')")
import sqlalchemy as sa  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
GENERATE = "examples/packaging/generate.py"
TRAINING = "examples/packaging/training.py"
INFERENCE = "examples/packaging/inference.py"
TYPES = ("mailer", "box")


@dataclass
class Scenario:
    """The example as a user drives it: generate a week, train, infer; and a look into the warehouse."""

    warehouse: str
    notifications: Path
    wait_for_end: Any

    def generate(self, *args: str) -> dict[str, Any]:
        done = subprocess.run([sys.executable, GENERATE, "--warehouse", self.warehouse, *args], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])

    def run(self, target: str, **parameters: Any) -> Any:
        from forgeline.engine.loader import load_pipeline

        execution = load_pipeline(target).start(parameters={"Warehouse": self.warehouse, **parameters})
        finished = self.wait_for_end(execution, timeout=120)
        assert finished.status == "Succeeded", (finished.failure_reason, finished.statuses())
        return finished

    def train(self, **parameters: Any) -> Any:
        return self.run(TRAINING, PackageTypes=",".join(TYPES), NotificationDir=str(self.notifications),
                        **parameters)

    def infer(self, **parameters: Any) -> Any:
        return self.run(INFERENCE, **parameters)

    def predictions(self) -> list[dict[str, Any]]:
        engine = sa.create_engine(self.warehouse, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                query = sa.text("SELECT product_id, package_type, prediction_date, mode, probability_ok, ships_ok, "
                                "model_package, model_version, execution_id FROM package_predictions")
                return [dict(row._mapping) for row in connection.execute(query)]
        finally:
            engine.dispose()

    def notification(self, execution_id: str) -> dict[str, Any]:
        return json.loads((self.notifications / f"training-{execution_id}.json").read_text())


@pytest.fixture
def scenario(forgeline_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wait_for_end: Any) -> Scenario:
    monkeypatch.chdir(REPO_ROOT)
    return Scenario(f"duckdb:///{tmp_path / 'warehouse.duckdb'}", tmp_path / "notifications", wait_for_end)


def registry() -> Registry:
    return Registry(Settings.from_env())


def by_key(rows: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [r for r in rows if all(str(r[k]) == str(v) for k, v in match.items())]


def test_two_weeks_one_approved_one_rejected_decide_which_model_writes_the_predictions(scenario, cli):
    # Week 1: the warehouse is filled and the first models of each package type are approved (nothing to beat).
    assert scenario.generate()["week"] == 1
    first = cli("run", TRAINING, "-p", f"PackageTypes={','.join(TYPES)}", "-p", f"Warehouse={scenario.warehouse}",
                "-p", f"NotificationDir={scenario.notifications}", timeout=180)
    assert first.returncode == 0, first
    assert {t: registry().latest_approved(f"packaging-{t}").version for t in TYPES} == {"mailer": 1, "box": 1}

    # Week 2: new feedback of the same kind. The new models score about as well on a like mix of labels: approved.
    week2 = scenario.generate()
    assert week2["week"] == 2 and week2["drift"] == 0.0
    approved = scenario.train()
    steps = approved.steps
    assert {f"Package-{t}-{s}" for t in TYPES for s in ("Unload", "Train", "Validate", "Compare", "Register")} \
        <= set(steps)
    assert steps["Package"].properties["outputs"]["model_package"] == ["packaging-mailer/2", "packaging-box/2"]
    decisions = steps["Package"].properties["outputs"]["decision"]
    assert [(d["package_type"], d["status"], d["current"]["version"]) for d in decisions] == [
        ("mailer", "Approved", 1), ("box", "Approved", 1)]
    assert all(d["reasons"] == [] for d in decisions)
    for t in TYPES:
        assert registry().latest_approved(f"packaging-{t}").version == 2
    package = registry().describe("packaging-mailer", 2).package
    assert package.approval_status == "Approved" and package.description.startswith("approved: replaces")
    assert package.metrics["data"]["weeks"] == [2, 2] and package.metrics["metrics"]["roc_auc"]["value"] > 0.8
    # Lineage follows this package type's own iteration of the loop, down to the data it was trained on.
    lineage_steps = {s["name"] for s in package.lineage["steps"]}
    assert {"Package-mailer-Train", "Package-mailer-Split"} <= lineage_steps
    assert not any(name.startswith("Package-box-") for name in lineage_steps)
    train_inputs = next(s for s in package.lineage["steps"] if s["name"] == "Package-mailer-Train")["inputs"]
    assert train_inputs and all(i["fingerprint"] for i in train_inputs)  # the split it was trained on, by content

    # Daily inference for week 2's new products (twice: the second run replaces rows, it does not add any).
    daily = {"Mode": "daily", "PackageType": "mailer", "Since": week2["week_starts"], "PredictionDate": "2025-01-20",
             "FileSize": 40}
    once = scenario.infer(**daily)
    assert once.steps["Predict"].properties["model_package_arn"] == "packaging-mailer/2"
    rows = scenario.predictions()
    assert len(rows) == 100  # the products added in week 2
    assert {(r["model_package"], r["model_version"], r["mode"]) for r in rows} == {("packaging-mailer/2", 2, "daily")}
    assert {r["execution_id"] for r in rows} == {once.execution.id}
    again = scenario.infer(**daily)
    rerun = scenario.predictions()
    assert len(rerun) == 100
    assert {r["execution_id"] for r in rerun} == {again.execution.id}
    assert sorted((r["product_id"], r["probability_ok"]) for r in rerun) == \
        sorted((r["product_id"], r["probability_ok"]) for r in rows)

    # Week 3: a careless carrier, half the good shipments reported damaged. The models are worse and learned
    # another label mix: registered as Rejected with the reasons, and week 2's models stay approved.
    week3 = scenario.generate("--drift", "0.5")
    assert week3["week"] == 3
    rejected = scenario.train()
    assert rejected.steps["Package"].properties["outputs"]["model_package"] == ["packaging-mailer/3",
                                                                               "packaging-box/3"]
    for t in TYPES:
        group = f"packaging-{t}"
        assert registry().latest_approved(group).version == 2
        package = registry().describe(group, 3).package
        assert package.approval_status == "Rejected"
        assert "share shipped fine moved" in package.description and f"{group}/2 stays approved" in package.description
        assert [p.approval_status for p in registry().list(group)] == ["Rejected", "Approved", "Approved"]
    decisions = rejected.steps["Package"].properties["outputs"]["decision"]
    assert [(d["status"], d["current"]["version"]) for d in decisions] == [("Rejected", 2), ("Rejected", 2)]
    assert all(any("ROC AUC fell" in r for r in d["reasons"]) for d in decisions), decisions
    assert all(d["checks"]["label_shift"] < -0.05 for d in decisions)

    # Monthly inference scores the whole inventory with the model the registry kept: week 2's.
    monthly = scenario.infer(Mode="monthly", PackageType="mailer", PredictionDate="2025-01-27", FileSize=1000)
    assert monthly.steps["Predict"].properties["model_package_arn"] == "packaging-mailer/2"
    rows = scenario.predictions()
    month = by_key(rows, mode="monthly")
    assert len(month) == week3["products"] == 2300
    assert {(r["model_package"], r["model_version"]) for r in month} == {("packaging-mailer/2", 2)}
    assert len(by_key(rows, mode="daily")) == 100  # the daily rows of week 2 are still there, untouched
    assert len({(r["product_id"], r["package_type"], r["prediction_date"], r["mode"]) for r in rows}) == len(rows)


def test_training_notifies_with_a_json_file_and_a_log_event(scenario):
    scenario.generate()
    first = scenario.train()
    scenario.generate("--drift", "0.5")
    finished = scenario.train(MaxScoreDrop=0.5)  # only the label mix can stop the new models now

    notification = scenario.notification(finished.execution.id)
    path = scenario.notifications / f"training-{finished.execution.id}.json"
    assert finished.steps["Notify"].properties["Return"] == {"file": str(path.resolve()), **notification}
    assert notification["event"] == "packaging.training.decisions"
    assert notification["execution_id"] == finished.execution.id
    decisions = {d["package_type"]: d for d in notification["decisions"]}
    assert set(decisions) == set(TYPES)
    for t in TYPES:
        decision = decisions[t]
        assert decision["group"] == f"packaging-{t}" and decision["model_package"] == f"packaging-{t}/2"
        assert decision["status"] == "Rejected" and decision["current"]["version"] == 1
        assert len(decision["reasons"]) == 1 and decision["reasons"][0].startswith("the share shipped fine moved")
        assert set(decision["checks"]) == {"score_change", "label_shift", "size_change"}
        assert decision["candidate"]["training_rows"] == decision["current"]["training_rows"] == 800
    week1 = scenario.notification(first.execution.id)
    assert [(d["status"], d["current"], d["model_package"]) for d in week1["decisions"]] == [
        ("Approved", None, "packaging-mailer/1"), ("Approved", None, "packaging-box/1")]

    log = Path(finished.execution.list_attempts("Notify")[0].log_path or "").read_text()
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert [(e["event"], e["package_type"], e["status"]) for e in events] == [
        ("packaging.model_decision", "mailer", "Rejected"), ("packaging.model_decision", "box", "Rejected")]


def test_postgresql_warehouse(forgeline_home, tmp_path, monkeypatch, wait_for_end, postgres_database_url):
    monkeypatch.chdir(REPO_ROOT)
    scenario = Scenario(postgres_database_url, tmp_path / "notifications", wait_for_end)
    scenario.generate("--products", "400", "--new-products", "50", "--labels", "300")
    trained = scenario.run(TRAINING, PackageTypes="bag", NotificationDir=str(scenario.notifications))
    assert trained.steps["Package"].properties["outputs"]["model_package"] == ["packaging-bag/1"]

    for _ in range(2):
        scenario.infer(Mode="monthly", PackageType="bag", PredictionDate="2025-01-13", FileSize=100)
    rows = scenario.predictions()
    assert len(rows) == 450
    assert {(r["model_package"], r["model_version"], r["package_type"]) for r in rows} == {("packaging-bag/1", 1, "bag")}
