# examples/packaging/inference.py
# Daily or monthly inference: score products with the approved model of a package type, load the predictions back.
import os

from forgeline.workflow import (
    Pipeline, ParameterString, ParameterInteger,
    ProcessingStep, ProcessingInput, ProcessingOutput, Join,
    TransformStep, TransformInput, ModelPackage, ExecutionVariables,
)

CODE = "examples/packaging/code"


def default_warehouse() -> str:
    """$PACKAGING_WAREHOUSE or .forgeline/packaging/warehouse.duckdb, as an absolute URL (jobs run in their own folders)."""
    location = os.environ.get("PACKAGING_WAREHOUSE", ".forgeline/packaging/warehouse.duckdb")
    return location if "://" in location else "duckdb:///" + os.path.abspath(location)


mode = ParameterString("Mode", default_value="daily", enum_values=["daily", "monthly"])
package_type = ParameterString("PackageType", default_value="box", enum_values=["mailer", "bag", "box", "none"])
since = ParameterString("Since", default_value="")                   # daily: added on or after (default: yesterday)
prediction_date = ParameterString("PredictionDate", default_value="")  # default: today
file_size = ParameterInteger("FileSize", default_value=500)            # products per feature file
warehouse = ParameterString("Warehouse", default_value=default_warehouse())

# The warehouse changes outside forgeline and the approved model changes in the registry: nothing is cached.
prepare = ProcessingStep(
    name="Prepare", code="prepare.py", source_dir=CODE,
    arguments=["--warehouse", warehouse, "--mode", mode, "--since", since, "--prediction-date", prediction_date,
               "--file-size", file_size],
    outputs=[ProcessingOutput(output_name="features", source="output/features"),
             ProcessingOutput(output_name="manifest", source="output/manifest")],
)
approved = ModelPackage.latest_approved(Join(on="-", values=["packaging", package_type]))  # looked up at run time
predict = TransformStep(
    name="Predict", model=approved,
    inputs=TransformInput(prepare.properties.outputs["features"], content_type="text/csv"),
    join_source="Input",  # each output line is the product's record followed by its prediction
    instance_count=2,     # two worker processes share the feature files
)
load = ProcessingStep(
    name="Load", code="load.py", source_dir=CODE,
    inputs=[ProcessingInput(source=predict.properties.output_uri, destination="predictions"),
            ProcessingInput(source=prepare.properties.outputs["manifest"], destination="manifest")],
    outputs=[ProcessingOutput(output_name="report", source="report")],
    arguments=["--warehouse", warehouse, "--package-type", package_type,
               "--model-package", predict.properties.model_package_arn,  # the version that made the predictions
               "--execution-id", ExecutionVariables.EXECUTION_ID],
)
pipeline = Pipeline(
    name="packaging-inference",
    parameters=[mode, package_type, since, prediction_date, file_size, warehouse],
    steps=[prepare, predict, load],
)
