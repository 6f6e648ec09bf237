"""Many executions of one pipeline at once on one SQLite database: all finish, none loses or doubles a record.

Twenty `forgeline run --detach` processes start together (a barrier file releases them at the same moment),
so pipeline versions, executions, step runs, attempts, cache entries and content-index rows are all written
by competing processes: twenty launchers and twenty orchestrators.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

EXECUTIONS = 20

CONCURRENT_PIPELINE = """
    from forgeline.workflow import (
        CacheConfig, ParameterInteger, Pipeline, ProcessingInput, ProcessingOutput, ProcessingStep,
    )

    n = ParameterInteger("N", default_value=0)
    make = ProcessingStep(name="Make", code="make.py", arguments=[n],
                          inputs=[ProcessingInput(source="data.txt", destination="in")],
                          outputs=[ProcessingOutput(output_name="out", source="out")])
    shared = ProcessingStep(name="Shared", code="shared.py", cache_config=CacheConfig(enable_caching=True),
                            inputs=[ProcessingInput(source="data.txt", destination="in")],
                            outputs=[ProcessingOutput(output_name="out", source="out")])
    use = ProcessingStep(name="Use", code="use.py",
                         inputs=[ProcessingInput(source=make.properties.outputs["out"], destination="made"),
                                 ProcessingInput(source=shared.properties.outputs["out"], destination="shared")],
                         outputs=[ProcessingOutput(output_name="out", source="out")])
    pipeline = Pipeline(name="crowd", parameters=[n], steps=[make, shared, use])
"""

# Waits for the barrier, then runs the CLI in this same process, so every launcher starts at the same moment.
LAUNCHER = """
import os, sys, time
barrier = sys.argv[1]
while not os.path.exists(barrier):
    time.sleep(0.005)
from forgeline.cli.main import main
sys.exit(main(["run", "pipeline.py", "--detach", "-p", "N=" + sys.argv[2]]))
"""


def test_twenty_executions_started_at_once_all_finish_with_every_record_once(project, forgeline_home):
    project.write("data.txt", "shared input\n")
    project.write("make.py", """
        import sys
        from pathlib import Path
        Path("out/n.txt").write_text(sys.argv[1] + ":" + Path("in/data.txt").read_text())
    """)
    project.write("shared.py", """
        from pathlib import Path
        Path("out/s.txt").write_text(Path("in/data.txt").read_text().upper())
    """)
    project.write("use.py", """
        from pathlib import Path
        Path("out/u.txt").write_text(Path("made/n.txt").read_text() + Path("shared/s.txt").read_text())
    """)
    project.write("pipeline.py", CONCURRENT_PIPELINE)
    project.write("launch.py", LAUNCHER)
    barrier = project.root / "go"
    env = {**os.environ, "FORGELINE_HOME": str(forgeline_home)}
    launchers = [
        subprocess.Popen([sys.executable, "launch.py", str(barrier), str(i)], cwd=project.root, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(EXECUTIONS)
    ]
    time.sleep(1.0)  # let every launcher import and wait at the barrier
    barrier.write_text("")
    outputs = [launcher.communicate(timeout=120) for launcher in launchers]

    for launcher, (stdout, stderr) in zip(launchers, outputs):
        assert launcher.returncode == 0, (stdout, stderr)
        assert "database is locked" not in stdout + stderr
    ids = {stdout.strip().splitlines()[-1] for stdout, _ in outputs}
    assert len(ids) == EXECUTIONS

    store = project.store()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(store.get_execution(i).status.is_terminal for i in ids):
        time.sleep(0.2)
    records = {i: store.get_execution(i) for i in ids}
    assert {r.status.value for r in records.values()} == {"Succeeded"}, {
        i: (r.status.value, r.failure_reason) for i, r in records.items()}
    assert sorted(r.parameters["N"] for r in records.values()) == list(range(EXECUTIONS))
    assert len(store.list_pipeline_versions("crowd")) == 1  # twenty saves of one definition: one version
    assert len(store.list_executions("crowd", limit=100)) == EXECUTIONS

    artifacts = project.artifacts()
    for execution_id, record in records.items():
        runs = store.list_step_runs(execution_id)
        assert [r.name for r in runs] == ["Make", "Shared", "Use"], execution_id
        assert all(r.status.value == "Succeeded" for r in runs), execution_id
        attempts = store.list_attempts(execution_id)
        by_step = {r.name: r for r in runs}
        ran_shared = not by_step["Shared"].cache_hit
        assert sorted(a.step_name for a in attempts) == sorted(["Make", "Use"] + (["Shared"] if ran_shared else []))
        assert all(a.attempt == 1 and a.status.value == "Succeeded" for a in attempts), attempts
        n = record.parameters["N"]
        used = artifacts.read_bytes(f"{by_step['Use'].outputs['out']}/u.txt").decode()
        assert used == f"{n}:shared input\nSHARED INPUT\n", execution_id

    for log in Path(forgeline_home, "logs").glob("*/orchestrator.log"):
        text = log.read_text()
        assert "database is locked" not in text and "Traceback" not in text, (log, text[-2000:])
