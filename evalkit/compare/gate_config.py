"""The gates' settings (``conf/gates/*.yaml``): one frozen dataclass per gate, read and checked
by :meth:`GateConfig.from_mapping` (an unknown key, a wrong type or a value out of range is one
:class:`~evalkit.errors.ConfigError` naming ``gates.<key>``).

>>> GateConfig().primary_metric.margin
0.01
>>> GateConfig.from_mapping({"primary_metric": {"margin": 0.02}}).primary_metric.margin
0.02
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from evalkit.compare.status import Status
from evalkit.errors import ConfigError
from evalkit.plain import plain_mapping

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.online.online_settings import OnlineGates


def _online_gates(cfg: Mapping[str, Any] | None) -> OnlineGates:
    """``gates.online`` read by :class:`evalkit.online.online_settings.OnlineGates`."""
    from evalkit.online.online_settings import OnlineGates

    return OnlineGates.from_mapping(cfg)


def _status(value: Any, key: str) -> Status:
    try:
        return Status(str(value).upper())
    except ValueError:
        raise ConfigError(
            f"gates.{key}={value!r} is not a gate status (expected PASS, WARN or BLOCK)"
        ) from None


def _on_inconclusive(value: Any) -> Status:
    text = str(value).lower()
    if text not in ("inconclusive", "block"):
        raise ConfigError(
            f"gates.on_inconclusive={value!r} (expected inconclusive or block: what an "
            "inconclusive primary metric makes the verdict)"
        )
    return Status.INCONCLUSIVE if text == "inconclusive" else Status.BLOCK


def _knob(default: Any, *, lo: float = 0.0, hi: float | None = None) -> Any:
    """A numeric gate setting with its allowed range (checked by :func:`_read_section`)."""
    return field(default=default, metadata={"lo": lo, "hi": hi})


@dataclass(frozen=True)
class PrimaryMetric:
    """``gates.metric``: non-inferiority of the primary metric, tested alone at ``alpha``.

    ``metric`` None means the top-level ``primary_metric``; ``max_drop`` is read as the old name
    of ``margin``.
    """

    metric: str | None = None
    margin: float = _knob(0.01)
    alpha: float = _knob(0.05, hi=1.0)
    on_fail: Status = Status.BLOCK


@dataclass(frozen=True)
class SecondaryMetrics:
    """``gates.secondary_metrics``: the other metrics (Holm within the secondary family)."""

    on_worse: Status = Status.WARN


@dataclass(frozen=True)
class ClickCorrelation:
    """``gates.click_correlation``: the pooled ``statistic`` and within-query Spearman."""

    statistic: str = "spearman"  # spearman | kendall | pearson (spearman_within: read anyway)
    margin: float = _knob(0.02)
    on_worse: Status = Status.WARN


@dataclass(frozen=True)
class TopKAgreement:
    """``gates.top_k_agreement``: mean overlap of the two versions' top ``k`` per query."""

    k: int = _knob(3, lo=1)
    min: float = _knob(0.92, hi=1.0)
    on_fail: Status = Status.WARN


@dataclass(frozen=True)
class MeanCosineShift:
    """``gates.mean_cosine_shift``: ``|candidate - baseline|`` mean cosine of the pairs."""

    max_abs: float = _knob(0.03)
    on_fail: Status = Status.WARN


@dataclass(frozen=True)
class LowScoreShare:
    """``gates.low_score_share``: rise of the share of pairs scoring below ``threshold``."""

    threshold: float = _knob(0.3, lo=-1.0)
    max_increase: float = _knob(0.05)
    on_fail: Status = Status.WARN


@dataclass(frozen=True)
class Unjudged:
    """``gates.unjudged``: rise of unjudged@k (``gates.drift.unjudged_k``)."""

    max_increase: float = _knob(0.10, hi=1.0)
    on_fail: Status = Status.WARN


@dataclass(frozen=True)
class Judgments:
    """``gates.judgments``: the unjudged share of the primary metric's top k above which the
    primary call must agree with the judged-only call (:mod:`evalkit.compare.coverage`)."""

    max_unjudged: float = _knob(0.5, hi=1.0)
    on_sparse: Status = Status.WARN


@dataclass(frozen=True)
class VectorContract:
    """``gates.vector_contract``: unit-length vectors stay unit-length."""

    norm_tolerance: float = _knob(0.01)
    on_fail: Status = Status.BLOCK


@dataclass(frozen=True)
class EndpointChecks:
    """``gates.endpoint_checks``: results of the endpoint checks (``run_checks=true``)."""

    on_fail: Status = Status.BLOCK


@dataclass(frozen=True)
class LatencyP95:
    """``gates.latency_p95``: the latency probe's p95, candidate / baseline - 1."""

    max_increase: float = _knob(0.20)
    on_fail: Status = Status.BLOCK


@dataclass(frozen=True)
class Drift:
    """``gates.drift``: what is reported beside the gates (RBO persistences, unjudged@k)."""

    rbo_p: tuple[float, ...] = (0.9, 0.5)
    unjudged_k: int = _knob(10, lo=1)


@dataclass(frozen=True)
class FrequencyBands:
    """``gates.slices.frequency_bands``: cumulative traffic share where head and torso end."""

    head: float = _knob(0.5, hi=1.0)
    torso: float = _knob(0.8, hi=1.0)


@dataclass(frozen=True)
class SliceConfig:
    """``gates.slices``: which query slices get every metric and gate (:mod:`.slices`)."""

    enabled: bool = True
    columns: tuple[str, ...] | None = None  # None = language + every categorical attribute
    max_levels: int = _knob(20, lo=1)
    frequency_bands: FrequencyBands = field(default_factory=FrequencyBands)
    length_bands: tuple[int, ...] = (1, 3)
    affect_verdict: bool = False


#: The sections of ``conf/gates/*.yaml``, each read into its own dataclass (same names).
SECTIONS: dict[str, type] = {
    "primary_metric": PrimaryMetric,
    "secondary_metrics": SecondaryMetrics,
    "click_correlation": ClickCorrelation,
    "top_k_agreement": TopKAgreement,
    "mean_cosine_shift": MeanCosineShift,
    "low_score_share": LowScoreShare,
    "unjudged": Unjudged,
    "judgments": Judgments,
    "vector_contract": VectorContract,
    "endpoint_checks": EndpointChecks,
    "latency_p95": LatencyP95,
    "drift": Drift,
}


@dataclass(frozen=True)
class GateConfig:
    """The ``gates`` config group, nested per gate with the YAML's own names.

    ``cfg.low_score_share.threshold`` is ``gates.low_score_share.threshold``; a gate's result is
    named as its section (``top_k_agreement``, ...), except the ``_increase`` gates, whose
    names say what is measured (``low_score_share_increase``, ``unjudged_increase``,
    ``latency_p95_increase``).  :meth:`from_mapping` reads ``conf/gates/*.yaml``.
    """

    primary_metric: PrimaryMetric = field(default_factory=lambda: PrimaryMetric("ndcg@10"))
    on_inconclusive: Status = Status.INCONCLUSIVE
    secondary_metrics: SecondaryMetrics = field(default_factory=SecondaryMetrics)
    click_correlation: ClickCorrelation = field(default_factory=ClickCorrelation)
    top_k_agreement: TopKAgreement = field(default_factory=TopKAgreement)
    mean_cosine_shift: MeanCosineShift = field(default_factory=MeanCosineShift)
    low_score_share: LowScoreShare = field(default_factory=LowScoreShare)
    unjudged: Unjudged = field(default_factory=Unjudged)
    judgments: Judgments = field(default_factory=Judgments)
    vector_contract: VectorContract = field(default_factory=VectorContract)
    endpoint_checks: EndpointChecks = field(default_factory=EndpointChecks)
    latency_p95: LatencyP95 = field(default_factory=LatencyP95)
    on_not_measured: Status = Status.WARN
    drift: Drift = field(default_factory=Drift)
    slices: SliceConfig = field(default_factory=SliceConfig)
    #: ``gates.online``: the canary's gates (``evalkit task=online``)
    online: OnlineGates = field(default_factory=lambda: _online_gates(None))

    @property
    def metric(self) -> str:
        """The primary metric's name (``ndcg@10``)."""
        return self.primary_metric.metric or "ndcg@10"

    @classmethod
    def from_mapping(
        cls, cfg: Mapping[str, Any] | None, primary_metric: str | None = None
    ) -> GateConfig:
        """Build from the ``gates`` config group; ``primary_metric`` fills ``metric: null``.

        >>> g = GateConfig.from_mapping({"top_k_agreement": {"k": 5, "min": 0.8}})
        >>> g.top_k_agreement.k, g.top_k_agreement.min, g.primary_metric.margin
        (5, 0.8, 0.01)
        """
        cfg = _plain(cfg or {})
        known = {*SECTIONS, "on_not_measured", "on_inconclusive", "slices", "online"}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ConfigError(
                f"gates has unknown keys {', '.join(unknown)} (expected {', '.join(sorted(known))})"
            )
        pri = dict(cfg.get("primary_metric") or {})
        if "max_drop" in pri:  # the old name of margin
            if "margin" in pri and pri["margin"] != pri["max_drop"]:
                raise ConfigError(
                    "gates.metric has both margin and max_drop (its old name): keep margin"
                )
            pri["margin"] = pri.pop("max_drop")
        sections = {
            name: _read_section(kind, {**cfg, "primary_metric": pri}.get(name), name)
            for name, kind in SECTIONS.items()
        }
        sections["primary_metric"] = replace(
            sections["primary_metric"],
            metric=str(sections["primary_metric"].metric or primary_metric or "ndcg@10"),
        )
        statistic = sections["click_correlation"].statistic
        if statistic not in ("spearman", "kendall", "pearson", "spearman_within"):
            raise ConfigError(
                f"gates.click_correlation.statistic={statistic!r} (expected spearman, kendall "
                "or pearson: the pooled statistic read beside spearman_within)"
            )
        if statistic == "spearman_within":  # the gate reads within-query Spearman anyway
            sections["click_correlation"] = replace(
                sections["click_correlation"], statistic="spearman"
            )
        for p in sections["drift"].rbo_p:
            if not 0.0 < p < 1.0:
                raise ConfigError(
                    f"gates.drift.rbo_p contains {p} (expected values between 0 and 1)"
                )
        return cls(
            **sections,
            on_not_measured=_status(cfg.get("on_not_measured", "WARN"), "on_not_measured"),
            on_inconclusive=_on_inconclusive(cfg.get("on_inconclusive", "inconclusive")),
            slices=_slice_config(cfg.get("slices")),
            online=_online_gates(cfg.get("online")),
        )


def _read_section(kind: type, sec: Any, where: str) -> Any:
    """One ``gates.<where>`` mapping read into ``kind`` (unknown keys and bad values refused)."""
    sec = _section({where: sec}, where, {f.name for f in fields(kind)})
    values: dict[str, Any] = {}
    for f in fields(kind):
        if f.name not in sec:
            continue
        value, default = sec[f.name], getattr(kind(), f.name)
        key = f"{where}.{f.name}"
        if isinstance(default, Status):
            values[f.name] = _status(value, key)
        elif isinstance(default, bool):
            values[f.name] = bool(value)
        elif isinstance(default, int | float):
            x = _num(sec, f.name, default, where, f.metadata.get("lo", 0.0), f.metadata.get("hi"))
            values[f.name] = int(x) if isinstance(default, int) else x
        elif isinstance(default, tuple):
            try:
                values[f.name] = tuple(float(v) for v in value)
            except (TypeError, ValueError):
                raise ConfigError(f"gates.{key}={value!r} (expected a list of numbers)") from None
        else:
            values[f.name] = None if value is None else str(value)
    return kind(**values)


def _plain(cfg: Any) -> dict[str, Any]:
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"gates must be a mapping, got {type(cfg).__name__}")
    return plain_mapping(cfg, "gates")


def _section(cfg: Mapping[str, Any], name: str, keys: set[str]) -> dict[str, Any]:
    sec = cfg.get(name) or {}
    if not isinstance(sec, Mapping):
        raise ConfigError(f"gates.{name} must be a mapping (got {sec!r})")
    unknown = sorted(set(sec) - keys)
    if unknown:
        raise ConfigError(
            f"gates.{name} has unknown keys {', '.join(unknown)} (expected {', '.join(sorted(keys))})"
        )
    return dict(sec)


def _num(
    sec: Mapping[str, Any],
    key: str,
    default: float,
    where: str,
    lo: float = 0.0,
    hi: float | None = None,
) -> float:
    value = sec.get(key, default)
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"gates.{where}.{key}={value!r} is not a number") from None
    if math.isnan(x) or x < lo or (hi is not None and x > hi):
        bound = f">= {lo}" + (f" and <= {hi}" if hi is not None else "")
        raise ConfigError(f"gates.{where}.{key}={value!r} is out of range (expected {bound})")
    return x


def _slice_config(sec: Any) -> SliceConfig:
    if sec is None:
        return SliceConfig()
    if isinstance(sec, Mapping) and "min_queries" in sec:
        raise ConfigError(
            f"gates.slices.min_queries={sec['min_queries']!r}: the smallest slice that gets a "
            "call is now set by compare.min_slice_queries (one key); move the value there"
        )
    keys = {f.name for f in fields(SliceConfig)}
    sec = _section({"slices": sec}, "slices", keys)
    d = SliceConfig()
    bands = _read_section(FrequencyBands, sec.get("frequency_bands"), "slices.frequency_bands")
    if not 0.0 < bands.head <= bands.torso <= 1.0:
        raise ConfigError(
            f"gates.slices.frequency_bands head={bands.head}, torso={bands.torso} "
            "(expected 0 < head <= torso <= 1)"
        )
    lengths = tuple(int(x) for x in sec.get("length_bands", d.length_bands))
    if not lengths or any(x < 1 for x in lengths) or list(lengths) != sorted(set(lengths)):
        raise ConfigError(
            f"gates.slices.length_bands={list(lengths)} (expected increasing token counts >= 1, "
            "e.g. [1, 3] for bands 1 | 2-3 | 4+)"
        )
    columns = sec.get("columns", "auto")
    if columns in (None, "auto"):
        cols = None
    elif isinstance(columns, str):
        cols = (columns,)
    else:
        cols = tuple(str(c) for c in columns)
    return SliceConfig(
        enabled=bool(sec.get("enabled", d.enabled)),
        columns=cols,
        max_levels=int(_num(sec, "max_levels", d.max_levels, "slices", lo=1)),
        frequency_bands=bands,
        length_bands=lengths,
        affect_verdict=bool(sec.get("affect_verdict", d.affect_verdict)),
    )
