"""Import SageMaker pipeline definitions (the SDK v2's ``pipeline.definition()``) as forgeline pipelines."""
