"""Repository functions for training-metric time series, each run inside a caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, insert, select

from forgeline.store.metadata.executions_repository import load_execution
from forgeline.store.metadata.records import MetricPoint
from forgeline.store.metadata.rows import metric_point_values, to_metric_point
from forgeline.store.metadata.steps_repository import load_step_run
from forgeline.store.metadata.tables import metric_points


def insert_metric_points(connection: Connection, points: Sequence[MetricPoint]) -> None:
    """Insert every point in one executemany; StepNotFoundError (naming it) for a step that does not exist."""
    if not points:
        return
    rows = [metric_point_values(point) for point in points]
    # Checked here rather than left to the foreign key, so the error says which step is missing.
    for execution_id, step_name in dict.fromkeys((point.execution_id, point.step_name) for point in points):
        load_step_run(connection, execution_id, step_name)
    connection.execute(insert(metric_points), rows)


def list_metric_points(
    connection: Connection, execution_id: str, step_name: str | None, name: str | None
) -> list[MetricPoint]:
    """Points of an execution, optionally of one step and one metric, by step name, attempt and seq."""
    query = (
        select(metric_points)
        .where(metric_points.c.execution_id == execution_id)
        .order_by(metric_points.c.step_name, metric_points.c.attempt, metric_points.c.seq, metric_points.c.id)
    )
    if step_name is not None:
        query = query.where(metric_points.c.step_name == step_name)
    if name is not None:
        query = query.where(metric_points.c.name == name)
    rows = connection.execute(query).all()
    if not rows:
        if step_name is None:
            load_execution(connection, execution_id)
        else:
            load_step_run(connection, execution_id, step_name)
    return [to_metric_point(row) for row in rows]
