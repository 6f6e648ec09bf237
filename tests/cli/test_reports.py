"""`forgeline models compare ... --data --label --report` and `forgeline reports list`, as a user types them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from forgeline.store.metadata.records import ModelPackageDraft
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.workflow.models import ModelApprovalStatus
from serving.server_process import settings_for

SCORER = """
import json

def model_fn(model_dir):
    with open(model_dir + "/weights.json") as handle:
        return json.load(handle)

def predict_fn(rows, model):
    return [min(1.0, max(0.0, model["bias"] + model["weight"] * float(row[0]))) for row in rows]

def output_fn(prediction, accept):
    return json.dumps({"score": prediction})
"""


def _register(store: SqlMetadataStore, root: Path, weight: float) -> None:
    folder = root / f"v{weight}"
    (folder / "code").mkdir(parents=True)
    (folder / "model").mkdir()
    (folder / "code" / "inference.py").write_text(SCORER)
    (folder / "model" / "weights.json").write_text(json.dumps({"bias": 0.5 - weight / 2, "weight": weight}))
    store.create_model_package(ModelPackageDraft(
        group="payments-de", approval_status=ModelApprovalStatus.APPROVED, model_data=str(folder / "model"),
        code_uri=str(folder / "code"), entry_point="inference.py", content_types=["text/csv"]), actor="tests")


def test_models_compare_scores_both_versions_on_data_and_writes_the_report(cli: Any, forgeline_home: Path,
                                                                          tmp_path: Path) -> None:
    store = SqlMetadataStore(settings_for(forgeline_home).database_url)
    _register(store, tmp_path, 0.2)  # v1: a weak signal
    _register(store, tmp_path, 0.9)  # v2: the same signal, sharper
    rng = np.random.default_rng(3)
    labels = (rng.random(300) < 0.4).astype(int)
    signal = np.clip(0.5 + 0.3 * (labels - 0.4) + rng.normal(0, 0.25, 300), 0, 1)
    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps({"signal": float(s), "defaulted": int(y)}) + "\n"
                            for s, y in zip(signal, labels)))
    report = tmp_path / "out" / "report.pdf"

    shown = cli("models", "compare", "payments-de", "1", "2", "--data", str(data), "--label", "defaulted",
                "--report", str(report))
    assert shown.returncode == 0, shown
    assert "v2 against v1 on 300 rows" in shown.stdout and re.search(r"auc\s", shown.stdout)
    assert report.read_bytes().startswith(b"%PDF") and f"report: {report}" in shown.stdout

    as_json = cli("models", "compare", "payments-de", "1", "2", "--data", str(data), "--label", "defaulted",
                  "--json")
    metrics = json.loads(as_json.stdout)["metrics"]
    scores = {w: np.clip(0.5 - w / 2 + w * signal, 0, 1) for w in (0.2, 0.9)}
    assert metrics["baseline"]["auc"] == roc_auc_score(labels, scores[0.2])
    assert metrics["candidate"]["auc"] == roc_auc_score(labels, scores[0.9])
    assert metrics["candidate"]["brier"] != metrics["baseline"]["brier"]

    for args, message in [
        (["--data", str(data)], "needs both --data (labelled rows) and --label"),
        (["--data", str(data), "--label", "churned"], "the data has no label column 'churned'"),
        (["--data", str(data), "--label", "defaulted", "--report", str(tmp_path / "r.docx")], "name a .pdf or .html"),
        (["--data", str(tmp_path / "none.csv"), "--label", "defaulted"], "does not exist"),
    ]:
        refused = cli("models", "compare", "payments-de", "1", "2", *args)
        assert refused.returncode == 1 and message in refused.stderr, refused
        assert len(refused.stderr.strip().splitlines()) == 1, refused
    store.close()


def test_reports_list_names_the_reports_of_an_execution(cli: Any, project: Any) -> None:
    project.write("make.py", """
        from pathlib import Path
        Path("out").mkdir(exist_ok=True)
        Path("out/data.csv").write_text("x,y\\n" + "".join(f"{i},{i % 2}\\n" for i in range(40)))
        Path("out/scores.csv").write_text("".join(f"{0.3 + 0.4 * (i % 2) + (i % 5) / 50}\\n" for i in range(40)))
    """)
    project.write("pipeline.py", """
        from forgeline.workflow import EvaluationReportStep, Join, Pipeline, ProcessingOutput, ProcessingStep
        make = ProcessingStep(name="Make", code="make.py", outputs=[ProcessingOutput(output_name="out", source="out")])
        folder = make.properties.outputs["out"]
        report = EvaluationReportStep(name="Report", predictions=Join(on="/", values=[folder, "scores.csv"]),
                                      data=Join(on="/", values=[folder, "data.csv"]), label="y")
        pipeline = Pipeline(name="listed", steps=[make, report])
    """)
    assert cli("run", "pipeline.py", cwd=project.root).returncode == 0
    [execution] = project.store().list_executions()
    shown = cli("reports", "list", execution.id)
    assert shown.returncode == 0, shown
    assert "Report" in shown.stdout and "auc 1.0000" in shown.stdout and "no baseline" in shown.stdout
    [entry] = json.loads(cli("reports", "list", execution.id, "--json").stdout)
    assert entry["pdf"].endswith("/report.pdf") and Path(entry["pdf"]).read_bytes().startswith(b"%PDF")
    assert entry["metrics"]["candidate"]["auc"] == 1.0 and entry["baseline"] is None
    missing = cli("reports", "list", "no-such-execution")
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1
