"""Scoring the baseline model on the report's data through forgeline.inference (batch transform's loader)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from forgeline.errors import ForgelineError, ReportError
from forgeline.inference.handlers import media_type
from forgeline.inference.loader import ModelSource, load_model
from forgeline.reports.inputs import parse_scores
from forgeline.store.artifacts import ArtifactStore

CHUNK_ROWS = 1000
CONTENT_TYPES = ("text/csv", "application/json", "application/jsonlines", "application/x-jsonlines")


def encode_rows(rows: Sequence[dict[str, Any]], content_type: str) -> str:
    """Rows as one request body: CSV lines of the values, a JSON list of objects, or JSON Lines."""
    kind = media_type(content_type)
    if kind == "text/csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows([list(row.values()) for row in rows])
        return buffer.getvalue()
    if kind == "application/json":
        return json.dumps(list(rows))
    if kind in ("application/jsonlines", "application/x-jsonlines"):
        return "".join(json.dumps(row) + "\n" for row in rows)
    raise ReportError(f"the baseline cannot be fed {content_type!r}: name one of {', '.join(CONTENT_TYPES)} with "
                      "baseline_input=")


def _scores_of(answer: Any, score_field: str, where: str) -> list[Any]:
    if isinstance(answer, (bytes, bytearray)):
        answer = answer.decode("utf-8")
    if isinstance(answer, str):
        return parse_scores(answer, score_field, where)
    if hasattr(answer, "tolist"):
        answer = answer.tolist()
    return list(answer)


def score_baseline(source: ModelSource, rows: Sequence[dict[str, Any]], drop: Sequence[str], content_type: str,
                   score_field: str, cache_dir: str, artifacts: ArtifactStore | None = None) -> list[Any]:
    """The baseline's score for every row (the columns in ``drop`` left out), in row order.

    ``artifacts`` fetches a remote model with the platform's storage options (a local one needs none).
    """
    try:
        predictor = load_model(source, artifacts=artifacts, cache_dir=cache_dir)
    except ForgelineError as exc:
        raise ReportError(f"the baseline model could not be loaded: {exc}") from None
    features = [{k: v for k, v in row.items() if k not in drop} for row in rows]
    scores: list[Any] = []
    for start in range(0, len(features), CHUNK_ROWS):
        chunk = features[start:start + CHUNK_ROWS]
        body = encode_rows(chunk, content_type)
        try:
            answer = predictor.predict(body, content_type)
        except Exception as exc:  # the baseline's own code: whatever it raises is the reason
            raise ReportError(f"the baseline failed on rows {start + 1}-{start + len(chunk)}: "
                              f"{type(exc).__name__}: {exc}") from None
        got = _scores_of(answer, score_field, f"the baseline's answer for rows {start + 1}-{start + len(chunk)}")
        if len(got) != len(chunk):
            raise ReportError(f"the baseline answered {len(got)} score(s) for {len(chunk)} row(s) "
                              f"(rows {start + 1}-{start + len(chunk)})")
        scores.extend(got)
    return scores
