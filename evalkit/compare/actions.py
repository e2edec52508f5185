"""Actions before switching: what the team must change for B, computed from the evaluation.

Each action is a checklist item ``{name, observed, expected, why, what_to_do}``: the score
thresholds, the re-index call, the client settings to pin and the input length.  What each says:
docs/explanation/verdict.md ("The checklist and the actions").

>>> from evalkit.compare.thresholds import ScorePopulation, map_threshold
>>> pop = ScorePopulation.of(np.array([0.1, 0.2, 0.5, 0.7]), np.array([0.8, 0.82, 0.9, 0.95]))
>>> [a["what_to_do"] for a in threshold_actions([map_threshold(pop, 0.3)])]
['change the 0.30 cut-off to 0.86']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from evalkit.compare.reindex_analysis import ReindexAnalysis, dims_differ
from evalkit.compare.thresholds import ThresholdMapping, threshold_key


def item(name: str, observed: Any, expected: Any, why: str, what_to_do: str) -> dict[str, Any]:
    """One checklist entry (the same shape as a gate's :meth:`GateResult.item`)."""
    return dict(name=name, observed=observed, expected=expected, why=why, what_to_do=what_to_do)


def _pr(m: ThresholdMapping, precision: float, recall: float) -> str:
    def f(x: float) -> str:
        return "n/a" if x is None or not math.isfinite(x) else f"{x:.2f}"

    if not m.n_nonrelevant:  # precision would be 1 by construction: not shown
        return f"recall {f(recall)}"
    return f"precision {f(precision)}, recall {f(recall)}"


def threshold_actions(
    mappings: Sequence[ThresholdMapping], tolerance: float = 0.005
) -> list[dict[str, Any]]:
    """One action per threshold that moved by more than ``tolerance`` or has no mapping."""
    out = []
    for m in mappings:
        name, (lo, hi) = f"score_threshold_{threshold_key(m.threshold)}", m.candidate_range
        if m.n_pairs == 0:
            continue
        if m.mapped is None:
            out.append(
                item(
                    name,
                    "no mapping",
                    m.threshold,
                    f"{m.share_below:.0%} of the pairs score below {m.threshold:.2f} under A, "
                    f"so today the cut {'keeps every' if m.share_below == 0 else 'drops every'}"
                    " pair and no share of them can be matched on B's scale (B's scores span "
                    f"{lo:.2f} to {hi:.2f}). Population: "
                    f"{m.population}",
                    f"{m.no_mapping_reason()}; choose B's replacement for {m.threshold:.2f} "
                    "from B's scores",
                )
            )
            continue
        if abs(m.mapped - m.threshold) <= tolerance:
            continue
        no_precision = (
            " (precision: n/a, no judged non-relevant pairs)" if not m.n_nonrelevant else ""
        )
        out.append(
            item(
                name,
                round(m.mapped, 4),
                m.threshold,
                f"{m.share_below:.1%} of the pairs score below {m.threshold:.2f} under A; "
                f"under B the same share lies below {m.mapped:.2f} (B's scores span "
                f"{lo:.2f} to {hi:.2f}). As a relevance cut on the "
                f"{m.n_judged} judged pairs: A at {m.threshold:.2f} "
                f"{_pr(m, m.baseline_precision, m.baseline_recall)}; B at {m.mapped:.2f} "
                f"{_pr(m, m.candidate_precision, m.candidate_recall)}{no_precision}. "
                f"Population: {m.population}",
                f"change the {m.threshold:.2f} cut-off to {m.mapped:.2f}",
            )
        )
    return out


def reindex_action(
    reindex: ReindexAnalysis | None, baseline_dim: int | None, candidate_dim: int | None
) -> list[dict[str, Any]]:
    """The re-index call; without an analysis only differing dimensions make one."""
    if reindex is None:
        if not (baseline_dim and candidate_dim and baseline_dim != candidate_dim):
            return []
        reindex = dims_differ(baseline_dim, candidate_dim, "")
    if reindex.rolling_safe is None:
        observed = f"{reindex.baseline_dim} -> {reindex.candidate_dim} dimensions"
    else:
        observed = "rolling re-index safe" if reindex.rolling_safe else "atomic switch needed"
    return [
        item(
            "reindex",
            observed,
            "rolling re-index safe, or an atomic switch",
            reindex.detail or reindex.action,
            reindex.action,
        )
    ]


def _differs(a: Mapping[str, Any], b: Mapping[str, Any], key: str) -> bool:
    return (a.get(key) or None) != (b.get(key) or None)


def pin_actions(
    baseline: Mapping[str, Any],
    candidate: Mapping[str, Any],
    baseline_dim: int | None = None,
    candidate_dim: int | None = None,
) -> list[dict[str, Any]]:
    """Client settings every caller of B must use because they differ from A's (``model.*``)."""
    out = []
    dims = candidate.get("dimensions")
    if dims or (baseline_dim and candidate_dim and baseline_dim != candidate_dim):
        n = dims or candidate_dim
        out.append(
            item(
                "pin_dimensions",
                candidate_dim,
                baseline_dim,
                f"B was evaluated with {n}-dimensional vectors"
                + (" (truncated from the model's native size)" if dims else "")
                + (f"; A has {baseline_dim}" if baseline_dim else ""),
                f"pin dimensions={n} in every client and in the index schema",
            )
        )
    if _differs(baseline, candidate, "normalize") and candidate.get("normalize") is not None:
        on = bool(candidate.get("normalize"))
        out.append(
            item(
                "pin_normalisation",
                on,
                baseline.get("normalize"),
                f"evalkit {'L2-normalised' if on else 'did not normalise'} B's vectors, "
                f"{'unlike' if on != bool(baseline.get('normalize')) else 'like'} A's",
                "L2-normalise B's vectors in every client" if on else "send B's raw vectors",
            )
        )
    for key, label in (("query_prefix", "queries"), ("document_prefix", "documents")):
        if _differs(baseline, candidate, key):
            p = candidate.get(key) or ""
            out.append(
                item(
                    f"pin_{key}",
                    p,
                    baseline.get(key) or "",
                    f"B was evaluated with {label} prefixed by {p!r} "
                    f"(A: {baseline.get(key) or ''!r})",
                    f"prefix {label} with {p!r} in every client"
                    if p
                    else f"stop prefixing {label} for B",
                )
            )
    for key in ("query_input_type", "document_input_type"):
        if _differs(baseline, candidate, key) and candidate.get(key):
            out.append(
                item(
                    f"pin_{key}",
                    candidate.get(key),
                    baseline.get(key),
                    f"B was evaluated with {key}={candidate.get(key)!r}",
                    f"send {key.replace('_', ' ')} {candidate.get(key)!r} in every request to B",
                )
            )
    return out


def max_words(checks: Sequence[Mapping[str, Any]] | None, version: str) -> int | None:
    """The largest input (words) a version's endpoint accepted, from the long-text check."""
    for c in checks or ():
        if c.get("version") not in (None, version):
            continue
        obs = c.get("observed")
        if isinstance(obs, Mapping) and obs.get("max_accepted_words") is not None:
            if obs.get("min_refused_words") is None:
                return None  # everything accepted up to the search cap: no limit found
            return int(obs["max_accepted_words"])
    return None


def length_action(
    checks: Sequence[Mapping[str, Any]] | None, baseline: str, candidate: str
) -> list[dict[str, Any]]:
    """Move the splitting limit when B's endpoint accepts shorter inputs than A's."""
    b, c = max_words(checks, baseline), max_words(checks, candidate)
    if c is None or (b is not None and c >= b):
        return []
    was = f"from {b} to {c} words" if b is not None else f"to at most {c} words"
    return [
        item(
            "max_input_length",
            c,
            b,
            f"B's endpoint accepted at most {c} words in the long-text check"
            + (f" (A's: {b})" if b is not None else ""),
            f"splitting logic must move {was} per text before embedding with B",
        )
    ]


def as_int(x: Any) -> int | None:
    """A vector dimension from run statistics (float in MLflow) or None."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return int(v) if np.isfinite(v) and v > 0 else None
