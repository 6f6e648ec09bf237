"""JobSpec and JobResult: what the engine hands an executor, and what comes back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from forgeline.errors import JobError
from forgeline.jobs.code_folder import CodeFolderRules


class JobKind(StrEnum):
    """What a job runs; forgeline.jobs.runners maps each kind to the function that runs it."""

    PROCESSING = "processing"  # a script, run as `python <code> <arguments>`
    TRAINING = "training"  # a script in SageMaker's script mode, with channels, checkpoints and metrics
    FUNCTION = "function"  # a @step function called in a warm worker


class FailureKind(StrEnum):
    """Why a job attempt failed; retry policies match on these values."""

    JOB_FAILED = "JobFailed"
    INTERRUPTED = "Interrupted"
    TIMEOUT = "Timeout"
    INFRASTRUCTURE_ERROR = "InfrastructureError"


class JobStatus(StrEnum):
    """Outcome of one job attempt."""

    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPED = "Stopped"


@dataclass(frozen=True)
class StagedInput:
    """A file or folder (local path or artifact URI) staged at `destination`, relative to the job directory."""

    source: str
    destination: str
    code_rules: CodeFolderRules | None = None  # set for a code folder: copied as the code-folder rules say
    sharded: bool = False  # a job of several instances gives each a share of the files (ShardedByS3Key)


@dataclass(frozen=True)
class CollectedOutput:
    """A folder (or file) of the job directory stored at artifact URI `destination` after a zero exit."""

    name: str
    source: str
    destination: str
    optional: bool = False  # stored empty when the job wrote nothing there; otherwise the job fails


@dataclass(frozen=True)
class PropertyFileSpec:
    """A JSON file inside output `output_name`, parsed after the job so expressions can read it."""

    name: str
    output_name: str
    path: str


@dataclass(frozen=True)
class FunctionRef:
    """Where a @step function lives: a file (in the code snapshot) or an importable module, plus its name."""

    name: str
    file: str | None = None
    module: str | None = None


@dataclass(frozen=True)
class MetricDefinition:
    """A metric read from a job's log lines: the first capture group of ``regex`` is its value."""

    name: str
    regex: str


@dataclass(frozen=True)
class TrainingSpec:
    """What makes a job a training job (script mode); its outputs are "model" (model.tar.gz) and "output_data"."""

    checkpoint_uri: str  # restored before the job starts, kept in sync while it runs (local path or URL)
    channels: tuple[str, ...] = ()  # input names; each staged at input/data/<channel>
    hyperparameters: dict[str, Any] = field(default_factory=dict)  # resolved values, passed as --name value
    metric_definitions: tuple[MetricDefinition, ...] = ()
    restart_on_interruption: bool = False  # use_spot_instances: restart from the last checkpoint when killed
    max_wait_seconds: float | None = None  # no restart once this long has passed since the first start
    instance_type: str | None = None  # recorded only; every job runs on this machine
    instance_count: int = 1


@dataclass(frozen=True)
class JobSpec:
    """Everything an executor needs to run one attempt of one step, with every expression already resolved.

    It names no folder of the machine that built it: code is ``code_snapshot`` plus paths inside it, and the
    job folder, log and environments folder are the executor's to choose (``forgeline.jobs.placement``
    fills them in, with the code checked out, where the job runs). Data paths are what the user gave.
    """

    kind: JobKind
    job_id: str  # "<execution>/<step>/<attempt>", unique
    job_dir: str = ""  # fresh working directory for this attempt; "" until the executor places the job
    log_path: str = ""  # stdout and stderr of the job, as they stream; "" until the executor places the job
    inputs: tuple[StagedInput, ...] = ()
    outputs: tuple[CollectedOutput, ...] = ()
    property_files: tuple[PropertyFileSpec, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    # the code snapshot (forgeline.store.snapshots) that code, source_dir, requirements and function.file are
    # paths in; None: they are absolute, or (code) relative to forgeline's install for its own scripts
    code_snapshot: str | None = None
    # processing: the script, run as `python <code> <arguments>` with cwd=job_dir
    code: str | None = None  # the script (inside source_dir when it is set)
    source_dir: str | None = None  # a folder copied into the job directory as code/ ("." : the whole snapshot)
    code_rules: CodeFolderRules = CodeFolderRules()  # what source_dir leaves out (FORGELINE_HOME...), size limit
    arguments: tuple[str, ...] = ()
    # function: call function(*args, **kwargs) in a warm worker; store its return value at return_uri
    function: FunctionRef | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    return_uri: str | None = None
    working_dir: str | None = None  # the user's working folder: relative data paths (a @step's open()) resolve there
    code_root: str | None = None  # where the snapshot is checked out here; set by the executor (placement)
    max_run_seconds: float | None = None
    static_properties: dict[str, Any] = field(default_factory=dict)  # known before the run; merged into its result
    # a JSON object forgeline's own job entry points write (relative to job_dir): its keys become step properties
    properties_file: str | None = None
    # the interpreter of a script job: `python` as given, or a virtual environment built from `requirements`
    # (a file of the code snapshot) once under `envs_dir` (the executor's); neither: forgeline's own interpreter
    python: str | None = None
    requirements: str | None = None
    envs_dir: str | None = None
    training: TrainingSpec | None = None
    sagemaker_paths: bool = False  # run the script with the job directory mounted at /opt/ml
    # where the job may run (executors that place jobs read them; the local one runs everything here):
    # {"num_cpus": 4, "num_gpus": 1, "memory": <bytes>}, the instance type it asked for, and how many instances
    resources: dict[str, float] = field(default_factory=dict)
    instance_type: str | None = None
    instance_count: int = 1

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", JobKind(self.kind))
        except ValueError:
            kinds = ", ".join(kind.value for kind in JobKind)
            raise JobError(f"job {self.job_id}: unknown job kind {self.kind!r} (kinds: {kinds})") from None

    def to_json(self) -> str:
        """This spec as a JSON document (JobError when a @step argument in it is not JSON)."""
        from forgeline.jobs.spec_json import spec_to_json  # the codec reads this module's types

        return spec_to_json(self)

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        """The spec a ``to_json`` document describes (JobError when it is not one)."""
        from forgeline.jobs.spec_json import spec_from_json

        return spec_from_json(text)


@dataclass(frozen=True)
class MetricSample:
    """One value of a metric parsed from a job's log line, in the order the job printed it."""

    name: str
    value: float
    timestamp: datetime
    seq: int
    attempt: int = 1


@dataclass(frozen=True)
class JobResult:
    """What one job attempt produced."""

    status: JobStatus
    outputs: dict[str, str] = field(default_factory=dict)  # output name -> artifact URI
    properties: dict[str, Any] = field(default_factory=dict)  # "PropertyFiles": {name: parsed JSON}, ...
    failure_kind: FailureKind | None = None
    failure_reason: str | None = None
    exit_code: int | None = None
    metrics: tuple[MetricSample, ...] = ()  # every sample, in order; the engine stores the series
