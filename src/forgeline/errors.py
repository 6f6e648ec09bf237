"""One exception hierarchy: every error a user can meet says what is wrong and where."""

from __future__ import annotations


class ForgelineError(Exception):
    """Base of every error forgeline raises on purpose."""


class PipelineDefinitionError(ForgelineError):
    """The pipeline as written cannot run: duplicate names, cycles, dangling references, missing code."""


class ParameterError(ForgelineError):
    """A parameter override is unknown, of the wrong type, or outside its allowed values."""


class ExpressionError(ForgelineError):
    """An expression could not be resolved at run time (missing JSON path, step without that output)."""


class NotFoundError(ForgelineError):
    """A named thing (pipeline, execution, step, artifact) does not exist."""


class PipelineNotFoundError(NotFoundError):
    """No pipeline (or pipeline version) by that name."""


class ExecutionNotFoundError(NotFoundError):
    """No execution with that id."""


class StepNotFoundError(NotFoundError):
    """The execution has no step by that name."""


class ArtifactNotFoundError(NotFoundError):
    """No artifact at that URI or local path."""


class StoreError(ForgelineError):
    """The metadata or artifact store failed in a way the user must act on."""


class StoreNotFoundError(StoreError, NotFoundError):
    """No metadata store where the settings point: nothing has been run there yet."""


class StoreUnavailableError(StoreError):
    """The metadata store stayed locked or unreachable for longer than FORGELINE_STORE_RETRY_SECONDS."""


class StoreReplacedError(StoreError):
    """The SQLite database file was deleted or replaced while this process was using it."""


class StaleOwnerError(StoreError):
    """An orchestrator wrote with a fencing epoch older than the execution's: another one owns it now."""


class StaleLeaseError(StaleOwnerError):
    """A server process wrote under a duty lease (schedules, triggers, alarms) that another process holds now."""


class ExecutionOwnedError(StoreError):
    """Another orchestrator holds a live lease on the execution: only one may run it."""


class ExecutionFinishedError(StoreError):
    """The execution already ended: its final status cannot change (retry reopens it explicitly)."""


class OrchestratorLostError(ForgelineError):
    """An unfinished execution's orchestrator stopped beating (killed, crashed, machine restarted)."""


class JobError(ForgelineError):
    """A job could not be prepared or collected (staging, upload, executor failure)."""


class JobInputError(JobError):
    """What a step gives its job cannot be used (code folder, input, argument, missing output): the user's to fix."""


class ConfigurationError(ForgelineError):
    """A FORGELINE_* setting has a value forgeline cannot use."""


class ModelPackageNotFoundError(NotFoundError):
    """No model package group by that name, or no such version (or no Approved one) in it."""


class ModelRegistryError(ForgelineError):
    """A model cannot be registered or moved to a status as asked (bad status, unknown package id)."""


class InferenceError(ForgelineError):
    """A model cannot be loaded or cannot answer (missing artifacts or entry point, a body or type it cannot handle)."""


class EndpointNotFoundError(NotFoundError):
    """No real-time endpoint by that name."""


class EndpointError(ForgelineError):
    """An endpoint cannot be created, changed, served or invoked as asked."""


class LoadTestError(ForgelineError):
    """A load test cannot run as asked (bad URL, rate, duration, header or body file)."""


class ReportError(ForgelineError):
    """An evaluation report cannot be made from its inputs (lengths, labels, task, scores)."""


class DeploymentError(ForgelineError):
    """A deployment did not go live; the endpoint keeps what it served before."""


class TokenError(ForgelineError):
    """An API token cannot be created, found or used as asked (a taken name, an unknown role)."""


class AuthenticationError(ForgelineError):
    """An API call without a token, or with one the server does not know (HTTP 401)."""


class PermissionDeniedError(ForgelineError):
    """An API call whose token's role may not do what it asks (HTTP 403)."""


class ScheduleNotFoundError(NotFoundError):
    """No schedule by that name."""


class ScheduleError(ForgelineError):
    """A schedule cannot be created or changed as asked (a taken name, a bad cron expression or time zone)."""


class TriggerNotFoundError(NotFoundError):
    """No file trigger by that name."""


class TriggerError(ForgelineError):
    """A file trigger cannot be created or changed as asked (a taken name, a bad watch URL or pattern)."""


class AlarmError(ForgelineError):
    """An alarm cannot be defined or delivered as asked (unknown event, bad target, bad condition)."""


class AlarmNotFoundError(NotFoundError):
    """No alarm by that name."""
