"""FAISS indexes over one model version's catalog vectors.

Exact inner product (``flat``) on L2-normalised vectors is the default, so scores are cosine
similarities; of an approximate index (``hnsw``, ``ivf``, or a ``precision`` below fp32) the
recall against exact search is measured, so index error is never mistaken for a regression.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> docs = rng.standard_normal((100, 8)).astype("float32")
>>> docs /= np.linalg.norm(docs, axis=1, keepdims=True)
>>> index = build_index(docs, IndexSpec(kind="flat"))
>>> scores, rows = index.search(docs[:3], 1)
>>> rows[:, 0].tolist()
[0, 1, 2]
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import faiss
import numpy as np

from evalkit.errors import ConfigError
from evalkit.index.binary import THRESHOLDS, BinaryIndex
from evalkit.terminal import progress_bar

log = logging.getLogger(__name__)

KINDS = ("flat", "hnsw", "ivf")
PRECISIONS = ("fp32", "fp16", "sq8", "sq4", "binary")
#: FAISS scalar quantizer of each reduced float precision.
SQ_TYPES = {
    "fp16": faiss.ScalarQuantizer.QT_fp16,
    "sq8": faiss.ScalarQuantizer.QT_8bit,
    "sq4": faiss.ScalarQuantizer.QT_4bit,
}
CODECS = ("flat", "sq8", "pq")


@dataclass(frozen=True)
class IndexSpec:
    """How to index a catalog (``conf/index/*.yaml``).

    Attributes:
        kind: ``flat`` (exact), ``hnsw`` (graph) or ``ivf`` (inverted lists).
        m: hnsw: neighbours per node.
        ef_construction: hnsw: the build-time beam width.
        ef_search: hnsw: the search-time beam width (raise for recall, lower for speed).
        nlist: ivf: the number of clusters; 0 = 4 * sqrt(catalog size).
        nprobe: ivf: clusters visited per query.
        codec: ivf: ``flat`` (full vectors), ``sq8`` (8-bit scalar quantizer) or ``pq``.
        pq_m: ivf with ``codec=pq``: sub-quantizers (must divide the dimension).
        pq_nbits: ivf with ``codec=pq``: bits per sub-quantizer code.
        train_sample: ivf: vectors trained on, a seeded sample (0 = all).
        search_batch: queries per FAISS call (bounds the result buffers' memory).
        threads: FAISS OpenMP threads (0 = FAISS default, all cores).
        ann_recall_sample: queries re-searched exactly to measure recall (0 = all).
        precision: flat: ``fp32`` (exact), ``fp16``, ``sq8``, ``sq4`` or ``binary`` (sign bits).
        blas_block: catalog rows per BLAS product in exact search (0 = FAISS's default, 1024).
        rescore: binary: top ``max(rescore, k)`` re-ranked by fp32 inner product (0 = none).
        binary_threshold: binary: bits ``v > 0`` (``zero``) or ``v >`` the catalog's ``mean``.
        latency_sample: queries searched one at a time for ``search_p95_ms`` (0 = off).
    """

    kind: str = "flat"
    m: int = 32
    ef_construction: int = 200
    ef_search: int = 128
    nlist: int = 0
    nprobe: int = 16
    codec: str = "flat"
    pq_m: int = 16
    pq_nbits: int = 8
    train_sample: int = 0
    search_batch: int = 4096
    threads: int = 0
    ann_recall_sample: int = 1000
    precision: str = "fp32"
    blas_block: int = 0
    rescore: int = 1000
    binary_threshold: str = "zero"
    latency_sample: int = 200

    def __post_init__(self) -> None:
        self._check_choice("kind", KINDS)
        self._check_choice("precision", PRECISIONS)
        if self.precision != "fp32" and self.kind != "flat":
            raise ConfigError(
                f"index.precision={self.precision} applies to index=flat only "
                f"(index.kind is {self.kind!r}); leave index.precision=fp32"
            )
        self._check_choice("codec", CODECS)
        self._check_ints(("pq_m", "pq_nbits"), 1)
        self._check_choice("binary_threshold", THRESHOLDS)
        self._check_ints(("rescore", "latency_sample", "train_sample"), 0)

    def _check_choice(self, key: str, choices: tuple[str, ...]) -> None:
        value = getattr(self, key)
        if value not in choices:
            raise ConfigError(f"index.{key}={value!r} is unknown (expected one of {choices})")

    def _check_ints(self, keys: tuple[str, ...], low: int) -> None:
        for key in keys:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(
                    f"index.{key}={value!r} is invalid (expected an integer >= {low})"
                )

    @property
    def exact(self) -> bool:
        """Flat on full-precision vectors (anything else gets ``ann_recall_at_<k>``)."""
        return self.kind == "flat" and self.precision == "fp32"

    def params(self) -> dict[str, object]:
        """The settings that matter for this kind, for MLflow params."""
        p = asdict(self)
        keep = {"kind", "search_batch", "precision"}
        keep |= {
            "hnsw": {"m", "ef_construction", "ef_search"},
            "ivf": {"nlist", "nprobe", "codec"},
        }.get(self.kind, set())
        if self.kind == "ivf" and self.codec == "pq":
            keep |= {"pq_m", "pq_nbits"}
        if self.kind == "ivf" and self.train_sample:
            keep.add("train_sample")
        if self.precision == "binary":
            keep |= {"rescore", "binary_threshold"}
        return {f"index.{k}": v for k, v in p.items() if k in keep}


#: Vectors added to an index per call (one progress-bar step).
ADD_BATCH = 100_000


def ivf_nlist(n: int, spec: IndexSpec) -> int:
    """Clusters of an IVF over ``n`` vectors: ``spec.nlist`` or 4*sqrt(n), at most ``n``."""
    nlist = spec.nlist or max(1, int(4 * math.sqrt(n)))
    return max(1, min(nlist, n))


def training_rows(n: int, spec: IndexSpec, seed: int = 0) -> np.ndarray:
    """Rows an IVF is trained on: all, or a seeded sorted sample of ``spec.train_sample``.

    >>> training_rows(5, IndexSpec(kind="ivf")).tolist()
    [0, 1, 2, 3, 4]
    >>> len(training_rows(1000, IndexSpec(kind="ivf", train_sample=10)))
    10
    """
    return sample_rows(n, spec.train_sample, seed)


def sample_rows(n: int, sample: int, seed: int = 0) -> np.ndarray:
    """All of ``range(n)``, or a seeded sorted sample of ``sample`` of them (0 = all)."""
    if not sample or sample >= n:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=sample, replace=False)).astype(np.int64)


def trained_ivf(train: np.ndarray, n_total: int, spec: IndexSpec) -> faiss.Index:
    """An empty IVF (flat, SQ8 or PQ codes; inner product) trained on ``train``; its copies
    (shards) share the quantizer and codebooks, so their merged top-k is one index's."""
    x = np.ascontiguousarray(train, dtype=np.float32)
    d = x.shape[1]
    nlist = min(ivf_nlist(n_total, spec), len(x))
    quantizer = faiss.IndexFlatIP(d)
    ip = faiss.METRIC_INNER_PRODUCT
    if spec.codec == "flat":
        index = faiss.IndexIVFFlat(quantizer, d, nlist, ip)
    elif spec.codec == "sq8":
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit, ip
        )
    else:
        if d % spec.pq_m:
            raise ConfigError(
                f"index.pq_m={spec.pq_m} does not divide the vector dimension {d} "
                "(expected a divisor of the dimension, e.g. 8, 16, 32)"
            )
        index = faiss.IndexIVFPQ(quantizer, d, nlist, spec.pq_m, spec.pq_nbits, ip)
    index.train(x)
    index.nprobe = min(spec.nprobe, nlist)
    return index


def build_index(
    vectors: np.ndarray, spec: IndexSpec, progress: bool = False, seed: int = 0
) -> faiss.Index | BinaryIndex:
    """Index ``vectors`` (float32, (n, d)) for inner-product search (``seed``: IVF sample;
    ``precision=binary``: a :class:`~evalkit.index.binary.BinaryIndex`)."""
    if spec.threads:
        faiss.omp_set_num_threads(spec.threads)
    if spec.blas_block:
        faiss.cvar.distance_compute_blas_database_bs = spec.blas_block
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = x.shape
    if spec.kind == "flat" and spec.precision == "binary":
        binary = BinaryIndex(x, spec.rescore, spec.binary_threshold)
        log.debug("built binary index over %d x %d vectors (rescore %d)", n, d, spec.rescore)
        return binary
    if spec.kind == "flat" and spec.precision != "fp32":
        qtype = SQ_TYPES[spec.precision]
        index = faiss.IndexScalarQuantizer(d, qtype, faiss.METRIC_INNER_PRODUCT)
        index.train(x)  # fp16: no-op; sq8 / sq4: per-dimension min / max
    elif spec.kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif spec.kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, spec.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = spec.ef_construction
        index.hnsw.efSearch = spec.ef_search
    else:
        index = trained_ivf(x[training_rows(n, spec, seed)], n, spec)
    batches = range(0, n, ADD_BATCH)
    for s in progress_bar(batches, desc=f"FAISS {spec.kind} build", enabled=progress, unit="batch"):
        index.add(x[s : s + ADD_BATCH])
    log.debug("built %s (%s) index over %d x %d vectors", spec.kind, spec.precision, n, d)
    return index


class ArrayFlatIP:
    """Exact inner-product search over the caller's float32 matrix, without copying it (the
    kernel of ``IndexFlatIP.search``, so rankings are identical); keep the matrix unchanged.
    """

    def __init__(self, vectors: np.ndarray, threads: int = 0) -> None:
        self.xb = np.ascontiguousarray(vectors, dtype=np.float32)  # no copy if already so
        self.ntotal, self.d = self.xb.shape
        if threads:
            faiss.omp_set_num_threads(threads)

    def search(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return faiss.knn(x, self.xb, k, metric=faiss.METRIC_INNER_PRODUCT)


def stored_vectors(index: faiss.Index) -> np.ndarray | None:
    """A read-only view (no copy) of a flat float32 index's own vectors, or ``None`` for other
    kinds; keep ``index`` alive while the view is used.
    """
    if isinstance(index, ArrayFlatIP):
        return index.xb
    if type(index) not in (faiss.IndexFlatIP, faiss.IndexFlatL2, faiss.IndexFlat):
        return None
    n, d = index.ntotal, index.d
    if n == 0:
        return np.zeros((0, d), dtype=np.float32)
    view = faiss.rev_swig_ptr(index.get_xb(), n * d).reshape(n, d)
    view.flags.writeable = False
    return view


def ann_recall(approx_rows: np.ndarray, exact_rows: np.ndarray, k: int) -> float:
    """Mean over queries of |approx top-k ∩ exact top-k| / |exact top-k| (padding ignored)."""
    a, e = approx_rows[:, :k], exact_rows[:, :k]
    if len(a) == 0:
        return 1.0
    found = np.empty(len(a), dtype=np.float64)
    for s in range(0, len(a), 1024):  # bounded (chunk, k, k) comparison buffer
        ac, ec = a[s : s + 1024], e[s : s + 1024]
        valid_e = ec >= 0
        hits = (ac[:, :, None] == ec[:, None, :]) & valid_e[:, None, :] & (ac >= 0)[:, :, None]
        found[s : s + 1024] = hits.any(axis=1).sum(axis=1) / np.maximum(valid_e.sum(axis=1), 1)
    return float(found.mean())


def measure_ann_recall(
    vectors: np.ndarray,
    queries: np.ndarray,
    approx_rows: np.ndarray,
    k: int,
    sample: int,
    seed: int = 0,
) -> float:
    """Recall of an ANN index's top-``k`` against exact search on (a sample of) the queries."""
    take = sample_rows(len(queries), sample, seed)
    # brute force on the caller's matrix itself: no second copy of the catalog in an index
    xb = np.ascontiguousarray(vectors, dtype=np.float32)
    xq = np.ascontiguousarray(queries[take], dtype=np.float32)
    _, exact_rows = faiss.knn(xq, xb, min(k, len(xb)), metric=faiss.METRIC_INNER_PRODUCT)
    return ann_recall(approx_rows[take], exact_rows, k)
