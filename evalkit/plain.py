"""Config sections as plain data: what every layer below the run reads.

The run hands each layer its section already plain (:mod:`evalkit.run.run_settings`); layers called
directly (tests, notebooks) may still pass any mapping - a ``dict`` or a config node, which is a
mapping too - and get nested dicts and lists back, values resolved on access.

>>> plain_mapping({"a": {"b": [1, {"c": 2}]}}, "section")
{'a': {'b': [1, {'c': 2}]}}
>>> plain_mapping(None, "section")
{}
>>> plain_mapping([1], "gates")
Traceback (most recent call last):
...
evalkit.errors.ConfigError: gates=[1] is invalid (expected a mapping)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from evalkit.errors import ConfigError


def plain_mapping(node: Any, where: str) -> dict[str, Any]:
    """``node`` (a mapping, or None = empty) as a plain dict; ``where`` names it in errors."""
    if node is None:
        return {}
    if not isinstance(node, Mapping):
        raise ConfigError(f"{where}={node!r} is invalid (expected a mapping)")
    return {str(k): plain_value(v) for k, v in node.items()}


def plain_value(value: Any) -> Any:
    """Mappings -> dicts and sequences (not strings) -> lists, recursively."""
    if isinstance(value, Mapping):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain_value(v) for v in value]
    return value
