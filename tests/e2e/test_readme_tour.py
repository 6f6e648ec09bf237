"""The README's tour works as written: its step names are the quickstart's, its selective run runs, and
`make demo` installs only what the quickstart needs and says how to put forgeline on PATH."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib

import pytest

from conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
TOUR = README.split("## A short tour", 1)[1].split("\n## ", 1)[0]


@pytest.fixture
def quickstart_steps(quickstart) -> set[str]:
    return {step.name for step in quickstart.steps}


def test_the_tour_names_only_steps_the_quickstart_has(quickstart_steps):
    snippet = TOUR.split("```python", 1)[1].split("```", 1)[0]
    named = set(re.findall(r'Step\(\s*name="([\w-]+)"', snippet))
    named |= set(re.findall(r"forgeline logs <id> ([\w-]+)", TOUR))
    for selection in re.findall(r"examples/quickstart/pipeline\.py --only ([\w,-]+)", TOUR):
        named |= set(selection.split(","))
    assert {"Prepare", "Fit", "Evaluate"} <= named
    assert named <= quickstart_steps, named - quickstart_steps
    vision = (REPO_ROOT / "examples/vision/pipeline.py").read_text()
    for name in re.findall(r"forgeline metrics <id> \[([\w-]+)\]", TOUR):
        assert f'name="{name}"' in vision, name


def test_the_tours_selective_run_works_as_written(cli, quickstart_steps):
    assert cli("run", "examples/quickstart/pipeline.py").returncode == 0
    [line] = [line for line in TOUR.splitlines() if "--only" in line]
    command = line.split("#", 1)[0].split()
    first = json.loads(cli("executions", "list", "--json").stdout)[0]["id"]

    again = cli(*[first if word == "<id>" else word for word in command[1:]])

    assert again.returncode == 0, again
    assert re.search(r"^Fit\s+Processing\s+Succeeded\s+1\b", again.stdout, flags=re.MULTILINE), again
    assert re.search(rf"^Prepare\s+Processing\s+Succeeded\b.*cache hit from {first}", again.stdout,
                     flags=re.MULTILINE), again


def test_make_demo_installs_only_the_quickstart_extra_and_says_how_to_reach_forgeline():
    dry = subprocess.run(["make", "-n", "-B", "demo"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    installs = [line for line in dry.stdout.splitlines() if "pip install" in line]
    assert installs == [f"{'.venv/bin/python'} -m pip install -e '.[quickstart]'"], dry.stdout
    assert "source .venv/bin/activate" in dry.stdout
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    quickstart = " ".join(project["optional-dependencies"]["quickstart"])
    assert "scikit-learn" in quickstart and "torch" not in quickstart and "duckdb" not in quickstart
    assert "pytest" not in " ".join(project["dependencies"])
    assert "source .venv/bin/activate" in README
