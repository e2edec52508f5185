"""Release gates: each turns one comparison number into PASS / WARN / BLOCK with a one-line reason.

One function per gate (``gate_<name>``), grouped by question in :data:`GROUPS`.  An unmeasured
input gives ``on_not_measured`` (WARN by default), never PASS.  Every gate, its threshold and
default: docs/explanation/verdict.md.

>>> cfg = GateConfig()
>>> g = gate_top_k_agreement(cfg, agreement=0.85, n_queries=40)
>>> g.name, g.status, g.threshold
('top_k_agreement', <Status.WARN: 'WARN'>, '>= 0.92')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from evalkit.compare.calls import STATUS_TEXT, Quality, QualityCall, _bound
from evalkit.compare.gate_config import GateConfig
from evalkit.compare.power import show_count
from evalkit.compare.status import Status, jsonable
from evalkit.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.compare.coverage import Coverage


#: The question each gate answers to (see :func:`group_of`).
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
    """Fill a gate's ``group`` and, when it does not pass, its default ``action``."""
    key = "agreement" if g.name.endswith("_agreement") else g.name
    action = g.action
    if not action and g.status != Status.PASS:
        if g.measured:
            action = FOLLOW_UPS.get(key, "")
        else:
            action = NOT_MEASURED.get(key, "measure it before switching (see why)")
    return replace(g, group=g.group or group_of(g.name), action=action)


def group_of(gate: str) -> str:
    """``quality``, ``behaviour`` or ``contract`` for a gate name.

    >>> group_of("top_k_agreement"), group_of("primary_metric"), group_of("endpoint_checks")
    ('behaviour', 'quality', 'contract')
    """
    if gate.startswith("top") and gate.endswith("_agreement"):
        return "behaviour"
    return GROUPS.get(gate, "contract")


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
        """The fields for verdict.json (status as text, a non-finite observed value as None)."""
        return jsonable(self)

    def item(self) -> dict[str, Any]:
        """The checklist entry: ``name, status, group, observed, expected, why, what_to_do``."""
        return {
            "name": self.name,
            "status": str(self.status),
            "group": self.group or group_of(self.name),
            "observed": self.to_dict()["observed"],
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
    what = f"mean cosine moved {_fmt(shift)} on {n_pairs} pairs"
    if abs(shift) <= limit:
        return GateResult(name, Status.PASS, shift, threshold, f"{what}, within {limit:g}")
    why = f"{what} (> {limit:g}): the score scale changed (a new model, or a normalisation change)"
    return GateResult(name, cfg.mean_cosine_shift.on_fail, shift, threshold, why)


def gate_top_k_agreement(
    cfg: GateConfig, agreement: float | None, n_queries: int = 0
) -> GateResult:
    """Mean top-k overlap between the versions' rankings ``>= min``."""
    k, limit = cfg.top_k_agreement.k, cfg.top_k_agreement.min
    name, threshold = "top_k_agreement", f">= {limit:g}"
    if agreement is None or math.isnan(agreement) or n_queries == 0:
        return _not_measured(cfg, name, threshold, "no rankings for both versions")
    what = f"{agreement:.1%} of top-{k} results shared on average over {n_queries} queries"
    if agreement >= limit:
        return GateResult(name, Status.PASS, agreement, threshold, what)
    why = f"only {what} (< {limit:.0%})"
    return GateResult(name, cfg.top_k_agreement.on_fail, agreement, threshold, why)


def gate_low_score_share(
    cfg: GateConfig,
    delta: float | None,
    baseline: float = math.nan,
    candidate: float = math.nan,
    *,
    scale_shift: float | None = None,
) -> GateResult:
    """Rise of the low-score share ``<= max_increase``; ``scale_shift`` (the mean cosine shift when
    the score scale changed) makes the action say to move the cut-off."""
    limit, t = cfg.low_score_share.max_increase, cfg.low_score_share.threshold
    name, threshold = "low_score_share_increase", f"<= {limit:g}"
    if delta is None or math.isnan(delta):
        return _not_measured(cfg, name, threshold, "no pair similarities for both versions")
    what = f"share of pairs below {t:g} went {baseline:.1%} -> {candidate:.1%} ({_fmt(delta, 3)})"
    if delta <= limit:
        return GateResult(name, Status.PASS, delta, threshold, what)
    why, action = f"{what}, more than {limit:g}: score thresholds would drop relevant items", ""
    if scale_shift is not None:
        why = (
            f"{what}, more than {limit:g}: B scores on another scale (see mean_cosine_shift), so "
            f"a fixed cut-off at {t:g} drops items that B still ranks well"
        )
        action = (
            f"the score scale changed (mean cosine {_fmt(scale_shift)}): re-set every score "
            "cut-off on B's scale (the threshold mapping in the actions); the quality gates, not "
            "this share, say whether B understands queries worse"
        )
    return GateResult(name, cfg.low_score_share.on_fail, delta, threshold, why, action=action)


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

    With an interval of the ratio it fails only when ``ci_low - 1 > max_increase``; one that
    straddles the limit (or is NaN) is WARN; without one (None) the point estimate decides.  Not
    ``comparable`` and ``in_process`` versions are WARN, never a failure."""
    limit, on_fail = cfg.latency_p95.max_increase, cfg.latency_p95.on_fail
    name, threshold = "latency_p95_increase", f"<= {limit:.0%}"
    if not measured or ratio is None or math.isnan(ratio):
        why = "no embedding requests were timed for both versions (latency.probe=0 and all "
        return _not_measured(cfg, name, threshold, why + "vectors cached?)")
    increase = ratio - 1.0
    notes = "; ".join(n for n in (retried, reused) if n)
    notes = f"; {notes}" if notes else ""

    def result(status: Status, why: str, *, measured: bool = True, action: str = "") -> GateResult:
        return GateResult(name, status, increase, threshold, why, measured, action=action)

    if not comparable:
        why = (
            f"not comparable ({note}): p95 ratio {ratio:.2f} measured at different load or "
            f"serving set-up; latency is not gated{notes}"
        )
        return result(Status.WARN, why, measured=False)
    has_ci = ci_low is not None and ci_high is not None and not math.isnan(ci_low)
    ci = f", 95% CI of the ratio {ci_low:.2f}-{ci_high:.2f}" if has_ci else ""
    observed = f"p95 latency {increase:+.0%} vs baseline (ratio {ratio:.2f}{ci}{notes})"
    if increase <= limit:
        return result(Status.PASS, observed)
    where = "measured in process on this machine, not on a serving endpoint"
    if ci_low is None or ci_high is None:  # no interval given: the point estimate decides
        why = f"{observed}, more than {limit:.0%}" + (f" ({where})" if in_process else "")
        return result(Status.WARN if in_process else on_fail, why)
    if not math.isnan(ci_low) and ci_low - 1.0 > limit:
        what = f"{observed}: the whole interval is above +{limit:.0%}"
        if not in_process:
            return result(on_fail, what)
        action = (
            "measure both versions on their serving endpoints (the openai backend) "
            "before sizing the fleet for B"
        )
        return result(Status.WARN, f"{what}, but {where}", action=action)
    why = "its interval reaches below it" if has_ci else "there is no interval (< 2 requests)"
    return result(
        Status.WARN,
        f"not conclusive: {observed}, above +{limit:.0%} but {why}; "
        "raise latency.min_requests to decide",
    )


def judge_more(q: QualityCall) -> str:
    """What to judge to decide ``q`` (empty when no plan can be made).

    >>> q = QualityCall("ndcg@10", 0.03, -0.01, 0.07, 0.2, 0.2, Quality.INCONCLUSIVE, 0.01,
    ...                 n_queries=52, queries_needed=128)
    >>> judge_more(replace(q, queries_in_set=60))  # doctest: +NORMALIZE_WHITESPACE
    'judge about 128 queries in all (76 more): the query set holds 60, so sample about 68 new
    queries from the query log and judge them'
    """
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
    """Non-inferiority of the primary metric, tested alone at the full alpha."""
    from evalkit.metrics.ir import mlflow_name

    metric = mlflow_name(cfg.metric)
    name, margin = "primary_metric", cfg.primary_metric.margin
    threshold = f"{metric}: CI of the difference above -{margin:g} (no worse)"
    if q is None or math.isnan(q.delta) or n_queries == 0:
        return _not_measured(cfg, name, threshold, f"no per-query {metric} for both versions")
    what = f"{q.describe()} over {n_queries} queries: {STATUS_TEXT[q.status]}"
    if q.status == Quality.BETTER:
        return GateResult(name, Status.PASS, q.delta, threshold, what)
    if q.status == Quality.NO_WORSE:
        return GateResult(name, Status.PASS, q.delta, threshold, what + _not_shown_better(cfg, q))
    if q.status == Quality.WORSE:
        why = f"{what} (the interval lies below 0 and reaches below -{margin:g})"
        action = f"do not switch: B ranks worse on {metric}; read the worst regressions"
        return GateResult(name, cfg.primary_metric.on_fail, q.delta, threshold, why, action=action)
    why, action = _primary_undecided(q, what, margin, worklist)
    return GateResult(name, cfg.on_inconclusive, q.delta, threshold, why, action=action)


def _not_shown_better(cfg: GateConfig, q: QualityCall) -> str:
    decide = judge_more(q)
    gain = f"; not shown better (p >= {cfg.primary_metric.alpha:g})" if q.delta > 0 else ""
    if decide:
        gain += f": {decide}" + ("" if q.plan is not None else " to tell whether the gain is real")
    if q.note:
        gain += f"; {q.note}"
    return gain


def _primary_undecided(q: QualityCall, what: str, margin: float, worklist: bool) -> tuple[str, str]:
    if q.note:  # judgments too sparse: the interval's call was not confirmed on judged items
        action = (
            "judgments too sparse: judge judging_worklist.csv (the unjudged results most "
            "likely to move the delta), then re-run"
            if worklist
            else "judgments too sparse: judge both versions' top results, then re-run"
        )
        return f"{what}: {q.note}", action
    direction = "gain" if q.delta > 0 else "loss" if q.delta < 0 else "difference"
    why = (
        f"{what}: the interval reaches below -{margin:g} and above 0, so the data cannot "
        f"show that B is no worse (an observed {direction}, not enough evidence either way)"
    )
    start = ", starting with judging_worklist.csv" if worklist else ""
    return why, f"not enough evidence: {judge_more(q) or 'judge more queries'}{start}, then re-run"


def _secondary_summary(others: Sequence[QualityCall], primary_passed: bool) -> str:
    from evalkit.metrics.ir import mlflow_name

    n_worse = sum(c.status == Quality.WORSE for c in others)
    labels = {
        Quality.WORSE: f"worse ({n_worse} of {len(others)})",
        Quality.INCONCLUSIVE: "inconclusive",
        Quality.BETTER: "gains" if primary_passed else "observed gains (not claimed)",
        Quality.NO_WORSE: "no worse",
    }
    parts = []
    for call, label in labels.items():
        if group := [c for c in others if c.status == call]:
            listed = ", ".join(
                f"{mlflow_name(c.metric)} {c.delta:+.4f} [{_bound(c.ci_low)}, {_bound(c.ci_high)}]"
                for c in group
            )
            parts.append(f"{label}: {listed}")
    adjusted = any(c.p_corrected != c.p_value for c in others)
    return "; ".join(parts) + (" (Holm-adjusted intervals)" if adjusted else "")


def gate_secondary_metrics(
    cfg: GateConfig, calls: Sequence[QualityCall], *, primary_passed: bool = True
) -> GateResult:
    """The other metrics (Holm among themselves): a worse or inconclusive one -> ``on_worse``.

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
    what = _secondary_summary(others, primary_passed)
    on_worse = cfg.secondary_metrics.on_worse
    if worse:
        action = (
            "decide whether this loss matters for your product (it is not the primary metric); "
            "read the worst regressions"
        )
        return GateResult(name, on_worse, float(len(worse)), threshold, what, action=action)
    if not primary_passed:
        why = (
            "not tested: the primary metric was not shown no worse, so the secondary family is "
            f"not tested (fixed sequence); observed {what}"
        )
        action = "decide the primary metric first (see its action)"
        return GateResult(name, Status.WARN, float(len(others)), threshold, why, action=action)
    if inconclusive:
        action = (
            "judge more queries if these metrics matter for your product (judging_worklist.csv)"
        )
        return GateResult(name, on_worse, float(len(inconclusive)), threshold, what, action=action)
    return GateResult(name, Status.PASS, 0.0, threshold, f"all {len(others)} no worse; {what}")


def gate_click_correlation(
    cfg: GateConfig,
    pooled: QualityCall | None,
    within: QualityCall | None,
    *,
    primary_passed: bool = True,
) -> GateResult:
    """Click agreement on the pooled and within-query differences: a significant loss in either
    -> ``on_worse``; both shown no worse -> PASS; else WARN."""
    stat, margin = cfg.click_correlation.statistic, cfg.click_correlation.margin
    name = "click_correlation"
    threshold = (
        f"pooled {stat} and within-query spearman: no significant loss, CI above -{margin:g}"
    )
    present = [q for q in (pooled, within) if q is not None and not math.isnan(q.delta)]
    if not present:
        return _not_measured(cfg, name, threshold, "no click log with both versions' similarities")
    evidence = "; ".join(_click_difference(q) for q in present)
    if losses := [q for q in present if q.ci_high < 0]:
        which = " and ".join(f"the {_click_label(q)} difference" for q in losses)
        one = len(losses) == 1
        why = (
            f"{which} {'is a' if one else 'are'} significant loss{'' if one else 'es'} "
            f"(decides): {evidence}"
        )
        action = (
            "B's scores follow clicks less closely: confirm on live traffic "
            "(interleaving or an A/B test) before switching"
        )
        on_worse = cfg.click_correlation.on_worse
        return GateResult(name, on_worse, losses[0].delta, threshold, why, action=action)
    if not primary_passed:
        why = (
            "not tested: the primary metric was not shown no worse (fixed sequence); no "
            f"significant loss; observed {evidence}"
        )
        action = "decide the primary metric first (see its action)"
        return GateResult(name, Status.WARN, present[0].delta, threshold, why, action=action)
    if undecided := [q for q in present if not q.status.shown_no_worse]:
        which = " and ".join(f"{_click_label(q)} difference" for q in undecided)
        why = (
            f"{which} undecided: its interval reaches below -{margin:g} (not shown no worse, no "
            f"significant loss either): {evidence}"
        )
        action = "confirm on live traffic (interleaving or an A/B test) or log more clicks"
        return GateResult(name, Status.WARN, undecided[0].delta, threshold, why, action=action)
    gains = [q for q in present if q.status == Quality.BETTER]
    head = (
        f"{' and '.join(_click_label(q) for q in gains)} gain{'s' if len(gains) > 1 else ''}"
        if gains
        else "no worse"
    )
    return GateResult(name, Status.PASS, present[0].delta, threshold, f"{head}: {evidence}")


def _click_label(q: QualityCall) -> str:
    return "within-query" if q.metric.endswith("_within") else "pooled"


def _click_difference(q: QualityCall) -> str:
    """
    >>> _click_difference(QualityCall("click_spearman", 0.074, 0.039, 0.110, 0.001, 0.002,
    ...                               Quality.BETTER, 0.02, family="secondary"))
    'pooled spearman +0.0740 [Holm-adjusted 95% CI +0.0390, +0.1100], p=0.002'
    """
    p = (
        "p=0 (no bootstrap replicate reached 0)"
        if q.p_corrected == 0.0
        else f"p={q.p_corrected:.2g}"
    )
    return (
        f"{_click_label(q)} {q.metric.removeprefix('click_')} {q.delta:+.4f} "
        f"[{q.ci_label()} {_bound(q.ci_low)}, {_bound(q.ci_high)}], " + p
    )


def gate_unjudged_increase(
    cfg: GateConfig, baseline: float | None, candidate: float | None, k: int = 10
) -> GateResult:
    """Rise of unjudged@k ``<= max_increase``."""
    name, limit = "unjudged_increase", cfg.unjudged.max_increase
    threshold = f"unjudged@{k} rises <= {limit:g}"
    if baseline is None or candidate is None or math.isnan(baseline) or math.isnan(candidate):
        return _not_measured(cfg, name, threshold, "no rankings and judgments for both versions")
    delta = candidate - baseline
    what = f"unjudged@{k} {baseline:.1%} -> {candidate:.1%} ({delta:+.3f})"
    if delta <= limit:
        return GateResult(name, Status.PASS, delta, threshold, what)
    why = f"{what}: unjudged items count as not relevant, which biases the metrics against B"
    action = f"judge B's new top-{k} results, then re-run: the quality call may be pessimistic"
    return GateResult(name, cfg.unjudged.on_fail, delta, threshold, why, action=action)


def gate_judgment_coverage(cfg: GateConfig, cov: Coverage | None) -> GateResult:
    """Unjudged share of each version's top k ``<= max_unjudged``; above it ``on_sparse``.

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
        why = f"{shares} (<= {limit:.0%}); {evidence}"
        return GateResult(name, Status.PASS, share, threshold, why)
    why = (
        f"judgments sparse: {shares} (> {limit:.0%}): unjudged results count as not relevant, "
        f"so the primary call must agree with the judged-only one; {evidence}"
    )
    action = (
        "judge judging_worklist.csv (the unjudged results most likely to move the delta), "
        "then re-run"
    )
    return GateResult(name, cfg.judgments.on_sparse, share, threshold, why, action=action)


def gate_vector_contract(
    cfg: GateConfig,
    baseline: Mapping[str, float] | None,
    candidate: Mapping[str, float] | None,
) -> GateResult:
    """Vectors keep the baseline's normalisation (``norm_min`` / ``norm_max`` of each version)."""
    name, tol = "vector_contract", cfg.vector_contract.norm_tolerance
    threshold = f"unit-length vectors stay unit-length (|norm - 1| <= {tol:g})"
    if not candidate or "norm_min" not in candidate:
        return _not_measured(cfg, name, threshold, "no vector norms for the candidate")

    def unit(s: Mapping[str, float]) -> bool:
        return abs(s["norm_min"] - 1.0) <= tol and abs(s["norm_max"] - 1.0) <= tol

    c_unit, norm = unit(candidate), float(candidate["norm_mean"])
    span = f"norms {candidate['norm_min']:.3f}..{candidate['norm_max']:.3f}"
    if not baseline or "norm_min" not in baseline:
        status = Status.PASS if c_unit else cfg.on_not_measured
        why = f"candidate {'unit-length' if c_unit else 'not unit-length'} ({span}); "
        return GateResult(name, status, norm, threshold, why + "baseline norms unknown", c_unit)
    if unit(baseline) and not c_unit:
        b_span = f"{baseline['norm_min']:.3f}..{baseline['norm_max']:.3f}"
        why = (
            f"baseline vectors are unit-length ({b_span}), the candidate's are not ({span}): "
            "inner-product scores are no longer cosines"
        )
        action = (
            "normalise the candidate's vectors (normalize=true) in every client and in the index"
        )
        return GateResult(name, cfg.vector_contract.on_fail, norm, threshold, why, action=action)
    why = f"{'unit-length' if c_unit else 'unnormalised'} like the baseline ({span})"
    return GateResult(name, Status.PASS, norm, threshold, why)


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
        if status not in ("PASS", "WARN", "FAIL"):
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
    """A FAIL -> ``on_fail``, a WARN warns; a check with a ``version`` key counts for it only."""
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
        why = f"{len(failed)} of {len(rows)} endpoint checks failed: {', '.join(failed)}"
        return GateResult(name, cfg.endpoint_checks.on_fail, float(len(failed)), threshold, why)
    if warned:
        why = f"{len(rows)} endpoint checks, none failed; warnings: {', '.join(warned)}"
        return GateResult(name, Status.WARN, 0.0, threshold, why)
    return GateResult(name, Status.PASS, 0.0, threshold, f"all {len(rows)} endpoint checks passed")
