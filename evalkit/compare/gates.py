"""Release gates: each turns one comparison number into PASS / WARN / BLOCK with a one-line reason.

Gates answer three questions apart (:data:`GROUPS`); the verdict is the worst gate.  Defaults
are ``conf/gates/default.yaml`` (quality decides, behaviour change is a follow-up);
``conf/gates/upgrade.yaml`` blocks on the shadow thresholds too (the same model's next version).

=============================  ==========  ==============================================  =======
gate                           group       passes when                                     default
=============================  ==========  ==============================================  =======
``primary_metric``             quality     CI of the paired difference above -margin       BLOCK
                                           (``better`` / ``no_worse``, :mod:`.quality`)
``secondary_metrics``          quality     every other metric no worse                     WARN
``click_correlation``          quality     delta click Spearman (within) CI above -0.02    WARN
``judgment_coverage``          quality     unjudged@10 of each version ``<= 0.5``          WARN
                                           (above it the primary call must agree with the
                                           judged-only call, :mod:`.coverage`)
``top_k_agreement``            behaviour   mean top-3 overlap ``>= 0.92``                  WARN
``mean_cosine_shift``          behaviour   ``|candidate - baseline| <= 0.03``              WARN
``low_score_share_increase``   behaviour   share below 0.3 rises by ``<= 0.05``            WARN
``unjudged_increase``          behaviour   unjudged@10 rises by ``<= 0.10``                WARN
``vector_contract``            contract    unit-length vectors stay unit-length            BLOCK
``endpoint_checks``            contract    no endpoint check FAILed                        BLOCK
``latency_p95_increase``       contract    p95 ratio - 1 ``<= 0.20`` (probe, CI)            BLOCK
=============================  ==========  ==============================================  =======

A gate whose input was not measured (no pair similarities; no rankings; no endpoint checks run)
yields ``on_not_measured`` (WARN by default), never PASS.  A primary metric whose call is
inconclusive yields ``on_inconclusive`` (INCONCLUSIVE by default, or BLOCK).  Exit codes
(documented for CI): 0 PASS or WARN, 3 BLOCK, 4 INCONCLUSIVE, 1 error (any evalkit error: bad
data, config, endpoint, fingerprint mismatch).

>>> cfg = GateConfig()
>>> g = gate_top_k_agreement(cfg, agreement=0.85, n_queries=40)
>>> g.name, g.status, g.threshold
('top_k_agreement', <Status.WARN: 'WARN'>, '>= 0.92')
>>> exit_code(worst([Status.PASS, Status.WARN])), exit_code(Status.BLOCK)
(0, 3)
>>> worst([Status.WARN, Status.INCONCLUSIVE]), exit_code(Status.INCONCLUSIVE)
(<Status.INCONCLUSIVE: 'INCONCLUSIVE'>, 4)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from evalkit.compare.quality import STATUS_TEXT, Quality, QualityCall
from evalkit.errors import ConfigError, DataError
from evalkit.plain import plain_mapping

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.compare.coverage import Coverage
    from evalkit.online.settings import OnlineGates


def _online_gates(cfg: Mapping[str, Any] | None) -> OnlineGates:
    """``gates.online`` read by :class:`evalkit.online.settings.OnlineGates`."""
    from evalkit.online.settings import OnlineGates

    return OnlineGates.from_mapping(cfg)


class Status(StrEnum):
    """A gate's (and the verdict's) outcome, ordered PASS < WARN < INCONCLUSIVE < BLOCK.

    INCONCLUSIVE: nothing blocks, but the primary metric's call is inconclusive (the data cannot
    show that B is no worse): not a loss, not yet a release either.
    """

    PASS = "PASS"
    WARN = "WARN"
    INCONCLUSIVE = "INCONCLUSIVE"
    BLOCK = "BLOCK"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @property
    def code(self) -> float:
        """The ``verdict_code`` metric: 0 PASS, 1 WARN, 1.5 INCONCLUSIVE, 2 BLOCK."""
        return _CODE[self]


_SEVERITY = {Status.PASS: 0, Status.WARN: 1, Status.INCONCLUSIVE: 2, Status.BLOCK: 3}
_CODE = {Status.PASS: 0.0, Status.WARN: 1.0, Status.INCONCLUSIVE: 1.5, Status.BLOCK: 2.0}

#: Process exit code per verdict; any evalkit error exits with :data:`EXIT_ERROR`.
EXIT_CODES: dict[Status, int] = {
    Status.PASS: 0,
    Status.WARN: 0,
    Status.BLOCK: 3,
    Status.INCONCLUSIVE: 4,
}
EXIT_ERROR = 1

CHECK_STATUSES = ("PASS", "WARN", "FAIL")

#: The three questions every gate answers to (see :func:`group_of`): quality can block,
#: behaviour change is a follow-up (WARN) in the default preset, contract and cost can block.
GROUPS = {
    "primary_metric": "quality",
    "secondary_metrics": "quality",
    "top_k_agreement": "behaviour",
    "click_correlation": "quality",
    "judgment_coverage": "quality",
    "mean_cosine_shift": "behaviour",
    "low_score_share_increase": "behaviour",
    "unjudged_increase": "behaviour",
    "latency_p95_increase": "contract",
    "endpoint_checks": "contract",
    "vector_contract": "contract",
}


#: What to do when a gate does not pass and its function gave no specific action.
FOLLOW_UPS = {
    "agreement": "roll out gradually (shadow traffic, interleaving or an A/B test): users will "
    "see different top results; tell the teams that curate or monitor them",
    "mean_cosine_shift": "check vector normalisation and re-set every downstream score "
    "threshold (see the actions)",
    "low_score_share_increase": "look for a degradation in query understanding: read the "
    "slices and the worst regressions",
    "judgment_coverage": "judge judging_worklist.csv (the unjudged results that move the delta "
    "most), then re-run",
    "latency_p95_increase": "size the serving fleet for B's latency before switching",
    "endpoint_checks": "fix the endpoint or pin clients around the failed checks (checks.json)",
}


#: What to do when a gate could not be measured.
NOT_MEASURED = {
    "endpoint_checks": "run the endpoint checks before switching: evalkit task=check "
    "models=[<candidate>] (or run_checks=true)",
    "latency_p95_increase": "measure latency on the serving endpoints before switching "
    "(latency.probe)",
    "agreement": "keep rankings for both versions (a baseline from MLflow needs its run file)",
    "mean_cosine_shift": "keep pair similarities for both versions (pairs.npz)",
    "low_score_share_increase": "keep pair similarities for both versions (pairs.npz)",
    "vector_contract": "embed the candidate in this run to measure its vector norms",
    "judgment_coverage": "keep rankings for both versions and judgments to measure coverage",
}


def annotate(g: GateResult) -> GateResult:
    """Fill a gate's ``group`` and, when it does not pass, its default ``action``.

    >>> annotate(GateResult("top_k_agreement", Status.WARN, 0.4, ">= 0.92", "")).group
    'behaviour'
    """
    key = "agreement" if g.name.endswith("_agreement") else g.name
    if g.status != Status.PASS and not g.measured and not g.action:
        return replace(
            g,
            group=g.group or group_of(g.name),
            action=NOT_MEASURED.get(key, "measure it before switching (see why)"),
        )
    action = g.action or ("" if g.status == Status.PASS else FOLLOW_UPS.get(key, ""))
    return replace(g, group=g.group or group_of(g.name), action=action)


def group_of(gate: str) -> str:
    """``quality``, ``behaviour`` or ``contract`` for a gate name.

    >>> group_of("top_k_agreement"), group_of("primary_metric"), group_of("endpoint_checks")
    ('behaviour', 'quality', 'contract')
    """
    if gate.startswith("top") and gate.endswith("_agreement"):
        return "behaviour"
    return GROUPS.get(gate, "contract")


def exit_code(status: Status | str) -> int:
    """0 for PASS / WARN, 3 for BLOCK, 4 for INCONCLUSIVE."""
    return EXIT_CODES[Status(status)]


def worst(statuses: Iterable[Status | str]) -> Status:
    """The most severe status (PASS if there are none)."""
    return max((Status(s) for s in statuses), key=lambda s: s.severity, default=Status.PASS)


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


@dataclass(frozen=True)
class GateResult:
    """One gate's outcome: observed value, threshold and a one-line reason."""

    name: str
    status: Status
    observed: float | None
    threshold: str
    reason: str
    measured: bool = True
    group: str = ""  # quality | behaviour | contract (see GROUPS)
    action: str = ""  # what to do when the gate does not pass

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["status"] = str(self.status)
        if isinstance(self.observed, float) and not math.isfinite(self.observed):
            out["observed"] = None
        return out

    def item(self) -> dict[str, Any]:
        """The checklist entry: ``name, status, group, observed, expected, why, what_to_do``."""
        observed = self.observed
        if isinstance(observed, float) and not math.isfinite(observed):
            observed = None
        return {
            "name": self.name,
            "status": str(self.status),
            "group": self.group or group_of(self.name),
            "observed": observed,
            "expected": self.threshold,
            "why": self.reason,
            "what_to_do": self.action,
        }


def _not_measured(cfg: GateConfig, name: str, threshold: str, why: str) -> GateResult:
    return GateResult(name, cfg.on_not_measured, None, threshold, f"not measured: {why}", False)


def _fmt(x: float, digits: int = 4) -> str:
    return f"{x:+.{digits}f}"


def gate_mean_cosine_shift(cfg: GateConfig, shift: float | None, n_pairs: int = 0) -> GateResult:
    """``|mean cosine shift| <= max_abs``; else (by default) WARN: check vector normalisation."""
    name, limit = "mean_cosine_shift", cfg.mean_cosine_shift.max_abs
    threshold = f"|shift| <= {limit:g}"
    if shift is None or math.isnan(shift) or n_pairs == 0:
        return _not_measured(cfg, name, threshold, "no pair similarities for both versions")
    if abs(shift) <= limit:
        return GateResult(
            name,
            Status.PASS,
            shift,
            threshold,
            f"mean cosine moved {_fmt(shift)} on {n_pairs} pairs, within {limit:g}",
        )
    return GateResult(
        name,
        cfg.mean_cosine_shift.on_fail,
        shift,
        threshold,
        f"mean cosine moved {_fmt(shift)} on {n_pairs} pairs (> {limit:g}): the score scale "
        "changed (a new model, or a normalisation change)",
    )


def gate_top_k_agreement(
    cfg: GateConfig, agreement: float | None, n_queries: int = 0
) -> GateResult:
    """Mean top-k overlap between the versions' rankings ``>= min``."""
    k, limit = cfg.top_k_agreement.k, cfg.top_k_agreement.min
    name, threshold = "top_k_agreement", f">= {limit:g}"
    if agreement is None or math.isnan(agreement) or n_queries == 0:
        return _not_measured(cfg, name, threshold, "no rankings for both versions")
    if agreement >= limit:
        return GateResult(
            name,
            Status.PASS,
            agreement,
            threshold,
            f"{agreement:.1%} of top-{k} results shared on average over {n_queries} queries",
        )
    return GateResult(
        name,
        cfg.top_k_agreement.on_fail,
        agreement,
        threshold,
        f"only {agreement:.1%} of top-{k} results shared on average over {n_queries} queries "
        f"(< {limit:.0%})",
    )


def gate_low_score_share(
    cfg: GateConfig,
    delta: float | None,
    baseline: float = math.nan,
    candidate: float = math.nan,
    *,
    scale_shift: float | None = None,
) -> GateResult:
    """Increase of the share of pairs below the low-score threshold ``<= max_increase``.

    ``scale_shift``: the mean cosine shift when ``mean_cosine_shift`` found the score scale
    changed; a rise below a fixed cut-off is then what the new scale does to that cut-off, and
    the action says to move the cut-off (not to look for worse query understanding).

    >>> g = gate_low_score_share(GateConfig(), 0.4, 0.1, 0.5, scale_shift=-0.2)
    >>> g.status, g.action.split(":")[0]
    (<Status.WARN: 'WARN'>, 'the score scale changed (mean cosine -0.2000)')
    """
    name, limit, t = (
        "low_score_share_increase",
        cfg.low_score_share.max_increase,
        cfg.low_score_share.threshold,
    )
    threshold = f"<= {limit:g}"
    if delta is None or math.isnan(delta):
        return _not_measured(cfg, name, threshold, "no pair similarities for both versions")
    what = f"share of pairs below {t:g} went {baseline:.1%} -> {candidate:.1%} ({_fmt(delta, 3)})"
    if delta <= limit:
        return GateResult(name, Status.PASS, delta, threshold, what)
    if scale_shift is not None:
        return GateResult(
            name,
            cfg.low_score_share.on_fail,
            delta,
            threshold,
            f"{what}, more than {limit:g}: B scores on another scale (see mean_cosine_shift), so "
            f"a fixed cut-off at {t:g} drops items that B still ranks well",
            action=f"the score scale changed (mean cosine {_fmt(scale_shift)}): re-set every "
            "score cut-off on B's scale (the threshold mapping in the actions); the quality "
            "gates, not this share, say whether B understands queries worse",
        )
    return GateResult(
        name,
        cfg.low_score_share.on_fail,
        delta,
        threshold,
        f"{what}, more than {limit:g}: score thresholds would drop relevant items",
    )


def gate_latency_p95(
    cfg: GateConfig,
    ratio: float | None,
    *,
    measured: bool = True,
    comparable: bool = True,
    note: str = "",
    ci_low: float | None = None,
    ci_high: float | None = None,
    in_process: bool = False,
    retried: str = "",
    reused: str = "",
) -> GateResult:
    """p95 latency increase (candidate / baseline - 1) ``<= max_increase``, at equal load.

    ``retried`` (:attr:`evalkit.compare.latency.LatencyComparison.retry_note`): a p95 measured
    while requests were retried says so in the observed text; so does a probe reused from an
    earlier run (``reused``, :attr:`~evalkit.compare.latency.LatencyComparison.reuse_note`).

    ``in_process``: both versions ran in this process (:func:`evalkit.embed.latency_probe.backend_kind`),
    so the latency is this machine's CPU, not a serving endpoint's: a failure is a follow-up
    (WARN) telling to measure the served endpoints, never a block.

    With a bootstrap interval of the ratio (``ci_low`` / ``ci_high``,
    :func:`evalkit.compare.latency.p95_ratio_ci`) the gate fails (``on_fail``) only when the
    interval clears the threshold (``ci_low - 1 > max_increase``); a point estimate above the
    threshold whose interval straddles it is WARN "not conclusive" (also when the interval could
    not be computed: NaN).  Without an interval (``None``) the point estimate decides.  Versions
    that are not comparable (an in-process model vs an HTTP server, or different batch size /
    concurrency) are WARN with the reason, never a failure.

    >>> cfg = GateConfig()
    >>> gate_latency_p95(cfg, 1.5, ci_low=1.3, ci_high=1.7).status
    <Status.BLOCK: 'BLOCK'>
    >>> gate_latency_p95(cfg, 1.5, ci_low=0.9, ci_high=2.1).status
    <Status.WARN: 'WARN'>
    """
    name, limit = "latency_p95_increase", cfg.latency_p95.max_increase
    threshold = f"<= {limit:.0%}"
    retried = "; ".join(n for n in (retried, reused) if n)
    if not measured or ratio is None or math.isnan(ratio):
        return _not_measured(
            cfg,
            name,
            threshold,
            "no embedding requests were timed for both versions (latency.probe=0 and all "
            "vectors cached?)",
        )
    increase = ratio - 1.0
    ci = ""
    if ci_low is not None and ci_high is not None and not math.isnan(ci_low):
        ci = f", 95% CI of the ratio {ci_low:.2f}-{ci_high:.2f}"
    if retried:
        ci += f"; {retried}"
    if not comparable:
        return GateResult(
            name,
            Status.WARN,
            increase,
            threshold,
            f"not comparable ({note}): p95 ratio {ratio:.2f} measured at different load or "
            f"serving set-up; latency is not gated{'; ' + retried if retried else ''}",
            False,
        )
    what = f"p95 latency {increase:+.0%} vs baseline (ratio {ratio:.2f}{ci})"
    if increase <= limit:
        return GateResult(name, Status.PASS, increase, threshold, what)
    if ci_low is None or ci_high is None:  # no interval given: the point estimate decides
        return GateResult(
            name,
            Status.WARN if in_process else cfg.latency_p95.on_fail,
            increase,
            threshold,
            f"{what}, more than {limit:.0%}"
            + (
                " (measured in process on this machine, not on a serving endpoint)"
                if in_process
                else ""
            ),
        )
    if not math.isnan(ci_low) and ci_low - 1.0 > limit:
        if in_process:
            return GateResult(
                name,
                Status.WARN,
                increase,
                threshold,
                f"{what}: the whole interval is above +{limit:.0%}, but measured in process on "
                "this machine, not on a serving endpoint",
                action="measure both versions on their serving endpoints (the openai backend) "
                "before sizing the fleet for B",
            )
        return GateResult(
            name,
            cfg.latency_p95.on_fail,
            increase,
            threshold,
            f"{what}: the whole interval is above +{limit:.0%}",
        )
    has_ci = ci_low is not None and not math.isnan(ci_low)
    why = "its interval reaches below it" if has_ci else "there is no interval (< 2 requests)"
    return GateResult(
        name,
        Status.WARN,
        increase,
        threshold,
        f"not conclusive: {what}, above +{limit:.0%} but {why}; "
        "raise latency.min_requests to decide",
    )


def judge_more(q: QualityCall) -> str:
    """``judge about 128 queries in all (76 more) to show no worse (between 60 and 900 given the
    uncertainty of the difference)`` (empty when no plan can be made); when the query set holds
    fewer queries than that, the new ones to sample are said too.

    >>> q = QualityCall("ndcg@10", 0.03, -0.01, 0.07, 0.2, 0.2, Quality.INCONCLUSIVE, 0.01,
    ...                 n_queries=52, queries_needed=128)
    >>> judge_more(q)
    'judge about 128 queries in all (76 more)'
    >>> judge_more(replace(q, queries_in_set=60))  # doctest: +NORMALIZE_WHITESPACE
    'judge about 128 queries in all (76 more): the query set holds 60, so sample about 68 new
    queries from the query log and judge them'
    """
    from evalkit.compare.power import show_count

    if q.queries_needed is None:
        if q.status == Quality.INCONCLUSIVE and q.delta == 0.0:
            return "no number of judged queries decides a difference of exactly 0"
        return ""
    more = max(0, q.queries_needed - q.n_queries)
    text = f"judge about {show_count(q.queries_needed)} queries in all ({show_count(more)} more)"
    if q.plan is not None:
        high = show_count(q.plan.high)
        text += (
            f" to show {q.plan.call} (between {show_count(q.plan.low)} and {high} given the "
            f"uncertainty of the difference, its {q.plan.range_confidence:.0%} interval)"
        )
    held = q.queries_in_set
    if held is not None and q.queries_needed > held:
        text += (
            f": the query set holds {held}, so sample about "
            f"{show_count(q.queries_needed - held)} new queries from the query log and judge them"
        )
    return text


def gate_primary_metric(
    cfg: GateConfig, q: QualityCall | None, *, n_queries: int = 0, worklist: bool = True
) -> GateResult:
    """Non-inferiority of the primary metric, tested alone at the full alpha.

    PASS when B is ``better`` or ``no_worse`` (the interval of the difference lies above
    ``-margin``); ``worse`` -> ``on_fail`` (BLOCK); ``inconclusive`` -> ``on_inconclusive``
    (INCONCLUSIVE, or BLOCK), with the judged queries that would decide (and, when ``worklist``,
    the worklist of unjudged results to start with).

    >>> q = QualityCall("ndcg@10", 0.064, -0.032, 0.161, 0.19, 0.19, Quality.INCONCLUSIVE, 0.01,
    ...                 n_queries=52, queries_needed=180)
    >>> g = gate_primary_metric(GateConfig(), q, n_queries=52)
    >>> g.status, g.action
    (<Status.INCONCLUSIVE: 'INCONCLUSIVE'>, 'not enough evidence: judge about 180 queries in all (128 more), starting with judging_worklist.csv, then re-run')
    """
    from evalkit.metrics.ir import mlflow_name

    metric = mlflow_name(cfg.metric)
    name, margin = "primary_metric", cfg.primary_metric.margin
    threshold = f"{metric}: CI of the difference above -{margin:g} (no worse)"
    if q is None or math.isnan(q.delta) or n_queries == 0:
        return _not_measured(cfg, name, threshold, f"no per-query {metric} for both versions")
    what = f"{q.describe()} over {n_queries} queries: {STATUS_TEXT[q.status]}"
    decide = judge_more(q)
    if q.status == Quality.BETTER:
        return GateResult(name, Status.PASS, q.delta, threshold, what)
    if q.status == Quality.NO_WORSE:
        gain = f"; not shown better (p >= {cfg.primary_metric.alpha:g})" if q.delta > 0 else ""
        if decide and q.plan is not None:
            gain += f": {decide}"
        elif decide:
            gain += f": {decide} to tell whether the gain is real"
        if q.note:
            gain += f"; {q.note}"
        return GateResult(name, Status.PASS, q.delta, threshold, what + gain)
    if q.status == Quality.WORSE:
        why = f"{what} (the interval lies below 0 and reaches below -{margin:g})"
        action = f"do not switch: B ranks worse on {metric}; read the worst regressions"
        return GateResult(name, cfg.primary_metric.on_fail, q.delta, threshold, why, action=action)
    start = ", starting with judging_worklist.csv" if worklist else ""
    if q.note:  # judgments too sparse: the interval's call was not confirmed on judged items
        action = (
            "judgments too sparse: judge judging_worklist.csv (the unjudged results most "
            "likely to move the delta), then re-run"
            if worklist
            else "judgments too sparse: judge both versions' top results, then re-run"
        )
        return GateResult(
            name, cfg.on_inconclusive, q.delta, threshold, f"{what}: {q.note}", action=action
        )
    direction = "gain" if q.delta > 0 else "loss" if q.delta < 0 else "difference"
    why = (
        f"{what}: the interval reaches below -{margin:g} and above 0, so the data cannot "
        f"show that B is no worse (an observed {direction}, not enough evidence either way)"
    )
    action = (
        f"not enough evidence: {decide}{start}, then re-run"
        if decide
        else f"not enough evidence: judge more queries{start}, then re-run"
    )
    return GateResult(name, cfg.on_inconclusive, q.delta, threshold, why, action=action)


def _listed(calls: Sequence[QualityCall]) -> str:
    from evalkit.metrics.ir import mlflow_name

    return ", ".join(
        f"{mlflow_name(c.metric)} {c.delta:+.4f} [{_bound(c.ci_low)}, {_bound(c.ci_high)}]"
        for c in calls
    )


def _bound(x: float) -> str:
    if math.isinf(x):
        return "-inf" if x < 0 else "+inf"
    return f"{x:+.4f}"


def gate_secondary_metrics(
    cfg: GateConfig, calls: Sequence[QualityCall], *, primary_passed: bool = True
) -> GateResult:
    """The other scored metrics (the secondary family, Holm-corrected among themselves).

    A ``worse`` one -> ``secondary_on_worse`` (a loss always warns); otherwise, when the primary
    did not pass, the family is not tested (fixed sequence: no gain is claimed) -> WARN;
    otherwise an ``inconclusive`` one -> ``secondary_on_worse``, else PASS.  Gains are listed
    as gains.

    >>> mk = lambda m, d, lo, hi, st: QualityCall(m, d, lo, hi, 0.01, 0.03, st, 0.01,
    ...                                           family="secondary")
    >>> g = gate_secondary_metrics(GateConfig(), [
    ...     mk("recall@100", 0.05, 0.01, 0.09, Quality.BETTER),
    ...     mk("mrr@10", 0.02, -0.03, 0.07, Quality.INCONCLUSIVE)])
    >>> g.status, g.reason
    (<Status.WARN: 'WARN'>, 'inconclusive: mrr_at_10 +0.0200 [-0.0300, +0.0700]; gains: recall_at_100 +0.0500 [+0.0100, +0.0900] (Holm-adjusted intervals)')
    """
    name, threshold = "secondary_metrics", f"each no worse (margin {cfg.primary_metric.margin:g})"
    others = [c for c in calls if c.metric != cfg.metric]
    if not others:
        return _not_measured(cfg, name, threshold, "no metric besides the primary one")
    worse = [c for c in others if c.status == Quality.WORSE]
    inconclusive = [c for c in others if c.status == Quality.INCONCLUSIVE]
    better = [c for c in others if c.status == Quality.BETTER]
    no_worse = [c for c in others if c.status == Quality.NO_WORSE]
    adjusted = any(c.p_corrected != c.p_value for c in others)
    note = " (Holm-adjusted intervals)" if adjusted else ""
    parts = []
    for label, group in (
        (f"worse ({len(worse)} of {len(others)})", worse),
        ("inconclusive", inconclusive),
        ("gains" if primary_passed else "observed gains (not claimed)", better),
        ("no worse", no_worse),
    ):
        if group:
            parts.append(f"{label}: {_listed(group)}")
    what = "; ".join(parts) + note
    if worse:
        return GateResult(
            name,
            cfg.secondary_metrics.on_worse,
            float(len(worse)),
            threshold,
            what,
            action="decide whether this loss matters for your product (it is not the primary "
            "metric); read the worst regressions",
        )
    if not primary_passed:
        return GateResult(
            name,
            Status.WARN,
            float(len(others)),
            threshold,
            "not tested: the primary metric was not shown no worse, so the secondary family is "
            f"not tested (fixed sequence); observed {what}",
            action="decide the primary metric first (see its action)",
        )
    if inconclusive:
        return GateResult(
            name,
            cfg.secondary_metrics.on_worse,
            float(len(inconclusive)),
            threshold,
            what,
            action="judge more queries if these metrics matter for your product "
            "(judging_worklist.csv)",
        )
    return GateResult(name, Status.PASS, 0.0, threshold, f"all {len(others)} no worse; {what}")


def gate_click_correlation(
    cfg: GateConfig,
    pooled: QualityCall | None,
    within: QualityCall | None,
    *,
    primary_passed: bool = True,
) -> GateResult:
    """Similarity-vs-click agreement, decided on the pooled AND the within-query difference.

    ``pooled`` is the difference of ``click_statistic`` over all logged pairs, ``within`` of the
    mean per-query Spearman; both are in the secondary family (Holm-adjusted intervals).  A
    significant loss in either one (its interval below 0) is worse -> ``on_worse``; both shown
    no worse (interval above ``-margin``) -> PASS; otherwise WARN naming the undecided one.  The
    reason says which difference decides.

    >>> mk = lambda m, d, lo, hi, st: QualityCall(m, d, lo, hi, 0.001, 0.002, st, 0.02,
    ...                                           family="secondary")
    >>> g = gate_click_correlation(GateConfig(),
    ...     mk("click_spearman", 0.074, 0.039, 0.110, Quality.BETTER),
    ...     mk("click_spearman_within", -0.01, -0.05, 0.03, Quality.INCONCLUSIVE))
    >>> g.status, g.reason.split(":")[0]
    (<Status.WARN: 'WARN'>, 'within-query difference undecided')
    """
    stat, margin = cfg.click_correlation.statistic, cfg.click_correlation.margin
    name = "click_correlation"
    threshold = (
        f"pooled {stat} and within-query spearman: no significant loss, CI above -{margin:g}"
    )
    present = [q for q in (pooled, within) if q is not None and not math.isnan(q.delta)]
    if not present:
        return _not_measured(cfg, name, threshold, "no click log with both versions' similarities")

    def label(q: QualityCall) -> str:
        return "within-query" if q.metric.endswith("_within") else "pooled"

    def show(q: QualityCall) -> str:
        return (
            f"{label(q)} {q.metric.removeprefix('click_')} {q.delta:+.4f} "
            f"[{q.ci_label()} {_bound(q.ci_low)}, {_bound(q.ci_high)}], "
            + (
                "p=0 (no bootstrap replicate reached 0)"
                if q.p_corrected == 0.0
                else f"p={q.p_corrected:.2g}"
            )
        )

    evidence = "; ".join(show(q) for q in present)
    losses = [q for q in present if q.ci_high < 0]
    if losses:
        which = " and ".join(f"the {label(q)} difference" for q in losses)
        return GateResult(
            name,
            cfg.click_correlation.on_worse,
            losses[0].delta,
            threshold,
            f"{which} {'is a' if len(losses) == 1 else 'are'} significant loss"
            f"{'' if len(losses) == 1 else 'es'} (decides): {evidence}",
            action="B's scores follow clicks less closely: confirm on live traffic "
            "(interleaving or an A/B test) before switching",
        )
    if not primary_passed:
        return GateResult(
            name,
            Status.WARN,
            present[0].delta,
            threshold,
            "not tested: the primary metric was not shown no worse (fixed sequence); no "
            f"significant loss; observed {evidence}",
            action="decide the primary metric first (see its action)",
        )
    undecided = [q for q in present if not q.status.shown_no_worse]
    if undecided:
        which = " and ".join(f"{label(q)} difference" for q in undecided)
        return GateResult(
            name,
            Status.WARN,
            undecided[0].delta,
            threshold,
            f"{which} undecided: its interval reaches below -{margin:g} (not shown no worse, no "
            f"significant loss either): {evidence}",
            action="confirm on live traffic (interleaving or an A/B test) or log more clicks",
        )
    gains = [q for q in present if q.status == Quality.BETTER]
    head = (
        f"{' and '.join(label(q) for q in gains)} gain{'s' if len(gains) > 1 else ''}"
        if gains
        else "no worse"
    )
    return GateResult(name, Status.PASS, present[0].delta, threshold, f"{head}: {evidence}")


def gate_unjudged_increase(
    cfg: GateConfig, baseline: float | None, candidate: float | None, k: int = 10
) -> GateResult:
    """Rise of unjudged@k (share of unjudged items in the top k) ``<= max_increase``."""
    name, limit = "unjudged_increase", cfg.unjudged.max_increase
    threshold = f"unjudged@{k} rises <= {limit:g}"
    if baseline is None or candidate is None or math.isnan(baseline) or math.isnan(candidate):
        return _not_measured(cfg, name, threshold, "no rankings and judgments for both versions")
    delta = candidate - baseline
    what = f"unjudged@{k} {baseline:.1%} -> {candidate:.1%} ({delta:+.3f})"
    if delta <= limit:
        return GateResult(name, Status.PASS, delta, threshold, what)
    return GateResult(
        name,
        cfg.unjudged.on_fail,
        delta,
        threshold,
        f"{what}: unjudged items count as not relevant, which biases the metrics against B",
        action=f"judge B's new top-{k} results, then re-run: the quality call may be pessimistic",
    )


def gate_judgment_coverage(cfg: GateConfig, cov: Coverage | None) -> GateResult:
    """Unjudged share of each version's top k (the primary metric's cut-off) ``<=
    max_unjudged``; above it ``on_sparse`` (WARN), and the primary call has been checked
    against the judged-only call (:func:`evalkit.compare.coverage.reconcile`).

    >>> from evalkit.compare.coverage import Coverage
    >>> cov = Coverage("ndcg@10", 10, {"A": 0.92, "B": 0.4}, 40, 0.5, None, ("A", "B"))
    >>> g = gate_judgment_coverage(GateConfig(), cov)
    >>> g.status, g.reason.split(":")[0]
    (<Status.WARN: 'WARN'>, 'judgments sparse')
    """
    limit = cfg.judgments.max_unjudged
    name, threshold = "judgment_coverage", f"unjudged share of each top k <= {limit:.0%}"
    if cov is None or not cov.unjudged or any(math.isnan(v) for v in cov.unjudged.values()):
        return _not_measured(cfg, name, threshold, "no rankings with judgments for both versions")
    shares = f"unjudged@{cov.k} over {cov.n_queries} scored queries: {cov.shares()}"
    judged = cov.judged_only
    evidence = (
        f"judged-only {judged.describe()}: {STATUS_TEXT[judged.status]}"
        if judged is not None
        else "no judged-only comparison"
    )
    _, share = cov.sparsest()
    if not cov.sparse:
        return GateResult(
            name, Status.PASS, share, threshold, f"{shares} (<= {limit:.0%}); {evidence}"
        )
    return GateResult(
        name,
        cfg.judgments.on_sparse,
        share,
        threshold,
        f"judgments sparse: {shares} (> {limit:.0%}): unjudged results count as not relevant, "
        f"so the primary call must agree with the judged-only one; {evidence}",
        action="judge judging_worklist.csv (the unjudged results most likely to move the delta), "
        "then re-run",
    )


def gate_vector_contract(
    cfg: GateConfig,
    baseline: Mapping[str, float] | None,
    candidate: Mapping[str, float] | None,
) -> GateResult:
    """Vectors clients receive keep the baseline's normalisation (unit length or not).

    ``baseline`` / ``candidate`` are vector statistics (``norm_min``, ``norm_max``,
    ``norm_mean``, ``dim``) of the embedded catalog and queries.
    """
    name, tol = "vector_contract", cfg.vector_contract.norm_tolerance
    threshold = f"unit-length vectors stay unit-length (|norm - 1| <= {tol:g})"
    if not candidate or "norm_min" not in candidate:
        return _not_measured(cfg, name, threshold, "no vector norms for the candidate")

    def unit(s: Mapping[str, float]) -> bool:
        return abs(s["norm_min"] - 1.0) <= tol and abs(s["norm_max"] - 1.0) <= tol

    c_unit = unit(candidate)
    span = f"norms {candidate['norm_min']:.3f}..{candidate['norm_max']:.3f}"
    if baseline and "norm_min" in baseline:
        b_unit = unit(baseline)
        b_span = f"{baseline['norm_min']:.3f}..{baseline['norm_max']:.3f}"
        if b_unit and not c_unit:
            return GateResult(
                name,
                cfg.vector_contract.on_fail,
                float(candidate["norm_mean"]),
                threshold,
                f"baseline vectors are unit-length ({b_span}), the candidate's are not ({span}): "
                "inner-product scores are no longer cosines",
                action="normalise the candidate's vectors (normalize=true) in every client and "
                "in the index",
            )
        return GateResult(
            name,
            Status.PASS,
            float(candidate["norm_mean"]),
            threshold,
            f"{'unit-length' if c_unit else 'unnormalised'} like the baseline ({span})",
        )
    return GateResult(
        name,
        Status.PASS if c_unit else cfg.on_not_measured,
        float(candidate["norm_mean"]),
        threshold,
        f"candidate {'unit-length' if c_unit else 'not unit-length'} ({span}); "
        "baseline norms unknown",
        measured=c_unit,
    )


def normalise_checks(checks: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validate endpoint-check results ``{name, status: PASS|WARN|FAIL, observed, expected, reason}``."""
    out = []
    for i, c in enumerate(checks, start=1):
        if not isinstance(c, Mapping):
            raise DataError(
                f"endpoint check result is a {type(c).__name__}",
                row=i,
                field="checks",
                expected="a mapping {name, status, observed, expected, reason}",
            )
        status = str(c.get("status", "")).upper()
        if status not in CHECK_STATUSES:
            raise DataError(
                f"endpoint check {c.get('name', '?')!r} has status {c.get('status')!r}",
                row=i,
                field="status",
                expected="PASS, WARN or FAIL",
            )
        if not c.get("name"):
            raise DataError(
                "endpoint check has no name", row=i, field="name", expected="a check name"
            )
        out.append({**dict(c), "status": status})
    return out


def gate_endpoint_checks(
    cfg: GateConfig, checks: Sequence[Mapping[str, Any]] | None, version: str | None = None
) -> GateResult:
    """Any endpoint check FAIL blocks; WARN warns; no checks run -> ``on_not_measured``.

    Checks carrying a ``version`` key count only for that version.
    """
    name, threshold = "endpoint_checks", "no FAIL"
    if checks is None:
        return _not_measured(
            cfg, name, threshold, "endpoint checks were not run (run_checks=true runs them)"
        )
    rows = [
        c
        for c in normalise_checks(checks)
        if version is None or c.get("version") in (None, version)
    ]
    if not rows:
        return _not_measured(cfg, name, threshold, f"no endpoint checks for {version}")
    failed = [c["name"] for c in rows if c["status"] == "FAIL"]
    warned = [c["name"] for c in rows if c["status"] == "WARN"]
    if failed:
        return GateResult(
            name,
            cfg.endpoint_checks.on_fail,
            float(len(failed)),
            threshold,
            f"{len(failed)} of {len(rows)} endpoint checks failed: {', '.join(failed)}",
        )
    if warned:
        return GateResult(
            name,
            Status.WARN,
            0.0,
            threshold,
            f"{len(rows)} endpoint checks, none failed; warnings: {', '.join(warned)}",
        )
    return GateResult(name, Status.PASS, 0.0, threshold, f"all {len(rows)} endpoint checks passed")
