"""Batch transform (transform_folder): order across batches and workers, joins, files, strategies and failures.

Every test runs real worker processes that load a tiny model through the inference contract's loader.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import pickle
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forgeline.inference.loader import ModelSource, load_model
from forgeline.jobs.transform import transform_folder
from forgeline.jobs.transform_chunks import (
    ModelLoadError,
    RecordError,
    TransformSettings,
    WorkerLostError,
    chunk_size,
    plan_chunks,
)

INFERENCE = """
    import json, os, random, sys, time
    import numpy as np

    def model_fn(model_dir):
        with open(os.path.join(model_dir, "weights.json")) as handle:
            weights = json.load(handle)
        if weights.get("say"):
            # one write (two workers share the output: print's pieces could interleave when it is unbuffered),
            # not flushed: the worker must flush it before it ends
            sys.stdout.write(f"loaded in {os.getpid()}\\n")
        return weights

    def predict_fn(data, model):
        if isinstance(data, list) and data and isinstance(data[0], dict):  # JSON records
            data = [record["x"] for record in data]
        data = np.asarray(data, dtype=float)
        if model.get("jitter"):  # batches finish out of order
            time.sleep(random.random() * model["jitter"])
        if model.get("single") and len(data) != 1:
            raise AssertionError(f"SingleRecord sent {len(data)} records in one request")
        if model.get("reject") is not None and (data == model["reject"]).any():
            raise ValueError(f"cannot score {model['reject']}")
        if model.get("threads"):
            return np.full(len(data), int(os.environ.get("OMP_NUM_THREADS", "0")))
        if model.get("drop_last"):
            data = data[:-1]
        if model.get("die"):
            os._exit(3)
        if model.get("total"):
            return np.array([data.sum()]).astype(int)
        return (data @ np.array(model["weights"], dtype=float)).astype(int)
"""

LINEAR = """
    class Linear:
        def __init__(self, weights):
            self.weights = weights

        def predict(self, rows):
            return rows @ self.weights
"""


def weights_model(tmp_path: Path, **options: Any) -> functools.partial[Any]:
    """A factory for a model of JSON weights (default: [1, 0], so the prediction is the first column)."""
    code, model = tmp_path / "code", tmp_path / "model"
    code.mkdir(exist_ok=True)
    model.mkdir(exist_ok=True)
    (code / "inference.py").write_text(textwrap.dedent(INFERENCE))
    (model / "weights.json").write_text(json.dumps({"weights": [1, 0], **options}))
    return functools.partial(load_model, ModelSource(str(model), str(code), "inference.py"),
                             cache_dir=tmp_path / "cache")


def write_csv(path: Path, rows: range, columns: int = 2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join([str(i)] + ["7"] * (columns - 1)) + "\n" for i in rows))
    return path


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


WARM_SECONDS = [0.0]
"""The workers' start of the running test: 0 spawned by the transform itself, else forked by the warm server."""


@pytest.fixture(autouse=True, params=[0.0, 30.0], ids=["spawned", "warm"])
def worker_start(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test runs twice: with workers spawned by the transform, and forked by the warm transform server."""
    WARM_SECONDS[0] = request.param
    yield
    WARM_SECONDS[0] = 0.0


def settings(**options: Any) -> TransformSettings:
    return TransformSettings(**{"accept": "text/csv", "warm_seconds": WARM_SECONDS[0], **options})


def test_output_line_i_belongs_to_input_line_i_across_many_batches_and_workers(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "in" / "data.csv", range(3000))
    size = chunk_size(settings(max_payload_mb=0.0005, workers=2), data.stat().st_size)
    assert len(list(plan_chunks(data, "Line", size))) >= 30  # many batches, finishing out of order (jitter)

    counts = transform_folder(tmp_path / "in", tmp_path / "out", weights_model(tmp_path, jitter=0.01),
                              settings(max_payload_mb=0.0005, workers=2))

    assert counts == {"data.csv": 3000}
    assert lines(tmp_path / "out" / "data.csv.out") == [str(i) for i in range(3000)]


def test_batches_are_cut_at_line_ends_within_max_payload(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "data.csv", range(5000), columns=3)
    limit = 1000
    chunks = list(plan_chunks(data, "Line", limit))
    content = data.read_bytes()

    assert b"".join(content[c.start:c.start + c.length] for c in chunks) == content
    assert all(c.length <= limit and content[c.start + c.length - 1:c.start + c.length] == b"\n" for c in chunks)
    long_record = tmp_path / "long.csv"
    long_record.write_text("1," + "2," * 600 + "3\n4\n")
    assert [c.length for c in plan_chunks(long_record, "Line", limit)] == [1204, 2]  # alone, not cut


def test_join_source_input_puts_each_prediction_after_its_csv_row(tmp_path: Path) -> None:
    write_csv(tmp_path / "in" / "data.csv", range(500))

    transform_folder(tmp_path / "in", tmp_path / "out", weights_model(tmp_path),
                     settings(max_payload_mb=0.001, workers=2, join_source="Input"))

    assert lines(tmp_path / "out" / "data.csv.out") == [f"{i},7,{i}" for i in range(500)]


@pytest.mark.parametrize("content_type", ["application/jsonlines", "application/json"])
def test_join_source_input_adds_the_prediction_to_each_json_record(tmp_path: Path, content_type: str) -> None:
    source = tmp_path / "in" / "records.jsonl"
    source.parent.mkdir()
    source.write_text("".join(json.dumps({"id": f"r{i}", "x": [i, 5]}) + "\n" for i in range(300)))

    transform_folder(tmp_path / "in", tmp_path / "out", weights_model(tmp_path),
                     settings(content_type=content_type, accept="application/jsonlines",
                              max_payload_mb=0.001, workers=2, join_source="Input"))

    joined = [json.loads(line) for line in lines(tmp_path / "out" / "records.jsonl.out")]
    assert joined == [{"id": f"r{i}", "x": [i, 5], "prediction": i} for i in range(300)]


def test_every_file_of_a_folder_gets_its_own_output_at_the_same_relative_path(tmp_path: Path) -> None:
    write_csv(tmp_path / "in" / "a.csv", range(0, 40))
    write_csv(tmp_path / "in" / "b.csv", range(100, 400))
    write_csv(tmp_path / "in" / "nested" / "deeper" / "c.csv", range(1000, 1003))
    (tmp_path / "in" / "empty.csv").write_text("")

    counts = transform_folder(tmp_path / "in", tmp_path / "out", weights_model(tmp_path),
                              settings(max_payload_mb=0.0005, workers=2))

    assert counts == {"a.csv": 40, "b.csv": 300, "empty.csv": 0, "nested/deeper/c.csv": 3}
    produced = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert produced == ["a.csv.out", "b.csv.out", "empty.csv.out", "nested/deeper/c.csv.out"]
    assert lines(tmp_path / "out" / "a.csv.out") == [str(i) for i in range(0, 40)]
    assert lines(tmp_path / "out" / "b.csv.out") == [str(i) for i in range(100, 400)]
    assert lines(tmp_path / "out" / "nested" / "deeper" / "c.csv.out") == ["1000", "1001", "1002"]
    assert (tmp_path / "out" / "empty.csv.out").read_bytes() == b""


def test_a_single_input_file(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "data.csv", range(10))
    counts = transform_folder(data, tmp_path / "out", weights_model(tmp_path), settings())
    assert counts == {"data.csv": 10}
    assert lines(tmp_path / "out" / "data.csv.out") == [str(i) for i in range(10)]


def test_single_record_sends_one_record_per_request(tmp_path: Path) -> None:
    write_csv(tmp_path / "in" / "data.csv", range(200))

    transform_folder(tmp_path / "in", tmp_path / "out", weights_model(tmp_path, single=True),
                     settings(strategy="SingleRecord", workers=2, join_source="Input"))

    assert lines(tmp_path / "out" / "data.csv.out") == [f"{i},7" + f",{i}" for i in range(200)]


def test_split_type_none_sends_each_file_whole(tmp_path: Path) -> None:
    write_csv(tmp_path / "in" / "a.csv", range(10))  # 0 + ... + 9 + 10 * 7 = 115
    write_csv(tmp_path / "in" / "b.csv", range(3))  # 0 + 1 + 2 + 3 * 7 = 24

    counts = transform_folder(tmp_path / "in", tmp_path / "out", weights_model(tmp_path, total=True),
                              settings(split_type="None", max_payload_mb=0.0001, workers=2))

    assert counts == {"a.csv": 1, "b.csv": 1}
    assert lines(tmp_path / "out" / "a.csv.out") == ["115"]
    assert lines(tmp_path / "out" / "b.csv.out") == ["24"]


def test_windows_line_ends_and_a_last_line_without_newline(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "data.csv").write_bytes(b"".join(b"%d,7\r\n" % i for i in range(99)) + b"99,7")

    transform_folder(tmp_path / "in", tmp_path / "out", weights_model(tmp_path),
                     settings(max_payload_mb=0.0002, workers=2, join_source="Input"))

    assert lines(tmp_path / "out" / "data.csv.out") == [f"{i},7,{i}" for i in range(100)]


def test_the_default_handlers_serve_a_pickled_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy

    code, model_dir = tmp_path / "code", tmp_path / "model"
    code.mkdir()
    model_dir.mkdir()
    (code / "linear_for_transform.py").write_text(textwrap.dedent(LINEAR))
    (code / "inference.py").write_text("# the default handlers serve this model\n")
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.delitem(sys.modules, "linear_for_transform", raising=False)
    module = importlib.import_module("linear_for_transform")
    (model_dir / "model.pkl").write_bytes(pickle.dumps(module.Linear(numpy.array([2.0, 0.5]))))
    write_csv(tmp_path / "in" / "data.csv", range(1000))
    factory = functools.partial(load_model, ModelSource(str(model_dir), str(code), "inference.py"),
                                cache_dir=tmp_path / "cache")

    transform_folder(tmp_path / "in", tmp_path / "out", factory, settings(max_payload_mb=0.001, workers=2))

    assert lines(tmp_path / "out" / "data.csv.out") == [str(2.0 * i + 3.5) for i in range(1000)]


def test_a_rejected_record_names_its_file_and_line(tmp_path: Path) -> None:
    write_csv(tmp_path / "in" / "a.csv", range(0, 12))  # holds no 13
    bad = tmp_path / "in" / "b.csv"
    bad.write_text("".join(f"{i},{-1 if i == 2357 else 7}\n" for i in range(5000)))

    with pytest.raises(RecordError) as failure:
        transform_folder(tmp_path / "in", tmp_path / "out", weights_model(tmp_path, reject=-1),
                         settings(max_payload_mb=0.01, workers=2))

    assert str(failure.value) == "b.csv line 2358: ValueError: cannot score -1"


@pytest.mark.parametrize("strategy", ["MultiRecord", "SingleRecord"])
def test_a_rejected_first_record_of_a_later_batch(tmp_path: Path, strategy: str) -> None:
    data = write_csv(tmp_path / "data.csv", range(14, 400))
    data.write_text(data.read_text().replace("\n300,7\n", "\n300,-1\n"))

    with pytest.raises(RecordError, match=r"^data.csv line 287: ValueError: cannot score -1$"):
        transform_folder(data, tmp_path / "out", weights_model(tmp_path, reject=-1),
                         settings(max_payload_mb=0.0002, strategy=strategy, workers=2))


def test_a_model_answering_fewer_lines_than_records_fails_with_the_batch(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "data.csv", range(10))
    with pytest.raises(RecordError, match=r"data.csv lines 1-10: the model returned 9 line\(s\) for 10 record"):
        transform_folder(data, tmp_path / "out", weights_model(tmp_path, drop_last=True), settings())


def test_a_model_that_cannot_load_says_why(tmp_path: Path) -> None:
    factory = weights_model(tmp_path)
    (tmp_path / "model" / "weights.json").unlink()
    data = write_csv(tmp_path / "data.csv", range(10))

    with pytest.raises(ModelLoadError, match="the model could not be loaded: FileNotFoundError: .*weights.json"):
        transform_folder(data, tmp_path / "out", factory, settings(workers=2))


def test_a_worker_that_dies_fails_the_transform_in_one_line(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "data.csv", range(10))

    with pytest.raises(WorkerLostError, match=r"^a transform worker died \(out of memory, or killed by a signal\)$"):
        transform_folder(data, tmp_path / "out", weights_model(tmp_path, die=True), settings(workers=2))


def test_workers_share_the_cores_for_numeric_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    data = write_csv(tmp_path / "data.csv", range(4))
    cores = len(os.sched_getaffinity(0))

    transform_folder(data, tmp_path / "out", weights_model(tmp_path, threads=True), settings(workers=2))
    assert set(lines(tmp_path / "out" / "data.csv.out")) == {str(max(1, cores // 2))}
    assert "OMP_NUM_THREADS" not in os.environ  # only the workers saw it

    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice wins
    transform_folder(data, tmp_path / "out", weights_model(tmp_path, threads=True), settings(workers=2))
    assert set(lines(tmp_path / "out" / "data.csv.out")) == {"3"}


def test_what_the_workers_print_is_not_lost(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    data = write_csv(tmp_path / "data.csv", range(2000))

    transform_folder(data, tmp_path / "out", weights_model(tmp_path, say=True),
                     settings(max_payload_mb=0.0005, workers=2))

    printed = [line for line in capfd.readouterr().out.splitlines() if line.startswith("loaded in")]
    assert len(printed) == 2 and len(set(printed)) == 2, printed
