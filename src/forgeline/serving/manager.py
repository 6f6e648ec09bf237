"""EndpointManager: keeps the endpoints a server hosts in step with the metadata store and the registry.

It polls the endpoints table (a changed revision is an update) and the registry's approval events with a cursor
(a transition in a group an endpoint follows with ``@approved`` or ``@latest`` re-resolves it). A change starts
the new variants' workers next to the old ones and switches traffic only once they are ready; the old workers
finish what they hold and stop: swaps lose no request. If the new models cannot be served, the old ones go on
serving and the endpoint's status says why.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forgeline.config import Settings
from forgeline.errors import ForgelineError
from forgeline.serving.config import EndpointConfig, VariantConfig
from forgeline.serving.pool import PoolSettings, WorkerPool
from forgeline.serving.resolution import model_label, resolve_config
from forgeline.store.metadata.endpoint_store import EndpointRecord, EndpointStatus
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import ModelPackageRecord

log = logging.getLogger("forgeline.serving")

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class ScalingDefaults:
    """Worker counts of every variant of a server, and how long a worker may idle before it is retired."""

    min_workers: int = 1
    max_workers: int = 4
    idle_seconds: float = 60.0
    timeout_seconds: float = 60.0  # longest a batch may take before its callers get 504


@dataclass
class VariantRuntime:
    """A variant being served: its weight, what it runs and its workers."""

    name: str
    weight: float
    model: str  # group@version of every stage, comma-separated
    key: tuple[Any, ...]  # what must stay equal for a revision to keep these workers
    pool: WorkerPool


@dataclass
class EndpointRuntime:
    """An endpoint being served at one revision; picks a variant per request by weight."""

    name: str
    revision: int
    config: EndpointConfig
    variants: list[VariantRuntime]
    _bounds: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._bounds = list(itertools.accumulate(v.weight for v in self.variants))

    def choose(self, pinned: str | None = None) -> VariantRuntime | None:
        """The pinned variant (None if there is no such one), else one drawn by weight."""
        if pinned is not None:
            return next((v for v in self.variants if v.name == pinned), None)
        index = bisect.bisect_right(self._bounds, random.random() * self._bounds[-1])
        return self.variants[min(index, len(self.variants) - 1)]


class EndpointManager:
    """The endpoints of one server: their runtimes, statuses and the loop that follows the store."""

    def __init__(self, settings: Settings, store: MetadataStore, scaling: ScalingDefaults) -> None:
        self.settings = settings
        self.store = store
        self.scaling = scaling
        self.endpoints: dict[str, EndpointRuntime] = {}
        self.records: dict[str, EndpointRecord] = {}
        self.problems: dict[str, str] = {}
        # (creation time, revision) last applied, successfully or not: a deleted and recreated endpoint is new
        self._applied: dict[str, tuple[Any, int]] = {}
        self._busy: dict[str, int] = {}  # endpoints being applied, and the revision
        self._again: set[str] = set()
        self._cursor: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._draining: set[WorkerPool] = set()  # replaced pools finishing what they hold
        self.loggers: dict[str, logging.Logger] = {}

    def log_path(self, name: str) -> Path:
        """The endpoint's log: server events and its workers' output."""
        return endpoint_log_path(self.settings, name)

    def logger(self, name: str) -> logging.Logger:
        """A logger writing to the endpoint's log (and to the server's stderr)."""
        found = self.loggers.get(name)
        if found is None:
            found = logging.getLogger(f"forgeline.serving.endpoint.{name}")
            path = self.log_path(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(path)
            handler.setFormatter(logging.Formatter("%(asctime)s server %(levelname)s %(message)s"))
            found.handlers = [handler]
            found.setLevel(logging.INFO)
            self.loggers[name] = found
        return found

    def pools(self) -> list[tuple[str, str, WorkerPool]]:
        """(endpoint, variant, pool) of everything served now."""
        return [(name, v.name, v.pool) for name, runtime in self.endpoints.items() for v in runtime.variants]

    async def start(self) -> None:
        """Bring up every stored endpoint (a restarted server serves what it served before)."""
        latest = await asyncio.to_thread(self.store.list_model_package_events, limit=1)
        self._cursor = latest[-1].seq if latest else 0
        await self.sync()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def run(self) -> None:
        """Follow the store until cancelled."""
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self.sync()
            except Exception:  # noqa: BLE001 - a database hiccup must not stop serving; the next poll retries
                log.exception("could not read endpoints from the metadata store")

    async def stop(self) -> None:
        """Stop every worker of every endpoint."""
        for task in list(self._tasks):
            task.cancel()
        pools = {v.pool for r in self.endpoints.values() for v in r.variants} | self._draining
        await asyncio.gather(*(pool.close() for pool in pools), return_exceptions=True)
        self.endpoints.clear()

    async def sync(self) -> None:
        """One look at the store: apply new revisions, registry transitions and deletions."""
        records = {r.name: r for r in await asyncio.to_thread(self.store.list_endpoints)}
        events = await asyncio.to_thread(self.store.list_model_package_events, after=self._cursor)
        if events:
            self._cursor = events[-1].seq
        moved = {event.group for event in events}
        self.records = records
        for name, record in records.items():
            config = _config_or_none(record)
            followed = {ref.group for ref in config.model_refs if ref.follows_registry} if config else set()
            if self._applied.get(name) != (record.created_at, record.revision) or followed & moved:
                self._schedule(record, moved=bool(followed & moved))
        for name in [n for n in self.endpoints if n not in records]:
            runtime = self.endpoints.pop(name)
            self._applied.pop(name, None)
            self.logger(name).info("endpoint deleted: stopping its workers")
            for variant in runtime.variants:
                self._drain(variant.pool)

    def _schedule(self, record: EndpointRecord, *, moved: bool = False) -> None:
        if record.name in self._busy:
            if moved or self._busy[record.name] != record.revision:
                self._again.add(record.name)
            return
        self._busy[record.name] = record.revision
        self._background(self._apply(record))

    def _drain(self, pool: WorkerPool) -> None:
        self._draining.add(pool)
        task = asyncio.ensure_future(pool.drain_and_close())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: self._draining.discard(pool))

    def _background(self, awaitable: Any) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _apply(self, record: EndpointRecord) -> None:
        name, logger = record.name, self.logger(record.name)
        try:
            await self._deploy(record, logger)
        except Exception as exc:  # noqa: BLE001 - one endpoint's trouble must not stop the others
            problem = str(exc) if isinstance(exc, ForgelineError) else f"{type(exc).__name__}: {exc}"
            if isinstance(exc, ForgelineError):
                logger.error("revision %d cannot be served: %s", record.revision, problem)
            else:
                logger.exception("revision %d cannot be served", record.revision)
            current = self.endpoints.get(name)
            if current is not None:  # the models that were serving go on serving
                problem += (f" (still serving revision {current.revision}: "
                            f"{'; '.join(f'{v.name} = {v.model}' for v in current.variants)})")
            self.problems[name] = problem
            await asyncio.to_thread(self.store.set_endpoint_status, name, record.revision, EndpointStatus.FAILED,
                                    message=problem)
        finally:
            self._applied[name] = (record.created_at, record.revision)
            self._busy.pop(name, None)
            if name in self._again:
                self._again.discard(name)
                latest = self.records.get(name)
                if latest is not None:
                    self._schedule(latest, moved=True)

    async def _deploy(self, record: EndpointRecord, logger: logging.Logger) -> None:
        config = EndpointConfig.from_json(record.config)
        resolved = await asyncio.to_thread(resolve_config, config, self.store)
        current = self.endpoints.get(record.name)
        kept = {v.key: v for v in current.variants} if current else {}
        variants: list[VariantRuntime] = []
        started: list[WorkerPool] = []
        try:
            for variant in config.variants:
                packages = resolved[variant.name]
                key = self._key(variant, packages, config)
                reused = kept.pop(key, None)
                if reused is not None:
                    variants.append(VariantRuntime(variant.name, variant.weight, reused.model, key, reused.pool))
                    continue
                pool = self._pool(record.name, variant, packages, config, logger)
                started.append(pool)
                variants.append(VariantRuntime(variant.name, variant.weight,
                                               ",".join(model_label(p) for p in packages), key, pool))
            await asyncio.gather(*(pool.start() for pool in started))
        except BaseException:
            await asyncio.gather(*(pool.close() for pool in started), return_exceptions=True)
            raise
        if record.name not in self.records:  # deleted while its workers started
            await asyncio.gather(*(pool.close() for pool in started), return_exceptions=True)
            return
        self.endpoints[record.name] = EndpointRuntime(record.name, record.revision, config, variants)
        self.problems.pop(record.name, None)
        for old in kept.values():
            self._drain(old.pool)
        deployed = {v.name: v.model.split(",") for v in variants}
        logger.info("revision %d in service: %s", record.revision,
                    "; ".join(f"{v.name} ({v.weight:g}) = {v.model}" for v in variants))
        await asyncio.to_thread(self.store.set_endpoint_status, record.name, record.revision,
                                EndpointStatus.IN_SERVICE, deployed=deployed)

    def _key(self, variant: VariantConfig, packages: list[ModelPackageRecord],
             config: EndpointConfig) -> tuple[Any, ...]:
        return (variant.name, tuple(p.arn for p in packages), config.max_batch_size, config.max_batch_wait_us)

    def _pool(self, endpoint: str, variant: VariantConfig, packages: list[ModelPackageRecord],
              config: EndpointConfig, logger: logging.Logger) -> WorkerPool:
        batching = any(p.accepts_batches for p in packages)
        settings = PoolSettings(
            min_workers=self.scaling.min_workers, max_workers=max(self.scaling.max_workers, self.scaling.min_workers),
            max_batch_size=config.max_batch_size, max_batch_wait_us=config.max_batch_wait_us if batching else 0,
            idle_seconds=self.scaling.idle_seconds, timeout_seconds=self.scaling.timeout_seconds,
        )
        spec = {
            "endpoint": endpoint, "variant": variant.name, "home": str(self.settings.home),
            "artifact_root": self.settings.artifact_root, "storage_options": dict(self.settings.storage_options),
            "stages": [{"label": model_label(p), "model_data": p.model_data, "code_uri": p.code_uri,
                        "entry_point": p.entry_point, "content_types": list(p.content_types),
                        "response_types": list(p.response_types), "accepts_batches": p.accepts_batches}
                       for p in packages],
        }
        return WorkerPool(f"{endpoint}/{variant.name}", spec, settings, self.log_path(endpoint), logger)


def endpoint_log_path(settings: Settings, name: str) -> Path:
    """Where an endpoint's log lives: ``<home>/endpoints/<name>/endpoint.log``."""
    return settings.home / "endpoints" / name / "endpoint.log"


def _config_or_none(record: EndpointRecord) -> EndpointConfig | None:
    try:
        return EndpointConfig.from_json(record.config)
    except ForgelineError:
        return None
