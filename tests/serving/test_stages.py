"""InferencePipeline: stages from the one model loader, batched predict calls, per-request failures."""

from __future__ import annotations

import json
from pathlib import Path

from forgeline.inference.loader import ModelSource, load_model
from forgeline.serving.stages import InferencePipeline, Stage

COUNTING = """
CALLS = []

def model_fn(model_dir):
    return None

def predict_fn(rows, model):
    CALLS.append(len(rows))
    if any(row == [666] for row in rows):
        raise ValueError("666 is refused")
    return [sum(row) for row in rows]
"""


def _stage(tmp_path: Path, code: str, *, accepts_batches: bool = True, content_types: tuple[str, ...] = (),
           name: str = "m") -> Stage:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "inference.py").write_text(code)
    predictor = load_model(ModelSource(str(folder), str(folder), "inference.py"), cache_dir=tmp_path / "cache")
    return Stage(f"{name}@1", predictor, accepts_batches, content_types)


def _request(body: object, content_type: str = "application/json", accept: str = "") -> tuple[str, str, bytes]:
    return (content_type, accept, json.dumps(body).encode())


def test_a_stage_that_accepts_batches_predicts_every_request_in_one_call(tmp_path: Path) -> None:
    stage = _stage(tmp_path, COUNTING)
    replies = InferencePipeline([stage]).run([_request([[1, 2]]), _request([[3], [4]])])

    assert [json.loads(r[2]) for r in replies] == [[3], [3, 4]]
    assert stage.predictor.handlers.predict_fn.__globals__["CALLS"] == [3]


def test_numpy_rows_of_several_requests_are_concatenated_and_split_back(tmp_path: Path) -> None:
    stage = _stage(tmp_path, "def model_fn(model_dir):\n    return None\n"
                             "def predict_fn(rows, model):\n    assert rows.shape == (3, 2)\n"
                             "    return rows.sum(axis=1)\n")
    replies = InferencePipeline([stage]).run([("text/csv", "text/csv", b"1,2\n3,4\n"), ("text/csv", "", b"5,6\n")])

    assert [r[:3] for r in replies] == [(200, "text/csv", b"3.0\n7.0\n"), (200, "application/json", b"[11.0]")]


def test_a_request_that_breaks_a_batch_fails_alone(tmp_path: Path) -> None:
    stage = _stage(tmp_path, COUNTING)
    replies = InferencePipeline([stage]).run([_request([[1]]), _request([[666]]), _request([[2]])])

    assert [r[0] for r in replies] == [200, 500, 200]
    assert replies[1][3] == 0 and "ValueError: 666 is refused" in (replies[1][4] or "")
    assert stage.predictor.handlers.predict_fn.__globals__["CALLS"] == [3, 1, 1, 1]  # the batch, then one by one


def test_without_the_flag_each_request_is_its_own_call(tmp_path: Path) -> None:
    stage = _stage(tmp_path, COUNTING, accepts_batches=False)
    InferencePipeline([stage]).run([_request([[1], [2]]), _request([[3]])])
    assert stage.predictor.handlers.predict_fn.__globals__["CALLS"] == [2, 1]


def test_client_errors_are_told_apart_from_model_errors(tmp_path: Path) -> None:
    pipeline = InferencePipeline([_stage(tmp_path, COUNTING, content_types=("application/json",))])
    malformed, unsupported, unacceptable = pipeline.run([
        ("application/json", "", b"[[1"), ("text/csv", "", b"1\n"), _request([[1]], accept="image/png")])

    assert (malformed[0], malformed[3]) == (400, 0)
    assert unsupported[0] == 415 and "application/json" in (unsupported[4] or "")
    assert unacceptable[0] == 406
