"""Pipelines the API tests run on a real server: a gated step whose log grows while the test watches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from conftest import Project

GATED = """
    import sys, time
    from pathlib import Path
    count = int(sys.argv[2])
    for number in range(count):
        print(f"line {number} ünïcode", flush=True)
    while not Path(sys.argv[1]).exists():
        time.sleep(0.02)
    print("released", flush=True)
"""


def gated_project(project: Project) -> Path:
    """A pipeline ``gated`` (parameter Count, an integer) whose one step, Gate, prints Count lines then waits for
    the returned file to exist."""
    gate = project.root / "release"
    project.write("gate.py", GATED)
    project.write("pipeline.py", f"""
        from forgeline.workflow import ParameterInteger, Pipeline, ProcessingStep

        count = ParameterInteger("Count", default_value=2)
        gate = ProcessingStep(name="Gate", code="gate.py", arguments=[{str(gate)!r}, count])
        pipeline = Pipeline(name="gated", parameters=[count], steps=[gate])
    """)
    return gate


def store_pipeline(client: httpx.Client, project: Project, target: str = "pipeline.py") -> Any:
    """POST /pipelines with the project's pipeline, as a remote CLI does; the stored pipeline."""
    from forgeline.api.code_archive import pack_code
    from forgeline.config import Settings
    from forgeline.engine.code_snapshot import code_rules_of, pipeline_code_files

    pipeline = project.load(target)
    files = pipeline_code_files(pipeline, str(project.root), code_rules_of(Settings.from_env()))
    response = client.post("/pipelines", json={"definition": pipeline.to_request(), "code": pack_code(files)})
    assert response.status_code == 201, response.text
    return response.json()


def start(client: httpx.Client, project: Project, **parameters: Any) -> httpx.Response:
    """POST /executions of the stored ``gated`` pipeline."""
    return client.post("/executions", json={"pipeline": "gated", "parameters": parameters,
                                            "work_dir": str(project.root)})
