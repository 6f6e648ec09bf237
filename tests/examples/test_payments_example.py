"""The payments example's two weeks at a reduced size, against a real `forgeline serve`.

Week 1 trains, reports, registers and deploys each market's model to ``risk-<market>`` (features + model as one
two-stage endpoint); week 2's shifted data makes a worse candidate, which is rejected while the endpoint keeps
serving week 1's model. The features the endpoint computes are the training features, byte for byte.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forgeline.engine.loader import load_pipeline
from forgeline.serving import Endpoint
from forgeline.store.metadata.sql_store import SqlMetadataStore
from serving.server_process import ServingServer, settings_for

pytest.importorskip("xgboost", reason="the payments example needs xgboost-cpu (pip install -e '.[examples]')")

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "payments"


@pytest.fixture
def payments(forgeline_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Two generated weeks of DE orders, a running server, and the example's code importable."""
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.syspath_prepend(str(EXAMPLE / "code"))
    monkeypatch.syspath_prepend(str(EXAMPLE))
    import generate

    weeks = {week: generate.write_week(tmp_path / "data", week, 1500, 0.3, broken, ("DE",))
             for week, broken in ((1, 0.0), (2, 0.6))}
    server = ServingServer.start(forgeline_home)
    monkeypatch.setenv("FORGELINE_SERVE_URL", server.url)
    monkeypatch.setenv("PAYMENTS_DEPLOY_TIMEOUT", "120")
    store = SqlMetadataStore(settings_for(forgeline_home).database_url)
    yield {"weeks": weeks, "server": server, "store": store}
    store.close()
    server.stop()
    for name in ("generate", "orders"):
        sys.modules.pop(name, None)


def _run(week: Path, wait_for_end: Any) -> Any:
    pipeline = load_pipeline("examples/payments/pipeline.py")
    return wait_for_end(pipeline.start(parameters={"Markets": "de", "Orders": str(week)}), timeout=400)


def test_two_weeks_deploy_the_first_model_and_reject_the_shifted_one(payments: dict[str, Any],
                                                                     wait_for_end: Any) -> None:
    from orders import features

    server, store = payments["server"], payments["store"]
    first = _run(payments["weeks"][1], wait_for_end)
    assert first.status == "Succeeded", (first.failure_reason, first.statuses())
    steps = first.steps
    assert steps["Market-de-Deploy"].status.value == "Succeeded"
    assert steps["Market-de-RegisterRejected"].status.value == "Skipped"
    assert steps["Market-de-Report"].properties["metrics"]["baseline"] is None
    assert store.get_model_package("payments-de", 1).approval_status.value == "Approved"
    assert store.get_endpoint("risk-de").config["variants"][0]["models"] == ["payments-features@1", "payments-de@1"]

    # the endpoint's first stage computes exactly the training features of an order
    [order] = [json.loads(line) for line in (payments["weeks"][1] / "test.jsonl").read_text().splitlines()[:1]]
    Endpoint.create("features-only", ["payments-features@1"], store=store)
    server.wait_serving("features-only")
    served = server.invoke("features-only", order).text.strip().split(",")
    test_rows = list(csv.reader(Path(steps["Market-de-Prepare"].outputs["test"], "test.csv").open()))
    assert served == test_rows[1][:-1] == [repr(float(v)) for v in features(order)]

    # and the whole endpoint answers what the batch transform predicted for that order
    answer = server.invoke("risk-de", order)
    assert (answer.status_code, answer.headers["x-forgeline-model"]) == (200, "payments-features@1,payments-de@1")
    predictions = Path(steps["Market-de-Predict"].properties["output_uri"], "features.csv.out").read_text()
    assert answer.json()["default_probability"] == [round(float(predictions.split()[0]), 6)]

    second = _run(payments["weeks"][2], wait_for_end)
    assert second.status == "Succeeded", (second.failure_reason, second.statuses())
    report = second.steps["Market-de-Report"].properties
    assert report["baseline_package_arn"] == "payments-de/1"
    assert report["metrics"]["difference"]["auc"]["value"] < -0.002  # the shifted week's candidate is worse
    assert {second.steps[f"Market-de-{s}"].status.value for s in ("Register", "Deploy")} == {"Skipped"}
    assert store.get_model_package("payments-de", 2).approval_status.value == "Rejected"
    assert store.get_model_package("payments-de", 2).metrics["difference"]["auc"]["value"] < -0.002
    assert store.get_endpoint("risk-de").config["variants"][0]["models"] == ["payments-features@1", "payments-de@1"]
    assert server.invoke("risk-de", order).headers["x-forgeline-model"] == "payments-features@1,payments-de@1"
