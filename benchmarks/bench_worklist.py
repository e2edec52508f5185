"""How many judgments the judging worklist needs to settle the primary call, vs depth-k pooling.

Cranfield titles (``dataset.text_field=title``), baseline A = use_m3, candidate B = e5_small,
primary metric nDCG@10.  A team starts with the judgments of A's top 5 per query (what judging its
production results gives): the full qrels restricted to those items, an item not in the qrels
being grade 0.  Then it judges - grades come from the full qrels, not in the qrels = grade 0 -
in one of these orders, all drawn from the same pool (the unjudged items of either version's
top 10):

- ``worklist``: :func:`evalkit.compare.worklist.rank_unjudged`, recomputed after every batch of
  ``--batch`` judgments (default 10);
- ``worklist (once)``: the order computed once from the starting judgments;
- ``depth-10 pooling``: rank by rank (1..10), each query A's item then B's (incremental
  pooling: the strongest pooling order here);
- ``depth-10 pooling, query by query``: as TREC assessors judge a depth-10 pool, each query's
  whole pool (in rank order) before the next query; queries in id order, and the median over
  ``--query-orders`` random query orders;
- ``random``: a seeded permutation of the pool;
- ``oracle``: only the relevant items the better version (with all judgments) ranks higher, in
  worklist order - it reads the grades, so it is no method but a bound for any order.

After every judgment the primary call (better / no_worse / worse / inconclusive) is made on the
per-query nDCG@10 deltas of the queries scored so far (:func:`primary_call`; the deltas are
checked against evalkit's own scorer).  Reported: the judgments added until the call first
equals the call made with ALL judgments (the full qrels), until it stays equal, and until it is
first not inconclusive.

Usage (the collection the tests read; a plain BEIR folder works too)::

    python benchmarks/bench_worklist.py                      # --data tests/data/cranfield
    python benchmarks/bench_worklist.py --data <folder> --batch 10 --seed 0
    python benchmarks/bench_worklist.py --swap               # A = e5_small, B = use_m3

Vectors come from the evalkit embedding cache (``--cache``, default ``.cache/evalkit``): e5_small
embeds Cranfield's titles in ~20 s cold.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evalkit.compare.intervals import student  # noqa: E402
from evalkit.compare.quality import call  # noqa: E402
from evalkit.compare.worklist import rank_unjudged, top_ids  # noqa: E402
from evalkit.metrics.ir import score  # noqa: E402

METRIC = "ndcg@10"
K = 10
MARGIN = 0.01  # conf/gates/default.yaml primary_metric.margin
ALPHA = 0.05  # conf/gates/default.yaml primary_metric.alpha
START_DEPTH = 5  # the starting judgments: A's top 5

Qrels = dict[str, dict[str, int]]


def primary_call(deltas: np.ndarray) -> str:
    """The primary metric's call on per-query deltas (B - A), as the verdict makes it with
    ``compare.test=student``: the paired t-test at the full alpha (the primary metric is not
    corrected) and the interval that inverts it, at 1 - alpha
    (:func:`evalkit.compare.intervals.student`, :func:`evalkit.compare.quality.call`)."""
    test = student(np.asarray(deltas, dtype=np.float64))
    low, high = test.interval(1.0 - ALPHA)
    return str(call(test.estimate, low, high, margin=MARGIN, p_value=test.p_value, alpha=ALPHA))


_DISC = [1.0 / math.log2(i + 2) for i in range(K)]


def ndcg(top: list[str], judged: dict[str, int]) -> float:
    """nDCG@10 of one query as evalkit scores it (linear gains, ideal DCG at 10 from the known
    grades, unjudged = 0); checked against :func:`evalkit.metrics.ir.score` in :func:`main`."""
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:K]
    idcg = sum(g * _DISC[i] for i, g in enumerate(ideal))
    return sum(judged.get(d, 0) * _DISC[i] for i, d in enumerate(top[:K])) / idcg


def deltas_of(top_a: dict, top_b: dict, judged: Qrels) -> np.ndarray:
    """Per-query nDCG@10 deltas (B - A) of the queries scored (a judgment of grade >= 1)."""
    return np.array(
        [
            ndcg(top_b[q], j) - ndcg(top_a[q], j)
            for q, j in sorted(judged.items())
            if q in top_a and any(g > 0 for g in j.values())
        ]
    )


def check_against_evalkit(rank_a, rank_b, top_a: dict, top_b: dict, judged: Qrels) -> None:
    """The deltas used here equal evalkit's own scores (ranx) on the same judgments."""
    a = score(rank_a, judged, [METRIC]).per_query[METRIC]
    b = score(rank_b, judged, [METRIC]).per_query[METRIC]
    want = np.array([b[q] - a[q] for q in sorted(a)])
    got = deltas_of(top_a, top_b, judged)
    if want.shape != got.shape or not np.allclose(want, got, atol=1e-12):
        raise AssertionError("nDCG@10 deltas differ from evalkit.metrics.ir.score")


def grade(full: Qrels, q: str, d: str) -> int:
    return full.get(q, {}).get(d, 0)


def rankings(data_dir: Path, cache: Path) -> tuple[object, object, Qrels, object]:
    """A's and B's rankings (use_m3, e5_small on titles), the full qrels, the EvalData."""
    from hydra import compose, initialize_config_dir

    from evalkit.run.evaluation import run_evaluation

    out = Path(tempfile.mkdtemp(prefix="bench-worklist-"))
    overrides = [
        "dataset=beir",
        f"dataset.path={data_dir}",
        "dataset.text_field=title",
        "models=[use_m3,e5_small]",
        "tracking=none",
        f"cache.dir={cache}",
        f"output_dir={out}",
        "latency.probe=0",
        "compare.reindex=false",
        "progress=false",
    ]
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    ev = run_evaluation(cfg)
    a, b = ev.results[0], ev.results[1]
    return a.ranking, b.ranking, ev.data.judgments.qrels, ev.data


def ranked_above(top_x: list[str], top_y: list[str], item: str) -> bool:
    """X ranks ``item`` higher than Y does (absent from a top 10 = below it)."""
    rx = top_x.index(item) if item in top_x[:K] else K
    ry = top_y.index(item) if item in top_y[:K] else K
    return rx < ry


def pool_order(top_a: dict, top_b: dict, judged: Qrels) -> list[tuple[str, str]]:
    """Depth-10 pooling, rank by rank: at rank r, for each query, A's item then B's."""
    seen: set[tuple[str, str]] = set()
    out = []
    for r in range(K):
        for q in top_a:
            for top in (top_a[q], top_b.get(q, [])):
                if r < len(top):
                    pair = (q, top[r])
                    if pair[1] not in judged.get(q, {}) and pair not in seen:
                        seen.add(pair)
                        out.append(pair)
    return out


def pool_by_query(pool: list[tuple[str, str]], query_order: list[str]) -> list[tuple[str, str]]:
    """Depth-10 pooling as TREC assessors judge it: each query's whole pool (its unjudged items
    of both top 10s, in rank order) before the next query, queries in ``query_order``."""
    by_q: dict[str, list[tuple[str, str]]] = {}
    for pair in pool:
        by_q.setdefault(pair[0], []).append(pair)
    return [pair for q in query_order for pair in by_q.get(q, [])]


def simulate(
    next_batch: Callable[[Qrels], list[tuple[str, str]]],
    start: Qrels,
    full: Qrels,
    top_a: dict,
    top_b: dict,
    batch: int,
) -> list[tuple[int, str]]:
    """``[(judgments added, call)]`` after every judgment until the pool is judged; the order
    is asked for again after every ``batch`` judgments."""
    judged = {q: dict(v) for q, v in start.items()}
    trace = [(0, primary_call(deltas_of(top_a, top_b, judged)))]
    added = 0
    while True:
        pairs = next_batch(judged)[:batch]
        if not pairs:
            return trace
        for q, d in pairs:
            judged.setdefault(q, {})[d] = grade(full, q, d)
            added += 1
            trace.append((added, primary_call(deltas_of(top_a, top_b, judged))))


def needed(trace: list[tuple[int, str]], final: str) -> tuple[int | None, int | None, int | None]:
    """Judgments until the call first equals ``final``, until it stays equal, until it is first
    not inconclusive (None: never)."""
    first = next((n for n, c in trace if c == final), None)
    stays = None
    for n, c in reversed(trace):
        if c != final:
            break
        stays = n
    decided = next((n for n, c in trace if c != "inconclusive"), None)
    return first, stays, decided


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(REPO / "tests" / "data" / "cranfield"))
    ap.add_argument("--cache", default=str(REPO / ".cache" / "evalkit"))
    ap.add_argument("--batch", type=int, default=10, help="worklist recomputed every N judgments")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--query-orders",
        type=int,
        default=20,
        help="random query orders for query-by-query pooling",
    )
    ap.add_argument("--swap", action="store_true", help="A = e5_small, B = use_m3")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
    data_dir = Path(a.data)
    if not data_dir.is_dir():
        sys.exit(f"no collection at {data_dir}: pass --data <BEIR folder of Cranfield>")
    t0 = time.perf_counter()
    rank_a, rank_b, full, data = rankings(data_dir, Path(a.cache))
    names = ("use_m3", "e5_small")
    if a.swap:
        rank_a, rank_b, names = rank_b, rank_a, names[::-1]
    top_a, top_b = top_ids(rank_a, K), top_ids(rank_b, K)
    start: Qrels = {
        q: {d: grade(full, q, d) for d in items[:START_DEPTH]} for q, items in top_a.items()
    }
    pool = pool_order(top_a, top_b, start)
    for judged in (start, full):
        check_against_evalkit(rank_a, rank_b, top_a, top_b, judged)
    final_d, start_d = deltas_of(top_a, top_b, full), deltas_of(top_a, top_b, start)
    final, initial = primary_call(final_d), primary_call(start_d)

    def worklist_batch(judged: Qrels) -> list[tuple[str, str]]:
        return [(u.query_id, u.item_id) for u in rank_unjudged(top_a, top_b, judged, METRIC)]

    once = worklist_batch(start)

    def fixed(order: list[tuple[str, str]]) -> Callable[[Qrels], list[tuple[str, str]]]:
        return lambda judged: [p for p in order if p[1] not in judged.get(p[0], {})]

    favoured = (top_b, top_a) if final_d.mean() > 0 else (top_a, top_b)

    def oracle(judged: Qrels) -> list[tuple[str, str]]:
        # Not a method: it knows the grades. Only relevant items the winner ranks higher.
        return [
            p
            for p in worklist_batch(judged)
            if grade(full, *p) > 0 and ranked_above(favoured[0][p[0]], favoured[1][p[0]], p[1])
        ]

    shuffled = list(pool)
    random.Random(a.seed).shuffle(shuffled)
    queries = sorted(top_a)
    orders = {
        "worklist (recomputed every batch)": worklist_batch,
        "worklist (computed once)": fixed(once),
        "depth-10 pooling": fixed(pool),
        "depth-10 pooling, query by query (query id order)": fixed(pool_by_query(pool, queries)),
        f"random (seed {a.seed})": fixed(shuffled),
        "oracle: relevant items the winner ranks higher (a bound, not a method)": oracle,
    }
    results = {}
    for name, order in orders.items():
        trace = simulate(order, start, full, top_a, top_b, a.batch)
        results[name] = (needed(trace, final), trace[-1])
    # Query by query in random query orders: the median over --query-orders seeds.
    firsts = []
    for seed in range(a.query_orders):
        qs = list(queries)
        random.Random(seed).shuffle(qs)
        trace = simulate(fixed(pool_by_query(pool, qs)), start, full, top_a, top_b, a.batch)
        firsts.append(needed(trace, final)[0])
    got = [f for f in firsts if f is not None]
    by_query_median = int(np.median(got)) if len(got) == len(firsts) and got else None
    took = time.perf_counter() - t0

    start_n = sum(len(v) for v in start.values())
    print(
        f"{data.name}: {len(data.catalog)} items, {len(data.queries)} queries; A={names[0]}, "
        f"B={names[1]}, titles; {METRIC}; margin {MARGIN}, alpha {ALPHA}; batch {a.batch}"
    )
    print(
        f"start: {start_n} judgments (A's top {START_DEPTH}), {start_d.size} queries scored, "
        f"delta {start_d.mean():+.4f}, call {initial}; all judgments: "
        f"{sum(len(v) for v in full.values())}, {final_d.size} queries scored, delta "
        f"{final_d.mean():+.4f}, call {final}; pool: {len(pool)} unjudged pairs in the top 10s"
    )
    print()
    print(
        "| order | until = final call | until it stays | until not inconclusive | pool judged: call |"
    )
    print("|---|---|---|---|---|")

    def show(n: int | None) -> str:
        return "never" if n is None else str(n)

    for name, ((first, stays, decided), (n_all, last)) in results.items():
        print(f"| {name} | {show(first)} | {show(stays)} | {show(decided)} | {n_all}: {last} |")
    w = results["worklist (recomputed every batch)"][0][0]
    p = results["depth-10 pooling"][0][0]
    p_q = results["depth-10 pooling, query by query (query id order)"][0][0]
    if firsts:
        spread = "never" if not got else f"{min(got)}-{max(got)}"
        print(
            f"| depth-10 pooling, query by query ({a.query_orders} random query orders: median, "
            f"range {spread}) | {show(by_query_median)} | | | |"
        )
    for label, base in (
        ("pooling rank by rank", p),
        ("pooling query by query, id order", p_q),
        ("pooling query by query, median of random query orders", by_query_median),
    ):
        if w is not None and base:
            print(f"\nworklist / {label} (until = final call): {w} / {base} = {w / base:.2f}")
    print(
        f"\n{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}; {took:.0f} s"
    )


if __name__ == "__main__":
    main()
