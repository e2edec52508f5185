"""The canary's release gates (``gates.online`` in ``conf/gates/*.yaml``), one function per gate.

=========================  ==========  ================================================  =======
gate                       group       passes when                                       default
=========================  ==========  ================================================  =======
``sample_ratio``           contract    chi-square p of units per arm >= 0.001 and no     BLOCK
                                       unit in both arms (else nothing can be trusted)
``request_ctr``            quality     B - A request CTR interval above -margin          BLOCK /
                                       (better / no worse); inconclusive -> INCONCLUSIVE INCONCL.
``impression_ctr``,        quality     interval above -margin                            WARN
``first_click_mrr``
``score_click``            quality     within-request AUC loss not beyond the margin     WARN
``latency_p95_increase``   contract    p95 ratio - 1 <= 0.20 (whole CI above: BLOCK,     BLOCK
                                       point estimate only: WARN)
=========================  ==========  ================================================  =======

>>> g = OnlineGates.from_mapping({"ctr": {"margin": 0.01}})
>>> g.ctr_margin, g.latency_p95_increase, g.srm_alpha
(0.01, 0.2, 0.001)
"""

from __future__ import annotations

import math

from evalkit.compare.calls import STATUS_TEXT, Quality, QualityCall
from evalkit.compare.gate_rules import GateResult
from evalkit.compare.status import Status
from evalkit.online.online_settings import Margin, OnlineGates

__all__ = [
    "Margin",
    "OnlineGates",
    "gate_latency",
    "gate_ratio",
    "gate_sample_ratio",
    "gate_score_click",
]


def gate_sample_ratio(
    cfg: OnlineGates, p: float, control: int, treatment: int, split: float, in_both: int = 0
) -> GateResult:
    """Sample ratio mismatch: BLOCK at p < ``srm_alpha`` or when a unit is in both arms."""
    threshold = f"chi-square p >= {cfg.srm_alpha:g} and no unit in both arms"
    total = control + treatment
    share = treatment / total if total else math.nan
    what = (
        f"{control:,} control / {treatment:,} treatment units ({share:.2%} treatment, planned "
        f"{split:.0%}), chi-square p={p:.3g}"
    )
    if in_both:
        return GateResult(
            "sample_ratio",
            Status.BLOCK,
            float(in_both),
            threshold,
            f"{in_both:,} units were served by both arms: the assignment leaked, so no other "
            f"figure can be trusted; {what}",
            group="contract",
            action="fix the assignment (one arm per unit for the whole canary), then restart it",
        )
    if not math.isnan(p) and p < cfg.srm_alpha:
        return GateResult(
            "sample_ratio",
            Status.BLOCK,
            p,
            threshold,
            f"traffic split broken, no other figure can be trusted: {what}",
            group="contract",
            action="find why units are lost or duplicated in one arm (assignment, logging, bots), "
            "fix it and restart the canary",
        )
    return GateResult("sample_ratio", Status.PASS, p, threshold, what, group="contract")


def gate_ratio(
    name: str,
    q: QualityCall | None,
    *,
    on_worse: Status,
    on_inconclusive: Status,
    what_missing: str = "",
    decide: str = "",
    procedure: str = "",
) -> GateResult:
    """A click metric's non-inferiority call (request CTR decides; the others warn);
    ``procedure`` names the interval (``always-valid, mixture SPRT``)."""
    if q is None:
        return GateResult(
            name, Status.WARN, None, "not measured", f"not measured: {what_missing}", False,
            group="quality", action="log the column it needs",
        )  # fmt: skip
    threshold = f"B - A interval above -{q.margin:g} (no worse)"
    how = f" ({procedure})" if procedure else ""
    what = f"{q.describe()}{how} over {q.n_queries:,} units: {STATUS_TEXT[q.status]}"
    if q.status.shown_no_worse:
        return GateResult(name, Status.PASS, q.delta, threshold, what, group="quality")
    if q.status == Quality.WORSE:
        return GateResult(
            name, on_worse, q.delta, threshold, f"{what}: B gets fewer clicks beyond noise",
            group="quality", action="do not widen the canary; roll back and read the slices",
        )  # fmt: skip
    return GateResult(
        name,
        on_inconclusive,
        q.delta,
        threshold,
        f"{what}: the interval spans -{q.margin:g} and 0 (not enough traffic either way)",
        group="quality",
        action=decide or "keep the canary running until the interval decides",
    )


def gate_score_click(cfg: OnlineGates, q: QualityCall | None, what_missing: str = "") -> GateResult:
    """Within-request AUC of score vs click, B - A: a loss beyond the margin warns."""
    name, margin = "score_click", cfg.score_click_margin
    threshold = f"within-request AUC loss <= {margin:g}"
    if q is None:
        return GateResult(
            name, Status.WARN, None, threshold, f"not measured: {what_missing}", False,
            group="quality", action="log similarity_score with every shown result",
        )  # fmt: skip
    what = f"within-request AUC of score vs click {q.describe()}"
    if q.ci_high < -margin:
        return GateResult(
            name, Status.WARN, q.delta, threshold,
            f"B's scores track clicks less well: {what} (the whole interval is below -{margin:g})",
            group="quality",
            action="check B's score-dependent features (cut-offs, blending weights) on live "
            "traffic before the full switch",
        )  # fmt: skip
    return GateResult(name, Status.PASS, q.delta, threshold, what, group="quality")


def gate_latency(
    cfg: OnlineGates,
    ratio: float | None,
    ci_low: float | None,
    ci_high: float | None,
    p95_ms: tuple[float, float] | None = None,
    *,
    simulated: bool = False,
) -> GateResult:
    """Served p95 latency: BLOCK when the whole CI of the ratio is above ``1 + max``; WARN when
    only the point estimate is; not measured (no latency column) is WARN.  ``simulated``: the
    latencies were resampled from in-process probes (the demo canary), which never block, as the
    offline gate treats in-process latency."""
    name, limit = "latency_p95_increase", cfg.latency_p95_increase
    threshold = f"p95 ratio - 1 <= {limit:.0%}"
    if ratio is None or math.isnan(ratio):
        return GateResult(
            name, Status.WARN, None, threshold, "not measured: the log has no latency column",
            False, group="contract", action="log latency_ms per request",
        )  # fmt: skip
    ms = f" ({p95_ms[0]:.1f} -> {p95_ms[1]:.1f} ms)" if p95_ms else ""
    what = f"served p95 {ratio - 1:+.1%}{ms}, 95% CI of the ratio {ci_low:.3f}-{ci_high:.3f}"
    if ci_low is not None and ci_low - 1 > limit and simulated:
        return GateResult(
            name, Status.WARN, ratio - 1, threshold,
            f"{what}: the whole interval is above +{limit:.0%}; SIMULATED from the in-process "
            "latency probes on this machine, not served latency",
            group="contract", action="measure both versions on their serving endpoints",
        )  # fmt: skip
    if ci_low is not None and ci_low - 1 > limit:
        return GateResult(
            name, Status.BLOCK, ratio - 1, threshold,
            f"{what}: the whole interval is above +{limit:.0%} (peaks can cascade into failures)",
            group="contract", action="size the serving fleet for B (or speed B up) first",
        )  # fmt: skip
    if ratio - 1 > limit:
        return GateResult(
            name, Status.WARN, ratio - 1, threshold,
            f"{what}: above +{limit:.0%}, but the interval reaches below it",
            group="contract", action="keep the canary running to decide the latency",
        )  # fmt: skip
    return GateResult(name, Status.PASS, ratio - 1, threshold, what, group="contract")
