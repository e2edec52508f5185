"""What one evaluated model version hands to the compare and track layers (plain data).

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
    """One model version's outputs on one dataset: metrics by ranx name (``ndcg@10``), similarity
    of every judged pair (``pair_ids``, same order for all versions) and logged pair (NaN:
    unknown), ``latencies_s`` in s per request, ``throughput`` in texts/s; ``retrieved_*``:
    :mod:`evalkit.run.retrieved_pairs`; ``judged_only``: empty when read from MLflow."""

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
