"""How differently does B rank and score?  Score drift, ranking overlap, unjudged@k, the
score-threshold mapping and the behaviour gates of one comparison.

>>> from evalkit.compare.gate_rules import GateConfig
>>> from evalkit.compare.compare_settings import CompareSettings
>>> from evalkit.results import VersionResult
>>> pq = {"ndcg@10": {"q1": 0.5}}
>>> a, b = VersionResult("a", {}, {}, pq, None), VersionResult("b", {}, {}, pq, None)
>>> ans = answer_behaviour(a, b, None, GateConfig(), CompareSettings())
>>> [(g.name, g.measured) for g in ans.gates][:2]
[('top_k_agreement', False), ('mean_cosine_shift', False)]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from evalkit.compare.compare_settings import CompareSettings
from evalkit.compare.drift import SimilarityDrift, align_pairs, similarity_drift
from evalkit.compare.gate_config import GateConfig
from evalkit.compare.gate_rules import (
    GateResult,
    gate_low_score_share,
    gate_mean_cosine_shift,
    gate_top_k_agreement,
    gate_unjudged_increase,
)
from evalkit.compare.overlap import OverlapSummary, RankingOverlap, ranking_overlap
from evalkit.compare.thresholds import ThresholdMapping, map_thresholds, population_of
from evalkit.compare.unjudged import (
    UnjudgedAtK,
    UnjudgedSummary,
    judged_pairs_from_qrels,
    unjudged_at_k,
)
from evalkit.data.schema import EvalData
from evalkit.results import VersionResult


@dataclass
class BehaviourAnswer:
    """The behaviour figures and gates, plus the per-pair and per-query inputs slices subset."""

    pair_ids: list[tuple[str, str]]
    pair_b: np.ndarray | None = None
    pair_c: np.ndarray | None = None
    ranking_overlap: RankingOverlap | None = None
    unjudged_at: dict[str, UnjudgedAtK] = field(default_factory=dict)
    drift: SimilarityDrift | None = None
    overlap: OverlapSummary | None = None
    unjudged: dict[str, UnjudgedSummary] = field(default_factory=dict)
    thresholds: list[ThresholdMapping] = field(default_factory=list)
    gates: list[GateResult] = field(default_factory=list)

    def drift_of(self, cfg: GateConfig, mask: np.ndarray | None = None) -> SimilarityDrift | None:
        """Score drift over all pairs, or over the pairs ``mask`` selects (a slice)."""
        if self.pair_b is None or self.pair_c is None:
            return None
        b, c = self.pair_b, self.pair_c
        if mask is not None:
            b, c = b[mask], c[mask]
        return similarity_drift(b, c, cfg.low_score_share.threshold)


def _behaviour_gates(
    cfg: GateConfig,
    drift: SimilarityDrift | None,
    overlap: OverlapSummary | None,
    unjudged: Mapping[str, UnjudgedSummary],
    names: tuple[str, str],
) -> list[GateResult]:
    ub, uc = unjudged.get(names[0]), unjudged.get(names[1])
    shift = drift.mean_shift if drift else None
    changed = shift if shift is not None and abs(shift) > cfg.mean_cosine_shift.max_abs else None
    low = (drift.baseline_low_share, drift.candidate_low_share) if drift else (math.nan, math.nan)
    return [
        gate_top_k_agreement(
            cfg, overlap.agreement if overlap else None, overlap.n_queries if overlap else 0
        ),
        gate_mean_cosine_shift(cfg, shift, drift.n_pairs if drift else 0),
        gate_low_score_share(
            cfg, drift.low_share_delta if drift else None, *low, scale_shift=changed
        ),
        gate_unjudged_increase(
            cfg, ub.mean if ub else None, uc.mean if uc else None, cfg.drift.unjudged_k
        ),
    ]


def answer_behaviour(
    baseline: VersionResult,
    candidate: VersionResult,
    data: EvalData | None,
    cfg: GateConfig,
    st: CompareSettings,
) -> BehaviourAnswer:
    """How much ``candidate`` changes rankings and scores relative to ``baseline``."""
    if baseline.pair_similarity is not None and candidate.pair_similarity is not None:
        pair_ids, pair_b, pair_c = align_pairs(
            baseline.pair_ids,
            baseline.pair_similarity,
            candidate.pair_ids,
            candidate.pair_similarity,
        )
        ans = BehaviourAnswer(list(pair_ids), pair_b, pair_c)
    else:
        ans = BehaviourAnswer(list(baseline.pair_ids))
    ans.drift = ans.drift_of(cfg)
    if baseline.ranking is not None and candidate.ranking is not None:
        ans.ranking_overlap = ranking_overlap(
            baseline.ranking, candidate.ranking, cfg.top_k_agreement.k, cfg.drift.rbo_p
        )
        ans.overlap = ans.ranking_overlap.summary()
    judged = ans.pair_ids or (
        judged_pairs_from_qrels(data.judgments.qrels) if data and data.judgments else []
    )
    for version in (baseline, candidate):
        if version.ranking is not None and judged:
            ans.unjudged_at[version.name] = unjudged_at_k(
                version.ranking, judged, cfg.drift.unjudged_k
            )
    ans.unjudged = {name: u.summary() for name, u in ans.unjudged_at.items()}
    if ans.pair_b is not None and st.score_thresholds:
        # Judged pairs + unjudged top-k pairs of A and B, each scored by both versions.
        qrels = data.judgments.qrels if data is not None and data.judgments else {}
        population = population_of(baseline, candidate, ans.pair_ids, ans.pair_b, ans.pair_c, qrels)
        ans.thresholds = map_thresholds(population, st.score_thresholds)
    ans.gates = _behaviour_gates(
        cfg, ans.drift, ans.overlap, ans.unjudged, (baseline.name, candidate.name)
    )
    return ans
