"""The gates' settings (``conf/gates/*.yaml``): one frozen dataclass per gate, the schema of its
section.  An unknown key, a wrong type or a value out of range is a ``ConfigError`` naming it.

>>> GateConfig().primary_metric.margin
0.01
>>> GateConfig.from_mapping({"top_k_agreement": {"min": 1.5}})
Traceback (most recent call last):
...
evalkit.errors.ConfigError: gates.top_k_agreement.min=1.5 is out of range (expected a number >= 0 and <= 1: the smallest mean overlap that passes)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from evalkit.compare.status import Status
from evalkit.config_schema import plain, read_section, setting
from evalkit.errors import ConfigError
from evalkit.online.online_settings import OnlineGates

ON_FAIL = "the gate's status when it fails"
STATISTICS = ("spearman", "kendall", "pearson", "spearman_within")


@dataclass(frozen=True)
class PrimaryMetric:
    """``gates.primary_metric``: non-inferiority of the primary metric, tested alone at ``alpha``."""

    metric: str | None = setting(
        None, help="the metric the verdict is about; null = primary_metric"
    )
    margin: float = setting(0.01, ge=0, help="what B may lose and still be called no worse")
    alpha: float = setting(0.05, ge=0, le=1, help="level of the (1 - alpha) interval, alone")
    on_fail: Status = setting(Status.BLOCK, help="the status of a primary metric called worse")


@dataclass(frozen=True)
class SecondaryMetrics:
    """``gates.secondary_metrics``: the other metrics (Holm within the secondary family)."""

    on_worse: Status = setting(Status.WARN, help="the status of a secondary metric called worse")


@dataclass(frozen=True)
class ClickCorrelation:
    """``gates.click_correlation`` (``spearman_within`` is read as ``spearman``: the gate reads
    within-query Spearman anyway)."""

    statistic: str = setting(
        "spearman", choices=STATISTICS, help="the pooled statistic beside within-query Spearman"
    )
    margin: float = setting(0.02, ge=0, help="what B's click correlation may lose")
    on_worse: Status = setting(Status.WARN, help="the status of a click correlation called worse")

    def __post_init__(self) -> None:
        if self.statistic == "spearman_within":
            object.__setattr__(self, "statistic", "spearman")


@dataclass(frozen=True)
class TopKAgreement:
    """``gates.top_k_agreement``: mean overlap of the two versions' top ``k`` per query."""

    k: int = setting(3, ge=1, help="the top results compared per query")
    min: float = setting(0.92, ge=0, le=1, help="the smallest mean overlap that passes")
    on_fail: Status = setting(Status.WARN, help=ON_FAIL)


@dataclass(frozen=True)
class MeanCosineShift:
    """``gates.mean_cosine_shift``: ``|candidate - baseline|`` mean cosine of the pairs."""

    max_abs: float = setting(0.03, ge=0, help="the largest shift of the pairs' mean cosine")
    on_fail: Status = setting(Status.WARN, help=ON_FAIL)


@dataclass(frozen=True)
class LowScoreShare:
    """``gates.low_score_share``: rise of the share of pairs scoring below ``threshold``."""

    threshold: float = setting(0.3, ge=-1, help="a pair scoring below this is a low score")
    max_increase: float = setting(0.05, ge=0, help="the largest rise of the low-score share")
    on_fail: Status = setting(Status.WARN, help=ON_FAIL)


@dataclass(frozen=True)
class Unjudged:
    """``gates.unjudged``: rise of unjudged@k (``gates.drift.unjudged_k``)."""

    max_increase: float = setting(0.10, ge=0, le=1, help="the largest rise of unjudged@k")
    on_fail: Status = setting(Status.WARN, help=ON_FAIL)


@dataclass(frozen=True)
class Judgments:
    """``gates.judgments``: when the primary call must agree with the judged-only call."""

    max_unjudged: float = setting(
        0.5, ge=0, le=1, help="above this unjudged share the judged-only call must agree"
    )
    on_sparse: Status = setting(Status.WARN, help="the status of the coverage line when sparse")


@dataclass(frozen=True)
class VectorContract:
    """``gates.vector_contract``: unit-length vectors stay unit-length."""

    norm_tolerance: float = setting(0.01, ge=0, help="the largest |norm - 1| of a unit vector")
    on_fail: Status = setting(Status.BLOCK, help=ON_FAIL)


@dataclass(frozen=True)
class EndpointChecks:
    """``gates.endpoint_checks``: results of the endpoint checks (``run_checks=true``)."""

    on_fail: Status = setting(Status.BLOCK, help="the status when an endpoint check FAILs")


@dataclass(frozen=True)
class LatencyP95:
    """``gates.latency_p95``: the latency probe's p95, candidate / baseline - 1."""

    max_increase: float = setting(0.20, ge=0, help="the largest rise of the probe's p95")
    on_fail: Status = setting(Status.BLOCK, help=ON_FAIL)


@dataclass(frozen=True)
class Drift:
    """``gates.drift``: what is reported beside the gates (RBO persistences, unjudged@k)."""

    rbo_p: tuple[float, ...] = setting(
        (0.9, 0.5), gt=0, lt=1, help="rank-biased overlap persistences reported"
    )
    unjudged_k: int = setting(10, ge=1, help="the depth of unjudged@k per version")


@dataclass(frozen=True)
class FrequencyBands:
    """``gates.slices.frequency_bands``: cumulative traffic share where head and torso end."""

    head: float = setting(0.5, ge=0, le=1, help="traffic share of the queries before the head ends")
    torso: float = setting(0.8, ge=0, le=1, help="traffic share where the torso ends")

    def __post_init__(self) -> None:
        if not 0.0 < self.head <= self.torso <= 1.0:
            raise ConfigError(
                f"gates.slices.frequency_bands head={self.head}, torso={self.torso} "
                "(expected 0 < head <= torso <= 1)"
            )


@dataclass(frozen=True)
class SliceConfig:
    """``gates.slices``: which query slices get every metric and gate (:mod:`.slices`)."""

    enabled: bool = setting(True, help="call every metric and gate per query slice")
    columns: tuple[str, ...] | None = setting(
        None, help="auto = language + every categorical query column; or a list of names"
    )
    max_levels: int = setting(20, ge=1, help="a column with more values is not categorical")
    frequency_bands: FrequencyBands = setting(factory=FrequencyBands, help="head / torso ends")
    length_bands: tuple[int, ...] = setting(
        (1, 3), ge=1, help="whitespace-token band ends: [1, 3] = 1 | 2-3 | 4+"
    )
    affect_verdict: bool = setting(False, help="a slice called worse counts for the verdict")

    def __post_init__(self) -> None:
        if self.columns == ("auto",):
            object.__setattr__(self, "columns", None)
        lengths = list(self.length_bands)
        if not lengths or lengths != sorted(set(lengths)):
            raise ConfigError(
                f"gates.slices.length_bands={lengths} (expected increasing token counts >= 1, "
                "e.g. [1, 3] for bands 1 | 2-3 | 4+)"
            )


@dataclass(frozen=True)
class GateConfig:
    """The ``gates`` config group, nested per gate with the YAML's own names (a gate's result is
    named as its section, except the ``_increase`` gates)."""

    primary_metric: PrimaryMetric = setting(
        factory=lambda: PrimaryMetric("ndcg@10"), help="the primary metric's gate"
    )
    on_inconclusive: Status = setting(
        Status.INCONCLUSIVE,
        choices=(Status.INCONCLUSIVE, Status.BLOCK),
        help="what an inconclusive primary metric makes the verdict",
    )
    secondary_metrics: SecondaryMetrics = setting(factory=SecondaryMetrics, help="other metrics")
    click_correlation: ClickCorrelation = setting(factory=ClickCorrelation, help="click agreement")
    top_k_agreement: TopKAgreement = setting(factory=TopKAgreement, help="top-k overlap")
    mean_cosine_shift: MeanCosineShift = setting(factory=MeanCosineShift, help="score shift")
    low_score_share: LowScoreShare = setting(factory=LowScoreShare, help="low scores' share")
    unjudged: Unjudged = setting(factory=Unjudged, help="rise of unjudged@k")
    judgments: Judgments = setting(factory=Judgments, help="judgment coverage")
    vector_contract: VectorContract = setting(factory=VectorContract, help="unit-length vectors")
    endpoint_checks: EndpointChecks = setting(factory=EndpointChecks, help="endpoint checks")
    latency_p95: LatencyP95 = setting(factory=LatencyP95, help="the latency probe's p95")
    on_not_measured: Status = setting(Status.WARN, help="a gate whose input was not measured")
    drift: Drift = setting(factory=Drift, help="reported beside the gates")
    slices: SliceConfig = setting(factory=SliceConfig, help="query slices")
    online: OnlineGates = setting(factory=OnlineGates, help="the canary's gates (task=online)")

    @property
    def metric(self) -> str:
        return self.primary_metric.metric or "ndcg@10"

    @classmethod
    def from_mapping(
        cls, cfg: Mapping[str, Any] | None, primary_metric: str | None = None
    ) -> GateConfig:
        """Build from the ``gates`` config group; ``primary_metric`` fills ``metric: null``;
        ``primary_metric.max_drop`` is read as the old name of ``margin``."""
        cfg = plain(cfg, "gates")
        pri = plain(cfg.get("primary_metric"), "gates.primary_metric")
        if "max_drop" in pri:  # the old name of margin
            if "margin" in pri and pri["margin"] != pri["max_drop"]:
                raise ConfigError(
                    "gates.metric has both margin and max_drop (its old name): keep margin"
                )
            pri["margin"] = pri.pop("max_drop")
        slices = cfg.get("slices")
        if isinstance(slices, Mapping) and "min_queries" in slices:
            raise ConfigError(
                f"gates.slices.min_queries={slices['min_queries']!r}: the smallest slice that "
                "gets a call is now set by compare.min_slice_queries (one key); move the value "
                "there"
            )
        out = read_section(cls, {**cfg, "primary_metric": pri}, "gates")
        metric = out.primary_metric.metric or primary_metric or "ndcg@10"
        return replace(out, primary_metric=replace(out.primary_metric, metric=str(metric)))
