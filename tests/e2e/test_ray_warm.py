"""Warm job hosts on Ray as a user meets them: the steps of a chain run one after another in the same warm Ray
worker (no new worker per job), the shards of a step of instance_count=2 run on warm hosts too, while a step that
asks for resources of its own gets a worker of its own."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from conftest import Cli

pytestmark = pytest.mark.ray
pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")

DEADLINE_SECONDS = 240.0
WHERE = """
import json, os, pathlib, sys
pid = os.getpid()
while pid > 1:  # up the process tree to the Ray worker that runs this job
    title = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\\0", b" ").decode(errors="replace")
    if title.startswith("ray::"):
        break
    pid = int(pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
shard = os.environ.get("FORGELINE_SHARD_INDEX", "")
pathlib.Path(sys.argv[1] + shard).write_text(json.dumps({"pid": pid, "title": title}))
"""
PIPELINE = """
from forgeline.workflow import Pipeline, ProcessingStep
steps = []
for n in (1, 2, 3):
    steps.append(ProcessingStep(name=f"Step{{n}}", code="where.py", arguments=[{markers!r} + f"/step{{n}}.json"],
                                depends_on=steps[-1:]))
steps.append(ProcessingStep(name="Sharded", code="where.py", arguments=[{markers!r} + "/shard"], instance_count=2,
                            depends_on=steps[-1:]))
steps.append(ProcessingStep(name="Own", code="where.py", arguments=[{markers!r} + "/own.json"],
                            resources={{"num_cpus": 1, "memory": "64MiB"}}, depends_on=steps[-1:]))
pipeline = Pipeline(name="warm", steps=steps)
"""


def test_a_chain_runs_in_one_warm_worker_shards_on_warm_hosts_and_a_step_with_resources_in_its_own(
        ray_env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "warm"
    folder.mkdir()
    markers = tmp_path / "markers"
    markers.mkdir()
    (folder / "where.py").write_text(WHERE)
    (folder / "pipeline.py").write_text(textwrap.dedent(PIPELINE.format(markers=str(markers))))
    done = Cli(ray_env)("run", "pipeline.py", cwd=folder, timeout=DEADLINE_SECONDS)
    assert done.returncode == 0, done
    chain = [json.loads((markers / f"step{n}.json").read_text()) for n in (1, 2, 3)]
    own = json.loads((markers / "own.json").read_text())
    shards = [json.loads((markers / f"shard{n}").read_text()) for n in (0, 1)]
    assert all("JobHost" in where["title"] for where in chain), chain
    assert len({where["pid"] for where in chain}) == 1, chain  # one worker, warm, for the three jobs
    assert all("JobHost" in where["title"] for where in shards), shards  # each shard on a warm host
    assert "JobActor" in own["title"] and own["pid"] != chain[0]["pid"], own
