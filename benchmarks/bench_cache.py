"""Does the embedding cache scale? Write / read throughput of ``VectorCache`` and the warm path
of ``embed_texts`` (hash, look up, assemble) with an instant backend.

Measures, for ``--n`` random float32 vectors of ``--dim`` dimensions in a temporary directory:

* put in batches of ``--batch`` (the size embed_texts writes, fsync per batch) and in one go;
* get of all keys in shuffled order (memory-mapped reads) - verified equal to what was written;
* ``embed_texts`` cold and warm on ``--n`` distinct texts with a backend that returns zeros, so
  the time is evalkit's own overhead (the warm run must make zero requests).

Run:  python benchmarks/bench_cache.py [--n 200000] [--dim 384] [--batch 64]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evalkit.embed import ModelVersion, VectorCache, embed_texts  # noqa: E402
from evalkit.embed.cache import text_keys  # noqa: E402


class Instant(ModelVersion):
    """A backend that costs nothing: isolates evalkit's own overhead."""

    backend = "instant"

    def __init__(self, dim: int, batch_size: int) -> None:
        super().__init__("instant", batch_size=batch_size, normalize=False)
        self.dim = dim

    def _embed_batch(self, texts, role, dimensions):
        return np.zeros((len(texts), self.dim), dtype=np.float32)


def timed(label: str, n: int, fn):
    t0 = time.perf_counter()
    out = fn()
    s = time.perf_counter() - t0
    print(f"{label:<44}{s:>8.2f} s {n / s:>12,.0f} vectors/s")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    n, dim, bs = args.n, args.dim, args.batch
    print(f"n={n:,} dim={dim} batch={bs} nproc={os.cpu_count()}")
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    texts = [f"catalog item number {i}" for i in range(n)]
    keys = timed("hash texts (blake2b-128)", n, lambda: text_keys(texts))

    with tempfile.TemporaryDirectory() as root:

        def put_batched() -> None:
            with VectorCache(root, {"run": "batched"}) as c:
                for s in range(0, n, bs):
                    c.put(keys[s : s + bs], vectors[s : s + bs])

        def put_once() -> None:
            with VectorCache(root, {"run": "once"}, fsync=False) as c:
                c.put(keys, vectors)

        timed(f"put, batches of {bs}, fsync each", n, put_batched)
        timed("put, one call", n, put_once)
        order = rng.permutation(n)
        shuffled = [keys[i] for i in order]

        def get_all():
            with VectorCache(root, {"run": "batched"}) as c:
                return c.get(shuffled)

        positions, got = timed("get, all keys shuffled", n, get_all)
        assert positions.size == n and np.array_equal(got, vectors[order]), "cache readback differs"

        model = Instant(dim, bs)
        cold = timed(
            "embed_texts cold (instant backend)",
            n,
            lambda: embed_texts(model, texts, "document", root, progress=False),
        )
        warm = timed(
            "embed_texts warm",
            n,
            lambda: embed_texts(model, texts, "document", root, progress=False),
        )
        assert warm.n_requests == 0 and warm.n_cached == n and cold.n_requests == -(-n // bs)
        size = sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())
        print(f"cache size on disk: {size / 2**20:,.0f} MiB for {3 * n:,} vectors")


if __name__ == "__main__":
    main()
