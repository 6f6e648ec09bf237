"""source_dir="." from a project whose .forgeline lies inside it: the default layout every new user has.

The pipeline runs through the CLI from the project folder with FORGELINE_HOME unset, so forgeline keeps its
database, artifacts and job folders in ./.forgeline, inside the very folder both steps copy as their code.
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

from forgeline.store.metadata.sql_store import SqlMetadataStore

PIPELINE = """
    from forgeline.workflow import CacheConfig, Pipeline, ProcessingOutput, ProcessingStep, TrainingStep

    cache = CacheConfig(enable_caching=True)
    prepare = ProcessingStep(name="Prepare", code="prepare.py", source_dir=".", cache_config=cache,
                             outputs=[ProcessingOutput(output_name="listing", source="listing")])
    train = TrainingStep(name="Train", entry_point="train.py", source_dir=".", cache_config=cache)
    pipeline = Pipeline(name="dot-source", steps=[prepare, train])
"""

PREPARE = """
    import json, os
    from pathlib import Path

    import helpers  # a sibling module of the code folder

    code = Path(__file__).parent
    files = sorted(str(p.relative_to(code)) for p in code.rglob("*") if p.is_file())
    Path("listing").mkdir(exist_ok=True)
    Path("listing/files.json").write_text(json.dumps({"files": files, "answer": helpers.ANSWER}))
"""

TRAIN = """
    import json, os
    from pathlib import Path

    import helpers

    code = Path(os.environ["SM_MODULE_DIR"])
    files = sorted(str(p.relative_to(code)) for p in code.rglob("*") if p.is_file())
    Path(os.environ["SM_MODEL_DIR"], "files.json").write_text(json.dumps({"files": files, "answer": helpers.ANSWER}))
"""

EXPECTED_CODE = [".forgelineignore", "helpers.py", "pipeline.py", "prepare.py", "train.py"]


def default_layout_project(project) -> Path:
    project.write("pipeline.py", PIPELINE)
    project.write("prepare.py", PREPARE)
    project.write("train.py", TRAIN)
    project.write("helpers.py", "ANSWER = 42\n")
    project.write(".forgelineignore", "data/\n")
    project.write("data/raw.csv", "a,b\n1,2\n")
    project.write(".git/HEAD", "ref: refs/heads/main\n")
    project.write(".venv/pyvenv.cfg", "home = /usr/bin\n")
    project.write(".venv/lib/python3.11/site-packages/big.py", "x = 1\n")
    return project.root / ".forgeline"


def run_here(cli, project, *args: str, env: dict[str, str] | None = None):
    return cli("run", "pipeline.py", *args, cwd=project.root, unset=["FORGELINE_HOME"], env=env)


def latest_steps(home: Path) -> tuple[object, dict[str, object], dict[str, object]]:
    store = SqlMetadataStore(f"sqlite:///{home / 'forgeline.db'}")
    try:
        record = store.list_executions()[0]
        steps = {run.name: run for run in store.list_step_runs(record.id)}
        attempts = {name: store.list_attempts(record.id, name)[-1] for name in steps
                    if store.list_attempts(record.id, name)}
        return record, steps, attempts
    finally:
        store.close()


def test_source_dir_dot_runs_both_step_kinds_with_forgeline_home_inside_the_project(cli, project):
    home = default_layout_project(project)

    run = run_here(cli, project, "--keep-jobs")

    assert run.returncode == 0, run
    assert home.is_dir()
    record, steps, _ = latest_steps(home)
    assert record.status.value == "Succeeded", record.failure_reason
    listing = json.loads((Path(steps["Prepare"].outputs["listing"]) / "files.json").read_text())
    assert listing == {"files": EXPECTED_CODE, "answer": 42}
    with tarfile.open(steps["Train"].outputs["model"]) as archive:
        trained = json.load(archive.extractfile("files.json"))
    assert trained == {"files": EXPECTED_CODE, "answer": 42}
    # nothing was copied into itself: each job folder holds one small code folder
    copies = [p for p in (home / "jobs").rglob("code") if p.is_dir()]
    assert len(copies) == 2
    for copy in copies:
        assert sum(1 for p in copy.rglob("*") if p.is_file()) == len(EXPECTED_CODE)


def test_only_ignored_changes_keep_the_cache_and_a_code_change_misses_it(cli, project):
    home = default_layout_project(project)
    assert run_here(cli, project).returncode == 0

    # the store itself changed (a new database row, artifacts, job folders), and so did ignored files
    project.write("data/raw.csv", "a,b\n3,4\n")
    project.write(".git/HEAD", "ref: refs/heads/other\n")
    project.write(".venv/lib/python3.11/site-packages/big.py", "x = 2\n")
    assert run_here(cli, project).returncode == 0
    _, steps, _ = latest_steps(home)
    assert {name: run.cache_hit for name, run in steps.items()} == {"Prepare": True, "Train": True}

    project.write("helpers.py", "ANSWER = 43\n")
    assert run_here(cli, project).returncode == 0
    _, steps, _ = latest_steps(home)
    assert {name: run.cache_hit for name, run in steps.items()} == {"Prepare": False, "Train": False}


def test_a_code_folder_over_the_size_limit_is_refused_by_run_in_one_line_as_the_users_to_fix(cli, project):
    home = default_layout_project(project)
    project.write("weights.bin", "x" * 5000)

    run = run_here(cli, project, env={"FORGELINE_MAX_CODE_SIZE": "4kB"})

    assert run.returncode != 0
    # the code is stored when the execution is created: nothing starts with code that cannot be stored
    assert re.search(r"holds \d\.\d kB, over the 4\.0 kB limit; largest entries: weights\.bin \(5\.0 kB\)", run.output)
    assert "Traceback" not in run.output and len(run.stderr.strip().splitlines()) == 1, run
    assert SqlMetadataStore(f"sqlite:///{home / 'forgeline.db'}").list_executions() == []


def test_a_bad_size_setting_is_one_clear_line(cli, project):
    default_layout_project(project)

    run = run_here(cli, project, env={"FORGELINE_MAX_CODE_SIZE": "lots"})

    assert run.returncode != 0
    assert "FORGELINE_MAX_CODE_SIZE='lots' is not a size" in run.output
    assert "Traceback" not in run.output


TRANSFORM_PIPELINE = """
    from forgeline.workflow import (CacheConfig, Model, Pipeline, ProcessingOutput, ProcessingStep, TransformInput,
                                    TransformStep)

    cache = CacheConfig(enable_caching=True)
    fit = ProcessingStep(name="Fit", code="fit.py", cache_config=cache,
                         outputs=[ProcessingOutput(output_name="model", source="model")])
    predict = TransformStep(name="Predict", cache_config=cache,
                            model=Model(model_data=fit.properties.outputs["model"], entry_point="inference.py",
                                        source_dir="."),
                            inputs=TransformInput(data="rows.csv", content_type="text/csv", split_type="Line"))
    pipeline = Pipeline(name="dot-model", steps=[fit, predict])
"""

INFERENCE = """
    import json, os

    def model_fn(model_dir):
        with open(os.path.join(model_dir, "weights.json")) as handle:
            return json.load(handle)

    def predict_fn(data, model):
        return data * model["scale"]
"""


def test_a_model_whose_source_dir_is_the_project_scores_and_caches(cli, project):
    project.write("pipeline.py", TRANSFORM_PIPELINE)
    project.write("fit.py", "import json\njson.dump({'scale': 3}, open('model/weights.json', 'w'))\n")
    project.write("inference.py", INFERENCE)
    project.write("rows.csv", "1\n2\n")
    home = project.root / ".forgeline"

    first = run_here(cli, project)

    assert first.returncode == 0, first
    record, steps, _ = latest_steps(home)
    assert record.status.value == "Succeeded", record.failure_reason
    outputs = sorted(Path(steps["Predict"].outputs["output"]).rglob("*.out"))
    assert [float(line) for line in outputs[0].read_text().splitlines()] == [3.0, 6.0]

    second = run_here(cli, project)  # the store inside the model's code folder changed meanwhile

    assert second.returncode == 0, second
    _, steps, _ = latest_steps(home)
    assert steps["Predict"].cache_hit
