"""The one model loader: a package's artifacts and inference code behind SageMaker's inference contract.

The entry point may define ``model_fn(model_dir)``, ``input_fn(body, content_type)``, ``predict_fn(data, model)``
and ``output_fn(prediction, accept)`` (or ``transform_fn(model, body, content_type, accept)`` for all of the last
three); whatever it leaves out gets the defaults in :mod:`forgeline.inference.handlers`. Registry.load, batch
transform and real-time serving all load models through :func:`load_model`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import singledispatch
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from forgeline.errors import ArtifactNotFoundError, InferenceError
from forgeline.inference import handlers
from forgeline.store.artifacts import ArtifactStore, is_local

if TYPE_CHECKING:
    from forgeline.store.metadata.records import ModelPackageRecord

MODULE_PREFIX = "forgeline_inference_"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


@dataclass(frozen=True)
class ModelSource:
    """Where a model lives: its artifacts (model.tar.gz, a folder or a file) and its inference code."""

    model_data: str  # local path or URI
    code_dir: str | None = None  # local path or URI of the folder holding the entry point
    entry_point: str | None = None  # relative to code_dir
    response_types: tuple[str, ...] = ()  # the first one is the default accept type


@singledispatch
def model_source(package: Any) -> ModelSource:
    """What to load for a package record or a ModelSource."""
    # The record type is registered on first use, not at import: importing it pulls in the metadata records and
    # the whole DSL, which every batch transform worker would pay for at start-up without ever needing it.
    from forgeline.store.metadata.records import ModelPackageRecord

    if isinstance(package, ModelPackageRecord):
        model_source.register(ModelPackageRecord, _registered)
        return _registered(package)
    raise InferenceError(f"cannot load a model from {package!r}: pass a model package or a ModelSource")


@model_source.register
def _given(package: ModelSource) -> ModelSource:
    return package


def _registered(package: ModelPackageRecord) -> ModelSource:
    return ModelSource(package.model_data, package.code_uri, package.entry_point, tuple(package.response_types))


@dataclass(frozen=True)
class InferenceHandlers:
    """The four functions of the contract (the entry point's, else the defaults), and an optional transform_fn."""

    model_fn: Callable[[str], Any]
    input_fn: Callable[[Any, str], Any]
    predict_fn: Callable[[Any, Any], Any]
    output_fn: Callable[[Any, str], Any]
    transform_fn: Callable[[Any, Any, str, str], Any] | None = None

    @classmethod
    def of(cls, module: ModuleType | None) -> InferenceHandlers:
        """The handlers an entry point module defines, with defaults for the rest."""
        return cls(
            model_fn=getattr(module, "model_fn", handlers.default_model_fn),
            input_fn=getattr(module, "input_fn", handlers.default_input_fn),
            predict_fn=getattr(module, "predict_fn", handlers.default_predict_fn),
            output_fn=getattr(module, "output_fn", handlers.default_output_fn),
            transform_fn=getattr(module, "transform_fn", None),
        )


class Predictor:
    """A loaded model: ``predict(body, content_type, accept)`` answers as an endpoint would."""

    def __init__(self, model: Any, handlers_: InferenceHandlers, model_dir: Path, default_accept: str) -> None:
        self.model = model
        self.handlers = handlers_
        self.model_dir = model_dir
        self.default_accept = default_accept

    def predict(self, body: Any, content_type: str = handlers.JSON, accept: str | None = None) -> Any:
        """Decode ``body``, predict, and encode the prediction for ``accept`` (default: the first response type)."""
        accept = accept or self.default_accept
        if self.handlers.transform_fn is not None:
            return self.handlers.transform_fn(self.model, body, content_type, accept)
        data = self.handlers.input_fn(body, content_type)
        return self.handlers.output_fn(self.handlers.predict_fn(data, self.model), accept)

    def __repr__(self) -> str:
        return f"Predictor(model={type(self.model).__name__}, model_dir={str(self.model_dir)!r})"


def default_cache_dir() -> Path:
    """Where unpacked models go when no cache folder is given."""
    import tempfile

    return Path(tempfile.gettempdir()) / "forgeline-models"


def load_model(package: Any, *, artifacts: ArtifactStore | None = None,
               cache_dir: str | Path | None = None) -> Predictor:
    """Unpack the model, import its entry point under a unique module name, call model_fn once: a Predictor."""
    source = model_source(package)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    fetcher = artifacts or ArtifactStore(str(cache))  # fetches local paths and any fsspec URL alike
    model_dir = materialize_model(source.model_data, cache, fetcher)
    module = None
    if source.entry_point:
        code_dir = materialize_folder(source.code_dir, cache, fetcher) if source.code_dir else None
        module = import_entry_point(code_dir, source.entry_point)
    chosen = InferenceHandlers.of(module)
    model = chosen.model_fn(str(model_dir))
    accept = source.response_types[0] if source.response_types else handlers.JSON
    return Predictor(model, chosen, model_dir, accept)


def cache_key(uri: str) -> str:
    """A folder name for a URI's local copy (artifact URIs never change what they hold)."""
    import hashlib  # here, like the other imports of the rarer paths: a batch transform job starts without them

    return hashlib.sha256(uri.encode()).hexdigest()[:20]


def materialize_model(model_data: str, cache: Path, fetcher: ArtifactStore) -> Path:
    """A local model directory: a folder as is, an archive unpacked, a single file in a folder of its own."""
    local = _local_path(model_data)
    if local is not None and local.is_dir():
        return local
    target = cache / cache_key(model_data) / "model"
    if target.is_dir():
        return target
    with _staging(target) as staging:
        if local is None:
            fetched = staging.parent / f"fetched-{Path(model_data.rstrip('/')).name}"
            _fetch(model_data, fetched, fetcher)
            if fetched.is_dir():
                fetched.rename(staging)
                return _publish(staging, target)
            local = fetched
        elif not local.is_file():
            raise InferenceError(f"model data {model_data} does not exist")
        staging.mkdir()
        if local.name.endswith(ARCHIVE_SUFFIXES):
            _unpack(local, staging)
        else:
            import shutil

            shutil.copy2(local, staging / local.name)
        return _publish(staging, target)


def materialize_folder(uri: str, cache: Path, fetcher: ArtifactStore) -> Path:
    """A local copy of a folder (a local folder is used where it is)."""
    local = _local_path(uri)
    if local is not None:
        if not local.is_dir():
            raise InferenceError(f"inference code folder {uri} does not exist")
        return local
    target = cache / cache_key(uri) / "code"
    if target.is_dir():
        return target
    with _staging(target) as staging:
        _fetch(uri, staging, fetcher)
        return _publish(staging, target)


def import_entry_point(code_dir: Path | None, entry_point: str) -> ModuleType:
    """Import the entry point under a fresh module name, with its folder first on sys.path for its own imports."""
    path = (code_dir / entry_point) if code_dir is not None else Path(entry_point)
    if not path.is_file():
        raise InferenceError(f"the entry point {path} does not exist")
    folder = str(path.parent.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = f"{MODULE_PREFIX}{cache_key(str(path.resolve()))}_{os.urandom(4).hex()}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InferenceError(f"the entry point {path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise InferenceError(f"importing the entry point {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _local_path(location: str) -> Path | None:
    return Path(location.removeprefix("file://")) if is_local(location) else None


def _fetch(uri: str, destination: Path, fetcher: ArtifactStore) -> None:
    try:
        fetcher.get(uri, destination)
    except ArtifactNotFoundError:
        raise InferenceError(f"{uri} does not exist") from None


def _unpack(archive: Path, destination: Path) -> None:
    import tarfile

    try:
        with tarfile.open(archive) as tar:
            tar.extractall(destination, filter="data")  # refuses absolute paths and links out of destination
    except (tarfile.TarError, OSError) as exc:
        raise InferenceError(f"cannot unpack model archive {archive}: {exc}") from None


@contextmanager
def _staging(target: Path) -> Iterator[Path]:
    """A path in a scratch folder next to ``target``, removed afterwards whether or not it was published."""
    import shutil
    import tempfile

    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    try:
        yield scratch / "content"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _publish(staging: Path, target: Path) -> Path:
    try:
        os.rename(staging, target)
    except OSError:
        if not target.is_dir():  # another process published the same content first otherwise
            raise
    return target
