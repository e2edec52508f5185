"""The judged queries that would decide: a paired t-test's sample size at the observed effect.

When the primary call is inconclusive, or "no worse" but not "better", the verdict says how many
judged queries a decision needs: the number of pairs at which a two-sided paired t-test at
``alpha`` detects the observed mean difference with ``power`` (0.8), taking the observed standard
deviation of the per-query differences as the truth.  That is
``statsmodels.stats.power.TTestPower().solve_power(effect_size=|delta| / sd, alpha=alpha,
power=power, alternative="two-sided")``, rounded up.  It is a planning figure ("about N"): the
observed effect is itself uncertain.

>>> n = queries_needed(0.03, 0.12, alpha=0.05, power=0.8)
>>> n
128
>>> queries_needed(0.0, 0.12) is None  # no difference to detect
True
"""

from __future__ import annotations

import math
import warnings

#: No plan beyond this many queries is printed ("more than a million").
MAX_QUERIES = 1_000_000


def queries_needed(
    delta: float, sd: float, *, alpha: float = 0.05, power: float = 0.8
) -> int | None:
    """Judged queries in all for a two-sided paired t-test to detect ``delta`` (None: cannot).

    ``None`` when the difference is 0 or not finite, or the standard deviation is 0 or not
    finite; :data:`MAX_QUERIES` caps the answer.
    """
    if not (math.isfinite(delta) and math.isfinite(sd)) or delta == 0.0 or sd <= 0.0:
        return None
    from statsmodels.stats.power import TTestPower

    effect = abs(delta) / sd
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            n = TTestPower().solve_power(
                effect_size=effect, nobs=None, alpha=alpha, power=power, alternative="two-sided"
            )
        except (ValueError, RuntimeError, ZeroDivisionError):
            return MAX_QUERIES
    n = float(n[0] if hasattr(n, "__len__") else n)
    if not math.isfinite(n) or n > MAX_QUERIES:
        return MAX_QUERIES
    return max(2, math.ceil(n))
