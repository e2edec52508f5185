"""ModelVersion common options: prefixes, chunking + pooling, truncation + re-normalisation,
raw mode, validation errors, params/spec.  Uses a deterministic in-memory backend."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from evalkit.embed import Chunking, ModelVersion
from evalkit.embed.chunking import pool, split, windows
from evalkit.errors import ConfigError, DataError, EndpointError

DIM = 12


def toy_vector(text: str) -> np.ndarray:
    """Deterministic, *unnormalised* vector for a text (norm varies with the text)."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).normal(size=DIM).astype(np.float32) * (1 + len(text) % 5)


class Toy(ModelVersion):
    backend = "toy"

    def __init__(self, name: str = "toy", **kw):
        super().__init__(name, **kw)
        self.calls: list[list[str]] = []

    def _embed_batch(self, texts, role, dimensions):
        self.calls.append(list(texts))
        return np.stack([toy_vector(t) for t in texts]) if texts else np.zeros((0, DIM))


def unit(m: np.ndarray) -> np.ndarray:
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_raw_is_exactly_the_backend_output_with_prefix():
    v = Toy(query_prefix="q: ", document_prefix="d: ", dimensions=4, chunking={"size": 2})
    texts = ["alpha beta gamma delta", "b"]
    raw = v.embed(texts, "query", raw=True)
    np.testing.assert_array_equal(raw, np.stack([toy_vector("q: " + t) for t in texts]))
    assert v.calls == [["q: alpha beta gamma delta", "q: b"]]  # no chunking in raw mode
    raw_doc = v.embed(texts, "document", raw=True)
    np.testing.assert_array_equal(raw_doc, np.stack([toy_vector("d: " + t) for t in texts]))


def test_normalize_and_truncation_match_numpy():
    texts = [f"text number {i}" for i in range(10)]
    full = np.stack([toy_vector(t) for t in texts])
    v = Toy(batch_size=3)
    np.testing.assert_allclose(v.embed(texts, "document"), unit(full), rtol=1e-6, atol=1e-7)
    for d in (1, 5, DIM):
        got = Toy(dimensions=d, batch_size=4).embed(texts, "document")
        assert got.shape == (10, d) and got.dtype == np.float32
        np.testing.assert_allclose(got, unit(full[:, :d]), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-6)
    # per-call override, and unnormalised truncation keeps the raw values
    np.testing.assert_allclose(v.embed(texts, "query", dimensions=3), unit(full[:, :3]), rtol=1e-6)
    raw_trunc = Toy(dimensions=3, normalize=False).embed(texts, "query")
    np.testing.assert_array_equal(raw_trunc, full[:, :3])


def test_truncation_beyond_model_dimension_is_an_endpoint_error():
    with pytest.raises(EndpointError, match=r"'toy'.*12 dimensions.*dimensions=64"):
        Toy(dimensions=64).embed(["x"], "query")


def test_batching_respects_batch_size():
    v = Toy(batch_size=4)
    out = v.embed([f"t{i}" for i in range(10)], "query")
    assert out.shape == (10, DIM)
    assert [len(c) for c in v.calls] == [4, 4, 2]


def test_windows_cover_every_token_with_overlap():
    for n in range(1, 40):
        for size in (1, 3, 8):
            for overlap in range(size):
                spans = windows(n, size, overlap)
                covered = np.zeros(n, dtype=bool)
                for s, e in spans:
                    assert e - s == min(size, n) and 0 <= s < e <= n
                    covered[s:e] = True
                assert covered.all() and spans[-1][1] == n and spans[0][0] == 0
                starts = [s for s, _ in spans]
                assert starts == sorted(set(starts))
                gaps = np.diff(starts)
                assert (gaps <= size - overlap).all()  # consecutive windows overlap >= overlap


@pytest.mark.parametrize("pooling", ["mean", "max", "first"])
def test_chunk_pooling_matches_manual_computation(pooling):
    texts = [
        " ".join(f"w{i}" for i in range(11)),  # 11 tokens -> windows of 4, stride 3
        "short text",  # kept whole
        "  spaced\tout \n words here now and then  ",  # 7 tokens
    ]
    v = Toy(chunking={"size": 4, "overlap": 1, "pooling": pooling}, document_prefix="p: ")
    got = v.embed(texts, "document")

    expected = []
    for t in texts:
        tok = t.split()
        if len(tok) <= 4:
            chunks = [t]
        else:
            starts = list(range(0, len(tok) - 4, 3)) + [len(tok) - 4]
            chunks = [" ".join(tok[s : s + 4]) for s in starts]
        vecs = np.stack([toy_vector("p: " + c) for c in chunks]).astype(np.float64)
        pooled = {"mean": vecs.mean(0), "max": vecs.max(0), "first": vecs[0]}[pooling]
        expected.append(pooled / np.linalg.norm(pooled))
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-5, atol=1e-6)
    if pooling == "first":  # only the first window is ever embedded
        assert sum(len(c) for c in v.calls) == len(texts)


def test_split_and_pool_vectorised_helpers():
    pieces, owner = split(["a b c d e f g", "x"], Chunking(size=3, overlap=0))
    assert pieces == ["a b c", "d e f", "e f g", "x"]
    assert owner.tolist() == [0, 0, 0, 1]
    m = np.arange(8, dtype=np.float32).reshape(4, 2)
    np.testing.assert_array_equal(pool(m, owner, 2, "max"), [[4, 5], [6, 7]])
    np.testing.assert_allclose(pool(m, owner, 2, "mean"), [[2, 3], [6, 7]])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"dimensions": 0}, "dimensions"),
        ({"dimensions": "128"}, "dimensions"),
        ({"chunking": {"size": 4, "overlap": 4}}, "overlap"),
        ({"chunking": {"size": 0}}, "size"),
        ({"chunking": {"size": 4, "pooling": "median"}}, "pooling"),
        ({"chunking": {"size": 4, "stride": 2}}, "unknown key"),
        ({"query_prefix": 3}, "query_prefix"),
    ],
)
def test_bad_options_raise_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Toy(**kwargs)


def test_bad_role_and_bad_texts():
    with pytest.raises(ConfigError, match="role='doc'"):
        Toy().embed(["x"], "doc")
    with pytest.raises(DataError, match=r"row 2, field 'text'.*NoneType.*expected a string"):
        Toy().embed(["x", None, "y"], "query")
    with pytest.raises(DataError, match="single string"):
        Toy().embed("abc", "query")


def test_nan_from_backend_is_reported():
    class Broken(Toy):
        def _embed_batch(self, texts, role, dimensions):
            out = super()._embed_batch(texts, role, dimensions)
            out[1, 3] = np.nan
            return out

    with pytest.raises(EndpointError, match=r"'toy', batch 1/1: 1 vector.*NaN.*text 2"):
        Broken().embed(["a", "b", "c"], "query")
    assert np.isnan(Broken().embed(["a", "b"], "query", raw=True)[1, 3])  # raw passes it through


def test_wrong_row_count_from_backend_is_reported():
    class Short(Toy):
        def _embed_batch(self, texts, role, dimensions):
            return super()._embed_batch(texts, role, dimensions)[:-1]

    with pytest.raises(EndpointError, match=r"shape \(1, 12\) for 2 input"):
        Short().embed(["a", "b"], "query")


def test_spec_and_params_cover_every_option():
    v = Toy(
        batch_size=8,
        dimensions=6,
        query_prefix="q: ",
        chunking={"size": 64, "overlap": 8, "pooling": "max"},
        revision="r1",
    )
    spec = v.spec("query")
    assert spec["prefix"] == "q: " and v.spec("document")["prefix"] == ""
    assert spec["chunking"] == {"size": 64, "overlap": 8, "pooling": "max"}
    assert spec["dimensions"] == 6 and spec["normalize"] is True and spec["revision"] == "r1"
    assert "batch_size" not in spec  # batching does not change vectors
    p = v.params()
    assert p["chunk_size"] == 64 and p["chunk_pooling"] == "max" and p["batch_size"] == 8
    assert all(isinstance(x, str | int | float | bool | type(None)) for x in p.values())
    assert "Toy(name='toy'" in repr(v)


def test_empty_input():
    assert Toy().embed([], "query").shape == (0, 0)
    assert Toy(dimensions=4).embed([], "query").shape == (0, 4)
