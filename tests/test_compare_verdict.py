"""End-to-end verdicts on a real test collection (Cranfield) with synthetic numpy embeddings.

Query and document vectors are random, with each judged document pulled towards its queries in
proportion to the grade, so rankings are meaningful; metrics come from pytrec_eval (independent
of evalkit and ranx).  The degraded candidate truncates every vector to its first 16 dimensions
without re-normalising - the classic "dimensions honoured by truncation" server bug.
"""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval
from scipy import stats

from evalkit.compare.calls import Quality
from evalkit.compare.report import checklist_lines, comparison_metrics, verdict_tags
from evalkit.compare.significance import compare_metrics
from evalkit.compare.status import Status
from evalkit.compare.verdict import CompareSettings, compare_versions
from evalkit.data.schema import Catalog, EvalData, Judgments, Queries
from evalkit.embed.vector_checks import vector_stats
from evalkit.errors import ConfigError, FingerprintMismatch
from evalkit.results import VersionResult
from evalkit.retrieve.ranking import Ranking

from .testdata import collection, read_jsonl, read_text

K = 100
MEASURES = {"ndcg_cut_10": "ndcg@10", "recall_100": "recall@100", "recip_rank": "mrr@100"}
CHECKS_OK = [
    {"name": "empty_input", "status": "PASS", "observed": 400, "expected": 400, "reason": "ok"},
    {"name": "dimensions", "status": "PASS", "observed": 64, "expected": 64, "reason": "ok"},
]


def _fingerprint(path: Path) -> str:
    return hashlib.sha256(read_text(path).encode()).hexdigest()


def load_collection(name: str = "cranfield") -> EvalData:
    root = collection(name)
    docs = read_jsonl(root / "corpus.jsonl.gz")
    qrows = read_jsonl(root / "queries.jsonl.gz")
    qrels: dict[str, dict[str, int]] = {}
    for row in csv.DictReader(
        read_text(root / "qrels" / "test.tsv.gz").splitlines(), delimiter="\t"
    ):
        qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    qrows = [q for q in qrows if q["_id"] in qrels]
    n = len(qrows)
    queries = Queries(
        ids=[q["_id"] for q in qrows],
        texts=[q["text"] for q in qrows],
        language=["en" if i % 3 else "de" for i in range(n)],
        frequency=[float(round(1000 / (i + 1))) for i in range(n)],
        attributes={"device": ["mobile" if i % 2 else "desktop" for i in range(n)]},
    )
    fp = {
        "catalog": _fingerprint(root / "corpus.jsonl.gz"),
        "queries": _fingerprint(root / "queries.jsonl.gz"),
        "judgments": _fingerprint(root / "qrels" / "test.tsv.gz"),
    }
    fp["dataset"] = hashlib.sha256("".join(fp.values()).encode()).hexdigest()
    return EvalData(
        name=name,
        catalog=Catalog(ids=[d["_id"] for d in docs], titles=[d["title"] for d in docs]),
        queries=queries,
        judgments=Judgments(qrels),
        fingerprint=fp,
    )


def embed(data: EvalData, seed: int = 0, dim: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Unit query / document vectors; judged documents lean towards their queries."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(len(data.queries), dim))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    d = rng.normal(size=(len(data.catalog), dim)) * 0.8 / math.sqrt(dim)
    qrow = {qid: i for i, qid in enumerate(data.queries.ids)}
    drow = {did: i for i, did in enumerate(data.catalog.ids)}
    for qid, docs in data.judgments.qrels.items():
        for did, grade in docs.items():
            d[drow[did]] += (0.15 + 0.1 * grade) * q[qrow[qid]]
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return q.astype(np.float32), d.astype(np.float32)


def version(
    name: str,
    data: EvalData,
    q: np.ndarray,
    d: np.ndarray,
    latencies: np.ndarray | None = None,
) -> VersionResult:
    """Retrieve top-K by inner product, score with pytrec_eval, similarities of judged pairs."""
    scores = q @ d.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    top_scores = np.take_along_axis(scores, top, axis=1)
    ranking = Ranking(
        list(data.queries.ids), top.astype(np.int64), top_scores, list(data.catalog.ids)
    )
    run = {
        qid: {data.catalog.ids[j]: float(s) for j, s in zip(top[i], top_scores[i])}
        for i, qid in enumerate(data.queries.ids)
    }
    evaluator = pytrec_eval.RelevanceEvaluator(data.judgments.qrels, set(MEASURES))
    res = evaluator.evaluate(run)
    per_query = {m: {qid: res[qid][t] for qid in res} for t, m in MEASURES.items()}
    qrow = {qid: i for i, qid in enumerate(data.queries.ids)}
    drow = {did: i for i, did in enumerate(data.catalog.ids)}
    pairs = [(qid, did) for qid, docs in data.judgments.qrels.items() for did in docs]
    sim = np.array([float(q[qrow[a]] @ d[drow[b]]) for a, b in pairs])
    lat = np.random.default_rng(5).gamma(4.0, 0.01, 200) if latencies is None else latencies
    return VersionResult(
        name=name,
        params={},
        overall={m: float(np.mean(list(v.values()))) for m, v in per_query.items()},
        per_query=per_query,
        ranking=ranking,
        pair_ids=pairs,
        pair_similarity=sim,
        latencies_s=lat,
        throughput=400.0,
        batch_size=32,
        concurrency=4,
        fingerprint=dict(data.fingerprint),
        extra={**vector_stats(q, d), "dim": q.shape[1]},
    )


@pytest.fixture(scope="module")
def example():
    data = load_collection("cranfield")
    q, d = embed(data)
    base = version("v1", data, q, d)
    same = version("v1_again", data, q, d, latencies=base.latencies_s * 1.05)
    degraded = version(
        "v2_truncated", data, q[:, :16], d[:, :16], latencies=base.latencies_s * 1.05
    )
    return data, base, same, degraded


def test_version_compared_with_itself_passes(example) -> None:
    data, base, same, _ = example
    v = compare_versions(base, [same], data=data, checks=CHECKS_OK)
    c = v.candidates[0]
    assert c.overlap.agreement == 1.0 and c.overlap.rbo[0.9] == pytest.approx(1.0)
    assert c.drift.mean_shift == 0.0 and c.drift.low_share_delta == 0.0
    for m in c.metrics:
        assert m.delta == 0.0 and m.p_value == 1.0 and m.wins == m.losses == 0
        assert m.ci_low == m.ci_high == 0.0
    assert c.unjudged["v1"].mean == c.unjudged["v1_again"].mean
    # Cranfield's judgments cover little of a top 10: the coverage line says so (a follow-up),
    # computed here independently over the scored queries.
    qrels = data.judgments.qrels
    scored = [q for q, j in qrels.items() if any(g > 0 for g in j.values())]
    share = np.mean([np.mean([d not in qrels[q] for d in base.ranking.top(q, 10)]) for q in scored])
    coverage = c.gate("judgment_coverage")
    assert coverage.observed == pytest.approx(share) and share > 0.5
    assert coverage.status == Status.WARN and "judgments sparse" in coverage.reason
    assert {g.name: str(g.status) for g in c.gates if g.status != Status.PASS} == {
        "judgment_coverage": "WARN"
    }
    # identical rankings: the judged-only call agrees (no worse), so the primary stays no worse
    assert c.coverage.judged_only.status == Quality.NO_WORSE
    assert v.status == Status.WARN and v.exit_code == 0
    assert all(s.status == Quality.NO_WORSE for s in c.slices)
    assert c.quality_status == Quality.NO_WORSE
    assert c.regressions == []
    assert c.actions == []  # same scores, same dimension, same settings: nothing to change
    tags = verdict_tags(v)
    summary = "WARN: v1_again vs v1: ndcg@10 +0.0000 [95% CI +0.0000, +0.0000], p=1 (no worse)"
    assert tags == {
        "evalkit.verdict": "WARN",
        "evalkit.quality": "no_worse",
        "evalkit.exit_code": "0",
        "evalkit.summary": summary,
        "mlflow.note.content": tags["mlflow.note.content"],
    }
    note = tags["mlflow.note.content"]
    assert note.startswith(f"**{summary}**\n\nevalkit verdict") and "follow-ups" in note


def test_truncated_vectors_block_with_the_right_gates(example) -> None:
    data, base, _, degraded = example
    v = compare_versions(base, [degraded], data=data, checks=CHECKS_OK)
    c = v.candidates[0]
    by_status = {g.name: g.status for g in c.gates}
    assert by_status == {
        "primary_metric": Status.BLOCK,  # quality: worse
        "secondary_metrics": Status.WARN,
        "mean_cosine_shift": Status.WARN,  # unnormalised vectors: cosine collapses
        "top_k_agreement": Status.WARN,  # behaviour change: follow-ups
        "low_score_share_increase": Status.WARN,
        "unjudged_increase": by_status["unjudged_increase"],
        "judgment_coverage": Status.WARN,  # Cranfield: most of a top 10 is unjudged
        "vector_contract": Status.BLOCK,  # unit-length baseline, shorter candidate vectors
        "latency_p95_increase": Status.PASS,  # 5% slower only
        "endpoint_checks": Status.PASS,
    }
    assert {g.group for g in c.gates} == {"quality", "behaviour", "contract"}
    assert c.quality_status == Quality.WORSE and verdict_tags(v)["evalkit.quality"] == "worse"
    assert {i["name"] for i in c.checklist()["blockers"]} == {"primary_metric", "vector_contract"}
    assert v.status == Status.BLOCK and v.exit_code == 3
    assert "normalisation" in c.gate("mean_cosine_shift").reason
    assert c.metric("ndcg@10").delta < -0.01 and c.metric("ndcg@10").p_corrected < 0.05
    # independent re-computation of the drift and agreement numbers
    assert c.drift.mean_shift == pytest.approx(
        degraded.pair_similarity.mean() - base.pair_similarity.mean()
    )
    share = np.mean(degraded.pair_similarity < 0.3) - np.mean(base.pair_similarity < 0.3)
    assert c.drift.low_share_delta == pytest.approx(share)
    agree = np.mean(
        [
            len(set(base.ranking.top(q, 3)) & set(degraded.ranking.top(q, 3))) / 3
            for q in data.queries.ids
        ]
    )
    assert c.overlap.agreement == pytest.approx(agree)
    judged = {(q, d) for q, docs in data.judgments.qrels.items() for d in docs}
    unj = np.mean(
        [
            sum((q, d) not in judged for d in degraded.ranking.top(q, 10)) / 10
            for q in data.queries.ids
        ]
    )
    assert c.unjudged["v2_truncated"].mean == pytest.approx(unj)
    lines = checklist_lines(v)
    assert lines[0].startswith("Verdict: BLOCK (exit code 3): v2_truncated vs baseline v1")
    assert "quality: worse" in lines[0]
    blockers = lines.index("  Blockers:")
    assert lines[blockers + 1].startswith("    - primary_metric")
    assert any(line.startswith("    - top_k_agreement") for line in lines)


def test_regressions_show_both_top5_with_titles_and_grades(example) -> None:
    data, base, _, degraded = example
    v = compare_versions(base, [degraded], data=data, checks=CHECKS_OK, settings={"regressions": 7})
    regs = v.candidates[0].regressions
    assert len(regs) == 7
    deltas = [r.delta for r in regs]
    assert deltas == sorted(deltas) and all(x < 0 for x in deltas)
    all_deltas = sorted(
        degraded.per_query["ndcg@10"][q] - base.per_query["ndcg@10"][q] for q in data.queries.ids
    )
    assert deltas == pytest.approx(all_deltas[:7])
    titles = dict(zip(data.catalog.ids, data.catalog.titles))
    r = regs[0]
    qrels = data.judgments.qrels[r.query_id]
    assert r.query == data.queries.texts[data.queries.ids.index(r.query_id)]
    assert [x[0] for x in r.baseline_top] == base.ranking.top(r.query_id, 5)
    assert [x[0] for x in r.candidate_top] == degraded.ranking.top(r.query_id, 5)
    for item, title, grade in r.baseline_top + r.candidate_top:
        assert title == (titles[item] or item) and grade == qrels.get(item)


def test_slices_equal_subset_computations(example) -> None:
    data, base, _, degraded = example
    v = compare_versions(base, [degraded], data=data, checks=CHECKS_OK)
    c = v.candidates[0]
    labels = [s.label for s in c.slices]
    assert {"language=de", "language=en", "device=desktop", "device=mobile"} <= set(labels)
    assert {"frequency=head", "frequency=torso", "frequency=tail"} <= set(labels)
    # every Cranfield query has 4+ whitespace tokens
    assert min(len(t.split()) for t in data.queries.texts) >= 4
    assert [x for x in labels if x.startswith("length=")] == ["length=4+"]
    de = next(s for s in c.slices if s.label == "language=de")
    de_ids = [q for i, q in enumerate(data.queries.ids) if i % 3 == 0]
    want = compare_metrics(base.per_query, degraded.per_query, ["ndcg@10"], query_ids=de_ids)[0]
    got = next(m for m in de.metrics if m.metric == "ndcg@10")
    assert got.delta == pytest.approx(want.delta) and got.p_value == pytest.approx(want.p_value)
    assert de.n_queries == len(de_ids)
    in_de = np.array([q in set(de_ids) for q, _ in base.pair_ids])
    assert de.drift.mean_shift == pytest.approx(
        degraded.pair_similarity[in_de].mean() - base.pair_similarity[in_de].mean()
    )
    agree = np.mean(
        [len(set(base.ranking.top(q, 3)) & set(degraded.ranking.top(q, 3))) / 3 for q in de_ids]
    )
    assert de.overlap.agreement == pytest.approx(agree)
    # The slice's call comes from a paired t-interval at the Bonferroni-adjusted level.
    n_tests = len(c.slices) * len(c.metrics)
    level = 1 - 0.05 / n_tests
    d = np.array([degraded.per_query["ndcg@10"][q] - base.per_query["ndcg@10"][q] for q in de_ids])
    lo, hi = stats.t.interval(level, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    call = next(q for q in de.quality if q.metric == "ndcg@10")
    assert (call.ci_low, call.ci_high) == pytest.approx((lo, hi))
    want_status = (
        Quality.BETTER
        if lo > 0
        else Quality.NO_WORSE
        if lo > -0.01
        else Quality.WORSE
        if hi < 0
        else Quality.INCONCLUSIVE
    )
    assert de.status == want_status
    # the head band holds the queries whose more-frequent predecessors carry < 50% of traffic
    freq = np.array(data.queries.frequency)
    before = np.array([freq[freq > f].sum() for f in freq]) / freq.sum()
    head = next(s for s in c.slices if s.label == "frequency=head")
    assert head.n_queries == int((before < 0.5).sum())


def test_fisher_option_and_comparison_metric_names(example) -> None:
    data, base, _, degraded = example
    settings = CompareSettings.from_mapping({"test": "fisher", "permutations": 500, "seed": 42})
    v = compare_versions(base, [degraded], data=data, settings=settings, checks=None)
    assert all(m.test == "fisher" for m in v.candidates[0].metrics)
    assert "Fisher randomization" in v.test_label
    m = comparison_metrics(v)
    for name in (
        "delta_ndcg_at_10",
        "p_ndcg_at_10",
        "top3_agreement",
        "mean_cosine_shift",
        "low_score_share_delta",
        "latency_p95_ratio",
        "delta_recall_at_100",
        "p_mrr_at_100",
        "rbo_p0_9",
        "rbo_p0_5",
        "unjudged_at_10_candidate",
    ):
        assert name in m and math.isfinite(m[name]), name
    assert m["latency_p95_ratio"] == pytest.approx(1.05)
    assert v.candidates[0].gate("endpoint_checks").status == Status.WARN  # checks not run
    two = compare_versions(base, [degraded, replace(degraded, name="v3")], data=data)
    assert "v3/delta_ndcg_at_10" in comparison_metrics(two)


def test_baseline_rebuilt_from_a_run_without_rankings_or_latency(example) -> None:
    data, base, same, _ = example
    logged = replace(base, ranking=None, pair_similarity=None, latencies_s=np.zeros(0))
    v = compare_versions(logged, [same], data=data, checks=CHECKS_OK)
    c = v.candidates[0]
    status = {g.name: (g.status, g.measured) for g in c.gates}
    assert status["latency_p95_increase"] == (Status.WARN, False)
    assert status["top_k_agreement"] == (Status.WARN, False)
    assert status["mean_cosine_shift"] == (Status.WARN, False)
    assert status["primary_metric"] == (Status.PASS, True)
    assert v.status == Status.WARN and v.exit_code == 0


def test_different_datasets_are_refused_with_a_clear_message(example) -> None:
    data, base, _, _ = example
    med = load_collection("med")
    other = replace(base, name="v2_med", fingerprint=dict(med.fingerprint))
    with pytest.raises(FingerprintMismatch) as err:
        compare_versions(base, [other], data=data)
    msg = str(err.value)
    assert "v2_med" in msg and "catalog" in msg and "queries" in msg and "judgments" in msg
    with pytest.raises(ConfigError, match="nothing to compare"):
        compare_versions(base, [])
    with pytest.raises(ConfigError, match="primary_metric"):
        compare_versions(base, [base], gates={"primary_metric": {"metric": "map@100"}})
