"""The reference of the config groups instantiated from a ``_target_`` (``dataset`` loaders,
``models``, ``index``, ``engine``): each key's type from the target's signature, its help from the
target's ``Args:`` / ``Attributes:`` docstring (or a field's ``help``), so it cannot drift.

>>> resolve("evalkit.embed.precomputed.Precomputed", "query_prefix") is None  # not taken
True
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from evalkit.config_schema import type_words, without_none
from evalkit.data import hub, tabular
from evalkit.data.table_mapping import CatalogColumns, JudgmentColumns, QueryColumns
from evalkit.embed.model_version import ModelOptions, OptionValues
from evalkit.run.run_settings import EVALKIT_DATASET_KEYS

#: The config groups whose options are instantiated from a ``_target_``.
TARGET_GROUPS = ("dataset", "models", "index", "engine")

#: Keys of an option file that are no parameter: the target itself and Hydra's defaults list.
NOT_PARAMETERS = ("_target_", "defaults")

#: Keyword bundles (``**options: Unpack[TD]``) -> the record whose fields are their keys.
KEYWORD_RECORDS: dict[type, type] = {OptionValues: ModelOptions}

#: ``{(target, mapping parameter): (the record whose fields are its keys, its other keys)}``; the
#: other keys are documented dotted in the target's docstring (``catalog.path``).
TABLES: dict[tuple[str, str], tuple[type, tuple[str, ...]]] = {
    (f"{module.__name__}.{loader}", table): (record, tuple(module.SOURCE_KEYS))
    for module, loader in ((tabular, "load_tabular"), (hub, "load_hub"))
    for table, record in (
        ("catalog", CatalogColumns),
        ("queries", QueryColumns),
        ("judgments", JudgmentColumns),
    )
}

_SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Attributes):\s*$")
_ENTRY = re.compile(
    r"^(?P<names>[\w.]+(?:\s*,\s*[\w.]+)*)\s*(?:\((?P<type>[^)]*)\))?:\s*(?P<text>.*)$"
)
_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


@dataclasses.dataclass(frozen=True)
class Param:
    """One key a target takes, and the record that holds its sub-keys, if any."""

    name: str
    type: str
    help: str
    record: type | None = None
    other_keys: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class TargetKey:
    """One row of the reference (``param`` None: the target does not take the key)."""

    key: str
    default: Any
    param: Param | None
    section: bool = False  # a mapping of sub-keys (its rows follow)


@dataclasses.dataclass(frozen=True)
class TargetDoc:
    """One option file of a target group (``dataset=beir``) and its target's keys."""

    group: str
    option: str
    file: str
    target: str
    keys: tuple[TargetKey, ...]


def doc_entries(*objects: Any) -> dict[str, tuple[str, str]]:
    """``{name: (type, help)}`` of the objects' ``Args:`` / ``Attributes:`` sections (the first
    object that documents a name wins).

    >>> def f(a, b, c):
    ...     '''Do it.
    ...
    ...     Args:
    ...         a: the first,
    ...             continued.
    ...         b, c (number): two at once.
    ...     '''
    >>> doc_entries(f)
    {'a': ('', 'the first, continued.'), 'b': ('number', 'two at once.'), 'c': ('number', 'two at once.')}
    """
    out: dict[str, tuple[str, str]] = {}
    for obj in objects:
        for name, entry in _entries(inspect.cleandoc(getattr(obj, "__doc__", None) or "")):
            out.setdefault(name, entry)
    return out


def _entries(doc: str) -> list[tuple[str, tuple[str, str]]]:
    found: list[tuple[list[str], str, list[str]]] = []  # (names, type, text lines) in order
    section: int | None = None  # the open section's indent
    entry: int | None = None  # its entries' indent
    text: list[str] | None = None  # the open entry's text lines
    for line in doc.splitlines():
        stripped, indent = line.strip(), len(line) - len(line.lstrip())
        header = _SECTION.match(line)
        if header:
            section, entry, text = len(header.group(1)), None, None
        elif section is None or not stripped:
            continue
        elif indent <= section:  # the section ends
            section, text = None, None
        else:
            entry = indent if entry is None else entry
            match = _ENTRY.match(stripped) if indent == entry else None
            if match:
                text = [match["text"].strip()]
                names = [n.strip() for n in match["names"].split(",")]
                found.append((names, (match["type"] or "").strip(), text))
            elif text is not None:
                text.append(stripped)
    return [(n, (kind, " ".join(lines))) for names, kind, lines in found for n in names]


@functools.cache
def parameters(target: Any) -> dict[str, Param]:
    """``{key: Param}`` of every key ``target`` (a function, class or dataclass) takes."""
    path, docs = f"{target.__module__}.{target.__qualname__}", _docs(target)
    if isinstance(target, type) and dataclasses.is_dataclass(target):
        hints = typing.get_type_hints(target)
        return {
            f.name: _param(path, f.name, hints[f.name], docs, f.metadata.get("help"))
            for f in dataclasses.fields(target)
        }
    init = target.__init__ if isinstance(target, type) else target
    hints = typing.get_type_hints(init, include_extras=True)
    out: dict[str, Param] = {}
    for name, p in inspect.signature(init).parameters.items():
        if name == "self" or p.kind is p.VAR_POSITIONAL:
            continue
        if p.kind is p.VAR_KEYWORD:
            hint = hints.get(name)
            bundle = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Unpack else None
            record = KEYWORD_RECORDS.get(bundle)  # type: ignore[arg-type]
            if record is not None:
                taken = getattr(target, "takes_options", None)
                for key, param in parameters(record).items():
                    if key in typing.get_type_hints(bundle) and (taken is None or key in taken):
                        out[key] = param
            continue
        out[name] = _param(path, name, hints.get(name, p.annotation), docs)
    return out


def _docs(target: Any) -> dict[str, tuple[str, str]]:
    if not isinstance(target, type):
        return doc_entries(target)
    return doc_entries(*(o for c in target.__mro__ for o in (c, c.__dict__.get("__init__"))))


def _param(
    path: str, name: str, hint: Any, docs: Mapping[str, tuple[str, str]], help: Any = None
) -> Param:
    kind, text = docs.get(name, ("", ""))
    record, other = TABLES.get((path, name), (_record(hint), ()))
    words = annotation_words(hint) if hint is not inspect.Parameter.empty else kind
    if record is not None:  # its keys are a record's: a section, like chunking's
        words = words.replace("mapping", "section", 1)
    return Param(name, words, str(help or text), record, other)


def _record(hint: Any) -> type | None:
    hint, _ = without_none(hint)
    arms = typing.get_args(hint) if _is_union(hint) else (hint,)
    return next((a for a in arms if isinstance(a, type) and dataclasses.is_dataclass(a)), None)


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def annotation_words(hint: Any) -> str:
    """An annotation in the reference's words.

    >>> annotation_words(Sequence[float] | None), annotation_words(str | Path)
    ('list of numbers or null', 'path')
    """
    hint, optional = without_none(hint)
    origin = typing.get_origin(hint)
    if _is_union(hint):
        arms = typing.get_args(hint)
        if set(arms) == {str, Path}:
            text = "path"
        elif any(_record(a) or typing.get_origin(a) in (dict, Mapping) for a in arms):
            text = "section"
        else:
            text = " or ".join(annotation_words(a) for a in arms)
    elif origin in (tuple, list, Sequence) or hint in (tuple, list, Sequence):
        args = typing.get_args(hint)
        text = f"list of {type_words(args[0], plural=True)}" if args else "list"
    elif origin in (dict, Mapping) or hint in (dict, Mapping):
        text = "mapping"
    elif dataclasses.is_dataclass(hint):
        text = "section"
    elif hint is Path:
        text = "path"
    elif hint is Any:
        text = "any"
    else:
        text = type_words(hint).removeprefix("an ").removeprefix("a ")
    return f"{text} or null" if optional else text


def resolve(target: str, key: str) -> Param | None:
    """What ``target`` says of ``key`` (dotted below a section), or None: it does not take it."""
    from hydra.utils import get_object

    obj, parts = get_object(target), key.split(".")
    param, docs = parameters(obj).get(parts[0]), _docs(obj)
    for i, part in enumerate(parts[1:], start=2):
        if param is None:
            return None
        dotted = ".".join(parts[:i])
        sub = parameters(param.record) if param.record is not None else {}
        if part in sub:
            found = sub[part]
            param = dataclasses.replace(found, help=found.help or docs.get(dotted, ("", ""))[1])
        elif part in param.other_keys and dotted in docs:
            kind, text = docs[dotted]
            param = Param(part, kind, text)
        else:
            return None
    return param


def target_docs(conf_dir: Path | None = None) -> list[TargetDoc]:
    """Every option file of :data:`TARGET_GROUPS`, one row per key of its YAML."""
    from evalkit.usage import CONF_DIR

    root = conf_dir or CONF_DIR
    out = []
    for group in TARGET_GROUPS:
        for path in sorted((root / group).glob("*.yaml")):
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            for prefix, node in _target_nodes(doc, group):
                keys = tuple(_rows(node["_target_"], node, prefix, ""))
                out.append(
                    TargetDoc(group, path.stem, f"conf/{group}/{path.name}", node["_target_"], keys)
                )
    return out


def _target_nodes(node: Any, prefix: str) -> list[tuple[str, dict]]:
    if not isinstance(node, dict):
        return []
    if "_target_" in node:
        return [(prefix, node)]
    return [found for k, v in node.items() for found in _target_nodes(v, f"{prefix}.{k}")]


def _rows(target: str, node: Mapping[str, Any], prefix: str, rel: str) -> list[TargetKey]:
    out = []
    for name, value in node.items():
        if not rel and name in NOT_PARAMETERS:
            continue
        key = f"{rel}.{name}".lstrip(".")
        section = isinstance(value, dict)
        out.append(TargetKey(f"{prefix}.{key}", value, resolve(target, key), section))
        if section:
            out += _rows(target, value, prefix, key)
    return out


def undocumented_keys(docs: Sequence[TargetDoc] | None = None) -> list[str]:
    """``file: key ...`` for every key its target does not take or documents without help."""
    problems = []
    for doc in target_docs() if docs is None else docs:
        for row in doc.keys:
            if row.param is None:
                problems.append(f"{doc.file}: {row.key} is not a parameter of {doc.target}")
            elif not row.param.help.strip():
                problems.append(
                    f"{doc.file}: {row.key} has no help text (document it in {doc.target}'s "
                    "docstring: Args / Attributes)"
                )
    return problems


def targets_markdown(docs: Sequence[TargetDoc] | None = None) -> list[str]:
    docs = target_docs() if docs is None else docs
    lines = [
        "## Groups instantiated from a target",
        "",
        "Each option of " + ", ".join(f"`{g}`" for g in TARGET_GROUPS) + " names a Python "
        "target (`_target_`) and its keys are that target's parameters: the type is the "
        "target's annotation, the default the option file's, the help the target's docstring. "
        "The keys evalkit reads itself for every loader ("
        + ", ".join(f"`dataset.{k}`" for k in EVALKIT_DATASET_KEYS)
        + ") are in the `dataset` table above.",
        "",
    ]
    for doc in docs:
        lines += [f"### `{doc.group}={doc.option}`", ""]
        lines += [f"`{doc.file}`, target `{doc.target}`.", ""]
        lines += ["| key | type | default | help |", "|---|---|---|---|"]
        for row in doc.keys:
            param = row.param or Param(row.key, "", "")
            default = "" if row.section else f"`{_shown(row.default)}`"
            cells = (f"`{row.key}`", param.type, default, _markdown(param.help))
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return lines


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value) if value == "" or value != value.strip() else value
    return json.dumps(value).replace('"', "")


def _markdown(text: str) -> str:
    text = _ROLE.sub(lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)
    parts = re.split(r"(`+[^`]*`+)", text)
    return "".join(p if p.startswith("`") else p.replace("<", "&lt;") for p in parts)
