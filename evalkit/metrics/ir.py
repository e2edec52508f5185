"""IR metrics of a replayed ranking, computed by ranx, overall and per query.

The config vocabulary is ranx's metric strings (``ndcg@10``, ``recall@100``, ``mrr@10``,
``map@100``); MLflow names replace ``@`` with ``_at_`` (``ndcg_at_10``), beside MLflow's own
retriever metrics.  Only queries with at least one judgment of grade >= 1 are scored - as BEIR
does; trec_eval would give such queries 0 - and how many were left out is reported.

Definitions (all match trec_eval's ``ndcg_cut``, ``recall``, ``recip_rank`` and ``map_cut`` on a
run truncated at k): nDCG uses linear gains (the grade) with the ideal DCG computed at k; AP@k
divides by the number of relevant items, not by those retrieved.

>>> import numpy as np
>>> from evalkit.retrieve.ranking import Ranking
>>> r = Ranking(["q1"], np.array([[1, 0]]), np.array([[0.9, 0.5]], dtype=np.float32), ["d1", "d2"])
>>> s = score(r, {"q1": {"d1": 1}}, ["mrr@10", "recall@1"])
>>> s.overall, s.n_scored
({'mrr@10': 0.5, 'recall@1': 0.0}, 1)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ranx import Qrels, Run, evaluate

from evalkit.errors import ConfigError, DataError
from evalkit.retrieve.ranking import Ranking
from evalkit.retrieve.trec import rank_scores

DEFAULT_METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "map@100")
_METRIC = re.compile(r"^(ndcg|recall|mrr|map|precision|hit_rate|ndcg_burges|r_precision)(@\d+)?$")


def mlflow_name(metric: str) -> str:
    """``ndcg@10`` -> ``ndcg_at_10``.

    >>> mlflow_name("recall@100"), mlflow_name("mrr")
    ('recall_at_100', 'mrr')
    """
    return metric.replace("@", "_at_")


def check_metrics(metrics: list[str], k: int) -> list[str]:
    """Validate metric strings and their cut-offs against the retrieval depth ``k``."""
    out = []
    for m in metrics:
        m = str(m).strip()
        match = _METRIC.match(m)
        if not match:
            raise ConfigError(
                f"metric {m!r} is not supported (expected e.g. ndcg@10, recall@100, mrr@10, map@100)"
            )
        if match.group(2) and int(match.group(2)[1:]) > k:
            raise ConfigError(f"metric {m!r} needs depth {match.group(2)[1:]} but k={k}; raise k")
        out.append(m)
    return out


def check_primary_metric(primary: str, metrics: list[str]) -> str:
    """The verdict's metric must be one of the scored ``metrics`` (also with a single model).

    >>> check_primary_metric("ndcg@10", ["ndcg@10", "mrr@10"])
    'ndcg@10'
    """
    primary = str(primary).strip()
    if primary not in metrics:
        raise ConfigError(
            f"primary_metric={primary!r} is not in metrics={list(metrics)} "
            "(expected one of the scored metrics; add it to metrics or pick another)"
        )
    return primary


def check_scorable(
    qrels: dict[str, dict[str, int]], query_ids: Sequence[str], source: str = "judgments"
) -> None:
    """:class:`DataError` when no replayed query has a judgment of grade >= 1 (every metric
    would be undefined): say how many judgments there are and that all are grade 0.

    >>> check_scorable({"q1": {"d1": 0, "d2": 0}}, ["q1"], "qrels.tsv")
    Traceback (most recent call last):
    ...
    evalkit.errors.DataError: qrels.tsv: nothing to score: all 2 judgments of the 1 replayed judged queries have grade 0 (expected at least one judgment of grade >= 1)
    """
    present = set(query_ids)
    judged = {q: j for q, j in qrels.items() if q in present}
    if any(g >= 1 for j in judged.values() for g in j.values()):
        return
    n = sum(len(j) for j in judged.values())
    raise DataError(
        f"nothing to score: all {n} judgments of the {len(judged)} replayed judged queries "
        "have grade 0",
        file=source or "judgments",
        expected="at least one judgment of grade >= 1",
    )


def missing_relevant(
    qrels: dict[str, dict[str, int]], query_ids: Sequence[str], item_ids: Sequence[str]
) -> tuple[int, int]:
    """``(judgments, items)``: relevant judgments (grade >= 1) of replayed queries whose item is
    not in the catalog, and how many distinct items they name.  Such items stay in the qrels
    (relevant, never retrievable: trec_eval's unretrieved relevant document), so they lower
    recall and nDCG instead of vanishing from the ideal DCG and the recall denominators.

    >>> missing_relevant({"q1": {"d1": 2, "gone": 1, "gone0": 0}, "q2": {"gone": 3}}, ["q1", "q2"], ["d1"])
    (2, 1)
    """
    present, catalog = set(query_ids), set(item_ids)
    names = [
        d
        for q, j in qrels.items()
        if q in present
        for d, g in j.items()
        if g >= 1 and d not in catalog
    ]
    return len(names), len(set(names))


@dataclass(frozen=True)
class Scores:
    """Metric means over scored queries and per-query values (``{metric: {query_id: value}}``)."""

    overall: dict[str, float]
    per_query: dict[str, dict[str, float]]
    n_scored: int
    n_without_relevant: int = 0
    scored_query_ids: list[str] = field(default_factory=list)


def scorable_qrels(
    qrels: dict[str, dict[str, int]], query_ids: list[str]
) -> dict[str, dict[str, int]]:
    """Judgments of replayed queries that have at least one item of grade >= 1."""
    present = set(query_ids)
    return {
        q: dict(j) for q, j in qrels.items() if q in present and any(g >= 1 for g in j.values())
    }


def score(ranking: Ranking, qrels: dict[str, dict[str, int]], metrics: list[str]) -> Scores:
    """Evaluate ``ranking`` against ``qrels`` with ranx."""
    judged = scorable_qrels(qrels, ranking.query_ids)
    n_without = sum(1 for q in ranking.query_ids if q in qrels and q not in judged)
    if not judged:
        return Scores({m: float("nan") for m in metrics}, {m: {} for m in metrics}, 0, n_without)
    qids = sorted(judged)
    run = Run(rank_scores(ranking, qids))
    evaluate(Qrels(judged), run, list(metrics), return_mean=False, save_results_in_run=True)
    per_query = {m: {q: float(v) for q, v in run.scores[m].items()} for m in metrics}
    overall = {m: float(sum(v.values()) / len(v)) for m, v in per_query.items()}
    return Scores(overall, per_query, len(qids), n_without, qids)
