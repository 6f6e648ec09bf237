"""The default handlers: fast CSV in and out give what the plain per-value path gives; JSON lines both ways."""

from __future__ import annotations

import json
import random
import sys

import numpy
import pytest

from forgeline.errors import InferenceError
from forgeline.inference import handlers
from forgeline.inference.handlers import csv_lines, csv_rows, default_input_fn, default_output_fn


def test_csv_rows_reads_numbers_as_a_float_matrix() -> None:
    body = b"1,2.5,-3\n4e2, 5 ,nan\r\n.5,+6,-inf\n"
    rows = csv_rows(body)
    assert rows.dtype == numpy.float64 and rows.shape == (3, 3)
    numpy.testing.assert_array_equal(rows, numpy.array([[1, 2.5, -3], [400, 5, numpy.nan], [0.5, 6, -numpy.inf]]))
    numpy.testing.assert_array_equal(csv_rows("1,2\n3,4"), [[1, 2], [3, 4]])  # text too, no final newline
    assert csv_rows(b"7\n8\n").shape == (2, 1)
    assert csv_rows(b"7").shape == (1, 1)
    assert csv_rows(b"").size == 0 and csv_rows(b"\n \n").size == 0


def test_csv_rows_match_float_on_every_value() -> None:
    generator = random.Random(7)
    values = [[generator.uniform(-1e6, 1e6) for _ in range(5)] for _ in range(300)]
    texts = [[repr(v) if i % 3 else f"{v:.3e}" for i, v in enumerate(row)] for row in values]
    body = "".join(",".join(row) + "\n" for row in texts).encode()
    expected = [[float(v) for v in row] for row in texts]
    assert csv_rows(body).tolist() == expected


@pytest.mark.parametrize(("body", "message"), [
    (b"1,2\n3,x\n", "not a number: could not convert string 'x'"),
    (b"1,,2\n", "not a number"),
    (b"1,2\n3\n", "rows of different lengths"),
    (b"# 1,2\n", "not a number"),  # no comment syntax: every line is data
])
def test_csv_rows_say_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(InferenceError, match=message):
        csv_rows(body)


def test_without_numpy_csv_becomes_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)  # import numpy raises ImportError
    assert csv_rows(b"1,2\n3,4\n") == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(InferenceError, match="not a number"):
        csv_rows(b"1,a\n")


@pytest.mark.parametrize("prediction", [
    numpy.array([0, 1, 1, 0]),
    numpy.array([0.1, 2.5, -3.0, 1e-20, numpy.nan]),
    numpy.array([[0.25, 0.75], [1.0, 0.0], [0.5, 0.5]]),
    numpy.array([[3], [4]]),
    numpy.array(["yes", "no"]),
    numpy.array([True, False]),
    numpy.array([[1, 2, 3]], dtype=numpy.float32),
    numpy.float64(2.5),
    [1.5, 2.5],
    [[1, 2], [3, 4]],
    7,
])
def test_csv_lines_format_like_one_str_per_value(prediction: object) -> None:
    rows = prediction.tolist() if hasattr(prediction, "tolist") else prediction
    rows = rows if isinstance(rows, list) else [rows]
    expected = "".join((",".join(map(str, r)) if isinstance(r, list) else str(r)) + "\n" for r in rows)
    assert csv_lines(prediction) == expected
    assert default_output_fn(prediction, "text/csv; charset=utf-8") == expected


@pytest.mark.parametrize("labels", [
    numpy.random.default_rng(1).integers(0, 3, 5000),  # class labels: formatted through a lookup table
    numpy.random.default_rng(2).integers(-4, 4, (2000, 3)),
    numpy.arange(-128, 128, dtype=numpy.int8).repeat(8),  # the offsets must not overflow int8
    numpy.array([2**64 - 1, 2**64 - 5] * 800, dtype=numpy.uint64),
    numpy.random.default_rng(3).integers(-10**12, 10**12, 3000),  # too wide a range for a table
])
def test_many_integer_predictions_format_like_str(labels: numpy.ndarray) -> None:
    rows = labels.tolist()
    expected = "".join((",".join(map(str, r)) if isinstance(r, list) else str(r)) + "\n" for r in rows)
    assert csv_lines(labels) == expected


def test_an_empty_prediction_is_no_lines() -> None:
    assert csv_lines(numpy.array([])) == ""
    assert csv_lines([]) == ""


def test_json_lines_in_and_out() -> None:
    body = b'{"x": [1, 2]}\n\n[3, 4]\n5\n'
    assert default_input_fn(body, "application/jsonlines") == [{"x": [1, 2]}, [3, 4], 5]
    assert default_input_fn(body, "application/json") == [{"x": [1, 2]}, [3, 4], 5]  # several documents
    assert default_input_fn(b'{"a": 1}', "application/json") == {"a": 1}
    assert default_output_fn(numpy.array([[1, 2], [3, 4]]), "application/jsonlines") == "[1, 2]\n[3, 4]\n"
    answer = default_output_fn([{"p": numpy.float64(0.5)}, 2], "application/x-jsonlines")
    assert [json.loads(line) for line in answer.splitlines()] == [{"p": 0.5}, 2]
    with pytest.raises(InferenceError, match="line 2 of the request body is not valid JSON"):
        default_input_fn(b"1\n{\n", "application/jsonlines")


def test_a_prediction_json_cannot_hold_says_to_define_output_fn() -> None:
    with pytest.raises(InferenceError, match="holds a set, which JSON cannot hold; define output_fn"):
        default_output_fn({"labels": {1, 2}}, "application/json")


def test_unknown_media_types_name_the_ones_the_defaults_know() -> None:
    with pytest.raises(InferenceError, match=f"reads {handlers.JSON}, {handlers.JSON_LINES} and text/csv"):
        default_input_fn(b"<x/>", "application/xml")
