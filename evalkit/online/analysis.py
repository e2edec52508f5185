"""The canary's analyses and gates, from the reduced log
(:class:`~evalkit.online.gateway_log.OnlineAggregate`): sample ratio mismatch, click-through B - A
(request CTR decides), similarity vs clicks, latency, days, positions and slices; the verdict is
the worst gate (a broken split blocks whatever else says).  What each analysis does:
docs/how-to/online-ab.md ("The analyses").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evalkit.compare.calls import Quality, QualityCall
from evalkit.compare.calls import call as quality_call
from evalkit.compare.gate_rules import GateResult
from evalkit.compare.status import Status, exit_code, worst
from evalkit.online import stats
from evalkit.online.canary_gates import (
    OnlineGates,
    gate_latency,
    gate_ratio,
    gate_sample_ratio,
    gate_score_click,
)
from evalkit.online.gateway_log import ArmAggregate, OnlineAggregate, UnitSums
from evalkit.online.online_settings import OnlineSettings
from evalkit.online.served_latency import latency_summary

#: The click metrics of :data:`evalkit.online.stats.METRICS` the CTR margin applies to; the
#: first decides, the others warn.
CLICK_METRICS = ("request_ctr", "impression_ctr", "first_click_mrr")
#: MLflow name stem of a metric whose stem is not its name (``ctr_delta``, ...: a contract).
STEMS = {"request_ctr": "ctr"}
ALPHA = 0.05


@dataclass(frozen=True)
class OnlineResult:
    """Everything the canary's report, MLflow run and terminal show."""

    versions: tuple[str | None, str | None]  # (control, treatment) model versions
    status: Status
    gates: list[GateResult]
    calls: dict[str, QualityCall]
    metrics: dict[str, float]  # MLflow names (a contract)
    params: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    daily: list[dict[str, Any]] = field(default_factory=list)
    slices: list[dict[str, Any]] = field(default_factory=list)
    score_curves: dict[str, tuple] = field(default_factory=dict)
    latencies: dict[str, np.ndarray] = field(default_factory=dict)
    position_ctr: dict[str, tuple] = field(default_factory=dict)
    offline: dict[str, Any] | None = None
    simulated: bool = False

    @property
    def exit_code(self) -> int:
        return exit_code(self.status)

    def label(self, arm: str) -> str:
        """``control (use_m3)``."""
        version = self.versions[0 if arm == "control" else 1]
        return f"{arm} ({version})" if version else arm


def ratio_call(
    name: str,
    c: UnitSums,
    t: UnitSums,
    *,
    margin: float,
    sequential: bool,
    alpha: float = ALPHA,
    family: str = "primary",
) -> tuple[QualityCall | None, Any]:
    """The B - A call of metric ``name`` and its diff (None, None when a side has no
    denominator): always-valid interval (tau = the margin) when ``sequential``, else fixed."""
    den = stats.METRICS[name][1]
    if c.total(den) <= 0 or t.total(den) <= 0:
        return None, None
    tau = stats.default_tau(margin) if sequential else None
    diff = stats.metric_diff(c, t, name, alpha=alpha, sequential=sequential, tau=tau)
    q = QualityCall(
        metric=name,
        delta=diff.delta,
        ci_low=diff.ci_low,
        ci_high=diff.ci_high,
        p_value=diff.p,
        p_corrected=diff.p,
        status=stats.diff_call(diff, margin=margin, alpha=alpha),
        margin=margin,
        baseline=diff.control,
        candidate=diff.treatment,
        confidence=1.0 - alpha,
        family=family,
        n_queries=len(c) + len(t),
    )
    return q, diff


def _diff_metrics(name: str, q: QualityCall, d: Any) -> dict[str, float]:
    """The arms' values, B - A and the interval the call read, under MLflow names."""
    stem = STEMS.get(name, name)
    return {
        f"{stem}_control": d.control,
        f"{stem}_treatment": d.treatment,
        f"{stem}_delta": d.delta,
        f"ci_low_{stem}_delta": q.ci_low,
        f"ci_high_{stem}_delta": q.ci_high,
    }


def daily_ctr(arm: ArmAggregate, name: str, alpha: float = ALPHA) -> list[dict[str, Any]]:
    """Request CTR per UTC day with its unit-clustered interval (fixed-horizon, per day)."""
    if arm.daily is None:
        return []
    r = stats.daily_metric(arm.daily, "request_ctr", alpha=alpha)
    return [
        {"day": str(np.datetime64(int(d), "D")), "arm": name, "ctr": float(v), "low": float(lo),
         "high": float(hi), "units": int(n)}
        for d, v, lo, hi, n in zip(r.day, r.value, r.ci_low, r.ci_high, r.n_units)
    ]  # fmt: skip


def analyse(
    agg: OnlineAggregate,
    settings: OnlineSettings,
    gates: OnlineGates,
    *,
    simulated: bool = False,
    alpha: float = ALPHA,
    models: tuple[str, str] | None = None,
) -> OnlineResult:
    """Every analysis, its gate and the verdict (the worst gate); ``models``: the arms' versions
    when the log has no ``model_version`` column."""
    c, t = agg.control, agg.treatment
    metrics: dict[str, float] = {}
    out_gates = [_split(agg, settings, gates, metrics)]
    calls: dict[str, QualityCall] = {}
    out_gates += _click_through(agg, settings, gates, alpha, calls, metrics)
    out_gates.append(_score_click(agg, settings, gates, alpha, calls, metrics))
    latencies, latency_gate = _latency(agg, settings, gates, simulated, metrics)
    out_gates.append(latency_gate)
    actions = _cutoff_actions(c, t, settings)
    for a in actions:
        metrics.update(a.pop("metrics", {}))
    status = worst(g.status for g in out_gates)
    # a broken split: nothing else can be trusted, whatever it says
    if out_gates[0].status == Status.BLOCK:
        status = Status.BLOCK
    metrics["verdict_code"] = status.code
    versions = (c.version, t.version)
    if versions == (None, None) and models is not None:
        versions = (models[0], models[1])  # the reader's note says so (no version column)
    return OnlineResult(
        versions=versions,
        status=status,
        gates=out_gates,
        calls=calls,
        metrics={k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)},
        params=_params(agg, settings, gates, versions),
        notes=[f"{key}: {why}" for key, why in agg.missing.items()],
        actions=actions,
        daily=daily_ctr(c, "control", alpha) + daily_ctr(t, "treatment", alpha),
        slices=_slices(c, t, gates, alpha),
        score_curves={
            n: (b.mean_score, b.clicks / np.maximum(b.impressions, 1), b.impressions)
            for n, b in (("control", c.score_bins), ("treatment", t.score_bins))
            if b is not None
        },
        latencies=latencies,
        position_ctr={
            n: (a.positions.position, a.positions.clicks / np.maximum(a.positions.impressions, 1))
            for n, a in (("control", c), ("treatment", t))
            if a.positions is not None
        },
        simulated=simulated,
    )


def _split(
    agg: OnlineAggregate, settings: OnlineSettings, gates: OnlineGates, metrics: dict
) -> GateResult:
    """The traffic split: units, requests, impressions per arm and the SRM test's gate."""
    cu, tu = agg.control.units, agg.treatment.units
    metrics.update(
        units_control=float(len(cu)),
        units_treatment=float(len(tu)),
        requests_control=cu.total("requests"),
        requests_treatment=tu.total("requests"),
        impressions_control=cu.total("impressions"),
        impressions_treatment=tu.total("impressions"),
        units_in_both=float(agg.units_in_both),
    )
    srm = stats.srm_test(len(cu), len(tu), settings.split)
    metrics["srm_p"] = srm.p
    return gate_sample_ratio(gates, srm.p, len(cu), len(tu), settings.split, agg.units_in_both)


def _click_through(
    agg: OnlineAggregate,
    settings: OnlineSettings,
    gates: OnlineGates,
    alpha: float,
    calls: dict[str, QualityCall],
    metrics: dict,
) -> list[GateResult]:
    """The gates of request CTR (it decides), impression CTR and first-click MRR."""
    cu, tu = agg.control.units, agg.treatment.units
    diffs: dict[str, Any] = {}
    procedure = (
        "always-valid interval, mixture SPRT" if settings.sequential else "fixed-horizon interval"
    ) + ", clustered by unit"
    for i, name in enumerate(CLICK_METRICS):
        q, diff = ratio_call(
            name, cu, tu, margin=gates.ctr.margin, sequential=settings.sequential,
            alpha=alpha, family="primary" if i == 0 else "secondary",
        )  # fmt: skip
        if q is None:
            continue
        calls[name], diffs[name] = q, diff
        metrics.update(_diff_metrics(name, q, diff))
    ctr = calls.get("request_ctr")
    if ctr is not None:
        d = diffs["request_ctr"]
        fixed = stats.metric_diff(cu, tu, "request_ctr", alpha=alpha)
        metrics.update(
            p_ctr_delta=ctr.p_value,
            ctr_rel_delta=d.rel_delta,
            ci_low_ctr_rel_delta=d.rel_ci_low,
            ci_high_ctr_rel_delta=d.rel_ci_high,
            fixed_ci_low_ctr_delta=fixed.ci_low,
            fixed_ci_high_ctr_delta=fixed.ci_high,
            fixed_p_ctr_delta=fixed.p,
        )
    decide = ""
    if ctr is not None and ctr.status == Quality.INCONCLUSIVE:
        plan = stats.units_needed(
            diffs["request_ctr"], margin=gates.ctr.margin, alpha=alpha, status=str(ctr.status)
        )
        if plan is not None:
            metrics["units_needed_control"] = float(plan.needed_control)
            metrics["units_needed_treatment"] = float(plan.needed_treatment)
            decide = (
                f"keep the canary running: about {plan.needed_control:,} control and "
                f"{plan.needed_treatment:,} treatment units in all ({plan.more_control:,} / "
                f"{plan.more_treatment:,} more) would show {plan.call} at this variance"
                f"{' (always-valid interval)' if plan.sequential else ''}"
            )
    out = [
        gate_ratio(
            "request_ctr", ctr, on_worse=Status.BLOCK, on_inconclusive=Status.INCONCLUSIVE,
            what_missing="no requests in an arm", decide=decide, procedure=procedure,
        )
    ]  # fmt: skip
    for name in ("impression_ctr", "first_click_mrr"):
        out.append(
            gate_ratio(
                name, calls.get(name), on_worse=Status.WARN, on_inconclusive=Status.WARN,
                what_missing="no impressions", decide="keep the canary running",
                procedure=procedure,
            )
        )  # fmt: skip
    return out


def _score_click(
    agg: OnlineAggregate,
    settings: OnlineSettings,
    gates: OnlineGates,
    alpha: float,
    calls: dict[str, QualityCall],
    metrics: dict,
) -> GateResult:
    """Similarity vs clicks: the within-request AUC of each arm and its gate (score needed)."""
    auc = None
    if "score" not in agg.missing:
        auc, auc_diff = ratio_call(
            "score_click_auc", agg.control.units, agg.treatment.units,
            margin=gates.score_click.margin, sequential=settings.sequential, alpha=alpha,
            family="secondary",
        )  # fmt: skip
        if auc is not None:
            calls["score_click_auc"] = auc
            metrics.update(_diff_metrics("score_click_auc", auc, auc_diff))
    return gate_score_click(
        gates, auc, agg.missing.get("score", "no request with both a click and a skip")
    )


def _latency(
    agg: OnlineAggregate,
    settings: OnlineSettings,
    gates: OnlineGates,
    simulated: bool,
    metrics: dict,
) -> tuple[dict[str, np.ndarray], GateResult]:
    """P50 / P95 / P99 per arm, the P95 ratio with its bootstrap interval, and the gate."""
    c, t = agg.control.latency_ms, agg.treatment.latency_ms
    if c is None or t is None or not c.size or not t.size:
        return {}, gate_latency(gates, None, None, None)
    lat = latency_summary(c, t, seed=settings.seed)
    for arm, pct in (("control", lat.control), ("treatment", lat.treatment)):
        for k, v in pct.items():
            metrics[f"latency_{k}_ms_{arm}"] = v
    metrics.update(
        latency_p95_ratio=lat.ratio,
        latency_p95_ratio_ci_low=lat.ci_low,
        latency_p95_ratio_ci_high=lat.ci_high,
    )
    gate = gate_latency(
        gates, lat.ratio, lat.ci_low, lat.ci_high, (lat.control["p95"], lat.treatment["p95"]),
        simulated=simulated,
    )  # fmt: skip
    return {"control": c, "treatment": t}, gate


def _params(
    agg: OnlineAggregate, settings: OnlineSettings, gates: OnlineGates, versions: tuple
) -> dict[str, Any]:
    """The parent run's params: the settings, the gates, what was read."""
    return {
        "online.path": settings.path,
        "online.unit": agg.unit,
        "online.split": settings.split,
        "online.sequential": settings.sequential,
        "online.control": settings.control,
        "online.treatment": settings.treatment,
        "gates.online.ctr.margin": gates.ctr.margin,
        "gates.online.score_click.margin": gates.score_click.margin,
        "gates.online.latency_p95_increase": gates.latency_p95_increase,
        "rows": agg.rows,
        "unit": agg.unit,
        "files": len(agg.files),
        "version_control": versions[0] or "",
        "version_treatment": versions[1] or "",
    }


def _slices(c: ArmAggregate, t: ArmAggregate, gates: OnlineGates, alpha: float) -> list[dict]:
    """Request CTR B - A per slice (fixed-horizon intervals, Bonferroni over the slices)."""
    keys = [k for k in c.slices if k in t.slices]
    if not keys:
        return []
    level = alpha / len(keys)
    rows = []
    for dim, value in sorted(keys):
        cs, ts = c.slices[(dim, value)], t.slices[(dim, value)]
        if cs.requests.sum() <= 0 or ts.requests.sum() <= 0 or len(cs) < 2 or len(ts) < 2:
            continue
        d = stats.metric_diff(cs, ts, "request_ctr", alpha=level)
        # the interval at alpha / m excludes 0 exactly when the Bonferroni p (m p) is < alpha
        status = quality_call(d.delta, d.ci_low, d.ci_high, margin=gates.ctr.margin,
                              p_value=min(1.0, d.p * len(keys)), alpha=alpha)  # fmt: skip
        rows.append({"slice": f"{dim}={value}", "units": len(cs) + len(ts), "delta": d.delta,
                     "ci_low": d.ci_low, "ci_high": d.ci_high, "call": str(status),
                     "confidence": 1 - level})  # fmt: skip
    return rows


def _cutoff_actions(c: ArmAggregate, t: ArmAggregate, settings: OnlineSettings) -> list[dict]:
    """The share of clicked results above A's cut-off under A and the mapped one under B."""
    if settings.cutoffs is None:
        return []
    ca, cb = settings.cutoffs
    if ca not in c.clicks_above or cb not in t.clicks_above:
        return []
    share_a = c.clicks_above[ca] / max(c.units.total("clicks"), 1.0)
    share_b = t.clicks_above[cb] / max(t.units.total("clicks"), 1.0)
    return [
        {
            "name": "score_cutoff",
            "observed": f"{ca:g} -> {cb:g}",
            "why": f"clicked results above the cut-off: {share_a:.1%} under A at {ca:g}, "
            f"{share_b:.1%} under B at {cb:g}"
            + ("" if abs(share_b - share_a) <= 0.05 else ": the mapped cut-off keeps a different "
               "share of what users click; re-map it on live scores"),
            "what_to_do": "use the mapped cut-off for B" if abs(share_b - share_a) <= 0.05
            else "re-map the cut-off on live scores before the full switch",
            "metrics": {"clicked_above_cutoff_control": share_a,
                        "clicked_above_cutoff_treatment": share_b},
        }
    ]  # fmt: skip
