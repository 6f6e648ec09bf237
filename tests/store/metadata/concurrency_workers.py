"""Process entry points for the concurrency tests (a plain module so spawned children import it cheaply)."""

from __future__ import annotations

from typing import Any

from forgeline.store.metadata.records import StepStatus
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.store.metadata.updates import StepRunUpdate

SHARED_DEFINITION: dict[str, Any] = {"steps": [{"name": f"step-{n}", "kind": "processing"} for n in range(5)]}
STEP_COUNT = 5
WAIT_SECONDS = 600.0
"""How long a barrier or a join waits: twenty interpreters starting at once on a busy 2-core machine take a while."""
UPDATE_ROUNDS = 10


def write_one_execution(database_url: str, index: int, barrier: Any) -> None:
    """Open the store, save the shared definition, then record one execution and hammer its steps."""
    barrier.wait(timeout=WAIT_SECONDS)  # everyone creates the (new) database at once
    store = SqlMetadataStore(database_url)
    barrier.wait(timeout=WAIT_SECONDS)  # everyone saves the same definition at once
    version = store.save_pipeline_version("shared", SHARED_DEFINITION)
    execution_id = f"exec-{index:02d}"
    store.create_execution(
        execution_id=execution_id,
        pipeline_name="shared",
        pipeline_version=version.version,
        parameters={"index": index},
        work_dir=f"/jobs/{execution_id}",
        steps=[(f"step-{n}", "processing") for n in range(STEP_COUNT)],
    )
    for n in range(STEP_COUNT):
        store.start_attempt(execution_id, f"step-{n}", log_path=None)
    for round_number in range(UPDATE_ROUNDS):
        for n in range(STEP_COUNT):
            store.update_step_run(
                execution_id, f"step-{n}", StepRunUpdate(status=StepStatus.EXECUTING, properties={"round": round_number})
            )
    store.close()


PACKAGES_PER_PROCESS = 3


def register_packages(database_url: str, index: int, barrier: Any) -> None:
    """Register a few packages into one shared group, all processes at once."""
    from forgeline.store.metadata.records import ModelPackageDraft
    from forgeline.workflow.models import ModelApprovalStatus

    store = SqlMetadataStore(database_url)
    barrier.wait(timeout=WAIT_SECONDS)
    for n in range(PACKAGES_PER_PROCESS):
        draft = ModelPackageDraft(group="shared", approval_status=ModelApprovalStatus.PENDING_MANUAL_APPROVAL,
                                  model_data=f"/models/{index}-{n}", lineage={"execution_id": f"exec-{index:02d}"})
        store.create_model_package(draft, actor=f"worker-{index}")
    store.close()


CLAIM_LEASE_SECONDS = 600.0


def claim_one_execution(database_url: str, index: int, barrier: Any, results: Any) -> None:
    """Claim the shared execution at the same moment as every other worker; report what came back."""
    store = SqlMetadataStore(database_url)
    barrier.wait(timeout=WAIT_SECONDS)
    results.put((f"worker-{index}", store.claim_execution("contested", f"worker-{index}", CLAIM_LEASE_SECONDS)))
    store.close()


def claim_from_the_queue(database_url: str, index: int, barrier: Any, results: Any, max_running: int) -> None:
    """Take from the queue twice, at the same moment as every other worker; report each claim."""
    store = SqlMetadataStore(database_url)
    barrier.wait(timeout=WAIT_SECONDS)
    for _ in range(2):
        results.put((f"worker-{index}", store.claim_next_queued(f"worker-{index}", CLAIM_LEASE_SECONDS, max_running)))
    store.close()
