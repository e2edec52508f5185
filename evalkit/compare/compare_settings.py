"""How versions are compared: the ``compare`` config section as a typed, frozen record.

>>> CompareSettings.from_mapping({"test": "fisher", "permutations": 500}).permutations
500
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evalkit.compare.significance import check_test
from evalkit.compare.worklist import DEFAULT_ORDER, ORDERS
from evalkit.errors import ConfigError


@dataclass(frozen=True)
class CompareSettings:
    """How versions are compared (the ``compare`` config section)."""

    test: str = "student"
    permutations: int = 1000
    seed: int = 42
    correction: str = "holm"
    bootstrap: int = 1000
    confidence: float = 0.95
    regressions: int = 10
    regression_top_n: int = 5
    score_thresholds: tuple[float, ...] = (0.3,)
    min_slice_queries: int = 10  # the smallest query slice that gets a quality call
    worklist_size: int = 200  # rows of judging_worklist.csv per comparison (0: none)
    worklist_order: str = DEFAULT_ORDER  # judging order of its rows: worklist.ORDERS

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> CompareSettings:
        """Read ``cfg.compare`` (unknown keys such as ``baseline_run_id`` belong to other layers).

        >>> CompareSettings.from_mapping({"test": "fisher", "permutations": 500}).test
        'fisher'
        """
        cfg = dict(cfg or {})
        d = cls()
        try:
            out = cls(
                test=str(cfg.get("test", d.test)),
                permutations=int(cfg.get("permutations", d.permutations)),
                seed=int(cfg.get("seed", d.seed)),
                correction=str(cfg.get("correction", d.correction)),
                bootstrap=int(cfg.get("bootstrap", d.bootstrap)),
                confidence=float(cfg.get("confidence", d.confidence)),
                regressions=int(cfg.get("regressions", d.regressions)),
                regression_top_n=int(cfg.get("regression_top_n", d.regression_top_n)),
                score_thresholds=tuple(
                    float(t) for t in (cfg.get("score_thresholds", d.score_thresholds) or ())
                ),
                min_slice_queries=int(cfg.get("min_slice_queries", d.min_slice_queries)),
                worklist_size=int(cfg.get("worklist_size", d.worklist_size)),
                worklist_order=str(cfg.get("worklist_order", d.worklist_order)),
            )
        except (TypeError, ValueError) as err:
            raise ConfigError(f"compare settings are malformed: {err}") from None
        check_test(out.test)
        if out.correction not in ("holm", "none"):
            raise ConfigError(f"compare.correction={out.correction!r} (expected holm or none)")
        if out.worklist_size < 0:
            raise ConfigError(
                f"compare.worklist_size={out.worklist_size} (expected >= 0; 0 = none)"
            )
        if out.worklist_order not in ORDERS:
            raise ConfigError(
                f"compare.worklist_order={out.worklist_order!r} (expected one of "
                f"{', '.join(ORDERS)})"
            )
        if out.permutations < 1 or out.bootstrap < 0 or out.regressions < 0:
            raise ConfigError(
                "compare.permutations must be >= 1 and compare.bootstrap / compare.regressions >= 0"
            )
        if out.min_slice_queries < 2:
            raise ConfigError(
                f"compare.min_slice_queries={out.min_slice_queries} (expected an integer >= 2: "
                "a paired interval needs two queries)"
            )
        if not 0.0 < out.confidence < 1.0:
            raise ConfigError(f"compare.confidence={out.confidence} (expected between 0 and 1)")
        return out
