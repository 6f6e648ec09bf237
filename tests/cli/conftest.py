"""A project whose executions have everything the CLI shows: long failure reasons, long output URIs, metrics,
a retried step, and a model registry with long URIs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

LONG_REASON = ("the input folder /srv/data/incoming/2026/customer-exports/weekly/batch-0042 failed validation: "
               "17 rows have no customer id and 3 rows have negative amounts; fix the export and run again\n"
               "details: rows 4, 9 and 12 of part-00001.csv")

REPORTING = """
    from forgeline.workflow import (
        ConditionEquals, ConditionStep, FailStep, ParameterString, Pipeline, ProcessingOutput, ProcessingStep,
        TrainingStep,
    )

    mode = ParameterString("Mode", default_value="ok")
    hello = ProcessingStep(name="Hello", code="hello.py", arguments=[mode],
                           outputs=[ProcessingOutput(output_name="greeting", source="out")])
    train = TrainingStep(name="Train", entry_point="train.py", source_dir="code", depends_on=[hello],
                         metric_definitions=[{{"Name": "validation:accuracy", "Regex": r"accuracy ([0-9.]+)"}}])
    gate = ConditionStep(name="Gate", depends_on=[train], conditions=[ConditionEquals(left=mode, right="ok")],
                         else_steps=[FailStep(name="Refuse", error_message={reason!r})])
    pipeline = Pipeline(name="reporting", parameters=[mode], steps=[hello, train, gate])
"""


@dataclass(frozen=True)
class Reporting:
    """The project and its two executions: one that succeeded and one the FailStep failed."""

    project: Any
    succeeded: str
    failed: str


@pytest.fixture
def reporting(project: Any, cli: Any) -> Reporting:
    project.write("hello.py", """
        import sys
        from pathlib import Path
        Path("out").mkdir(exist_ok=True)
        Path("out/greeting.txt").write_text("hello " + sys.argv[1])
        print("hello from", sys.argv[1])
    """)
    project.write("code/train.py", "print('accuracy 0.75')\nprint('accuracy 0.875')\n")
    project.write("pipeline.py", REPORTING.format(reason=LONG_REASON))
    ok = cli("run", "pipeline.py", cwd=project.root)
    assert ok.returncode == 0, ok
    broken = cli("run", "pipeline.py", "-p", "Mode=broken", cwd=project.root)
    assert broken.returncode == 1, broken
    failed, succeeded = (record.id for record in project.store().list_executions())
    return Reporting(project, succeeded, failed)


@dataclass(frozen=True)
class Registered:
    """The registry and the long URIs its packages name."""

    registry: Any
    uris: list[str]


@pytest.fixture
def registered(forgeline_home: Path) -> Registered:
    """Two versions of a model package group whose artifacts live at long URIs, one approved."""
    from forgeline.config import Settings
    from forgeline.registry import Registry
    from forgeline.store.metadata.records import ModelPackageDraft
    from forgeline.workflow import ModelApprovalStatus

    registry = Registry(Settings.from_env())
    root = "s3://a-bucket-with-a-long-name/teams/forecasting/models/customer-churn-gradient-boosting"
    for version, accuracy in ((1, 0.90), (2, 0.95)):
        registry.store.create_model_package(ModelPackageDraft(
            group="customer-churn", approval_status=ModelApprovalStatus.PENDING_MANUAL_APPROVAL,
            model_data=f"{root}/v{version}/model.tar.gz", code_uri=f"{root}/v{version}/code",
            entry_point="inference.py", content_types=["application/json"], response_types=["text/csv"],
            metrics={"metrics": {"accuracy": {"value": accuracy}}},
            description=f"gradient boosting on the weekly exports, version {version}, with the new features "
                        "for seasonality and the corrected customer ids",
            lineage={"pipeline": "churn", "pipeline_version": 1, "execution_id": f"00000000000{version}",
                     "step": "Register", "parameters": {"Epochs": 5},
                     "data": [{"uri": f"{root}/data/weekly-exports/2026-03-01/part-00001.csv", "step": "Prepare",
                               "input": "raw", "fingerprint": "d" * 64}],
                     "steps": [{"name": "Prepare", "kind": "Processing",
                                "inputs": [{"name": "raw", "uri": f"{root}/data/weekly-exports/2026-03-01"}],
                                "outputs": [{"name": "train", "uri": f"{root}/executions/0000/Prepare/train"}]}]},
        ), actor="ci")
    registry.approve("customer-churn", 2, note="checked the confusion matrix against last quarter's churners "
                     "and the calibration curve", by="alice")
    return Registered(registry, [f"{root}/v1/model.tar.gz", f"{root}/v2/model.tar.gz", f"{root}/v2/code",
                                 f"{root}/data/weekly-exports/2026-03-01/part-00001.csv"])
