"""A sweep's configurations compared with each other: paired deltas against a reference (paired
t over the shared query ids), Holm across the configurations (each interval at the confidence
that agrees with its Holm p), the offline calls, and the cheapest configuration that is no worse.
The reference (``sweep.reference``): docs/how-to/sweeps.md.

>>> ref = {"q1": 0.5, "q2": 0.6, "q3": 0.4, "q4": 0.7}
>>> small = {"q1": 0.49, "q2": 0.61, "q3": 0.40, "q4": 0.69}
>>> calls = compare_configs(ref, [("dim=128", small)], margin=0.01)
>>> calls[0].label, calls[0].call, round(calls[0].delta, 4)
('dim=128', 'inconclusive', -0.0025)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from evalkit.compare.calls import Quality, call
from evalkit.compare.intervals import adjusted_confidence, student
from evalkit.compare.multiplicity import holm

#: Most exact first: the default reference takes the first of these a key's sweep holds.
PRECISION_ORDER = ("fp32", "fp16", "sq8", "sq4", "binary")
INDEX_ORDER = ("flat", "hnsw", "ivf")
FULL = ("null", "none", "~", "")  # no truncation / no chunking: the most exact value


@dataclass(frozen=True)
class ConfigCall:
    """One configuration against the reference (``delta = config - reference``)."""

    label: str
    delta: float
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float
    p_holm: float
    call: str
    n: int
    procedure: str = "paired t, Holm across configurations"
    costs: dict[str, float] = field(default_factory=dict)


def exactness(key: str, value: str) -> tuple[int, float]:
    """A sort key: smaller is more exact (the default reference is the smallest of each key).

    >>> sorted(["128", "null", "384"], key=lambda v: exactness("models.e5.dimensions", v))
    ['null', '384', '128']
    >>> sorted(["binary", "fp32", "sq8"], key=lambda v: exactness("index.precision", v))
    ['fp32', 'sq8', 'binary']
    """
    v = value.strip().strip("'\"").lower()
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "precision" and v in PRECISION_ORDER:
        return 0, float(PRECISION_ORDER.index(v))
    if key in ("index", "index.kind") and v in INDEX_ORDER:
        return 0, float(INDEX_ORDER.index(v))
    if v in FULL:
        return 0, -math.inf
    try:
        return 0, -float(v)  # dimensions, chunk size, nprobe...: the largest
    except ValueError:
        return 1, 0.0  # unordered: the sweep's first value (a stable sort keeps it first)


def auto_reference(swept: Sequence[Mapping[str, str]]) -> int | None:
    """The index of the job holding the most exact value of every swept key (None: no job does)."""
    if not swept:
        return None
    keys = sorted({k for s in swept for k in s})
    best = {}
    for k in keys:
        values = [s[k] for s in swept if k in s]
        best[k] = sorted(values, key=lambda v, k=k: exactness(k, v))[0]
    for i, s in enumerate(swept):
        if all(s.get(k) == best[k] for k in keys):
            return i
    return None


def parse_overrides(overrides: Sequence[str]) -> dict[str, str]:
    """``["a.b=1", "+c=x"]`` -> ``{"a.b": "1", "c": "x"}`` (Hydra's ``+`` / ``~`` dropped)."""
    out = {}
    for o in overrides:
        key, _, value = o.partition("=")
        out[re.sub(r"^[+~]+", "", key)] = value
    return out


def paired(ref: Mapping[str, float], other: Mapping[str, float]) -> np.ndarray:
    """``other - ref`` over the query ids both hold, in sorted id order."""
    ids = sorted(set(ref) & set(other))
    return np.array([other[q] - ref[q] for q in ids], dtype=np.float64)


def compare_configs(
    reference: Mapping[str, float] | None,
    configs: Sequence[tuple[str, Mapping[str, float]]],
    *,
    margin: float,
    alpha: float = 0.05,
    references: Sequence[Mapping[str, float]] | None = None,
) -> list[ConfigCall]:
    """Each configuration's paired delta against the reference, Holm-adjusted across them
    (``references``, one per configuration, replaces ``reference``: ``sweep.reference=baseline``)."""
    tests = [
        student(paired(references[i] if references is not None else reference, values))
        for i, (_, values) in enumerate(configs)
    ]
    p = np.array([t.p_value for t in tests], dtype=np.float64)
    p_holm = holm(p) if len(p) else p
    out = []
    for (label, _), t, ph in zip(configs, tests, p_holm, strict=True):
        confidence = adjusted_confidence(alpha, t.p_value, float(ph))
        lo, hi = t.interval(confidence) if t.n >= 2 else (math.nan, math.nan)
        status = call(t.estimate, lo, hi, margin=margin, p_value=float(ph), alpha=alpha)
        out.append(
            ConfigCall(
                label=label,
                delta=float(t.estimate),
                ci_low=float(lo),
                ci_high=float(hi),
                confidence=float(confidence),
                p_value=float(t.p_value),
                p_holm=float(ph),
                call=status.value,
                n=t.n,
            )
        )
    return out


@dataclass(frozen=True)
class Pick:
    """The cheapest configuration no worse than the reference (``found``), else the closest one."""

    found: bool
    call: ConfigCall | None
    cost_key: str
    share: float  # the pick's cost / the reference's (NaN when not measured)
    text: str


def pick_cheapest(
    calls: Sequence[ConfigCall],
    reference_label: str,
    reference_costs: Mapping[str, float],
    *,
    cost_key: str = "index_bytes",
    metric: str = "primary metric",
) -> Pick:
    """The cheapest configuration (by ``cost_key``) whose call is better or no worse."""
    ok = [c for c in calls if Quality(c.call).shown_no_worse]
    ref_cost = reference_costs.get(cost_key, math.nan)

    def share(c: ConfigCall) -> float:  # of the reference's cost
        cost = c.costs.get(cost_key, math.inf)
        return cost / ref_cost if ref_cost and math.isfinite(ref_cost) else math.nan

    def describe(c: ConfigCall) -> str:
        saving = (
            f", {share(c):.0%} of the reference ({reference_label}) {cost_key}"
            if math.isfinite(share(c))
            else f" ({cost_key} not measured)"
        )
        return f"{c.label}: {c.delta:+.3f} [{c.ci_low:+.3f}, {c.ci_high:+.3f}] {metric}{saving}"

    if ok:
        best = min(ok, key=lambda c: (c.costs.get(cost_key, math.inf), -c.ci_low))
        return Pick(True, best, cost_key, share(best), describe(best))
    if not calls:
        return Pick(False, None, cost_key, math.nan, "no configuration besides the reference")
    closest = max(calls, key=lambda c: c.ci_low if math.isfinite(c.ci_low) else -math.inf)
    text = "no configuration is no worse than the reference ({}); the closest is {}"
    return Pick(
        False, closest, cost_key, share(closest), text.format(reference_label, describe(closest))
    )


def frontier(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated points ``(cost, quality)``: no other point costs no more and
    scores no less, with one of the two strictly.
    """
    out = []
    for i, (ci, qi) in enumerate(points):
        if not (math.isfinite(ci) and math.isfinite(qi)):
            continue
        dominated = any(
            (cj <= ci and qj >= qi and (cj < ci or qj > qi))
            for j, (cj, qj) in enumerate(points)
            if j != i and math.isfinite(cj) and math.isfinite(qj)
        )
        if not dominated:
            out.append(i)
    return out
