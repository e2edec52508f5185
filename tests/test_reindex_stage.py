"""The re-index analysis on a query sample, a stage listening to the evaluation's pass.

- The pipeline's one-pass analysis (cross states searched while each catalog is loaded for the
  main search, the half-migrated catalog built once from the store) gives what the in-memory
  analysis of both versions' full matrices gives (:func:`analyse_reindex`) -
  on ADI with both offline models (use_m3 truncated to 384 dimensions, e5_small): same scores,
  same bootstrap deltas, same action, in both orders.  ADI has fewer queries than the default
  sample, so this is also "the sample covers every query".
- A sample smaller than the query set: a seeded, deterministic subset, and the pipeline's
  analysis equals the in-memory one on that subset.
- The pass searches a resident catalog through its ``search`` handle only; an engine that
  announces nothing (only ``embed`` and ``search``) gets the same analysis, each catalog then
  searched after the pass.
- ``reindex_seconds`` is logged on the parent run; the mixed catalog is the baseline's rows with the candidate's
  where the seeded mask says.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from mlflow import MlflowClient

from evalkit.compare import comparison_metrics
from evalkit.compare.reindex_analysis import analyse_reindex, mixed_rows, sample_rows
from evalkit.data.beir import load_beir
from evalkit.data.schema import Catalog, EvalData, Judgments, Queries
from evalkit.embed.cache import CacheSettings
from evalkit.engine import Engine, ResidentCatalog, ResidentListeners
from evalkit.engine.local_engine import LocalEngine
from evalkit.errors import ConfigError
from evalkit.index.faiss_index import ArrayFlatIP, IndexSpec
from evalkit.instantiate import build
from evalkit.retrieve.replay import id_ranks, replay
from evalkit.run.evaluation import run_evaluation
from evalkit.run.reindex_stage import (
    CandidatePair,
    ReindexSetup,
    analyse_candidate,
    mixed_catalog,
    start_pass,
)
from evalkit.run.run_settings import RunSettings

from .cli import REPO

pytestmark = pytest.mark.slow


def _cfg(shared_data, cache, out, models, *extra, dataset="adi"):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(
            "config",
            overrides=[
                "dataset=beir",
                f"dataset.path={shared_data / dataset}",
                f"models=[{models}]",
                "models.use_m3.dimensions=384",  # equal dimensions: every state is scored
                f"cache.dir={cache}",
                f"output_dir={out}",
                "tracking=none",
                "progress=false",
                "latency.probe=0",
                *extra,
            ],
        )


def _embed(version, data, cfg):
    """The version's catalog and query vectors, as the local engine reads them."""
    emb = LocalEngine().embed(version, data, RunSettings.from_config(cfg).cache)
    return emb.docs, emb.queries


def _in_memory(evaluation, cfg, sample=None, metric="ndcg@10"):
    """The in-memory analysis (:func:`analyse_reindex`): both versions' full matrices."""
    data = evaluation.data
    a, b = (build(cfg.models[n], n) for n in cfg.models)
    vec = {}
    for who, v in (("a", a), ("b", b)):
        docs, queries = _embed(v, data, cfg)
        vec[who] = (np.array(docs.vectors), np.array(queries.vectors))
    base, cand = evaluation.results
    return analyse_reindex(
        vec["a"][0],
        vec["a"][1],
        vec["b"][0],
        vec["b"][1],
        data.queries.ids,
        data.catalog.ids,
        data.judgments.qrels,
        metric,
        k=int(cfg.k),
        fraction=0.5,
        margin=0.01,
        seed=int(cfg.compare.seed),
        n_resamples=int(cfg.compare.bootstrap),
        known={"baseline": base.per_query[metric], "candidate": cand.per_query[metric]},
        names=(a.name, b.name),
        sample=sample,
    )


@pytest.mark.parametrize("models", ["use_m3,e5_small", "e5_small,use_m3"])
def test_one_pass_equals_the_in_memory_analysis_on_adi(tmp_path, shared_data, shared_cache, models):
    cfg = _cfg(shared_data, shared_cache, tmp_path / "out", models)
    evaluation = run_evaluation(cfg)
    got = evaluation.comparison.candidates[0].reindex
    expected = _in_memory(evaluation, cfg)
    assert got.dims_match and got.baseline_dim == 384
    assert got.n_queries == expected.n_queries == len(evaluation.results[0].per_query["ndcg@10"])
    assert list(got.scores) == list(expected.scores) and len(got.scores) == 6
    assert got.scores == pytest.approx(expected.scores, abs=1e-12)
    assert list(got.deltas) == list(expected.deltas)
    for state in expected.deltas:
        assert got.deltas[state] == pytest.approx(expected.deltas[state], abs=1e-12)
    assert got.action == expected.action and got.rolling_safe == expected.rolling_safe
    assert got.detail == expected.detail and got.query_encoder == expected.query_encoder
    # the parent run's reindex_* metrics are these scores
    logged = comparison_metrics(evaluation.comparison)
    for state, value in expected.scores.items():
        assert logged[f"reindex_{state}_ndcg_at_10"] == pytest.approx(value, abs=1e-12)
    assert logged["reindex_rolling_safe"] == float(expected.rolling_safe)


@pytest.mark.parametrize(("metric", "searched"), [("ndcg@10", 0), ("recall@100", None)])
def test_mixed_states_merged_from_the_pass_equal_the_mixed_catalogs_search_on_cranfield(
    tmp_path, shared_data, shared_cache, caplog, metric, searched
):
    """Cranfield (1,400 items, more than k=100): the mixed states come from the pass's rankings
    when the metric is cut well inside k (``ndcg@10``: no query is searched on the mixed
    catalog); cut at k (``recall@100``) the merge settles almost nothing and the queries are
    searched on the mixed catalog.  Either way: what the in-memory analysis gets."""
    cfg = _cfg(
        shared_data, shared_cache, tmp_path / "out", "use_m3,e5_small",
        "dataset.text_field=title", f"primary_metric={metric}", dataset="cranfield",
    )  # fmt: skip
    with caplog.at_level("INFO", logger="evalkit.run.reindex_stage"):
        evaluation = run_evaluation(cfg)
    got = evaluation.comparison.candidates[0].reindex
    expected = _in_memory(evaluation, cfg, metric=metric)
    assert got.metric == metric and got.n_queries == expected.n_queries > 100
    assert got.scores == pytest.approx(expected.scores, abs=1e-12)
    for state in expected.deltas:
        assert got.deltas[state] == pytest.approx(expected.deltas[state], abs=1e-12)
    assert got.action == expected.action and got.rolling_safe == expected.rolling_safe
    line = next(r.getMessage() for r in caplog.records if "merged from the pass" in r.getMessage())
    n_searched = int(line.split(", ")[-1].split()[0])
    if searched is not None:
        assert n_searched == searched, line
    else:
        assert n_searched > got.n_queries, line  # most of both query sets


def test_a_smaller_sample_is_a_seeded_subset(tmp_path, shared_data, shared_cache):
    cfg = _cfg(
        shared_data, shared_cache, tmp_path / "out", "use_m3,e5_small",
        "compare.reindex_queries=12", "tracking=sqlite", f"tracking.uri=sqlite:///{tmp_path}/m.db",
    )  # fmt: skip
    evaluation = run_evaluation(cfg)
    got = evaluation.comparison.candidates[0].reindex
    # the stage's time on the parent run, beside the reindex_* metrics
    parent = MlflowClient(f"sqlite:///{tmp_path}/m.db").get_run(evaluation.parent_run_id)
    assert parent.data.metrics["reindex_seconds"] > 0
    assert parent.data.metrics["reindex_rolling_safe"] == float(got.rolling_safe)
    expected = _in_memory(evaluation, cfg, sample=12)
    assert got.n_queries == expected.n_queries == 12
    assert got.scores == pytest.approx(expected.scores, abs=1e-12)
    for state in expected.deltas:
        assert got.deltas[state] == pytest.approx(expected.deltas[state], abs=1e-12)
    assert got.action == expected.action
    # the subset: seeded by compare.seed, deterministic, of the scorable queries only
    data = evaluation.data
    rows = sample_rows(data.queries.ids, data.judgments.qrels, 12, int(cfg.compare.seed))
    assert (rows == sample_rows(data.queries.ids, data.judgments.qrels, 12, 42)).all()
    assert not (rows == sample_rows(data.queries.ids, data.judgments.qrels, 12, 7)).all()
    scorable = set(evaluation.results[0].per_query["ndcg@10"])
    assert {data.queries.ids[i] for i in rows} <= scorable and (np.diff(rows) > 0).all()


def test_sample_rows_covers_small_query_sets_and_rejects_bad_sizes():
    ids = [f"q{i}" for i in range(30)]
    qrels = {f"q{i}": {"d": 1 if i % 3 else 0} for i in range(30)}  # q0, q3, ... not scorable
    pool = [i for i in range(30) if i % 3]
    assert sample_rows(ids, qrels, 1000, 42).tolist() == pool
    assert sample_rows(ids, qrels, len(pool), 42).tolist() == pool
    few = sample_rows(ids, qrels, 5, 42)
    assert len(few) == 5 and set(few.tolist()) <= set(pool)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="compare.reindex_queries"):
            sample_rows(ids, qrels, bad, 42)


def test_mixed_catalog_is_built_from_both_stores_block_by_block(tmp_path, shared_data):
    data = load_beir(shared_data / "adi", on_invalid="skip")
    cfg = _cfg(shared_data, tmp_path / "cache", tmp_path / "out", "use_m3,e5_small")
    a, b = (build(cfg.models[n], n) for n in cfg.models)
    a_docs = np.array(_embed(a, data, cfg)[0].vectors)
    b_docs = np.array(_embed(b, data, cfg)[0].vectors)
    mask = mixed_rows(len(data.catalog), 0.5, 42)
    cache = RunSettings.from_config(cfg).cache
    mixed = mixed_catalog(a, b, data, cache, mask, block=16)  # several blocks on ADI's 82 items
    expected = a_docs.copy()
    expected[mask] = b_docs[mask]
    assert mixed.dtype == np.float32 and mixed.flags.writeable
    assert np.array_equal(mixed, expected)


def _tiny_setup(n_items=6, dim=4):
    """A ``ReindexSetup`` over a tiny in-memory catalog, for unit tests of the pass."""
    ids = [f"d{i}" for i in range(n_items)]
    data = EvalData(
        "tiny",
        Catalog(ids, ids),
        Queries(["q0", "q1", "q2"], ["a", "b", "c"]),
        Judgments({"q0": {"d0": 1}, "q1": {"d1": 1}, "q2": {"d2": 0}}),
    )
    return ReindexSetup(data, CacheSettings(), IndexSpec(), id_ranks(ids), "ndcg@10", k=3)


def test_the_pass_searches_only_partners_of_equal_dimension():
    setup = _tiny_setup()
    p = start_pass(setup, ["a", "b", "c"], None)
    assert p.query_ids == ["q0", "q1"]  # the scorable queries (q2 has no relevant item)
    assert p.partners("a") == ["b", "c"] and p.partners("b") == ["a"] and p.partners("x") == []
    p.add_queries("b", np.ones((3, 4), dtype=np.float64))
    assert p.queries["b"].shape == (2, 4) and p.queries["b"].dtype == np.float32
    catalog = np.eye(6, 8, dtype=np.float32)
    # a's catalog is 8-d: b's 4-d queries are not searched on it; a's own queries are kept
    p.on_resident(ResidentCatalog("a", 8, np.zeros((3, 8), np.float32), ArrayFlatIP(catalog)))
    assert p.rankings == {} and p.queries["a"].shape == (2, 8) and p.seconds >= 0.0


def test_a_resident_catalog_is_searched_through_its_handle_only():
    """The pass asks nothing of a resident catalog but ``search(x, k)``: the handle is a
    counting look-alike, and the cross ranking is what replay gives on that handle."""
    setup = _tiny_setup()
    p = start_pass(setup, ["a", "b"], None)
    rng = np.random.default_rng(0)
    catalog = rng.standard_normal((6, 4)).astype(np.float32)
    calls = []

    class Handle:
        ntotal = 6

        def search(self, x, k):
            calls.append((len(x), k))
            return ArrayFlatIP(catalog).search(x, k)

    b_queries = rng.standard_normal((3, 4)).astype(np.float32)
    p.add_queries("b", b_queries)
    listeners = ResidentListeners()
    listeners.subscribe(p.on_resident)
    listeners.announce(ResidentCatalog("a", 4, np.zeros((3, 4), np.float32), Handle()))
    assert calls and all(n == 2 for n, _ in calls)  # the two sampled queries
    expected = replay(
        ArrayFlatIP(catalog), b_queries[p.rows], p.query_ids, setup.data.catalog.ids, 3,
        id_rank=setup.id_rank,
    )  # fmt: skip
    got = p.rankings["b", "a"]
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_array_equal(got.scores, expected.scores)
    # announced again (another listener list, the same catalog): not searched twice
    n_calls = len(calls)
    p.on_resident(ResidentCatalog("a", 4, np.zeros((3, 4), np.float32), Handle()))
    assert len(calls) == n_calls


class _Silent:
    """An engine that only embeds and searches (a team's own back-end): it announces nothing."""

    def __init__(self, inner):
        self.inner = inner
        self.kind = inner.kind

    def embed(self, *args, **kwargs):
        return self.inner.embed(*args, **kwargs)

    def search(self, version, data, job):
        return self.inner.search(version, data, replace(job, listeners=ResidentListeners()))


def test_an_engine_that_announces_nothing_gets_the_same_analysis(
    tmp_path, shared_data, shared_cache, monkeypatch
):
    """An engine with only ``embed`` and ``search``: the stage searches each catalog after the
    pass, read from the store, alone, and gets what the one-pass analysis gets."""
    import contextlib

    import evalkit.run.evaluation as evaluation_module

    cfg = _cfg(shared_data, shared_cache, tmp_path / "out", "use_m3,e5_small")
    expected = run_evaluation(cfg).comparison.candidates[0].reindex  # the one-pass reference

    @contextlib.contextmanager
    def silent_engine(spec, model_configs):
        engine = _Silent(LocalEngine())
        assert isinstance(engine, Engine)
        yield engine

    monkeypatch.setattr(evaluation_module, "open_engine", silent_engine)
    cfg = _cfg(shared_data, shared_cache, tmp_path / "silent", "use_m3,e5_small")
    evaluation = run_evaluation(cfg)
    got = evaluation.comparison.candidates[0].reindex
    assert got.scores == pytest.approx(expected.scores, abs=1e-12)
    assert list(got.deltas) == list(expected.deltas) and got.action == expected.action
    for state in expected.deltas:
        assert got.deltas[state] == pytest.approx(expected.deltas[state], abs=1e-12)


def test_states_the_pass_did_not_search_are_searched_after_it(tmp_path, shared_data, shared_cache):
    """No announcement, so the pass holds no cross rankings: the stage reads each catalog alone
    and gets what the in-memory analysis gets."""
    cfg = _cfg(shared_data, shared_cache, tmp_path / "out", "use_m3,e5_small")
    evaluation = run_evaluation(cfg)  # fills the cache; its analysis is the reference
    expected = evaluation.comparison.candidates[0].reindex
    a, b = (build(cfg.models[n], n) for n in cfg.models)
    data = evaluation.data
    setup = ReindexSetup(
        data, RunSettings.from_config(cfg).cache, IndexSpec(), id_ranks(data.catalog.ids),
        "ndcg@10", k=100,
    )  # fmt: skip
    rpass = start_pass(setup, [a.name, b.name], 1000)
    assert not rpass.queries and not rpass.rankings  # nothing from a pass
    base, cand = evaluation.results
    got = analyse_candidate(rpass, CandidatePair(a, b, base, cand))
    assert got.scores == pytest.approx(expected.scores, abs=1e-12)
    assert list(got.deltas) == list(expected.deltas) and got.action == expected.action
    assert rpass.seconds > 0
