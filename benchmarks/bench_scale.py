"""The warm A/B at 1M items through the real CLI: wall time, peak RSS, stages, ratio to the floor.

Builds everything itself under ``--work`` (default ``/tmp/evalkit-bench-scale``):

1. a synthetic BEIR-layout catalog (``--items`` titles of 6 words from a 20k-word vocabulary),
   ``--queries`` queries and ``--judgments`` judgments (each query's relevant items share words
   with it, so the metrics are not noise);
2. a fast OpenAI-compatible embeddings server (this script with ``--serve``, stdlib HTTP on
   127.0.0.1): a text's vector is the normalised sum of its words' vectors from a table seeded
   by the served model name, so two "model versions" (``synth-a``, ``synth-b``) differ;
3. the vector store filled through evalkit's public cache API (``VectorCache.put``, then
   ``VectorCache.compact`` as a cold ``embed_texts`` call of that size ends) with the
   vectors the server returns (checked on a sample through the server), so the CLI run is warm:
   zero embedding requests (``--cold`` embeds through the server with the CLI first instead);
4. the warm A/B ``evalkit dataset=beir models=[openai,e5_small_openai]`` under ``/usr/bin/time -v``
   (peak RSS), per-stage times read back from MLflow: each version's ``embed_seconds`` (a warm
   store read: printed as the store read rate inside the run), ``index_seconds``,
   ``search_seconds`` (printed as GFLOP/s beside both floors) and the parent run's
   ``reindex_seconds`` (the re-index analysis: its cross searches in the main pass, the
   half-migrated catalog and its searches);
5. the floor, in the same run on the same vectors: FAISS ``IndexFlatIP`` search alone and a
   plain float32 matrix product (BLAS sgemm), each timed on ``--floor-queries`` queries and
   scaled to all queries of both versions.

    python benchmarks/bench_scale.py                     # 1M x 10k, 384-d (needs ~5 GB free)
    python benchmarks/bench_scale.py --items 20000 --queries 500   # a quick look
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
VOCAB = 20_000
WORDS = 6
MODELS = {"synth-a": 1, "synth-b": 2}  # served model name -> table seed


def word(i: int) -> str:
    return f"w{i}"


def table(model: str, dim: int) -> np.ndarray:
    return np.random.default_rng(MODELS[model]).standard_normal((VOCAB, dim)).astype(np.float32)


def embed_ids(tab: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Normalised sum of word vectors, rows of ``ids`` (n, WORDS) -> (n, d) float32."""
    v = tab[ids[:, 0]].copy()
    for j in range(1, ids.shape[1]):
        v += tab[ids[:, j]]
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


# ---------------------------------------------------------------- the server (--serve)


def serve(port: int, dim: int) -> None:
    tables = {m: table(m, dim) for m in MODELS}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            ids = np.array([[int(w[1:]) for w in t.split()[-WORDS:]] for t in texts])
            vectors = embed_ids(tables[body["model"]], ids)
            b64 = body.get("encoding_format") == "base64"
            data = [
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": base64.b64encode(v.tobytes()).decode() if b64 else v.tolist(),
                }
                for i, v in enumerate(vectors)
            ]
            out = json.dumps(
                {
                    "object": "list",
                    "data": data,
                    "model": body["model"],
                    "usage": {"prompt_tokens": 0, "total_tokens": 0},
                }
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


# ---------------------------------------------------------------- data


def build_data(folder: Path, n_items: int, n_queries: int, n_judgments: int) -> dict:
    rng = np.random.default_rng(0)
    item_words = rng.integers(0, VOCAB, size=(n_items, WORDS))
    per_query = max(1, n_judgments // n_queries)
    rel = rng.integers(0, n_items, size=(n_queries, per_query))
    # a query: 3 words of its first relevant item, 3 random ones
    query_words = np.concatenate(
        [item_words[rel[:, 0], :3], rng.integers(0, VOCAB, size=(n_queries, WORDS - 3))], axis=1
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "qrels").mkdir(exist_ok=True)
    with open(folder / "corpus.jsonl", "w") as f:
        for i in range(n_items):
            title = f"item {i} " + " ".join(map(word, item_words[i]))
            f.write(f'{{"_id": "d{i}", "title": "{title}", "text": ""}}\n')
    with open(folder / "queries.jsonl", "w") as f:
        for q in range(n_queries):
            f.write(f'{{"_id": "q{q}", "text": "' + " ".join(map(word, query_words[q])) + '"}\n')
    with open(folder / "qrels" / "test.tsv", "w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for q in range(n_queries):
            for d in dict.fromkeys(rel[q].tolist()):
                f.write(f"q{q}\td{d}\t1\n")
    return {"item_words": item_words, "query_words": query_words}


# ---------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_overrides(args: argparse.Namespace, work: Path, base_url: str, name: str) -> list[str]:
    return [
        "dataset=beir",
        f"dataset.path={work / 'data'}",
        f"dataset.cache_dir={work / 'hf'}",
        "models=[openai,e5_small_openai]",
        f"models.openai.base_url={base_url}",
        "models.openai.model=synth-a",
        f"models.openai.batch_size={args.batch_size}",
        f"models.e5_small_openai.base_url={base_url}",
        "models.e5_small_openai.model=synth-b",
        f"models.e5_small_openai.batch_size={args.batch_size}",
        f"cache.dir={work / 'store'}",
        f"tracking.uri=sqlite:///{work}/mlflow.db",
        f"tracking.experiment={name}",
        f"hydra.run.dir={work / name}",
        "progress=false",
        *args.extra,
    ]


def versions(overrides: list[str]) -> list:
    from hydra import compose, initialize_config_dir

    from evalkit.instantiate import build

    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[o for o in overrides if not o.startswith("hydra.")])
    return [build(cfg.models[n], n) for n in cfg.models]


def prefill(work: Path, overrides: list[str], data: dict, dim: int, base_url: str) -> float:
    """Write the server's vectors for every catalog and query text into the store."""
    from evalkit.embed import embed_texts
    from evalkit.embed.cache import COMPACT_MB, VectorCache, text_key_array

    t0 = time.perf_counter()
    n_items, n_queries = len(data["item_words"]), len(data["query_words"])
    doc_texts = [f"item {i} " + " ".join(map(word, w)) for i, w in enumerate(data["item_words"])]
    query_texts = [" ".join(map(word, w)) for w in data["query_words"]]
    for version, model in zip(versions(overrides), MODELS):
        tab = table(model, dim)
        for role, texts, words in (
            ("document", doc_texts, data["item_words"]),
            ("query", query_texts, data["query_words"]),
        ):
            keys = text_key_array(texts)
            with VectorCache(work / "store", version.cache_spec(role), fsync=False) as cache:
                parts = []
                for s in range(0, len(texts), 100_000):
                    parts.append(embed_ids(tab, words[s : s + 100_000]))
                    cache.put(keys[s : s + 100_000], parts[-1])
                vectors = np.concatenate(parts)
                del parts
                if vectors.nbytes >= COMPACT_MB * 2**20:  # as a cold embed_texts call ends
                    cache.compact(keys, vectors)
                del vectors
            # the store holds what the server returns: check a sample through the server
            sample = texts[:64]
            served = embed_texts(version, sample, role, cache_dir=None, progress=False).vectors
            stored = embed_ids(tab, words[:64])
            assert np.allclose(served, stored, atol=1e-6), f"server != store for {model}/{role}"
    print(
        f"store filled: {2 * (n_items + n_queries):,} vectors in {time.perf_counter() - t0:.1f} s"
    )
    return time.perf_counter() - t0


def run_cli(
    overrides: list[str], log: Path, profile: Path | None = None
) -> tuple[float, float, int]:
    """(wall s, peak RSS GB, exit code) of one CLI run under /usr/bin/time -v (and under
    ``py-spy record`` writing a speedscope profile to ``profile``, if given)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_UPDATE_DOWNLOAD_COUNTS": "0"}
    spy = ["py-spy", "record", "-r", "50", "-f", "speedscope", "-o", str(profile), "--"]
    cmd = ["/usr/bin/time", "-v", *(spy if profile else []), sys.executable, "-m", "evalkit.cli"]
    cmd += overrides
    t0 = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    wall = time.perf_counter() - t0
    text = log.read_text()
    if proc.returncode not in (0, 3):
        sys.exit(f"evalkit failed ({proc.returncode}):\n{text[-3000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    return wall, rss_kb / 2**20, proc.returncode


def stage_times(work: Path, name: str) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """(each version's child-run metrics, the parent run's metrics)."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{work}/mlflow.db")
    exp = client.get_experiment_by_name(name)
    out, parent = {}, {}
    for r in client.search_runs([exp.experiment_id]):
        if "evalkit.model_version" in r.data.tags:
            out[r.data.tags["evalkit.model_version"]] = dict(r.data.metrics)
        elif "mlflow.parentRunId" not in r.data.tags:
            parent = dict(r.data.metrics)
    return out, parent


def floor(work: Path, overrides: list[str], data: dict, n_sample: int, k: int) -> dict:
    """FAISS flat search alone and a plain matmul on version A's stored vectors."""
    import faiss

    from evalkit.embed.cache import VectorCache, text_key_array

    version = versions(overrides)[0]
    doc_texts = [f"item {i} " + " ".join(map(word, w)) for i, w in enumerate(data["item_words"])]
    query_texts = [" ".join(map(word, w)) for w in data["query_words"]]
    with VectorCache(work / "store", version.cache_spec("document")) as c:
        t0 = time.perf_counter()
        _, xb = c.get(text_key_array(doc_texts))
        read_s = time.perf_counter() - t0
    with VectorCache(work / "store", version.cache_spec("query")) as c:
        _, xq = c.get(text_key_array(query_texts))
    xb = np.ascontiguousarray(xb)
    xq = np.ascontiguousarray(xq[:n_sample])
    n, d = xb.shape
    index = faiss.IndexFlatIP(d)
    index.add(xb)
    t0 = time.perf_counter()
    index.search(xq, k)
    faiss_s = time.perf_counter() - t0
    del index
    t0 = time.perf_counter()
    for s in range(0, n, 131_072):
        xq @ xb[s : s + 131_072].T
    matmul_s = time.perf_counter() - t0
    flops = 2.0 * len(xq) * n * d
    return {
        "cache_read_vectors_per_s": n / read_s,
        "faiss_s": faiss_s,
        "matmul_s": matmul_s,
        "faiss_gflops": flops / faiss_s / 1e9,
        "matmul_gflops": flops / matmul_s / 1e9,
        "sample": len(xq),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--judgments", type=int, default=30_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--floor-queries", type=int, default=1000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/evalkit-bench-scale"))
    ap.add_argument("--cold", action="store_true", help="embed through the server (CLI) first")
    ap.add_argument("--keep", action="store_true", help="keep --work afterwards")
    ap.add_argument(
        "--profile", type=Path, help="py-spy speedscope profile of the warm run (slows it down)"
    )
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("extra", nargs="*", help="more evalkit overrides, e.g. index.threads=2")
    a = ap.parse_args()
    if a.serve:
        serve(a.serve, a.dim)
        return
    work = a.work.resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--dim", str(a.dim)],
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(200):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        t0 = time.perf_counter()
        data = build_data(work / "data", a.items, a.queries, a.judgments)
        print(f"data: {a.items:,} items, {a.queries:,} queries in {time.perf_counter() - t0:.1f} s")
        if a.cold:
            wall, rss, _ = run_cli(cli_overrides(a, work, base_url, "cold"), work / "cold.log")
            print(f"cold: wall {wall:.1f} s, peak RSS {rss:.2f} GB")
        else:
            prefill(work, cli_overrides(a, work, base_url, "warm"), data, a.dim, base_url)
        load = os.getloadavg()
        wall, rss, code = run_cli(
            cli_overrides(a, work, base_url, "warm"), work / "warm.log", a.profile
        )
        load_after = os.getloadavg()
        stages, parent = stage_times(work, "warm")
        fl = floor(work, cli_overrides(a, work, base_url, "warm"), data, a.floor_queries, 100)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)
    scale = a.queries / fl["sample"]
    floor_search = 2 * fl["faiss_s"] * scale  # both versions, all queries
    floor_matmul = 2 * fl["matmul_s"] * scale
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load avg before {load[0]:.1f}, after {load_after[0]:.1f}"
    )
    print(f"warm A/B {a.items:,} items x {a.queries:,} queries x {a.dim}-d (exit code {code})")
    print(f"  wall {wall:.1f} s, peak RSS {rss:.2f} GB")
    search_total = 0.0
    flops = 2.0 * a.queries * a.items * a.dim  # one version's exact search
    for name, m in stages.items():
        search_s = m.get("search_seconds", 0.0)
        embed_s = m.get("embed_seconds", 0.0)
        search_total += search_s
        read = (
            f"store read {(a.items + a.queries) / embed_s:,.0f} vectors/s"
            if embed_s > 0 and not m.get("embed_requests", 0)
            else "store read: not a warm run"
        )
        print(
            f"  {name}: embed (cache) {embed_s:.1f} s ({read}), index "
            f"{m.get('index_seconds', 0):.1f} s, search {search_s:.1f} s "
            f"({flops / search_s / 1e9 if search_s > 0 else float('nan'):.1f} GFLOP/s; floors: "
            f"FAISS {fl['faiss_gflops']:.1f}, matmul {fl['matmul_gflops']:.1f}), "
            f"requests {m.get('embed_requests', 0):.0f}, cached {m.get('embed_cached', 0):.0f}"
        )
    reindex_s = parent.get("reindex_seconds")
    print(
        "  re-index analysis (reindex_seconds): "
        + (f"{reindex_s:.1f} s" if reindex_s is not None else "not run (compare.reindex=false?)")
    )
    staged = sum(
        sum(m.get(k, 0) for k in ("embed_seconds", "index_seconds", "search_seconds"))
        for m in stages.values()
    ) + (reindex_s or 0.0)
    print(f"  rest (start-up, load, score, compare, report, MLflow): {wall - staged:.1f} s")
    print(
        f"cache read in this process (VectorCache.get, 1 version's catalog): "
        f"{fl['cache_read_vectors_per_s']:,.0f} vectors/s"
    )
    print(
        f"floor on {fl['sample']} queries, scaled to {a.queries:,} x 2 versions: FAISS flat "
        f"{floor_search:.1f} s ({fl['faiss_gflops']:.1f} GFLOP/s), matmul {floor_matmul:.1f} s "
        f"({fl['matmul_gflops']:.1f} GFLOP/s)"
    )
    print(
        f"ratio wall / FAISS floor {wall / floor_search:.2f}x, CLI search / FAISS floor "
        f"{search_total / floor_search:.2f}x, wall / matmul floor {wall / floor_matmul:.2f}x"
    )
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
