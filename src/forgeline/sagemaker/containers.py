"""Which local Python stands in for a SageMaker container image: an extensible table of image patterns.

SageMaker's framework containers (scikit-learn, XGBoost, PyTorch, TensorFlow, HuggingFace) are Python with
the framework installed; here each maps to forgeline's own interpreter (``local``) or to a virtual environment
built from a requirements file. The built-in XGBoost algorithm (an XGBoost image with no user script) runs
forgeline's stand-in, ``algorithms/xgboost_train.py``. Users add rows for their own images.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from forgeline.errors import PipelineDefinitionError

LOCAL = "local"
"""A runtime value meaning forgeline's own interpreter."""

ALGORITHMS_DIR = Path(__file__).resolve().parent / "algorithms"


@dataclass(frozen=True)
class ContainerRuntime:
    """What runs a job of one image: a requirements file (None: the local interpreter) and, for an
    algorithm image, the built-in algorithm it provides."""

    requirements: str | None = None
    algorithm: str | None = None  # "xgboost": the image trains without a user script


FRAMEWORK_IMAGES: dict[str, ContainerRuntime] = {
    r"/sagemaker-scikit-learn:": ContainerRuntime(),
    r"/sagemaker-xgboost:": ContainerRuntime(algorithm="xgboost"),
    r"/(pytorch|sagemaker-pytorch)-(training|inference)(-[a-z0-9]+)?:": ContainerRuntime(),
    r"/(tensorflow|sagemaker-tensorflow[a-z-]*)-(training|inference)(-[a-z0-9]+)?:": ContainerRuntime(),
    r"/huggingface-(pytorch|tensorflow)-(training|inference)(-[a-z0-9]+)?:": ContainerRuntime(),
}
"""SageMaker's framework images, matched anywhere in the image URI."""

ALGORITHM_SCRIPTS = {"xgboost": ALGORITHMS_DIR / "xgboost_train.py"}
INFERENCE_SCRIPTS = {"xgboost": ALGORITHMS_DIR / "xgboost_inference.py"}


class ContainerTable:
    """Image patterns (regular expressions searched in the URI) and their runtimes; user rows come first."""

    def __init__(self, extra: Mapping[str, str | ContainerRuntime] | None = None) -> None:
        self.rows: list[tuple[re.Pattern[str], ContainerRuntime]] = []
        for pattern, runtime in (extra or {}).items():
            self.rows.append((_compile(pattern), _runtime(pattern, runtime)))
        self.rows += [(re.compile(p), r) for p, r in FRAMEWORK_IMAGES.items()]

    def runtime(self, image: object) -> ContainerRuntime | None:
        """The runtime of ``image``, or None when no row matches (a custom image)."""
        if not isinstance(image, str):
            return None
        return next((runtime for pattern, runtime in self.rows if pattern.search(image)), None)


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise PipelineDefinitionError(f"image pattern {pattern!r} is not a regular expression: {exc}") from None


def _runtime(pattern: str, value: str | ContainerRuntime) -> ContainerRuntime:
    if isinstance(value, ContainerRuntime):
        return value
    if value == LOCAL:
        return ContainerRuntime()
    if isinstance(value, str) and value.endswith(".txt"):
        return ContainerRuntime(requirements=value)
    raise PipelineDefinitionError(
        f"image {pattern!r} maps to {value!r}; use 'local' (forgeline's interpreter) or a requirements .txt file"
    )
