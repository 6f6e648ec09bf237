"""load_model and the inference contract: defaults for JSON and CSV, every hook, archives, files and URIs."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import fsspec
import numpy
import pytest

from forgeline.errors import InferenceError
from forgeline.inference.handlers import default_output_fn
from forgeline.registry import ModelSource, load_model
from forgeline.store.artifacts import ArtifactStore

ROWS = [[1, 2], [3, 4]]


def test_the_defaults_answer_json_like_calling_the_model(tiny: Any, tmp_path: Path) -> None:
    model_dir, code_dir, model = tiny()
    predictor = load_model(ModelSource(str(model_dir), str(code_dir), "inference.py"), cache_dir=tmp_path / "cache")

    answer = predictor.predict(json.dumps(ROWS), "application/json")

    assert json.loads(answer) == model.predict(ROWS) == [5.5, 11.5]
    assert json.loads(predictor.predict(json.dumps(ROWS).encode(), "application/json; charset=utf-8")) == [5.5, 11.5]
    assert json.loads(predictor.predict(ROWS)) == [5.5, 11.5]  # already-decoded Python values pass through


def test_csv_in_becomes_a_numpy_array_and_csv_out_lines(tiny: Any, tmp_path: Path) -> None:
    model_dir, code_dir, _ = tiny(inference="def predict_fn(data, model):\n"
                                            "    assert type(data).__name__ == 'ndarray'\n"
                                            "    return model.predict(data)\n")
    predictor = load_model(ModelSource(str(model_dir), str(code_dir), "inference.py"), cache_dir=tmp_path)
    assert predictor.predict("1,2\n3,4\n", "text/csv", accept="text/csv") == "5.5\n11.5\n"
    assert predictor.predict(b"1,2\n", "text/csv") == "[5.5]"


def test_every_hook_of_the_entry_point_is_used(tmp_path: Path) -> None:
    code_dir, model_dir = tmp_path / "code", tmp_path / "model"
    code_dir.mkdir()
    model_dir.mkdir()
    (model_dir / "weights.json").write_text("[10, 1]")
    (code_dir / "scale.py").write_text("FACTOR = 3\n")
    (code_dir / "inference.py").write_text(
        "import json, os\n"
        "from scale import FACTOR\n"  # the code folder is importable from the entry point
        "def model_fn(model_dir):\n"
        "    return json.load(open(os.path.join(model_dir, 'weights.json')))\n"
        "def input_fn(body, content_type):\n"
        "    assert content_type == 'text/x-pair'\n"
        "    return [float(v) for v in body.split(';')]\n"
        "def predict_fn(data, model):\n"
        "    return FACTOR * sum(w * x for w, x in zip(model, data))\n"
        "def output_fn(prediction, accept):\n"
        "    return f'{accept}:{prediction}'\n"
    )
    predictor = load_model(ModelSource(str(model_dir), str(code_dir), "inference.py"), cache_dir=tmp_path / "c")
    assert predictor.predict("1;2", "text/x-pair", "text/plain") == "text/plain:36.0"
    assert predictor.model == [10, 1]


def test_transform_fn_replaces_the_last_three_hooks(tiny: Any, tmp_path: Path) -> None:
    model_dir, code_dir, _ = tiny(inference="def transform_fn(model, body, content_type, accept):\n"
                                            "    return (type(model).__name__, body, content_type, accept)\n")
    predictor = load_model(ModelSource(str(model_dir), str(code_dir), "inference.py"), cache_dir=tmp_path)
    assert predictor.predict("x", "text/csv", "text/csv") == ("TinyModel", "x", "text/csv", "text/csv")


def test_a_model_tar_gz_is_unpacked_once_into_the_cache(tiny: Any, tmp_path: Path) -> None:
    model_dir, code_dir, model = tiny()
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(model_dir / "model.pkl", arcname="model.pkl")
    source = ModelSource(str(archive), str(code_dir), "inference.py")
    cache = tmp_path / "cache"

    first = load_model(source, cache_dir=cache)
    marker = first.model_dir / "marker"
    marker.write_text("kept")
    second = load_model(source, cache_dir=cache)

    assert first.model_dir == second.model_dir and first.model_dir.is_relative_to(cache)
    assert marker.exists()  # reused, not unpacked again
    assert [p.name for p in cache.iterdir()] == [first.model_dir.parent.name]
    assert json.loads(second.predict(json.dumps(ROWS))) == model.predict(ROWS)


def test_a_single_model_file_and_the_response_type_as_default_accept(tiny: Any, tmp_path: Path) -> None:
    model_dir, code_dir, _ = tiny()
    source = ModelSource(str(model_dir / "model.pkl"), str(code_dir), "inference.py", response_types=("text/csv",))
    predictor = load_model(source, cache_dir=tmp_path / "cache")
    assert (predictor.model_dir / "model.pkl").is_file()
    assert predictor.predict(json.dumps(ROWS)) == "5.5\n11.5\n"


def test_model_data_and_code_at_a_uri_are_fetched(tiny: Any, tmp_path: Path) -> None:
    model_dir, code_dir, model = tiny()
    fs = fsspec.filesystem("memory")
    fs.put(str(model_dir), "/reg/model", recursive=True)
    fs.put(str(code_dir), "/reg/code", recursive=True)
    source = ModelSource("memory://reg/model", "memory://reg/code", "inference.py")
    try:
        predictor = load_model(source, artifacts=ArtifactStore("memory://reg"), cache_dir=tmp_path / "cache")
    finally:
        fs.rm("/reg", recursive=True)
    assert predictor.model_dir.is_relative_to(tmp_path / "cache")
    assert json.loads(predictor.predict(json.dumps(ROWS))) == model.predict(ROWS)


def test_numpy_predictions_become_json_and_csv(tmp_path: Path) -> None:
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "inference.py").write_text(
        "import numpy\n"
        "def model_fn(model_dir):\n    return None\n"
        "def predict_fn(data, model):\n    return {'scores': numpy.array(data) * 2, 'best': numpy.int64(1)}\n")
    predictor = load_model(ModelSource(str(tmp_path), str(code_dir), "inference.py"), cache_dir=tmp_path / "c")
    assert json.loads(predictor.predict("[1, 2]")) == {"scores": [2, 4], "best": 1}
    assert default_output_fn(numpy.array([[1.5, 2.0], [3.0, 4.0]]), "text/csv") == "1.5,2.0\n3.0,4.0\n"


def test_two_models_with_the_same_entry_point_name_do_not_collide(tmp_path: Path) -> None:
    predictors = []
    for answer in ("a", "b"):
        code_dir = tmp_path / answer
        code_dir.mkdir()
        (code_dir / "inference.py").write_text(
            f"def model_fn(model_dir):\n    return None\ndef predict_fn(data, model):\n    return {answer!r}\n")
        predictors.append(load_model(ModelSource(str(code_dir), str(code_dir), "inference.py"),
                                     cache_dir=tmp_path / "c"))
    assert [p.predict("{}") for p in predictors] == ['"a"', '"b"']


@pytest.mark.parametrize(("inference", "model_file", "call", "message"), [
    ("", False, None, "has no model.joblib or model.pkl .*define model_fn\\(model_dir\\)"),
    ("raise ZeroDivisionError('boom')\n", True, None, "importing the entry point .*ZeroDivisionError: boom"),
    ("def model_fn(d):\n    return {'a': 1}\n", False, ("{}", "application/json", None),
     "has no predict method; define predict_fn"),
    ("", True, ("<x/>", "application/xml", None), "unsupported content type 'application/xml'.*define input_fn"),
    ("", True, ("[[1, 2]]", "application/json", "application/xml"), "unsupported accept type.*define output_fn"),
    ("", True, ("1,a\n", "text/csv", None), "CSV body holds a value that is not a number"),
    ("", True, ("[1,", "application/json", None), "not valid JSON"),
])
def test_what_cannot_load_or_answer_says_what_to_define(tiny: Any, tmp_path: Path, inference: str, model_file: bool,
                                                        call: tuple[str, str, str | None] | None,
                                                        message: str) -> None:
    model_dir, code_dir, _ = tiny(inference=inference)
    if not model_file:
        (model_dir / "model.pkl").unlink()
    with pytest.raises(InferenceError, match=message):
        predictor = load_model(ModelSource(str(model_dir), str(code_dir), "inference.py"), cache_dir=tmp_path / "c")
        if call is not None:
            predictor.predict(call[0], call[1], call[2])


def test_missing_sources_are_named(tmp_path: Path) -> None:
    with pytest.raises(InferenceError, match="model data .*nothing.tar.gz does not exist"):
        load_model(ModelSource(str(tmp_path / "nothing.tar.gz")), cache_dir=tmp_path / "c")
    with pytest.raises(InferenceError, match="inference code folder .*nocode does not exist"):
        load_model(ModelSource(str(tmp_path), str(tmp_path / "nocode"), "inference.py"), cache_dir=tmp_path / "c")
    with pytest.raises(InferenceError, match="entry point .*missing.py does not exist"):
        load_model(ModelSource(str(tmp_path), str(tmp_path), "missing.py"), cache_dir=tmp_path / "c")
    with pytest.raises(InferenceError, match="cannot load a model from 42"):
        load_model(42)
