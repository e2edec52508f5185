"""The canary's release gates (``gates.online`` in ``conf/gates/*.yaml``), one function per gate;
what each passes on: docs/how-to/online-ab.md ("The analyses").

>>> g = OnlineGates.from_mapping({"ctr": {"margin": 0.01}})
>>> g.ctr.margin, g.latency_p95_increase, g.srm_alpha
(0.01, 0.2, 0.001)
"""

from __future__ import annotations

import math
from functools import partial

from evalkit.compare.calls import STATUS_TEXT, Quality, QualityCall
from evalkit.compare.gate_rules import GateResult
from evalkit.compare.status import Status
from evalkit.online.online_settings import OnlineGates

__all__ = ["OnlineGates", "gate_latency", "gate_ratio", "gate_sample_ratio", "gate_score_click"]


def gate_sample_ratio(
    cfg: OnlineGates, p: float, control: int, treatment: int, split: float, in_both: int = 0
) -> GateResult:
    """Sample ratio mismatch: BLOCK at p < ``srm_alpha`` or when a unit is in both arms."""
    threshold = f"chi-square p >= {cfg.srm_alpha:g} and no unit in both arms"
    gate = partial(GateResult, "sample_ratio", threshold=threshold, group="contract")
    total = control + treatment
    share = treatment / total if total else math.nan
    what = (
        f"{control:,} control / {treatment:,} treatment units ({share:.2%} treatment, planned "
        f"{split:.0%}), chi-square p={p:.3g}"
    )
    if in_both:
        return gate(
            Status.BLOCK,
            float(in_both),
            reason=f"{in_both:,} units were served by both arms: the assignment leaked, so no "
            f"other figure can be trusted; {what}",
            action="fix the assignment (one arm per unit for the whole canary), then restart it",
        )
    if not math.isnan(p) and p < cfg.srm_alpha:
        return gate(
            Status.BLOCK,
            p,
            reason=f"traffic split broken, no other figure can be trusted: {what}",
            action="find why units are lost or duplicated in one arm (assignment, logging, bots), "
            "fix it and restart the canary",
        )
    return gate(Status.PASS, p, reason=what)


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
    """A click metric's non-inferiority call (request CTR decides; the others warn)."""
    if q is None:
        return GateResult(
            name, Status.WARN, None, "not measured", f"not measured: {what_missing}", False,
            group="quality", action="log the column it needs",
        )  # fmt: skip
    threshold = f"B - A interval above -{q.margin:g} (no worse)"
    gate = partial(GateResult, name, threshold=threshold, group="quality")
    how = f" ({procedure})" if procedure else ""
    what = f"{q.describe()}{how} over {q.n_queries:,} units: {STATUS_TEXT[q.status]}"
    if q.status.shown_no_worse:
        return gate(Status.PASS, q.delta, reason=what)
    if q.status == Quality.WORSE:
        return gate(
            on_worse,
            q.delta,
            reason=f"{what}: B gets fewer clicks beyond noise",
            action="do not widen the canary; roll back and read the slices",
        )
    return gate(
        on_inconclusive,
        q.delta,
        reason=f"{what}: the interval spans -{q.margin:g} and 0 (not enough traffic either way)",
        action=decide or "keep the canary running until the interval decides",
    )


def gate_score_click(cfg: OnlineGates, q: QualityCall | None, what_missing: str = "") -> GateResult:
    """Within-request AUC of score vs click, B - A: a loss beyond the margin warns."""
    margin = cfg.score_click.margin
    threshold = f"within-request AUC loss <= {margin:g}"
    gate = partial(GateResult, "score_click", threshold=threshold, group="quality")
    if q is None:
        return gate(
            Status.WARN,
            None,
            reason=f"not measured: {what_missing}",
            measured=False,
            action="log similarity_score with every shown result",
        )
    what = f"within-request AUC of score vs click {q.describe()}"
    if q.ci_high < -margin:
        return gate(
            Status.WARN,
            q.delta,
            reason=f"B's scores track clicks less well: {what} (the whole interval is below "
            f"-{margin:g})",
            action="check B's score-dependent features (cut-offs, blending weights) on live "
            "traffic before the full switch",
        )
    return gate(Status.PASS, q.delta, reason=what)


def gate_latency(
    cfg: OnlineGates,
    ratio: float | None,
    ci_low: float | None,
    ci_high: float | None,
    p95_ms: tuple[float, float] | None = None,
    *,
    simulated: bool = False,
) -> GateResult:
    """Served p95 latency: BLOCK when the whole CI of the ratio is above ``1 + max``, WARN when
    only the point estimate is or when not measured; ``simulated`` (the demo's latencies,
    resampled from in-process probes) never blocks, as offline."""
    limit = cfg.latency_p95_increase
    threshold = f"p95 ratio - 1 <= {limit:.0%}"
    gate = partial(GateResult, "latency_p95_increase", threshold=threshold, group="contract")
    if ratio is None or math.isnan(ratio):
        return gate(
            Status.WARN,
            None,
            reason="not measured: the log has no latency column",
            measured=False,
            action="log latency_ms per request",
        )
    ms = f" ({p95_ms[0]:.1f} -> {p95_ms[1]:.1f} ms)" if p95_ms else ""
    what = f"served p95 {ratio - 1:+.1%}{ms}, 95% CI of the ratio {ci_low:.3f}-{ci_high:.3f}"
    above = ci_low is not None and ci_low - 1 > limit
    if above and simulated:
        return gate(
            Status.WARN,
            ratio - 1,
            reason=f"{what}: the whole interval is above +{limit:.0%}; SIMULATED from the "
            "in-process latency probes on this machine, not served latency",
            action="measure both versions on their serving endpoints",
        )
    if above:
        return gate(
            Status.BLOCK,
            ratio - 1,
            reason=f"{what}: the whole interval is above +{limit:.0%} (peaks can cascade into "
            "failures)",
            action="size the serving fleet for B (or speed B up) first",
        )
    if ratio - 1 > limit:
        return gate(
            Status.WARN,
            ratio - 1,
            reason=f"{what}: above +{limit:.0%}, but the interval reaches below it",
            action="keep the canary running to decide the latency",
        )
    return gate(Status.PASS, ratio - 1, reason=what)
