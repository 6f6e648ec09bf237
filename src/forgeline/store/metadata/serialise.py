"""The one JSON form of stored records (and of any dataclass built from them), shared by every edge.

Records stay plain frozen dataclasses; pydantic's TypeAdapter turns them, and lists or dicts of them, into
JSON-ready values: datetimes as ISO 8601 in UTC, enums as their value, nested records as objects.
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from typing import Any

from pydantic import TypeAdapter


@cache
def _adapter(kind: type) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def serialise(value: Any) -> Any:
    """A JSON-ready form of a record, a list or dict of records, or a plain value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _adapter(type(value)).dump_python(value, mode="json")
    if isinstance(value, (list, tuple)):
        return [serialise(item) for item in value]
    if isinstance(value, dict):
        return {str(key): serialise(item) for key, item in value.items()}
    return _adapter(object).dump_python(value, mode="json")


def dumps(value: Any, *, indent: int | None = 2) -> str:
    """The JSON text of ``serialise(value)``."""
    return json.dumps(serialise(value), indent=indent, ensure_ascii=False)
