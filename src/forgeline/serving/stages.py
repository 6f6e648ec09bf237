"""An inference pipeline run on a batch of requests: each stage's output is the next stage's input.

Every stage is a Predictor from forgeline's one model loader. A stage whose package accepts batches gets the rows
of all requests of a batch in one ``predict_fn`` call (each request's ``input_fn`` result is a batch of rows; the
predictions are split back by row counts); other stages predict request by request. A request that fails is
answered with its status and the failing stage, and leaves the others of its batch alone.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from forgeline.errors import InferenceError
from forgeline.inference import handlers
from forgeline.inference.loader import Predictor

log = logging.getLogger("forgeline.serving")

Request = tuple[str, str, bytes]
"""(content type, accept, body) of one invocation; an empty accept means the pipeline's default."""
Reply = tuple[int, str, bytes, int | None, str | None]
"""(status, content type, body, failing stage or None, error message or None)."""

_DEFAULT_TYPES = frozenset({handlers.JSON, handlers.CSV, *handlers.JSON_LINES_ALIASES})
_CLIENT_ERRORS = (InferenceError, ValueError, UnicodeDecodeError)


class StageError(Exception):
    """A request failed in a stage: the HTTP status it earns and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Stage:
    """One model of a pipeline and the media types it reads and writes."""

    label: str  # group@version
    predictor: Predictor
    accepts_batches: bool
    content_types: Sequence[str] = ()
    response_types: Sequence[str] = ()

    def check_content_type(self, content_type: str) -> None:
        """415 for a media type neither the package declares nor its input_fn (the default's) reads."""
        kind = handlers.media_type(content_type)
        declared = [handlers.media_type(t) for t in self.content_types]
        if declared and kind not in declared:
            raise StageError(415, f"content type {content_type!r} is not supported; send one of "
                                  f"{', '.join(declared)}")
        if (not declared and self.predictor.handlers.input_fn is handlers.default_input_fn
                and self.predictor.handlers.transform_fn is None and kind not in _DEFAULT_TYPES):
            raise StageError(415, f"content type {content_type!r} is not supported; send one of "
                                  f"{', '.join(sorted(_DEFAULT_TYPES))}")

    def choose_accept(self, accept: str) -> str:
        """The media type to answer in: the client's if this stage writes it, its default for none or */*."""
        wanted = [handlers.media_type(part) for part in accept.split(",") if part.strip()]
        wanted = [kind for kind in wanted if kind not in ("*/*", "")]
        if not wanted:
            return self.predictor.default_accept
        offered = [handlers.media_type(t) for t in self.response_types]
        if not offered and self.predictor.handlers.output_fn is handlers.default_output_fn:
            offered = sorted(_DEFAULT_TYPES)
        for kind in wanted:
            if not offered or kind in offered:
                return kind
        raise StageError(406, f"cannot answer in {accept!r}; accept one of {', '.join(offered)}")

    def next_input_type(self) -> str:
        """The media type a following stage receives: what this package reads first, else JSON."""
        return self.content_types[0] if self.content_types else handlers.JSON


class InferencePipeline:
    """Stages in order, run on batches of requests."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = list(stages)

    def run(self, requests: Sequence[Request]) -> list[Reply]:
        """One reply per request, in order."""
        replies: list[Reply | None] = [None] * len(requests)
        bodies: list[Any] = [body for _, _, body in requests]
        types = [content_type for content_type, _, _ in requests]
        alive = list(range(len(requests)))
        last = len(self.stages) - 1
        for position, stage in enumerate(self.stages):
            accepts: dict[int, str] = {}
            for index in list(alive):
                try:
                    if position == 0:
                        stage.check_content_type(types[index])
                    accepts[index] = (stage.choose_accept(requests[index][1]) if position == last
                                      else self.stages[position + 1].next_input_type())
                except StageError as exc:
                    replies[index] = (exc.status, handlers.JSON, b"", position, str(exc))
                    alive.remove(index)
            outputs = self._run_stage(stage, position, alive, bodies, types, accepts, replies)
            for index, output in outputs.items():
                bodies[index] = output
                types[index] = accepts[index]
            alive = [index for index in alive if index in outputs]
        for index in alive:
            body = bodies[index]
            data = body if isinstance(body, bytes) else str(body).encode() if isinstance(body, str) else bytes(body)
            replies[index] = (200, types[index], data, None, None)
        return [reply if reply is not None else (500, handlers.JSON, b"", None, "no answer") for reply in replies]

    def _run_stage(self, stage: Stage, position: int, alive: list[int], bodies: list[Any], types: list[str],
                   accepts: dict[int, str], replies: list[Reply | None]) -> dict[int, Any]:
        chosen = stage.predictor.handlers
        outputs: dict[int, Any] = {}

        def fail(index: int, exc: BaseException, where: str) -> None:
            client = position == 0 and where == "input_fn" and isinstance(exc, _CLIENT_ERRORS)
            status = 400 if client else 500
            message = (f"the request body cannot be read: {exc}" if client
                       else f"{where} of model {stage.label} raised {type(exc).__name__}: {exc}")
            if not client:
                log.error("stage %d (%s): %s raised", position, stage.label, where, exc_info=exc)
            replies[index] = (status, handlers.JSON, b"", position, message)

        if chosen.transform_fn is not None:
            for index in alive:
                try:
                    outputs[index] = chosen.transform_fn(stage.predictor.model, bodies[index], types[index],
                                                         accepts[index])
                except Exception as exc:  # noqa: BLE001 - user code: any failure is this request's answer
                    fail(index, exc, "transform_fn")
            return outputs
        decoded: dict[int, Any] = {}
        for index in alive:
            try:
                decoded[index] = chosen.input_fn(bodies[index], types[index])
            except Exception as exc:  # noqa: BLE001
                fail(index, exc, "input_fn")
        predictions = self._predict(stage, decoded, fail)
        for index, prediction in predictions.items():
            try:
                outputs[index] = chosen.output_fn(prediction, accepts[index])
            except Exception as exc:  # noqa: BLE001
                fail(index, exc, "output_fn")
        return outputs

    def _predict(self, stage: Stage, decoded: dict[int, Any], fail: Any) -> dict[int, Any]:
        predict_fn, model = stage.predictor.handlers.predict_fn, stage.predictor.model
        if stage.accepts_batches and len(decoded) > 1:
            try:
                return predict_rows(predict_fn, model, decoded)
            except Exception:  # noqa: BLE001 - one bad request must not fail its batch: retry one by one
                log.info("batched predict_fn of %s raised; predicting its %d requests one by one", stage.label,
                         len(decoded))
        predictions: dict[int, Any] = {}
        for index, data in decoded.items():
            try:
                if stage.accepts_batches:  # the same row-wise call as in a batch, for a batch of one
                    predictions.update(predict_rows(predict_fn, model, {index: data}))
                else:
                    predictions[index] = predict_fn(data, model)
            except Exception as exc:  # noqa: BLE001
                fail(index, exc, "predict_fn")
        return predictions


def predict_rows(predict_fn: Any, model: Any, decoded: dict[int, Any]) -> dict[int, Any]:
    """One predict_fn call on the rows of every request, split back by row counts (a lone row stays unwrapped)."""
    numpy: Any = sys.modules.get("numpy")  # without numpy loaded, no input can be an array
    parts = list(decoded.values())
    arrays = numpy is not None and all(isinstance(part, numpy.ndarray) and part.ndim >= 1 for part in parts)
    if arrays:
        sizes = [len(part) for part in parts]
        rows: Any = numpy.concatenate(parts)
        single = [False] * len(parts)
    else:
        single = [not isinstance(part, (list, tuple)) for part in parts]
        lists = [[part] if lone else list(part) for lone, part in zip(single, parts, strict=True)]
        sizes = [len(part) for part in lists]
        rows = [row for part in lists for row in part]
    predictions = predict_fn(rows, model)
    if len(predictions) != sum(sizes):
        raise ValueError(f"predict_fn returned {len(predictions)} predictions for {sum(sizes)} rows")
    answers: dict[int, Any] = {}
    start = 0
    for index, size, lone in zip(decoded, sizes, single, strict=True):
        answers[index] = predictions[start] if lone else predictions[start:start + size]
        start += size
    return answers
