"""How versions are compared: the ``compare`` config section as a typed, frozen record.

>>> CompareSettings.from_mapping({"test": "fisher", "permutations": 500}).permutations
500
>>> CompareSettings.from_mapping({"correction": "bonferroni"})
Traceback (most recent call last):
...
evalkit.errors.ConfigError: compare.correction='bonferroni' is invalid (expected one of holm, none: Holm across the secondary family, or none)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evalkit.compare.significance import TESTS
from evalkit.compare.worklist import DEFAULT_ORDER, ORDERS
from evalkit.config_schema import read_section, setting

#: Keys of the ``compare`` section read by :mod:`evalkit.run.run_settings`.
OTHER_KEYS = ("reindex", "reindex_fraction", "reindex_queries", "baseline_run_id")


@dataclass(frozen=True)
class CompareSettings:
    """How versions are compared (the ``compare`` config section)."""

    test: str = setting(
        "student", choices=TESTS, help="student (paired t-test) | fisher (randomization)"
    )
    permutations: int = setting(1000, ge=1, help="randomizations of the fisher test")
    seed: int = setting(42, help="seed of the randomizations, bootstraps and samples")
    correction: str = setting(
        "holm", choices=("holm", "none"), help="Holm across the secondary family, or none"
    )
    bootstrap: int = setting(1000, ge=0, help="bootstrap replicates of the intervals")
    confidence: float = setting(0.95, gt=0, lt=1, help="confidence of the reported intervals")
    regressions: int = setting(10, ge=0, help="the worst queries listed per comparison")
    regression_top_n: int = setting(5, ge=0, help="results shown per listed query")
    score_thresholds: tuple[float, ...] = setting(
        (0.3,), help="similarity cut-offs mapped onto B's score scale; [] = none"
    )
    min_slice_queries: int = setting(
        10, ge=2, help="the smallest query slice that gets a quality call"
    )
    worklist_size: int = setting(200, ge=0, help="rows of judging_worklist.csv (0: none)")
    worklist_order: str = setting(
        DEFAULT_ORDER, choices=ORDERS, help="the judging order of the worklist's rows"
    )

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> CompareSettings:
        """Read ``cfg.compare`` (:data:`OTHER_KEYS` are accepted, read elsewhere)."""
        return read_section(cls, cfg, "compare", ignore=OTHER_KEYS)
