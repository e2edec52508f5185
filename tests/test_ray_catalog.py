"""engine=ray with precomputed Parquet parts: the catalog is read, checked and indexed by Ray tasks
part by part, never on the driver, and the evaluation equals engine=local on the same vectors.

- A synthetic catalog (with exact ties) in three shuffled Parquet parts holding extra unused ids,
  two precomputed versions: rankings, scores, per-query metrics, TREC runs and verdict.json are
  byte-identical to engine=local for index=flat and index=ivf (same training sample), and the
  driver never reads a catalog part (the whole-file reader fails if called).
- A stored part index is reused by a rerun.
- Malformed parts: a duplicate id over two parts, a part in another dimension, a catalog id with no
  vector, a NaN vector: one line naming the part, the row and the field.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evalkit.errors import DataError

from .cli import REPO

pytestmark = pytest.mark.slow

N, D, NQ = 480, 16, 36


def _write_parts(folder: Path, ids: list[str], vectors: np.ndarray, parts: int, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(seed).permutation(len(ids))
    for i, chunk in enumerate(np.array_split(order, parts)):
        table = pa.table(
            {
                "id": pa.array([ids[j] for j in chunk]),
                "vector": pa.array(vectors[chunk].tolist(), type=pa.list_(pa.float32(), D)),
            }
        )
        pq.write_table(table, folder / f"part-{i:03d}.parquet")


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """A BEIR folder and, per version, catalog parts and a query file."""
    root = tmp_path_factory.mktemp("ray-catalog")
    rng = np.random.default_rng(7)
    centers = rng.standard_normal((24, D)).astype(np.float32)
    labels = rng.integers(0, 24, N)
    base = centers[labels] + 0.3 * rng.standard_normal((N, D)).astype(np.float32)
    base[N // 2 :] = base[: N - N // 2]  # every vector twice: exact ties under both engines
    ids = [f"doc-{i:04d}" for i in rng.permutation(N)]
    qlab = rng.integers(0, 24, NQ)
    queries = centers[qlab] + 0.5 * rng.standard_normal((NQ, D)).astype(np.float32)
    qids = [f"q{i:03d}" for i in range(NQ)]
    beir = root / "beir"
    (beir / "qrels").mkdir(parents=True)
    with open(beir / "corpus.jsonl", "w") as f:
        for i in ids:
            f.write(json.dumps({"_id": i, "title": f"item {i}", "text": ""}) + "\n")
    with open(beir / "queries.jsonl", "w") as f:
        for q in qids:
            f.write(json.dumps({"_id": q, "text": f"query {q}"}) + "\n")
    with open(beir / "qrels" / "test.tsv", "w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for q, lab in zip(qids, qlab):
            for j in np.flatnonzero(labels == lab)[:6]:
                f.write(f"{q}\t{ids[j]}\t{1 + int(j % 2)}\n")
    versions = {}
    for name, noise in (("a", 0.0), ("b", 0.4)):
        vec = base + noise * np.random.default_rng(11).standard_normal((N, D)).astype(np.float32)
        extra = [f"unused-{i}" for i in range(5)]
        all_vec = np.vstack([vec, rng.standard_normal((5, D)).astype(np.float32)])
        _write_parts(root / name / "catalog", ids + extra, all_vec, parts=3, seed=len(name))
        qv = queries + noise * 0.5 * rng.standard_normal((NQ, D)).astype(np.float32)
        pq.write_table(
            pa.table({"id": qids, "vector": pa.array(qv.tolist(), pa.list_(pa.float32(), D))}),
            root / name / "queries.parquet",
        )
        versions[name] = root / name
    return beir, versions


def _model(name: str, folder: Path, catalog: str | None = None) -> str:
    cat = catalog or str(folder / "catalog")
    return (
        f"+models.{name}={{_target_:evalkit.embed.precomputed.Precomputed,name:{name},"
        f"catalog:'{cat}',queries:'{folder / 'queries.parquet'}'}}"
    )


def _evaluate(collection, engine: str, out: Path, *extra: str, catalog_a: str | None = None):
    from hydra import compose, initialize_config_dir

    from evalkit.run.evaluation import run_evaluation

    beir, versions = collection
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "dataset=beir",
                f"dataset.path={beir}",
                "models=[]",
                _model("a", versions["a"], catalog_a),
                _model("b", versions["b"]),
                f"engine={engine}",
                f"cache.dir={out.parent / 'cache'}",
                f"output_dir={out}",
                "tracking=none",
                "progress=false",
                "compare.reindex=false",  # needs both catalogs whole on one machine
                *extra,
            ],
        )
    return run_evaluation(cfg)


def _no_driver_reads(monkeypatch, collection):
    """Make the driver's whole-catalog reader fail for catalog parts (Ray workers are other
    processes and keep the real one)."""
    import evalkit.embed.precomputed as pre

    real = pre.read_parquet_parts

    def guarded(path, *a, **kw):
        assert not path.endswith("catalog"), f"the driver read the catalog {path}"
        return real(path, *a, **kw)

    monkeypatch.setattr(pre, "read_parquet_parts", guarded)


@pytest.mark.parametrize(
    "index", [("index=flat",), ("index=ivf", "index.nlist=8", "index.train_sample=300")]
)
def test_streamed_parts_equal_engine_local(local_ray, collection, tmp_path, monkeypatch, index):
    local = _evaluate(collection, "local", tmp_path / "local", *index)
    _no_driver_reads(monkeypatch, collection)
    ray_run = _evaluate(collection, "ray", tmp_path / "ray", *index)
    assert ray_run.exit_code == local.exit_code
    for a, b in zip(ray_run.results, local.results):
        assert a.extra["catalog_parts"] == 3 and "catalog_parts" not in b.extra
        # the index's cost: FAISS's size of every part's index (local: of the one index)
        assert a.extra["index_bytes"] > 0 and b.extra["index_bytes"] > 0
        assert "search_p50_ms" not in a.extra and b.extra["search_p50_ms"] > 0
        np.testing.assert_array_equal(a.ranking.indices, b.ranking.indices)
        np.testing.assert_array_equal(a.ranking.scores, b.ranking.scores)
        assert a.overall == b.overall and a.per_query == b.per_query
        np.testing.assert_array_equal(a.pair_similarity, b.pair_similarity)
        for key in ("dim", "ties", "boundary_ties", "embed_cached", "ann_recall_at_100"):
            assert a.extra.get(key) == b.extra.get(key), key
        assert a.extra["vectors_norm_max"] == pytest.approx(b.extra["vectors_norm_max"], 1e-6)
        for rel in (f"runs/{a.name}.trec", "per_query.csv"):
            got = (tmp_path / "ray" / a.name / rel).read_bytes()
            assert got == (tmp_path / "local" / a.name / rel).read_bytes(), rel
    assert (tmp_path / "ray" / "verdict.json").read_bytes() == (
        tmp_path / "local" / "verdict.json"
    ).read_bytes()
    assert ray_run.results[0].ranking.boundary_ties + ray_run.results[0].ranking.ties > 0

    again = _evaluate(collection, "ray", tmp_path / "ray-again", *index)
    assert all(r.extra["index_reused"] == 1.0 for r in again.results)

    # A build killed after one part: the rerun adds only the missing parts (same quantizer).
    for manifest in (tmp_path / "cache" / "indexes").glob("*/manifest.json"):
        manifest.unlink()
        kept = sorted(manifest.parent.glob("part-*.faissindex"))
        kept[-1].unlink()
        before = {p: p.stat().st_mtime_ns for p in kept[:-1]}
    resumed = _evaluate(collection, "ray", tmp_path / "ray-resumed", *index)
    assert all(r.extra["index_reused"] == 0.0 for r in resumed.results)
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())
    for a, b in zip(resumed.results, local.results):
        np.testing.assert_array_equal(a.ranking.indices, b.ranking.indices)
    np.testing.assert_array_equal(
        again.results[1].ranking.indices, ray_run.results[1].ranking.indices
    )


def _broken(tmp_path: Path, collection, mutate) -> str:
    """Copy version a's parts, apply ``mutate(folder)``, run engine=ray: the one-line error."""
    _, versions = collection
    folder = tmp_path / "broken"
    folder.mkdir(parents=True)
    for part in sorted((versions["a"] / "catalog").glob("*.parquet")):
        (folder / part.name).write_bytes(part.read_bytes())
    mutate(folder)
    with pytest.raises(DataError) as info:
        _evaluate(collection, "ray", tmp_path / "out", "index=flat", catalog_a=str(folder))
    text = str(info.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def _rewrite(path: Path, fn) -> None:
    table = pq.read_table(path).to_pydict()
    fn(table)
    pq.write_table(pa.table(table), path)


def test_a_duplicate_id_over_two_parts_names_the_part_and_row(local_ray, collection, tmp_path):
    def dup(folder):
        first = pq.read_table(folder / "part-000.parquet").to_pydict()["id"][0]
        _rewrite(folder / "part-002.parquet", lambda t: t["id"].__setitem__(4, first))

    text = _broken(tmp_path, collection, dup)
    assert "part-002.parquet, row 5, field 'id'" in text and "more than once" in text


def test_a_part_in_another_dimension_is_named(local_ray, collection, tmp_path):
    def short(folder):
        _rewrite(
            folder / "part-001.parquet", lambda t: t.update(vector=[v[:8] for v in t["vector"]])
        )

    text = _broken(tmp_path, collection, short)
    assert "part-001.parquet" in text and "8 dimensions" in text


def test_a_catalog_id_without_vector_and_a_nan_vector_are_named(local_ray, collection, tmp_path):
    def drop(folder):
        _rewrite(folder / "part-000.parquet", lambda t: [t[c].pop(0) for c in ("id", "vector")])

    text = _broken(tmp_path, collection, drop)
    assert "1 catalog id(s) of the evaluation have no vector" in text

    def nan(folder):
        _rewrite(folder / "part-000.parquet", lambda t: t["vector"][2].__setitem__(3, float("nan")))

    text = _broken(tmp_path / "nan", collection, nan)
    assert "part-000.parquet, row 3, field 'vector'" in text and "NaN" in text
