"""How close each judging order brings the primary delta to the full-judgment delta.

A = use_m3, B = e5_small (in-process models of PyPI packages), primary metric nDCG@10, on the
shipped collections (``tests/data/<name>``, titles embedded).  For every seed a team holds a
seeded ``--keep`` share (default 40%) of the collection's judgments (each judged pair kept with
that probability) and judges more of the unjudged (query, item) pairs of A's and B's top 10s; the
assessor is the full qrels (an item not in them is grade 0).  After 100, 200, 400 and 600
judgments (``BUDGETS``) it reports, over ``--seeds`` seeds (default 10):

- the absolute error of the mean nDCG@10 delta (B - A, the queries scored so far) against the
  delta with all judgments: median and quartiles;
- the share of seeds whose primary call (better / no_worse / worse / inconclusive,
  :func:`primary_call`: margin 0.01, alpha 0.05) equals the call with all judgments.

Orders (every one judges only unjudged pairs of the two top 10s):

- ``worklist``: :func:`evalkit.compare.worklist.order_unjudged` (``compare.worklist_order=
  worklist``), recomputed from the judgments so far after every ``--batch`` judgments (20);
- ``rank_pooling``: rank 1 of every query (A's item, then B's), then rank 2, ...;
- ``query_pooling``: each query's pool in that rank order before the next query, queries in a
  random order drawn with the seed (both pooling orders are ``order_unjudged``'s too);
- ``worklist (no prior)``: the same weight without P(relevant);
- ``previous worklist``: the weight before issue 24, ``|disc_B - disc_A| / (IDCG_q * n)``
  (``n + 1`` and IDCG 1 for a query not yet scored), recomputed like the worklist;
- ``random``: a seeded permutation of the pool.

Usage::

    python benchmarks/bench_worklist.py                          # cranfield + cisi
    python benchmarks/bench_worklist.py --collections cranfield --seeds 30 --cache <dir>

Vectors come from the evalkit embedding cache (``--cache``, default ``.cache/evalkit``); the two
collections embed in ~1 min cold on 2 cores.  Counts and errors, not timings.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evalkit.compare.calls import call  # noqa: E402
from evalkit.compare.intervals import student  # noqa: E402
from evalkit.compare.worklist import order_unjudged, rank_unjudged, top_ids  # noqa: E402
from evalkit.metrics.ir import score  # noqa: E402

METRIC = "ndcg@10"
K = 10
MARGIN = 0.01  # conf/gates/default.yaml primary_metric.margin
ALPHA = 0.05  # conf/gates/default.yaml primary_metric.alpha
BUDGETS = (100, 200, 400, 600)
ORDERS = (
    "worklist",
    "rank_pooling",
    "query_pooling",
    "worklist (no prior)",
    "previous worklist",
    "random",
)
_DISC = [1.0 / math.log2(i + 2) for i in range(K)]

Qrels = dict[str, dict[str, int]]
Pair = tuple[str, str]


def primary_call(deltas: np.ndarray) -> str:
    """The primary metric's call on per-query deltas (B - A), as the verdict makes it with
    ``compare.test=student``: the paired t-test at the full alpha (the primary metric is not
    corrected) and the interval that inverts it, at 1 - alpha
    (:func:`evalkit.compare.intervals.student`, :func:`evalkit.compare.calls.call`)."""
    test = student(np.asarray(deltas, dtype=np.float64))
    low, high = test.interval(1.0 - ALPHA)
    return str(call(test.estimate, low, high, margin=MARGIN, p_value=test.p_value, alpha=ALPHA))


def deltas_of(rank_a, rank_b, judged: Qrels) -> np.ndarray:
    """Per-query nDCG@10 deltas (B - A) of the queries scored, by evalkit's own scorer (ranx)."""
    scored = {q: j for q, j in judged.items() if any(g > 0 for g in j.values())}
    a = score(rank_a, scored, [METRIC]).per_query[METRIC]
    b = score(rank_b, scored, [METRIC]).per_query[METRIC]
    return np.array([b[q] - a[q] for q in sorted(a)])


def rankings(data_dir: Path, cache: Path, text_field: str) -> tuple[object, object, Qrels, object]:
    """A's and B's rankings (use_m3, e5_small), the full qrels, the EvalData."""
    from hydra import compose, initialize_config_dir

    from evalkit.run.evaluation import run_evaluation

    out = Path(tempfile.mkdtemp(prefix="bench-worklist-"))
    overrides = [
        "dataset=beir",
        f"dataset.path={data_dir}",
        f"dataset.text_field={text_field}",
        "models=[use_m3,e5_small]",
        "tracking=none",
        f"cache.dir={cache}",
        f"output_dir={out}",
        "latency.probe=0",
        "compare.reindex=false",
        "compare.worklist_size=0",
        "progress=false",
    ]
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    ev = run_evaluation(cfg)
    a, b = ev.results[0], ev.results[1]
    return a.ranking, b.ranking, ev.data.judgments.qrels, ev.data


def previous_order(top_a: dict, top_b: dict, judged: Qrels) -> list[Pair]:
    """The worklist before issue 24 (minimal-test-collection weights, no P(relevant))."""
    scored = sum(1 for q in top_a if any(g > 0 for g in judged.get(q, {}).values()))
    rows = []
    for q, items_a in top_a.items():
        known = judged.get(q, {})
        ra = {d: i for i, d in enumerate(items_a[:K])}
        rb = {d: i for i, d in enumerate(top_b.get(q, [])[:K])}
        ideal = sorted((g for g in known.values() if g > 0), reverse=True)[:K]
        idcg = sum(g * _DISC[i] for i, g in enumerate(ideal))
        scale = 1.0 / (idcg * scored) if idcg > 0 else 1.0 / (scored + 1)
        for d in dict.fromkeys([*ra, *rb]):
            if d not in known:
                da = _DISC[ra[d]] if d in ra else 0.0
                db = _DISC[rb[d]] if d in rb else 0.0
                rows.append((-round(abs(db - da) * scale, 12), -max(da, db) * scale, q, d))
    return [(q, d) for *_, q, d in sorted(rows)]


def keep_share(full: Qrels, share: float, seed: int) -> Qrels:
    """Each judged pair kept with probability ``share`` (seeded)."""
    rng = random.Random(seed)
    kept: Qrels = {}
    for q in sorted(full):
        for d in sorted(full[q]):
            if rng.random() < share:
                kept.setdefault(q, {})[d] = full[q][d]
    return kept


def simulate(
    next_pairs: Callable[[Qrels], list[Pair]],
    kept: Qrels,
    full: Qrels,
    rank_a,
    rank_b,
    batch: int,
) -> dict[int, np.ndarray]:
    """Per-query deltas after each budget; the order is asked again every ``batch`` judgments."""
    judged = {q: dict(v) for q, v in kept.items()}
    out: dict[int, np.ndarray] = {}
    added = 0
    while added < max(BUDGETS):
        pairs = next_pairs(judged)[: min(batch, max(BUDGETS) - added)]
        if not pairs:
            break
        for q, d in pairs:
            judged.setdefault(q, {})[d] = full.get(q, {}).get(d, 0)
            added += 1
            if added in BUDGETS:
                out[added] = deltas_of(rank_a, rank_b, judged)
    last = deltas_of(rank_a, rank_b, judged)
    return {b: out.get(b, last) for b in BUDGETS}


def run_collection(name: str, args: argparse.Namespace) -> dict:
    data_dir = REPO / "tests" / "data" / name
    text_field = "text" if name == "med" else "title"
    rank_a, rank_b, full, data = rankings(data_dir, Path(args.cache), text_field)
    deep_a, deep_b = top_ids(rank_a, rank_a.k), top_ids(rank_b, rank_b.k)
    final = deltas_of(rank_a, rank_b, full)
    final_delta, final_call = float(final.mean()), primary_call(final)
    errors = {o: {b: [] for b in BUDGETS} for o in ORDERS}
    agree = {o: {b: [] for b in BUDGETS} for o in ORDERS}
    unscored_rows: list[tuple[int, int]] = []
    start_err, pool_err, pool_size = [], [], []
    for seed in range(args.seeds):
        kept = keep_share(full, args.keep, seed)
        start_err.append(abs(deltas_of(rank_a, rank_b, kept).mean() - final_delta))
        scored = {q for q, j in kept.items() if any(g > 0 for g in j.values())}
        heads = (
            [u.query_id for u in rank_unjudged(deep_a, deep_b, kept, METRIC)],
            [u.query_id for u in rank_unjudged(deep_a, deep_b, kept, METRIC, prior=False)],
            [q for q, _ in previous_order(deep_a, deep_b, kept)],
        )
        unscored_rows.append(tuple(sum(q not in scored for q in h[:200]) for h in heads))
        pool = [(u.query_id, u.item_id) for u in order_unjudged(deep_a, deep_b, kept, METRIC)]
        shuffled = random.Random(seed).sample(pool, len(pool))
        pool_size.append(len(pool))
        whole = {q: dict(v) for q, v in kept.items()}
        for q, d in pool:
            whole.setdefault(q, {})[d] = full.get(q, {}).get(d, 0)
        pool_err.append(abs(deltas_of(rank_a, rank_b, whole).mean() - final_delta))

        def ordered(order: str, judged: Qrels, seed: int = seed) -> list[Pair]:
            got = order_unjudged(deep_a, deep_b, judged, METRIC, order=order, seed=seed)
            return [(u.query_id, u.item_id) for u in got]

        def no_prior(judged: Qrels) -> list[Pair]:
            got = rank_unjudged(deep_a, deep_b, judged, METRIC, prior=False)
            return [(u.query_id, u.item_id) for u in got]

        def fixed(order: list[Pair]) -> Callable[[Qrels], list[Pair]]:
            return lambda judged: [p for p in order if p[1] not in judged.get(p[0], {})]

        orders: dict[str, Callable[[Qrels], list[Pair]]] = {
            "worklist": lambda j: ordered("worklist", j),
            "rank_pooling": fixed(ordered("rank_pooling", kept)),
            "query_pooling": fixed(ordered("query_pooling", kept)),
            "worklist (no prior)": no_prior,
            "previous worklist": lambda j: previous_order(deep_a, deep_b, j),
            "random": fixed(shuffled),
        }
        for order, next_pairs in orders.items():
            got = simulate(next_pairs, kept, full, rank_a, rank_b, args.batch)
            for b, d in got.items():
                errors[order][b].append(abs(float(d.mean()) - final_delta))
                agree[order][b].append(primary_call(d) == final_call)
    return {
        "name": name,
        "items": len(data.catalog),
        "queries": len(data.queries),
        "scored": final.size,
        "delta": final_delta,
        "call": final_call,
        "start_error": float(np.median(start_err)),
        "pool_error": float(np.median(pool_err)),
        "unscored_rows": unscored_rows,
        "errors": errors,
        "agree": agree,
        "pool": int(np.median(pool_size)),
    }


def table(res: dict) -> list[str]:
    head = " | ".join(f"{b}" for b in BUDGETS)
    lines = [
        f"| order | {head} |",
        "|---|" + "---|" * len(BUDGETS),
    ]
    for order in ORDERS:
        cells = []
        for b in BUDGETS:
            e = np.asarray(res["errors"][order][b])
            q1, med, q3 = np.percentile(e, [25, 50, 75])
            share = np.mean(res["agree"][order][b])
            cells.append(f"{med:.4f} ({q1:.4f}-{q3:.4f}), {share:.0%}")
        lines.append(f"| {order} | " + " | ".join(cells) + " |")
    return lines


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line
        )
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--collections", nargs="+", default=["cranfield", "cisi"])
    ap.add_argument("--cache", default=str(REPO / ".cache" / "evalkit"))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--keep", type=float, default=0.4, help="share of judgments held at start")
    ap.add_argument("--batch", type=int, default=20, help="worklist recomputed every N judgments")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
    t0 = time.perf_counter()
    results = [run_collection(name, a) for name in a.collections]
    took = time.perf_counter() - t0
    print(
        f"A = use_m3, B = e5_small, {METRIC}; {a.keep:.0%} of the judgments kept per seed, "
        f"{a.seeds} seeds; worklist recomputed every {a.batch} judgments.  Cells: median "
        "|delta - full delta| (quartiles), share of seeds whose call = the full call."
    )
    mean_err = {o: [] for o in ORDERS}
    for res in results:
        rows = np.asarray(res["unscored_rows"])
        print(
            f"\n{res['name']}: {res['items']} items, {res['queries']} queries ({res['scored']} "
            f"scored), full delta {res['delta']:+.4f}, call {res['call']}; median error with "
            f"the kept judgments {res['start_error']:.4f}, with the whole pool judged "
            f"{res['pool_error']:.4f} ({res['pool']} pairs); rows of the first 200 on queries "
            f"not scored yet (median): worklist {np.median(rows[:, 0]):.0f}, no prior "
            f"{np.median(rows[:, 1]):.0f}, previous {np.median(rows[:, 2]):.0f}\n"
        )
        print("\n".join(table(res)))
        for order in ORDERS:
            mean_err[order] += [float(np.median(res["errors"][order][b])) for b in BUDGETS]
        wins = [
            np.median(res["errors"]["worklist"][b])
            <= min(
                np.median(res["errors"]["rank_pooling"][b]),
                np.median(res["errors"]["query_pooling"][b]),
            )
            for b in BUDGETS
        ]
        print(
            f"\nworklist <= both pooling orders (median error): {sum(wins)} of {len(wins)} budgets"
        )
    best = min(ORDERS[:3], key=lambda o: np.mean(mean_err[o]))
    print(
        "\nmean of the median errors over collections and budgets: "
        + ", ".join(f"{o} {np.mean(v):.4f}" for o, v in mean_err.items())
        + f"; best of the selectable orders: {best}"
    )
    print(f"\n{machine()}; {time.strftime('%Y-%m-%d %H:%M %Z')}; wall {took:.0f} s")


if __name__ == "__main__":
    main()
