"""What one evaluated model version hands to the compare and track layers.

A ``VersionResult`` is plain data: it can be built by the pipeline from fresh embeddings, or
rebuilt from an earlier MLflow run's artifacts (per-query table + TREC run file) so a new
candidate is compared with a logged baseline without re-embedding it.

>>> import numpy as np
>>> vr = VersionResult(name="a", params={}, overall={"ndcg@10": 0.5},
...                    per_query={"ndcg@10": {"q1": 0.5}}, ranking=None)
>>> vr.metric("ndcg@10")
0.5
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evalkit.retrieve.ranking import Ranking


@dataclass
class VersionResult:
    """One model version's outputs on one dataset.

    - ``overall`` / ``per_query``: ranx metric strings (``ndcg@10``) -> mean / {query_id: value}.
    - ``pair_ids`` / ``pair_similarity``: cosine similarity of the version's query and item vectors
      for every judged or logged (query_id, item_id) pair, aligned with ``pair_ids`` (same order for
      all versions of one evaluation); ``click_similarity`` the same for the click log's pairs (in
      ``ClickLog.pairs()`` order, NaN where a pair's query or item is unknown).
    - ``retrieved_pair_ids`` / ``retrieved_similarity``: the version's scores of the unjudged
      top-``retrieved_k`` pairs of judged queries under every evaluated version
      (:mod:`evalkit.run.retrieved_pairs`; the score population of the threshold mapping).
    - ``latencies_s``: per embedding request made while embedding the queries at the configured
      batch size and concurrency (empty when every vector came from the cache), ``throughput`` in
      texts/s; the pipeline replaces them (and ``batch_size`` / ``concurrency``) by the latency
      probe's (:mod:`evalkit.embed.latency_probe`) before the comparison.
    - ``judged_only``: per-query values of the primary metric on the condensed list (judged items
      only, :mod:`evalkit.metrics.judged_only`); empty for a version rebuilt from MLflow (the
      comparison computes them from its ranking).
    """

    name: str
    params: dict[str, Any]
    overall: dict[str, float]
    per_query: dict[str, dict[str, float]]
    ranking: Ranking | None
    pair_ids: list[tuple[str, str]] = field(default_factory=list)
    pair_similarity: np.ndarray | None = None
    latencies_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    throughput: float | None = None
    batch_size: int | None = None
    concurrency: int | None = None
    fingerprint: dict[str, str] = field(default_factory=dict)
    click_similarity: np.ndarray | None = None
    run_id: str | None = None
    extra: dict[str, float] = field(default_factory=dict)
    retrieved_pair_ids: list[tuple[str, str]] = field(default_factory=list)
    retrieved_similarity: np.ndarray | None = None
    retrieved_k: int = 0
    judged_only: dict[str, dict[str, float]] = field(default_factory=dict)

    def metric(self, name: str) -> float:
        return float(self.overall[name])
