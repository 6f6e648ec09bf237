"""Warm transform workers in a pipeline: a later TransformStep's workers start with the framework imported.

Two transform steps run one after the other. The first one's workers import numpy themselves and report it to the
user's warm transform server, which outlives that step's job (its supervisor ends what the job left running, not
the shared server); the second step's workers are forked from it with numpy already imported. The model's
prediction says which was the case. The steps' own folder on PYTHONPATH gives the test a server of its own.
"""

from __future__ import annotations

INFERENCE = """
    import json, os, sys
    PRELOADED = "numpy" in sys.modules
    import numpy as np

    def model_fn(model_dir):
        with open(os.path.join(model_dir, "weights.json")) as handle:
            return json.load(handle)

    def predict_fn(data, model):
        return np.column_stack([data[:, 0].astype(int), np.full(len(data), int(PRELOADED))])
"""

PREPARE = """
    import json, os
    os.makedirs("inference", exist_ok=True)
    os.makedirs("model", exist_ok=True)
    with open("inference/a.csv", "w") as a:
        a.writelines(f"{i},1\\n" for i in range(3000))
    json.dump({}, open("model/weights.json", "w"))
"""

PIPELINE = """
    from forgeline.workflow import Model, Pipeline, ProcessingOutput, ProcessingStep, TransformInput, TransformStep

    prepare = ProcessingStep(name="Prepare", code="prepare.py",
                             outputs=[ProcessingOutput(output_name="inference", source="inference"),
                                      ProcessingOutput(output_name="model", source="model")])
    model = Model(model_data=prepare.properties.outputs["model"], entry_point="inference.py", source_dir="code")
    data = TransformInput(data=prepare.properties.outputs["inference"], content_type="text/csv")
    env = {"PYTHONPATH": "{own_path}", "FORGELINE_TRANSFORM_WARM_SECONDS": "30"}
    first = TransformStep(name="First", model=model, inputs=data, instance_count=2, max_payload_mb=0.002,
                          accept="text/csv", env=env)
    second = TransformStep(name="Second", model=model, inputs=data, instance_count=2, max_payload_mb=0.002,
                           accept="text/csv", env=env, depends_on=[first])
    pipeline = Pipeline(name="warm-scoring", steps=[prepare, first, second])
"""


def test_the_second_transform_steps_workers_start_warm(project, tmp_path):
    own_path = tmp_path / "own-path"
    own_path.mkdir()
    project.write("code/inference.py", INFERENCE)
    project.write("prepare.py", PREPARE)
    project.write("pipeline.py", PIPELINE.replace("{own_path}", str(own_path)))

    finished = project.run(timeout=240)

    assert finished.status == "Succeeded", (finished.failure_reason, finished.statuses())
    first, second = (project.read_output(finished.steps[name].properties["output_uri"], "a.csv.out").splitlines()
                     for name in ("First", "Second"))
    assert first == [f"{i},0" for i in range(3000)]  # imported numpy itself
    assert second == [f"{i},1" for i in range(3000)]  # forked from the server that had imported it
