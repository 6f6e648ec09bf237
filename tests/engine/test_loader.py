"""Loading a user's pipeline file: errors in the user's own code are located in the user's own files."""

from __future__ import annotations

import runpy

import pytest

from forgeline.engine.loader import load_pipeline, user_frame
from forgeline.errors import PipelineDefinitionError


def test_the_user_frame_is_the_innermost_in_the_users_files_not_in_python_or_forgeline(tmp_path):
    helper = tmp_path / "helper.py"
    helper.write_text("import json\n\ndef parse(text):\n    return json.loads(text)\n\nparse('{oops')\n")
    with pytest.raises(ValueError) as caught:
        runpy.run_path(str(helper))

    frame = user_frame(caught.value)

    assert frame is not None and (frame.filename, frame.lineno) == (str(helper), 4)  # not json's own frames


def test_a_pipeline_file_that_fails_is_a_definition_error_naming_file_line_and_type(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pipeline.py").write_text("from forgeline.workflow import Pipeline\n\nsteps = [1 / 0]\n")

    with pytest.raises(PipelineDefinitionError, match=r"^pipeline\.py:3: ZeroDivisionError: division by zero$"):
        load_pipeline("pipeline.py")


def test_a_directory_is_named_as_one_with_the_pipeline_file_inside(tmp_path):
    (tmp_path / "notes.py").write_text("x = 1\n")
    (tmp_path / "flow.py").write_text("from forgeline.workflow import Pipeline\np = Pipeline(name='p')\n")

    with pytest.raises(PipelineDefinitionError, match=r"is a directory; give the pipeline file in it such as "
                                                      r".*flow\.py"):
        load_pipeline(str(tmp_path))
