"""The click-correlation differences the verdict tests: pooled and within-query, as paired tests.

The candidate-minus-baseline bootstrap replicates of a statistic (the same queries resampled for
every version) are a paired bootstrap of its difference.

>>> import numpy as np
>>> from evalkit.clicks.correlation import click_correlation
>>> rng = np.random.default_rng(0)
>>> q, rate = np.repeat(np.arange(40), 5), rng.random(200)
>>> base = click_correlation(rate + rng.normal(0, 0.5, 200), rate, q, n_boot=200)
>>> cand = click_correlation(rate + rng.normal(0, 0.1, 200), rate, q, n_boot=200)
>>> tests = click_tests(cand, base, "spearman")
>>> sorted(tests), tests["click_spearman"].p_value < 0.05
(['click_spearman', 'click_spearman_within'], True)
"""

from __future__ import annotations

from evalkit.clicks.correlation import ClickCorrelation
from evalkit.compare.intervals import DualTest, bootstrap

WITHIN = "spearman_within"


def click_tests(
    candidate: ClickCorrelation, baseline: ClickCorrelation, pooled: str = "spearman"
) -> dict[str, DualTest]:
    """``{click_<pooled>: test, click_spearman_within: test}`` of candidate minus baseline."""
    if candidate.plan != baseline.plan:
        raise ValueError(
            "click correlations are not paired: compute both on the same pairs, rates, query "
            "index, seed and n_boot"
        )
    out = {}
    for stat in (pooled, WITHIN):
        estimate = getattr(candidate, stat).value - getattr(baseline, stat).value
        replicates = candidate.replicates[stat] - baseline.replicates[stat]
        out[f"click_{stat}"] = bootstrap(estimate, replicates)
    return out
