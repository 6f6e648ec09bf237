"""Reading a report's inputs: labelled rows (CSV with a header, JSON Lines) and scores (CSV, JSON Lines), checked."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgeline.errors import ReportError

TASKS = ("binary", "multiclass", "regression")
_TRUE, _FALSE = frozenset({"1", "1.0", "true", "yes"}), frozenset({"0", "0.0", "false", "no"})


def data_files(location: str | Path, what: str) -> list[Path]:
    """The file, or every file of the folder in name order (hidden files left out)."""
    path = Path(location)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        if files:
            return files
        raise ReportError(f"{what} folder {path} holds no files")
    raise ReportError(f"{what} {path} does not exist")


def _is_json_lines(path: Path, first: str) -> bool:
    return path.suffix in (".jsonl", ".json", ".ndjson") or first.lstrip().startswith(("{", "["))


def read_rows(location: str | Path) -> list[dict[str, Any]]:
    """Labelled rows as dicts: CSV files with a header line, or JSON Lines of objects."""
    rows: list[dict[str, Any]] = []
    for path in data_files(location, "data"):
        text = path.read_text(encoding="utf-8")
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            continue
        if _is_json_lines(path, lines[0]):
            for number, line in enumerate(lines, 1):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ReportError(f"data {path} line {number} is not JSON: {exc}") from None
                if not isinstance(row, dict):
                    raise ReportError(f"data {path} line {number} is not a JSON object with named columns")
                rows.append(row)
        else:
            rows.extend(dict(row) for row in csv.DictReader(io.StringIO(text)))
    if not rows:
        raise ReportError(f"data {location} has no rows")
    return rows


def parse_scores(text: str, score_field: str, where: str) -> list[Any]:
    """Scores from one body: JSON (a list, or an object holding ``score_field``), JSON Lines, or CSV lines."""
    stripped = text.strip()
    if not stripped:
        return []
    if stripped[0] in "[{":
        try:
            document = json.loads(stripped)
        except json.JSONDecodeError:
            document = None  # JSON Lines: one document per line
        if isinstance(document, list):
            return [_score_of(item, score_field, where, i + 1) for i, item in enumerate(document)]
        if isinstance(document, dict) and isinstance(document.get(score_field), list):
            return list(document[score_field])
        lines = [line for line in stripped.splitlines() if line.strip()]
        scores = []
        for number, line in enumerate(lines, 1):
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ReportError(f"{where} line {number} is not JSON: {exc}") from None
            scores.append(_score_of(item, score_field, where, number))
        return scores
    return _csv_scores(stripped, where)


def _score_of(item: Any, score_field: str, where: str, number: int) -> Any:
    if isinstance(item, dict):
        if score_field not in item:
            raise ReportError(f"{where} line {number} has no field {score_field!r} (it has: "
                              f"{', '.join(sorted(item)) or 'none'}); name the score with score_field=")
        return item[score_field]
    if isinstance(item, list) and len(item) == 1:
        return item[0]
    return item


def _csv_scores(text: str, where: str) -> list[Any]:
    scores: list[Any] = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row:
            continue
        try:
            scores.append(float(row[-1]))
        except ValueError:
            if number == 1:
                continue  # a header line
            raise ReportError(f"{where} line {number}: the last column {row[-1]!r} is not a number") from None
    return scores


def read_scores(location: str | Path, score_field: str) -> list[Any]:
    """Every score of a file or folder of predictions, in row order."""
    scores: list[Any] = []
    for path in data_files(location, "predictions"):
        scores.extend(parse_scores(path.read_text(encoding="utf-8"), score_field, f"predictions {path}"))
    return scores


def read_ids(location: str | Path, id_column: str) -> list[str]:
    """The row ids of predictions: ``id_column`` of JSON lines, or the first column of CSV lines."""
    ids: list[str] = []
    for path in data_files(location, "predictions"):
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for number, line in enumerate(lines, 1):
            if line.lstrip().startswith("{"):
                item = json.loads(line)
                if id_column not in item:
                    raise ReportError(f"predictions {path} line {number} has no id field {id_column!r}")
                ids.append(str(item[id_column]))
            else:
                first = next(csv.reader([line]))[0]
                if not (number == 1 and first == id_column):  # a header line
                    ids.append(first)
    return ids


def check_ids(rows: Sequence[dict[str, Any]], id_column: str, predicted: Sequence[str]) -> None:
    """Refuse predictions whose ids are not the data's, row for row."""
    if id_column not in rows[0]:
        raise ReportError(f"the data has no id column {id_column!r} (its columns: {', '.join(rows[0])})")
    if len(predicted) != len(rows):
        raise ReportError(f"the predictions have {len(predicted)} id(s) for {len(rows)} data row(s)")
    for number, (row, given) in enumerate(zip(rows, predicted), 1):
        if str(row[id_column]) != given:
            raise ReportError(f"prediction row {number} is for {id_column} {given!r} but data row {number} is "
                              f"{str(row[id_column])!r}: predictions must follow the data's rows in order")


@dataclass(frozen=True)
class LabelledScores:
    """Labels (class indexes, or numbers for regression), each model's scores, classes and segments, checked."""

    task: str
    labels: list[Any]
    classes: list[str]
    candidate: list[Any]
    baseline: list[Any] | None
    segments: list[str] | None


def label_values(rows: Sequence[dict[str, Any]], label: str) -> list[Any]:
    """The label column; ReportError naming the columns there are when it is missing."""
    if label not in rows[0]:
        raise ReportError(f"the data has no label column {label!r} (its columns: {', '.join(rows[0])}); "
                          "name it with label=")
    values = []
    for number, row in enumerate(rows, 1):
        value = row.get(label)
        if value is None or value == "":
            raise ReportError(f"data row {number} has no value in label column {label!r}")
        values.append(value)
    return values


def _number(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ReportError(f"{what} {value!r} is not a number") from None
    if math.isnan(number):
        raise ReportError(f"{what} is NaN")
    return number


def _binary_label(value: Any) -> str:
    text = str(value).strip().lower()
    return "1" if text in _TRUE else "0" if text in _FALSE else str(value)


def check_scores(task: str, scores: Sequence[Any], classes: Sequence[str], who: str) -> list[Any]:
    """Scores as floats (binary, regression) or probability lists (multiclass); ReportError names a bad one."""
    checked: list[Any] = []
    for number, score in enumerate(scores, 1):
        what = f"{who} score of row {number}"
        if task == "multiclass":
            if not isinstance(score, list) or len(score) != len(classes):
                raise ReportError(f"{what} must be a list of {len(classes)} class probabilities "
                                  f"({', '.join(classes)}), got {score!r}")
            checked.append([_number(p, what) for p in score])
        else:
            value = _number(score[-1] if isinstance(score, list) and score else score, what)
            if task == "binary" and not 0.0 <= value <= 1.0:
                raise ReportError(f"{what} is {value}, not a probability between 0 and 1")
            checked.append(value)
    return checked


def labelled_scores(rows: Sequence[dict[str, Any]], label: str, task: str, candidate: Sequence[Any],
                    baseline: Sequence[Any] | None = None, segment: str | None = None) -> LabelledScores:
    """Pair the data's labels with each model's scores; ReportError for every mismatch, in one line."""
    if task not in TASKS:
        raise ReportError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    raw = label_values(rows, label)
    for who, scores in (("candidate", candidate), ("baseline", baseline)):
        if scores is not None and len(scores) != len(rows):
            raise ReportError(f"the {who} has {len(scores)} prediction(s) for {len(rows)} data row(s): predictions "
                              "must have one row per data row, in the data's order")
    classes: list[str] = []
    labels: list[Any]
    if task == "regression":
        labels = [_number(v, f"label {label!r} of row {i}") for i, v in enumerate(raw, 1)]
    else:
        texts = [_binary_label(v) if task == "binary" else str(v) for v in raw]
        classes = sorted(set(texts), key=lambda c: (not _numeric(c), float(c) if _numeric(c) else 0.0, c))
        if task == "binary":
            if len(classes) > 2:
                raise ReportError(f"label {label!r} has {len(classes)} classes ({', '.join(classes[:8])}), not two: "
                                  "use task='multiclass'")
            if set(classes) - {"0", "1"}:
                raise ReportError(f"label {label!r} of a binary task must be 0/1 or true/false, got "
                                  f"{', '.join(classes)}")
            classes = ["0", "1"]
        index = {c: i for i, c in enumerate(classes)}
        labels = [index[t] for t in texts]
    segments = None
    if segment is not None:
        if segment not in rows[0]:
            raise ReportError(f"the data has no segment column {segment!r} (its columns: {', '.join(rows[0])})")
        segments = [str(row.get(segment)) for row in rows]
    return LabelledScores(
        task, labels, classes, check_scores(task, candidate, classes, "candidate"),
        None if baseline is None else check_scores(task, baseline, classes, "baseline"), segments)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
