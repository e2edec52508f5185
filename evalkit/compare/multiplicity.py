"""Which p-values are corrected, and how: the primary metric alone at the full ``alpha``, then the
secondary family (other metrics, click differences) Holm-corrected among themselves, each with
the interval that agrees with its p (docs/explanation/statistics.md).

>>> from evalkit.compare.intervals import student
>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> tests = {m: student(rng.normal(mu, 0.1, 40)) for m, mu in
...          [("ndcg@10", 0.03), ("recall@100", 0.05), ("mrr@10", 0.0)]}
>>> fam = fixed_sequence(tests, primary="ndcg@10", alpha=0.05)
>>> fam["ndcg@10"].p_adjusted == tests["ndcg@10"].p_value, fam["ndcg@10"].family
(True, 'primary')
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from evalkit.compare.intervals import DualTest, adjusted_confidence
from evalkit.errors import ConfigError

CORRECTIONS = ("holm", "none")


@dataclass(frozen=True)
class Adjusted:
    """One hypothesis after the correction: raw and adjusted p, and the agreeing interval."""

    name: str
    family: str  # "primary" | "secondary"
    estimate: float
    p_value: float
    p_adjusted: float
    confidence: float  # the level of the interval below (1 - alpha when unadjusted)
    ci_low: float
    ci_high: float
    procedure: str
    n: int


def holm(p_values) -> np.ndarray:
    """Holm step-down adjusted p-values (``statsmodels`` ``multipletests``); NaN stay NaN."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        with _no_full_collection():
            out[ok] = multipletests(p[ok], method="holm")[1]
    return out


@contextlib.contextmanager
def _no_full_collection() -> Iterator[None]:
    """statsmodels' Holm branch ends with a full ``gc.collect()`` that frees nothing the result
    needs and costs a verdict dozens of collections (benchmarks/README.md): a no-op meanwhile."""
    collect = gc.collect
    gc.collect = lambda generation=2: 0  # type: ignore[assignment]
    try:
        yield
    finally:
        gc.collect = collect  # type: ignore[assignment]


def correct(p_values, correction: str) -> np.ndarray:
    """The configured correction of one family: ``holm`` or ``none``."""
    if correction == "holm":
        return holm(p_values)
    if correction == "none":
        return np.asarray(p_values, dtype=np.float64).copy()
    raise ConfigError(
        f"compare.correction={correction!r} is unknown (expected one of {', '.join(CORRECTIONS)})"
    )


def _adjusted(name: str, family: str, t: DualTest, p_adj: float, alpha: float) -> Adjusted:
    confidence = adjusted_confidence(alpha, t.p_value, p_adj)
    low, high = t.interval(confidence)
    return Adjusted(
        name, family, t.estimate, t.p_value, p_adj, confidence, low, high, t.procedure, t.n
    )


def fixed_sequence(
    tests: Mapping[str, DualTest],
    *,
    primary: str | None,
    alpha: float = 0.05,
    correction: str = "holm",
) -> dict[str, Adjusted]:
    """``{name: Adjusted}``: the primary at full ``alpha``, the others corrected together."""
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha={alpha} (expected between 0 and 1)")
    if primary is not None and primary not in tests:
        raise ConfigError(f"primary {primary!r} is not among the tested names ({', '.join(tests)})")
    out: dict[str, Adjusted] = {}
    if primary is not None:
        t = tests[primary]
        out[primary] = _adjusted(primary, "primary", t, t.p_value, alpha)
    rest = [n for n in tests if n != primary]
    family = "secondary" if primary is not None else "all"
    adjusted = correct([tests[n].p_value for n in rest], correction) if rest else []
    for name, p_adj in zip(rest, adjusted):
        out[name] = _adjusted(name, family, tests[name], float(p_adj), alpha)
    return {n: out[n] for n in tests}
