"""The packaging example's parts on their own: the generator, the warehouse adapter, the inference contract.

The whole story (two weeks of training deciding which model writes the predictions) is tests/e2e/test_packaging.py.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip("duckdb_engine", reason="the packaging example needs duckdb and duckdb-engine "
                                            "(pip install -e '.[examples]')")
import sqlalchemy as sa  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "packaging"
CODE = EXAMPLE / "code"
EXAMPLE_MODULES = ("features", "warehouse")


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The generator module, with the example's code folder importable (and forgotten again afterwards)."""
    monkeypatch.syspath_prepend(str(CODE))
    spec = importlib.util.spec_from_file_location("packaging_generate", EXAMPLE / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    for name in EXAMPLE_MODULES:
        sys.modules.pop(name, None)
    sys.path[:] = [p for p in sys.path if p != str(CODE)]


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.execute(sa.text(query))]
    finally:
        engine.dispose()


FEEDBACK = "SELECT product_id, package_type, week, shipped_ok, received_on FROM shipping_feedback ORDER BY 1, 2, 3"
PRODUCTS = "SELECT * FROM products ORDER BY product_id"
SMALL = ["--products", "300", "--new-products", "20", "--labels", "150"]


def test_a_week_is_the_same_week_whenever_it_is_generated(example, tmp_path, capsys):
    a, b = f"duckdb:///{tmp_path / 'a.duckdb'}", f"duckdb:///{tmp_path / 'b.duckdb'}"
    assert [example.main(["--warehouse", a, *SMALL])["week"] for _ in range(2)] == [1, 2]
    example.main(["--warehouse", b, *SMALL, "--week", "2"])
    example.main(["--warehouse", b, *SMALL, "--week", "1"])
    example.main(["--warehouse", a, *SMALL, "--week", "1"])  # replaces week 1: the same labels again

    assert rows(a, FEEDBACK) == rows(b, FEEDBACK)
    assert rows(a, PRODUCTS) == rows(b, PRODUCTS)
    assert len(rows(a, PRODUCTS)) == 300 + 2 * 20
    assert rows(a, "SELECT week, count(*) FROM shipping_feedback GROUP BY week ORDER BY week") == [(1, 600), (2, 600)]
    new = rows(a, "SELECT min(added_on), max(added_on) FROM products WHERE product_id > 320")
    assert [d.isoformat() for d in new[0]] == ["2025-01-13", "2025-01-19"]  # week 2's products, added that week


def test_drift_only_turns_good_shipments_into_damaged_ones(example, tmp_path):
    clean, drifted = f"duckdb:///{tmp_path / 'clean.duckdb'}", f"duckdb:///{tmp_path / 'drifted.duckdb'}"
    summary = example.main(["--warehouse", clean, *SMALL])
    shifted = example.main(["--warehouse", drifted, *SMALL, "--drift", "0.5"])

    before, after = rows(clean, FEEDBACK), rows(drifted, FEEDBACK)
    assert [r[:3] for r in before] == [r[:3] for r in after]  # the same products and package types
    assert all(b[3] or not a[3] for b, a in zip(before, after))  # nothing damaged became fine
    assert sum(a[3] for a in after) / sum(b[3] for b in before) == pytest.approx(0.5, abs=0.08)
    assert all(shifted["ok_rate"][t] < rate for t, rate in summary["ok_rate"].items())


def test_upserts_replace_rows_with_the_same_key(example, tmp_path):
    from datetime import date, datetime

    import warehouse

    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    example.main(["--warehouse", url, *SMALL])

    def prediction(product_id: int, version: int) -> dict[str, Any]:
        return {"product_id": product_id, "package_type": "box", "prediction_date": date(2025, 1, 20),
                "mode": "daily", "probability_ok": version / 10, "ships_ok": True,
                "model_package": f"packaging-box/{version}", "model_version": version, "execution_id": "e",
                "loaded_at": datetime(2025, 1, 20)}

    with warehouse.transaction(url) as connection:
        warehouse.upsert_rows(connection, warehouse.package_predictions, [prediction(n, 1) for n in range(1, 2501)])
    with warehouse.transaction(url) as connection:
        warehouse.upsert_rows(connection, warehouse.package_predictions, [prediction(n, 2) for n in range(2001, 2601)])
    assert rows(url, "SELECT model_version, count(*) FROM package_predictions GROUP BY 1 ORDER BY 1") == [
        (1, 2000), (2, 600)]


def test_a_relative_duckdb_path_is_refused_where_a_job_could_not_find_it(example):
    import warehouse

    assert warehouse.warehouse_url("data/w.duckdb") == "duckdb:///" + os.path.abspath("data/w.duckdb")
    assert warehouse.warehouse_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(SystemExit, match="relative path"):
        warehouse.connect("duckdb:///data/w.duckdb")
    with pytest.raises(SystemExit, match="does not exist"):
        warehouse.connect("duckdb:////nowhere/w.duckdb", read_only=True)


def test_a_trained_model_answers_through_the_inference_contract(tmp_path, monkeypatch):
    from forgeline.inference import ModelSource, load_model

    monkeypatch.setattr(sys, "path", list(sys.path))  # the loader puts the code folder on sys.path

    train_dir, model_dir = tmp_path / "train", tmp_path / "model"
    train_dir.mkdir()
    header = "product_id,category,length_cm,width_cm,height_cm,weight_kg,fragility,liquid,shipped_ok\n"
    sturdy = [f"{n},tools,{20 + n % 30},10,5,2.0,0.05,0,1\n" for n in range(40)]
    fragile = [f"{100 + n},glassware,{20 + n % 30},10,5,2.0,0.95,0,0\n" for n in range(40)]
    (train_dir / "train.csv").write_text(header + "".join(sturdy + fragile))
    env = {**os.environ, "SM_MODEL_DIR": str(model_dir), "SM_CHANNEL_TRAIN": str(train_dir),
           "PYTHONPATH": str(CODE)}
    trained = subprocess.run([sys.executable, str(CODE / "train.py"), "--model_type", "logistic_regression",
                              "--feature_set", "full", "--package_type", "box"],
                             env=env, capture_output=True, text=True, timeout=120)
    assert trained.returncode == 0, trained.stderr
    assert "train_auc 1.0000" in trained.stdout

    predictor = load_model(ModelSource(str(model_dir), str(CODE), "inference.py"), cache_dir=tmp_path / "cache")
    answer = predictor.predict(b"7,tools,30,10,5,2.0,0.05,0\n8,glassware,30,10,5,2.0,0.95,0\n", "text/csv",
                               "text/csv")
    lines = [line.split(",") for line in answer.splitlines()]
    assert [flag for _, flag in lines] == ["1", "0"]
    assert float(lines[0][0]) > 0.5 > float(lines[1][0])
    sys.modules.pop("features", None)  # imported by the entry point from the code folder


@pytest.mark.parametrize("target", ["examples/packaging/training.py", "examples/packaging/inference.py"])
def test_the_pipeline_definitions_round_trip(target, monkeypatch):
    from forgeline.engine.loader import load_pipeline
    from forgeline.workflow import Pipeline

    monkeypatch.chdir(REPO_ROOT)
    pipeline = load_pipeline(target)
    assert Pipeline.from_definition(pipeline.definition()) == pipeline
