"""Config sections by schema: frozen dataclasses of :func:`setting` fields, read and checked by
:func:`read_section` (each problem one :class:`~evalkit.errors.ConfigError` naming ``section.key``).

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Probe:
...     texts: int = setting(64, key="probe", ge=0, help="texts sampled; 0 = no probe")
...     ratio: float = setting(0.5, gt=0.0, lt=1.0, help="a share")
>>> read_section(Probe, {"probe": 8}, "latency")
Probe(texts=8, ratio=0.5)
>>> read_section(Probe, {"ratio": 1.5}, "latency")
Traceback (most recent call last):
...
evalkit.errors.ConfigError: latency.ratio=1.5 is out of range (expected a number > 0 and < 1: a share)
"""

from __future__ import annotations

import dataclasses
import math
import operator
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import OmegaConf

from evalkit.errors import ConfigError

T = TypeVar("T")
_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
_HOLDS = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt}


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    factory: Callable[[], Any] | None = None,
    key: str | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: Sequence[Any] | None = None,
) -> Any:
    """A config key as a dataclass field (``choices`` and bounds apply to each item of a list or
    mapping value)."""
    meta = {"help": help, "key": key, "ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def settings_of(kind: type) -> dict[str, dataclasses.Field]:
    """``{config key: field}`` of a schema record."""
    return {
        f.metadata.get("key") or f.name: f for f in dataclasses.fields(kind) if "help" in f.metadata
    }


def read_section(kind: type[T], node: Any, where: str, *, ignore: Iterable[str] = ()) -> T:
    """``node`` (a mapping; None: every default) checked against ``kind`` and built; ``ignore`` keys
    are accepted unread.  An integral float is an integer, one value a list, an enum any case;
    ``null`` is None where allowed, else the default."""
    values = plain(node, where)
    keys = settings_of(kind)
    ignore = tuple(ignore)
    unknown = sorted(set(values) - set(keys) - set(ignore))
    if unknown:
        raise unknown_keys(where, unknown, [*keys, *ignore])
    hints = typing.get_type_hints(kind)
    out = {}
    for name, f in keys.items():
        if name in values:
            out[f.name] = _value(values[name], hints[f.name], f, f"{where}.{name}".lstrip("."))
    return kind(**out)


def read_split(node: Any, where: str, *kinds: type) -> tuple[Any, ...]:
    """One section read into several records, each taking its own keys."""
    values = plain(node, where)
    keys = [key for kind in kinds for key in settings_of(kind)]
    unknown = sorted(set(values) - set(keys))
    if unknown:
        raise unknown_keys(where, unknown, keys)
    return tuple(
        read_section(kind, {k: v for k, v in values.items() if k in settings_of(kind)}, where)
        for kind in kinds
    )


def unknown_keys(where: str, unknown: Iterable[str], valid: Iterable[str]) -> ConfigError:
    return ConfigError(
        f"{where or 'the configuration'} has unknown keys {', '.join(unknown)} "
        f"(expected {', '.join(sorted(valid))})"
    )


def plain(node: Any, where: str) -> dict[str, Any]:
    """A config section as a plain ``dict`` (interpolations resolved, ``???`` kept as text); None
    is empty.

    >>> plain(OmegaConf.create({"a": {"b": [1, "${c}"]}, "c": 2}), "x")
    {'a': {'b': [1, 2]}, 'c': 2}
    """
    if node is None:
        return {}
    if not isinstance(node, Mapping):
        raise ConfigError(f"{where}={_shown(node)!r} is invalid (expected a mapping)")
    return {str(k): v for k, v in _plain_value(node).items()}


def _plain_value(value: Any) -> Any:
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        return {str(k): _plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_value(v) for v in value]
    return value


def _shown(value: Any) -> Any:
    return _plain_value(value) if OmegaConf.is_config(value) else value


def _value(value: Any, hint: Any, f: dataclasses.Field, key: str) -> Any:
    hint, optional = without_none(hint)
    if value is None:
        if optional:
            return None
        if typing.get_origin(hint) is tuple:
            return ()
        if typing.get_origin(hint) in (dict, Mapping):
            return {}
        if f.default is not dataclasses.MISSING:
            return f.default
        return f.default_factory()  # type: ignore[misc]
    if dataclasses.is_dataclass(hint):
        return read_section(hint, value, key)
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        items = list(value) if isinstance(value, list | tuple) else [value]
        if args[-1] is not Ellipsis and len(items) != len(args):
            expected = f"a list of {len(args)} {type_words(args[0], plural=True)}"
            raise _invalid(key, value, expected, f)
        kinds = [args[0]] * len(items) if args[-1] is Ellipsis else list(args)
        return tuple(_leaf(v, t, f, f"{key}[{i}]") for i, (v, t) in enumerate(zip(items, kinds)))
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _invalid(key, value, "a mapping", f)
        kind = (typing.get_args(hint) or (str, Any))[1]
        return {str(k): _leaf(v, kind, f, f"{key}.{k}") for k, v in plain(value, key).items()}
    return _leaf(value, hint, f, key)


def _leaf(value: Any, hint: Any, f: dataclasses.Field, key: str) -> Any:
    out = _scalar(value, hint, f, key)
    choices = f.metadata.get("choices")
    if choices is not None and out not in choices:
        raise _invalid(key, value, "one of " + ", ".join(str(c) for c in choices), f)
    if isinstance(out, int | float) and not isinstance(out, bool) and not _in_bounds(out, f):
        expected = f"{_expected(hint, f)}: {_help(f)}"
        raise ConfigError(f"{key}={value!r} is out of range (expected {expected})")
    return out


def _scalar(value: Any, hint: Any, f: dataclasses.Field, key: str) -> Any:
    if isinstance(hint, type) and issubclass(hint, Enum):
        for member in hint:
            if str(value).lower() == str(member.value).lower():
                return member
        raise _invalid(key, value, "one of " + ", ".join(str(m.value) for m in hint), f)
    if hint is bool and isinstance(value, bool):
        return value
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int and number and float(value).is_integer():
        return int(value)
    if hint is float and number and not math.isnan(value):
        return float(value)
    if hint is str and isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    if hint is Path and isinstance(value, str | Path) and str(value):
        return Path(str(value)).expanduser()
    if hint is Any:
        return _plain_value(value)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # e.g. float | str
        for arm in typing.get_args(hint):
            try:
                return _scalar(value, arm, f, key)
            except ConfigError:
                continue
    raise _invalid(key, value, _expected(hint, f), f)


def _invalid(key: str, value: Any, expected: str, f: dataclasses.Field) -> ConfigError:
    return ConfigError(f"{key}={_shown(value)!r} is invalid (expected {expected}: {_help(f)})")


def _help(f: dataclasses.Field) -> str:
    return str(f.metadata.get("help", "")).rstrip(".")


def without_none(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        rest = args[0] if len(args) == 1 else typing.Union[tuple(args)]  # noqa: UP007
        return rest, len(args) < len(typing.get_args(hint))
    return hint, False


def _in_bounds(x: float, f: dataclasses.Field) -> bool:
    m = f.metadata
    return all(m.get(name) is None or holds(x, m[name]) for name, holds in _HOLDS.items())


def bounds(f: dataclasses.Field) -> str:
    """A field's bounds in words (``> 0 and < 1``), or ``""``."""
    m = f.metadata
    return " and ".join(f"{op} {m[name]:g}" for name, op in _BOUNDS if m.get(name) is not None)


def _expected(hint: Any, f: dataclasses.Field) -> str:
    text = type_words(hint)
    return f"{text} {bounds(f)}" if bounds(f) else text


def type_words(hint: Any, plural: bool = False) -> str:
    """A type in words: ``an integer`` / ``integers``."""
    hint, _ = without_none(hint)
    names = {int: ("an integer", "integers"), float: ("a number", "numbers"),
             bool: ("true or false", "flags"), str: ("a string", "strings"),
             Path: ("a folder path", "paths")}  # fmt: skip
    if hint in names:
        return names[hint][plural]
    if isinstance(hint, type) and issubclass(hint, Enum):
        return "one of " + ", ".join(str(m.value) for m in hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(type_words(a, plural) for a in typing.get_args(hint))
    return "a value"
