"""Evaluation reports on known predictions: values against scikit-learn, the PDF's pages, every bad input."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn import metrics as skm

from forgeline.errors import ReportError
from forgeline.reports.evaluation import ReportRequest, write_report
from forgeline.reports.resampling import binary_metrics, regression_metrics

RNG = np.random.default_rng(5)
LABELS = (RNG.random(600) < 0.35).astype(int)
CANDIDATE = np.clip(0.3 + 0.4 * LABELS + RNG.normal(0, 0.18, 600), 0, 1).round(6)
BASELINE = np.clip(0.3 + 0.2 * LABELS + RNG.normal(0, 0.2, 600), 0, 1).round(6)
MARKETS = np.where(np.arange(600) % 3 == 0, "de", "fr")


def _data(folder: Path, labels=LABELS, extra: dict | None = None) -> Path:
    path = folder / "test.csv"
    rows = ["x,market,defaulted"] + [f"{i},{m},{y}" for i, (m, y) in enumerate(zip(MARKETS, labels))]
    path.write_text("\n".join(rows) + "\n")
    return path


def _scores(folder: Path, scores, name: str = "predictions.csv") -> Path:
    path = folder / name
    path.write_text("".join(f"{s}\n" for s in scores))
    return path


def _pages(pdf: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))


def test_binary_metrics_equal_scikit_learn_and_the_pdf_has_every_page(tmp_path: Path) -> None:
    request = ReportRequest(data=str(_data(tmp_path)), label="defaulted", predictions=str(_scores(tmp_path, CANDIDATE)),
                            baseline_scores=list(BASELINE), segment="market", title="payments-de weekly candidate")
    written = write_report(request, tmp_path / "report")
    metrics = written.metrics
    decided = (CANDIDATE >= 0.5).astype(int)
    assert metrics["candidate"] == pytest.approx({
        "auc": skm.roc_auc_score(LABELS, CANDIDATE), "pr_auc": skm.average_precision_score(LABELS, CANDIDATE),
        "log_loss": skm.log_loss(LABELS, CANDIDATE), "brier": skm.brier_score_loss(LABELS, CANDIDATE),
        "accuracy": skm.accuracy_score(LABELS, decided), "f1": skm.f1_score(LABELS, decided),
        "precision": skm.precision_score(LABELS, decided), "recall": skm.recall_score(LABELS, decided)}, abs=1e-12)
    assert metrics["baseline"]["auc"] == pytest.approx(skm.roc_auc_score(LABELS, BASELINE), abs=1e-12)
    auc = metrics["difference"]["auc"]
    assert auc["value"] == pytest.approx(metrics["candidate"]["auc"] - metrics["baseline"]["auc"])
    assert auc["low"] < auc["value"] < auc["high"] and auc["low"] > 0  # the candidate is clearly better
    assert (metrics["rows"], metrics["label_distribution"]) == (600, {"0": int((LABELS == 0).sum()),
                                                                       "1": int(LABELS.sum())})
    de = MARKETS == "de"
    assert metrics["segments"]["de"]["candidate"] == pytest.approx(skm.roc_auc_score(LABELS[de], CANDIDATE[de]))
    assert json.loads((written.folder / "metrics.json").read_text()) == metrics

    # summary, ROC, PR, calibration, confusion, distributions, segments, difference
    assert written.pages == _pages(written.pdf) == 8
    html = written.html.read_text()
    assert "payments-de weekly candidate" in html and html.count("data:image/png;base64,") == 7
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed: the PDF page was not rendered")
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "2", str(written.pdf), str(tmp_path / "page")],
                   check=True, capture_output=True, timeout=60)
    for page in sorted(tmp_path.glob("page-*.png")):
        pixels = np.asarray(Image.open(page).convert("L"))
        assert (pixels < 128).mean() > 0.002, f"{page.name} is blank"  # text and lines, not an empty page


def test_the_fast_resampling_metrics_agree_with_scikit_learn() -> None:
    ties = np.round(CANDIDATE, 1)  # tied scores are where AUC and average precision differ by method
    fast = binary_metrics(LABELS, ties, 0.5)
    assert fast["auc"] == pytest.approx(skm.roc_auc_score(LABELS, ties), abs=1e-12)
    assert fast["pr_auc"] == pytest.approx(skm.average_precision_score(LABELS, ties), abs=1e-12)
    assert fast["log_loss"] == pytest.approx(skm.log_loss(LABELS, ties), abs=1e-9)
    values = RNG.normal(size=50)
    predicted = values + RNG.normal(0, 0.3, 50)
    assert regression_metrics(values, predicted, 0.5) == pytest.approx({
        "rmse": np.sqrt(skm.mean_squared_error(values, predicted)), "mae": skm.mean_absolute_error(values, predicted),
        "r2": skm.r2_score(values, predicted)})


def test_regression_and_multiclass_reports(tmp_path: Path) -> None:
    target = RNG.normal(10, 2, 200)
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"price": float(t), "kind": ["a", "b", "c"][i % 3]}) + "\n"
                            for i, t in enumerate(target)))
    predicted = target + RNG.normal(0, 1, 200)
    regression = write_report(ReportRequest(data=str(data), label="price", task="regression",
                                            candidate_scores=list(predicted)), tmp_path / "regression")
    assert regression.metrics["candidate"]["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(target, predicted)))
    assert regression.pages == _pages(regression.pdf) == 3  # summary, predicted vs actual, residuals

    probabilities = RNG.dirichlet([1, 1, 1], 200)
    lines = "".join(json.dumps({"probabilities": p.round(6).tolist()}) + "\n" for p in probabilities)
    predictions = tmp_path / "classes.jsonl"
    predictions.write_text(lines)
    multiclass = write_report(ReportRequest(data=str(data), label="kind", task="multiclass", score_field="probabilities",
                                            predictions=str(predictions)), tmp_path / "multiclass")
    kinds = [["a", "b", "c"][i % 3] for i in range(200)]
    index = np.array([["a", "b", "c"].index(k) for k in kinds])
    assert multiclass.metrics["candidate"]["accuracy"] == skm.accuracy_score(index, probabilities.argmax(axis=1))
    assert multiclass.metrics["label_distribution"] == {"a": 67, "b": 67, "c": 66}


@pytest.mark.parametrize(("change", "message"), [
    ({"predictions": "short"}, "the candidate has 599 prediction(s) for 600 data row(s)"),
    ({"label": "churned"}, "the data has no label column 'churned' (its columns: x, market, defaulted)"),
    ({"labels": "multiclass"}, "label 'defaulted' has 3 classes (0, 1, 2), not two: use task='multiclass'"),
    ({"task": "ranking"}, "task must be one of binary, multiclass, regression, got 'ranking'"),
    ({"predictions": "text"}, "line 3: the last column 'high' is not a number"),
    ({"predictions": "above one"}, "candidate score of row 1 is 1.5, not a probability between 0 and 1"),
    ({"predictions": "missing"}, "predictions"),
    ({"segment": "region"}, "the data has no segment column 'region'"),
    ({"baseline": "short"}, "the baseline has 3 prediction(s) for 600 data row(s)"),
])
def test_every_bad_input_fails_with_one_line(tmp_path: Path, change: dict, message: str) -> None:
    labels = np.where(np.arange(600) % 7 == 0, 2, LABELS) if change.get("labels") == "multiclass" else LABELS
    scores = {"short": CANDIDATE[:-1], "text": ["0.1", "0.2", "high"], "above one": [1.5, *CANDIDATE[1:]]}
    predictions = _scores(tmp_path, scores.get(change.get("predictions"), CANDIDATE))
    if change.get("predictions") == "missing":
        predictions = tmp_path / "nowhere"
    request = ReportRequest(data=str(_data(tmp_path, labels)), label=change.get("label", "defaulted"),
                            task=change.get("task", "binary"), predictions=str(predictions),
                            segment=change.get("segment"),
                            baseline_scores=[0.5, 0.5, 0.5] if change.get("baseline") else None)
    with pytest.raises(ReportError) as caught:
        write_report(request, tmp_path / "report")
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "report" / "report.pdf").exists()


def test_predictions_with_ids_must_follow_the_data_row_for_row(tmp_path: Path) -> None:
    data = _data(tmp_path)
    joined = tmp_path / "joined.csv"  # what a transform with join_source="Input" writes: the record, then the score
    joined.write_text("".join(f"{i},{m},{s}\n" for i, (m, s) in enumerate(zip(MARKETS, CANDIDATE))))
    written = write_report(ReportRequest(data=str(data), label="defaulted", predictions=str(joined), id_column="x"),
                           tmp_path / "ok")
    assert written.metrics["candidate"]["auc"] == pytest.approx(skm.roc_auc_score(LABELS, CANDIDATE), abs=1e-12)

    lines = joined.read_text().splitlines()
    lines[3], lines[4] = lines[4], lines[3]
    joined.write_text("\n".join(lines) + "\n")
    with pytest.raises(ReportError) as caught:
        write_report(ReportRequest(data=str(data), label="defaulted", predictions=str(joined), id_column="x"),
                     tmp_path / "swapped")
    assert str(caught.value) == ("prediction row 4 is for x '4' but data row 4 is '3': predictions must follow the "
                                 "data's rows in order")
