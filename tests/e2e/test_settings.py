"""Where forgeline keeps things: FORGELINE_HOME (default ./.forgeline), FORGELINE_DATABASE_URL, FORGELINE_ARTIFACT_ROOT."""

from __future__ import annotations

import os

PIPELINE = """
    from forgeline.workflow import Pipeline, ProcessingOutput, ProcessingStep

    write = ProcessingStep(name="Write", code="write.py", outputs=[ProcessingOutput(output_name="out", source="out")])
    pipeline = Pipeline(name="settings", steps=[write])
"""

WRITE = """
    from pathlib import Path
    Path("out/hello.txt").write_text("hello")
"""


def tiny(project):
    project.write("write.py", WRITE)
    project.write("pipeline.py", PIPELINE)
    return project


def test_forgeline_home_defaults_to_dot_forgeline_in_the_current_folder(project, cli):
    tiny(project)
    nothing_set = ["FORGELINE_HOME", "FORGELINE_DATABASE_URL", "FORGELINE_ARTIFACT_ROOT"]

    run = cli("run", "pipeline.py", cwd=project.root, unset=nothing_set)

    assert run.returncode == 0, run
    home = project.root / ".forgeline"
    assert (home / "forgeline.db").is_file()
    listed = cli("executions", "list", cwd=project.root, unset=nothing_set)
    assert "settings" in listed.stdout and "Succeeded" in listed.stdout, listed
    stored = list((home / "artifacts").rglob("hello.txt"))
    assert len(stored) == 1 and stored[0].read_text() == "hello"


def test_database_url_and_artifact_root_are_honoured(project, cli, tmp_path, forgeline_home):
    tiny(project)
    (tmp_path / "db").mkdir()
    database_url = f"sqlite:///{tmp_path / 'db' / 'meta.db'}"
    artifact_root = tmp_path / "bucket"
    env = {"FORGELINE_DATABASE_URL": database_url, "FORGELINE_ARTIFACT_ROOT": str(artifact_root)}

    run = cli("run", "pipeline.py", cwd=project.root, env=env)

    assert run.returncode == 0, run
    assert (tmp_path / "db" / "meta.db").is_file()
    assert not (forgeline_home / "forgeline.db").exists()
    stored = list(artifact_root.rglob("hello.txt"))
    assert len(stored) == 1 and stored[0].read_text() == "hello"
    assert not (forgeline_home / "artifacts").exists()

    listed = cli("executions", "list", cwd=project.root, env=env)
    assert "settings" in listed.stdout, listed
    elsewhere = cli("executions", "list", cwd=project.root)  # FORGELINE_HOME's own database: never created
    assert elsewhere.returncode == 1, elsewhere
    assert f"no forgeline metadata database at {forgeline_home / 'forgeline.db'}" in elsewhere.stderr, elsewhere
    assert not (forgeline_home / "forgeline.db").exists()

    from forgeline.config import Settings
    from forgeline.store.metadata.sql_store import SqlMetadataStore

    store = SqlMetadataStore(Settings.from_env({**os.environ, **env}).database_url)
    [record] = store.list_executions()
    [write] = store.list_step_runs(record.id)
    assert write.outputs["out"].startswith(str(artifact_root))


def test_forgeline_executor_local_runs_and_an_unknown_one_is_one_clear_line(project, cli):
    tiny(project)

    run = cli("run", "pipeline.py", cwd=project.root, env={"FORGELINE_EXECUTOR": "local"})
    assert run.returncode == 0 and "Succeeded" in run.output, run

    refused = cli("executions", "list", cwd=project.root, env={"FORGELINE_EXECUTOR": "kubernetes"})
    assert refused.returncode != 0
    assert refused.stderr.strip() == ("error: FORGELINE_EXECUTOR='kubernetes' is not an executor; "
                                      "accepted: local, ray, ray://<host>:<port>"), refused
