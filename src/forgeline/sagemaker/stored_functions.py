"""Run a function the SageMaker SDK stored for a ``@step`` (the job side of an imported SageMaker @step).

At ``pipeline.definition()`` the SDK pickles (cloudpickle) each @step's function and its arguments to
``<s3_root>/<pipeline>/<step>/<build time>/{function,arguments}/``: a ``payload.pkl`` and a ``metadata.json``
holding the payload's SHA-256 (an HMAC-SHA256 keyed by ``REMOTE_FUNCTION_SECRET_KEY`` from the job's
environment, in SDK releases before 2.256). Arguments that are pipeline values are pickled as placeholders
(a parameter, an execution variable, a step property, the ``DelayedReturn`` of another @step) that the job
resolves from its ``--property_references``. The return value goes to
``<s3_root>/<pipeline>/<execution id>/<step>/results/`` in the same layout, plus ``results.json``
(``{"Result": ..., "Exception": null}``) when a condition reads it; a raised exception goes to ``<step>/exception/``.

This module does the same on this machine, through fsspec (a local folder an S3 root maps to, or an S3 API
endpoint with ``FORGELINE_STORAGE_OPTIONS``), checking every payload as the SDK does. The placeholders load as
forgeline's own small classes, so the SDK itself need not be importable; cloudpickle must be.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import pickle
import platform
import sys
from collections.abc import Mapping
from typing import Any

from forgeline.config import STORAGE_OPTIONS_ENV, parse_storage_options
from forgeline.errors import ArtifactNotFoundError, JobError
from forgeline.store.artifacts import ArtifactStore

SECRET_KEY_ENV = "REMOTE_FUNCTION_SECRET_KEY"
"""The SDK's HMAC key variable (SDK releases before 2.256 sign payloads with it)."""
METADATA_VERSION = "2023-04-24"
SDK_VARIABLES_MODULE = "sagemaker.remote_function.core.pipeline_variables"
RESULTS_FOLDER = "results"
RESULTS_JSON = "results.json"
EXCEPTION_FOLDER = "exception"


class StoredFunctionError(JobError):
    """A stored function or argument that is missing, altered, or of a format this runner does not read."""


class Placeholder:
    """A pipeline value the SDK pickled in place of an argument; pickle restores its fields."""

    name: str = ""
    path: str = ""
    uri: Any = None
    reference_path: tuple[tuple[str, Any], ...] = ()

    def resolve(self, resolver: ArgumentResolver) -> Any:
        """The value this placeholder stands for in this execution."""
        raise StoredFunctionError(f"{type(self).__name__} cannot be passed to a function")


class Parameter(Placeholder):
    """A pipeline parameter (the SDK's untyped ``_Parameter``, and the base of the typed ones)."""

    def resolve(self, resolver: ArgumentResolver) -> Any:
        """The parameter's value, coerced as the SDK coerces it."""
        return self.coerce(resolver.reference(f"Parameters.{self.name}"))

    def coerce(self, value: Any) -> Any:
        """The value as this parameter's type."""
        return value


class ParameterInteger(Parameter):
    """An Integer parameter."""

    def coerce(self, value: Any) -> Any:
        """An int."""
        return int(value)


class ParameterFloat(Parameter):
    """A Float parameter."""

    def coerce(self, value: Any) -> Any:
        """A float."""
        return float(value)


class ParameterString(Parameter):
    """A String parameter."""

    def coerce(self, value: Any) -> Any:
        """A str."""
        return str(value)


class ParameterBoolean(Parameter):
    """A Boolean parameter (the SDK passes it as the text ``true`` or ``false``)."""

    def coerce(self, value: Any) -> Any:
        """A bool."""
        return value if isinstance(value, bool) else str(value).lower() == "true"


class ExecutionVariable(Placeholder):
    """An execution variable (``PipelineExecutionId``, ...)."""

    def resolve(self, resolver: ArgumentResolver) -> Any:
        """The variable's value in this execution."""
        return resolver.reference(f"Execution.{self.name}")


class Properties(Placeholder):
    """A property of another step (``Steps.Train.ModelArtifacts.S3ModelArtifacts``)."""

    def resolve(self, resolver: ArgumentResolver) -> Any:
        """The property's value."""
        return resolver.reference(self.path)


class S3BaseUri(Placeholder):
    """The SDK's stand-in for ``<s3_root>/<pipeline>`` inside an older DelayedReturn's URI."""


class DelayedReturn(Placeholder):
    """The return value of another @step, or a part of it (``reference_path``: ``__getitem__`` keys)."""

    def resolve(self, resolver: ArgumentResolver) -> Any:
        """The other step's return value, indexed down ``reference_path``."""
        value = resolver.delayed_return(self.uri)
        for operation, key in self.reference_path:
            if operation != "__getitem__":
                raise StoredFunctionError(f"a DelayedReturn refers into its value by {operation!r}; only [] is known")
            value = value[key]
        return value


PLACEHOLDERS: dict[str, type[Placeholder]] = {
    "_Parameter": Parameter, "_ParameterInteger": ParameterInteger, "_ParameterFloat": ParameterFloat,
    "_ParameterString": ParameterString, "_ParameterBoolean": ParameterBoolean,
    "_ExecutionVariable": ExecutionVariable, "_Properties": Properties, "_S3BaseUriIdentifier": S3BaseUri,
    "_DelayedReturn": DelayedReturn,
}
"""The SDK's placeholder classes (in ``sagemaker.remote_function.core.pipeline_variables``) and their stand-ins."""


class _PayloadUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == SDK_VARIABLES_MODULE:
            if name not in PLACEHOLDERS:
                raise StoredFunctionError(f"the arguments hold the SDK's {name}, which forgeline does not know")
            return PLACEHOLDERS[name]
        return super().find_class(module, name)


class ArgumentResolver:
    """Resolves placeholders from the references forgeline resolved for this call."""

    def __init__(self, references: Mapping[str, Any], s3_base_uri: str, payloads: PayloadStore) -> None:
        self.references = dict(references)
        self.s3_base_uri = s3_base_uri
        self.payloads = payloads

    def value(self, argument: Any) -> Any:
        """An argument as the function receives it."""
        return argument.resolve(self) if isinstance(argument, Placeholder) else argument

    def reference(self, key: str) -> Any:
        """The value of one ``--property_references`` key."""
        if key not in self.references:
            raise StoredFunctionError(f"the step's definition passes no value for {key}")
        return self.references[key]

    def delayed_return(self, uri: Any) -> Any:
        """Another @step's return: given by forgeline (``Steps.X.OutputDataConfig.S3OutputPath``), or read from
        the results an older SDK's URI names."""
        if isinstance(uri, Properties):
            return self.reference(uri.path)
        parts = [str(self.s3_base_uri if isinstance(p, S3BaseUri) else self.value(p)) for p in uri]
        return self.payloads.read("/".join([parts[0].rstrip("/"), *(p.strip("/") for p in parts[1:])]))


class PayloadStore:
    """Reads and writes the SDK's payload folders (``payload.pkl`` + ``metadata.json``), checking integrity."""

    def __init__(self, store: ArtifactStore, secret_key: str | None) -> None:
        self.store = store
        self.secret_key = secret_key

    def digest(self, payload: bytes) -> str:
        """The hash metadata.json records: HMAC-SHA256 with the secret key when there is one, else SHA-256."""
        if self.secret_key:
            return hmac.new(self.secret_key.encode(), payload, hashlib.sha256).hexdigest()
        return hashlib.sha256(payload).hexdigest()

    def read(self, folder: str) -> Any:
        """The object stored in ``folder``, after its hash is checked against its metadata."""
        try:
            metadata = json.loads(self.store.read_bytes(f"{folder}/metadata.json"))
            payload = self.store.read_bytes(f"{folder}/payload.pkl")
        except (OSError, ValueError, ArtifactNotFoundError) as exc:
            raise StoredFunctionError(f"cannot read the stored payload in {folder}: {exc}") from None
        if metadata.get("version") != METADATA_VERSION or metadata.get("serialization_module") != "cloudpickle":
            raise StoredFunctionError(f"{folder}/metadata.json describes a format forgeline does not read: {metadata}")
        if not hmac.compare_digest(str(metadata.get("sha256_hash")), self.digest(payload)):
            keyed = f" with the key in {SECRET_KEY_ENV}" if self.secret_key else ""
            raise StoredFunctionError(f"integrity check failed: {folder}/payload.pkl does not match the hash in its "
                                      f"metadata.json{keyed}; it was altered or written with another key")
        try:
            return _PayloadUnpickler(io.BytesIO(payload)).load()
        except StoredFunctionError:
            raise
        except Exception as exc:  # unpickling runs code of the payload's own making
            raise StoredFunctionError(f"cannot unpickle {folder}/payload.pkl ({type(exc).__name__}: {exc}); the "
                                      "function's modules must be importable here (see --code-root)") from exc

    def write(self, folder: str, value: Any) -> None:
        """Store ``value`` in ``folder`` as the SDK does: the payload first, then its metadata."""
        import cloudpickle  # the SDK's serialiser, so that its readers load what is written here

        payload = cloudpickle.dumps(value)
        metadata = {"sha256_hash": self.digest(payload), "version": METADATA_VERSION,
                    "python_version": platform.python_version(), "serialization_module": "cloudpickle"}
        self.store.write_bytes(f"{folder}/payload.pkl", payload)
        self.store.write_bytes(f"{folder}/metadata.json", json.dumps(metadata).encode())


def run_stored_function(function_uri: str, results_uri: str, s3_base_uri: str, references: Mapping[str, Any],
                        code_root: str | None = None, results_json: bool = False) -> Any:
    """Call the function stored under ``function_uri`` with its stored arguments resolved, store its return under
    ``results_uri`` in the SDK's layout, and return it (forgeline keeps it as the step's return value)."""
    try:
        import cloudpickle  # noqa: F401 - the payloads need it to load; say so before they fail to
    except ImportError:
        raise StoredFunctionError("running a SageMaker @step function needs cloudpickle: "
                                  "pip install 'forgeline[sagemaker]'") from None
    store = ArtifactStore(os.getcwd(), options_by_protocol=parse_storage_options(os.environ.get(STORAGE_OPTIONS_ENV)))
    payloads = PayloadStore(store, os.environ.get(SECRET_KEY_ENV) or None)
    if code_root and code_root not in sys.path:
        sys.path.insert(0, code_root)  # a function pickled by reference imports its module from the project
    results = results_uri.rstrip("/")
    try:
        value = _call(function_uri.rstrip("/"), references, s3_base_uri, payloads)
    except Exception as exc:
        _store_exception(payloads, f"{results.rsplit('/', 1)[0]}/{EXCEPTION_FOLDER}", exc)
        raise
    payloads.write(results, value)
    if results_json:
        store.write_bytes(f"{results}/{RESULTS_JSON}", _results_json(value))
    return value


def _call(function_uri: str, references: Mapping[str, Any], s3_base_uri: str, payloads: PayloadStore) -> Any:
    """Load the stored function and arguments, resolve the arguments' placeholders, and call it."""
    function = payloads.read(f"{function_uri}/function")
    stored = payloads.read(f"{function_uri}/arguments")
    if not callable(function) or not (isinstance(stored, tuple) and len(stored) == 2):
        raise StoredFunctionError(f"{function_uri} does not hold a function and its (args, kwargs)")
    args, kwargs = stored
    resolver = ArgumentResolver(references, s3_base_uri, payloads)
    return function(*[resolver.value(a) for a in args or ()],
                    **{k: resolver.value(v) for k, v in (kwargs or {}).items()})


def _store_exception(payloads: PayloadStore, folder: str, exc: Exception) -> None:
    """Leave the failure where the SDK's readers look for it (``<step>/exception``), as the SDK's job does."""
    try:
        payloads.write(folder, exc)
    except Exception:  # the call's own error is the one to report; this copy is a courtesy
        pass


def _results_json(value: Any) -> bytes:
    """``{"Result": value, "Exception": null}``, or the SDK's note when the value is not JSON."""
    try:
        return json.dumps({"Result": value, "Exception": None}).encode()
    except (TypeError, ValueError):
        return json.dumps({"Result": None,
                           "Exception": f"The function return ({value}) is not JSON serializable."}).encode()
