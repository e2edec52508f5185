"""Query slices: every metric and gate is also reported per language and categorical query column
(2 to ``max_levels`` values; a missing one is ``(missing)``), per frequency band (*head* while
the strictly more frequent queries carry less than ``head_share`` of the traffic, *torso* below
``torso_share``, else *tail*) and per whitespace-token length band.

>>> from evalkit.data.schema import Queries
>>> q = Queries(ids=["a", "b", "c", "d"], texts=["x", "x y", "x y z w", "x"],
...             frequency=[50.0, 30.0, 15.0, 5.0])
>>> [(s.label, s.query_ids) for s in query_slices(q) if s.dimension != "length"]
[('frequency=head', ['a']), ('frequency=torso', ['b']), ('frequency=tail', ['c', 'd'])]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evalkit.compare.gate_config import SliceConfig
from evalkit.data.schema import Queries
from evalkit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

MISSING = "(missing)"


@dataclass(frozen=True)
class Slice:
    """A named subset of queries, e.g. ``language=de`` or ``frequency=tail``."""

    dimension: str
    value: str
    query_ids: list[str]

    @property
    def label(self) -> str:
        return f"{self.dimension}={self.value}"


def length_band_labels(edges: Sequence[int]) -> list[str]:
    """Labels of the bands ending at ``edges`` plus the open last band."""
    labels, lo = [], 1
    for hi in edges:
        labels.append(str(hi) if hi == lo else f"{lo}-{hi}")
        lo = hi + 1
    return [*labels, f"{lo}+"]


def length_bands(texts: Sequence[str], edges: Sequence[int] = (1, 3)) -> np.ndarray:
    """Band label of each query by token count (see :func:`length_band_labels`)."""
    labels = np.asarray(length_band_labels(edges), dtype=object)
    tokens = np.fromiter((len(t.split()) for t in texts), dtype=np.int64, count=len(texts))
    return labels[np.searchsorted(np.asarray(edges), tokens, side="left")]


def frequency_bands(
    frequency: Sequence[float] | np.ndarray, head_share: float = 0.5, torso_share: float = 0.8
) -> np.ndarray:
    """``head`` / ``torso`` / ``tail`` of each query by the traffic share of more frequent queries
    (equal frequencies share a band)."""
    f = np.asarray(frequency, dtype=np.float64)
    bad = ~np.isfinite(f) | (f < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"query frequency is {f[i]}", row=i + 1, field="frequency", expected="a count >= 0"
        )
    total = f.sum()
    if total <= 0:
        return np.full(f.size, "tail", dtype=object)
    _, inv = np.unique(f, return_inverse=True)
    greater = total - np.cumsum(np.bincount(inv, weights=f))  # traffic of strictly larger values
    share_before = greater[inv] / total
    out = np.full(f.size, "tail", dtype=object)
    out[share_before < torso_share] = "torso"
    out[share_before < head_share] = "head"
    return out


def _levels(values: Sequence[object]) -> np.ndarray:
    return np.asarray([MISSING if v is None or v == "" else str(v) for v in values], dtype=object)


def _is_categorical(values: Sequence[object], max_levels: int) -> bool:
    if not all(
        v is None or isinstance(v, str | bool | int | np.integer | np.bool_) for v in values
    ):
        return False
    return 2 <= len(set(values)) <= max_levels


def categorical_columns(queries: Queries, cfg: SliceConfig) -> dict[str, np.ndarray]:
    """Columns to slice by and each query's level (``language`` first)."""
    available: dict[str, Sequence[object]] = {}
    if queries.language is not None:
        available["language"] = queries.language
    available.update({k: v for k, v in queries.attributes.items() if k not in available})
    for name, values in available.items():
        if len(values) != len(queries):
            raise DataError(
                f"query column {name!r} has {len(values)} values for {len(queries)} queries",
                file=queries.source or None,
                field=name,
                expected="one value per query",
            )
    if cfg.columns is not None:
        unknown = [c for c in cfg.columns if c not in available]
        if unknown:
            raise ConfigError(
                f"gates.slices.columns names {', '.join(unknown)}, which the queries "
                f"{queries.source or '(in memory)'} do not have "
                f"(available: {', '.join(available) or 'none'})"
            )
        return {c: _levels(available[c]) for c in cfg.columns}
    out = {}
    for name, values in available.items():
        if _is_categorical(values, cfg.max_levels):
            out[name] = _levels(values)
        else:
            log.debug(
                "query column %r is not categorical (or has > %d levels)", name, cfg.max_levels
            )
    return out


def _group(
    dimension: str, ids: np.ndarray, labels: np.ndarray, order: Sequence[str]
) -> list[Slice]:
    out = []
    for value in order:
        member = ids[labels == value]
        if member.size:
            out.append(Slice(dimension, value, member.tolist()))
    return out


def query_slices(queries: Queries, cfg: SliceConfig | None = None) -> list[Slice]:
    """All slices of ``queries`` (categorical columns, frequency bands, length bands)."""
    cfg = cfg or SliceConfig()
    if not cfg.enabled or len(queries) == 0:
        return []
    ids = np.asarray(queries.ids, dtype=object)
    out: list[Slice] = []
    for name, levels in categorical_columns(queries, cfg).items():
        out += _group(name, ids, levels, sorted(set(levels.tolist())))
    if queries.frequency is not None:
        bands = frequency_bands(
            queries.frequency, cfg.frequency_bands.head, cfg.frequency_bands.torso
        )
        out += _group("frequency", ids, bands, ("head", "torso", "tail"))
    lengths = length_bands(queries.texts, cfg.length_bands)
    out += _group("length", ids, lengths, length_band_labels(cfg.length_bands))
    return out
