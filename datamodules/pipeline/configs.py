"""Config dataclasses arrive from YAML as mappings, from Python as instances, or not at all."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def as_config(cls: type[T], value: T | Mapping[str, Any] | None) -> T:
    """`value` as a `cls` instance: None → the defaults, a mapping → `cls(**value)`."""
    if value is None:
        return cls()
    return value if isinstance(value, cls) else cls(**value)
