"""Connecting to a Ray cluster once per process, and the checks a cluster must pass before jobs go to it."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping
from typing import Any

from forgeline.errors import ConfigurationError, JobInputError
from forgeline.jobs.process import step_name
from forgeline.jobs.spec import JobSpec
from forgeline.store.artifacts import ArtifactStore, is_local

NAMESPACE = "forgeline"
"""Ray namespace of forgeline's job actors, so another orchestrator finds them by name."""
CONNECT_TIMEOUT_SECONDS = 5.0
_lock = threading.Lock()


def connect(executor: str) -> None:
    """Join the cluster ``executor`` names (``ray``: a local one, ``ray://host:port``: an existing one), once."""
    import ray

    with _lock:
        if ray.is_initialized():
            return
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        address = cluster_address(executor)
        if address != "local" and ":" in address:
            host, port = address.removeprefix("ray://").rsplit(":", 1)
            try:
                socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_SECONDS).close()
            except OSError as exc:
                raise ConfigurationError(
                    f"the Ray cluster at {address} is unreachable ({exc.strerror or exc}); start it "
                    f"(ray start --head --port {port}) or fix FORGELINE_EXECUTOR={executor}") from None
        try:
            ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, include_dashboard=False,
                     configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = "started on this machine" if address == "local" else f"at {address}"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigurationError(f"could not join the Ray cluster {where}: {first}") from None


def cluster_address(executor: str) -> str:
    """``host:port`` of ``ray://host:port``; for ``ray``, RAY_ADDRESS if set, else ``local`` (a Ray started here)."""
    if executor == "ray":
        return os.environ.get("RAY_ADDRESS") or "local"
    return executor.removeprefix("ray://")


def alive_nodes() -> int:
    """How many nodes of the cluster are alive."""
    import ray

    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return sum(1 for node in nodes if node.get("Alive"))


def check_artifact_root(artifacts: ArtifactStore) -> None:
    """Refuse a local artifact root on a cluster of several nodes: the others could not read or write it."""
    nodes = alive_nodes()
    if is_local(artifacts.root) and nodes > 1:
        raise ConfigurationError(
            f"the artifact root {artifacts.root} is a local folder but the Ray cluster has {nodes} nodes; set "
            "FORGELINE_ARTIFACT_ROOT to storage every node reaches (e.g. s3://bucket/forgeline)")


def check_checkpoints(spec: JobSpec) -> None:
    """Refuse a training job whose checkpoints go to a local folder on a cluster of several nodes.

    A retry on another node (its node lost) could not restore them: it would start again from scratch.
    """
    uri = spec.training.checkpoint_uri if spec.training is not None else ""
    nodes = alive_nodes() if uri and is_local(uri) else 0
    if nodes > 1:
        raise JobInputError(
            f"step {step_name(spec)!r} keeps its checkpoints in {uri}, a local folder, but the Ray cluster has "
            f"{nodes} nodes: a retry on another node could not restore them; set checkpoint_uri to storage every "
            "node reaches (e.g. s3://bucket/checkpoints) or leave it unset (the artifact store)")


def check_feasible(spec: JobSpec, options: Mapping[str, Any]) -> None:
    """Refuse a job no node of the cluster could ever run (more CPUs, GPUs or memory than any node has)."""
    import ray

    wanted = {"CPU": options.get("num_cpus", 0), "GPU": options.get("num_gpus", 0),
              "memory": options.get("memory", 0), **options.get("resources", {})}
    listed: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    nodes: list[dict[str, float]] = [node.get("Resources", {}) for node in listed if node.get("Alive")]
    if any(all(node.get(name, 0) >= amount for name, amount in wanted.items() if amount) for node in nodes):
        return
    largest: dict[str, float] = max(nodes, key=lambda node: node.get("CPU", 0), default={})
    asked = ", ".join(f"{name}={amount:g}" for name, amount in wanted.items() if amount)
    has = ", ".join(f"{name}={largest.get(name, 0):g}" for name in wanted if wanted[name])
    raise JobInputError(f"step {step_name(spec)!r} asks for {asked}, more than any node of the Ray cluster has "
                        f"(the largest: {has}); lower its resources or instance_type, or add a larger node")
