"""Identical vectors are found by their bytes (issue 16): a server that returns one constant
vector is reported as "all N vectors are identical" whatever N, dtype, dimension or memory
layout, and whatever the BLAS kernel would do with the rows left over from its blocks."""

from __future__ import annotations

import numpy as np
import pytest

from evalkit.embed import vector_checks
from evalkit.embed.vector_checks import largest_identical_group, row_hashes, vector_problem

# Prime row counts: each leaves a remainder for every block size from 2 to n - 1 (BLAS kernels
# work in blocks of 4, 8, 16 ... rows; row_hashes in blocks of BLOCK_ROWS).
PRIMES = (2, 3, 5, 7, 13, 31, 47, 53, 61, 127, 251, 1021, 8191, 8209)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("dim", [1, 3, 8, 384])
def test_constant_rows_are_one_group_for_every_prime_row_count(dtype, dim):
    row = np.random.default_rng(dim).standard_normal(dim).astype(dtype)
    for n in PRIMES:
        vectors = np.tile(row, (n, 1))
        assert largest_identical_group(vectors) == n, n
        assert vector_problem(vectors) == f"all {n} vectors are identical", n


@pytest.mark.parametrize("n", [5, 53, 8209])
def test_layouts_do_not_matter(tmp_path, n):
    """Strided, Fortran-ordered and memory-mapped matrices give the same groups."""
    rng = np.random.default_rng(n)
    base = rng.standard_normal((n, 24)).astype(np.float32)
    group = rng.choice(n, size=(n + 1) // 2 + 1, replace=False)  # a majority, scattered
    base[group] = base[group[0]]
    np.save(tmp_path / "v.npy", base)
    mapped = np.load(tmp_path / "v.npy", mmap_mode="r")
    for vectors in (base, base[:, ::3], np.asfortranarray(base), mapped, base[:, 5:]):
        assert largest_identical_group(vectors) == len(group)
        assert (
            vector_problem(vectors)
            == f"{len(group)} of {n} vectors (different texts) are identical"
        )


def test_distinct_rows_and_small_inputs():
    v = np.random.default_rng(3).standard_normal((1021, 16)).astype(np.float32)
    assert largest_identical_group(v) == 1 and vector_problem(v) is None
    assert largest_identical_group(v[:0]) == 0 and largest_identical_group(v[:1]) == 1
    hashes = row_hashes(v)
    assert hashes.dtype == np.uint64 and len(np.unique(hashes)) == 1021
    v[100] = v[900]
    assert largest_identical_group(v) == 2
    v[100, 15] = np.nextafter(v[100, 15], np.float32(np.inf))  # one ulp apart: different rows
    assert largest_identical_group(v) == 1


def test_hash_collisions_never_merge_different_rows(monkeypatch):
    """Every row shares one hash: the answer still comes from the rows' bytes."""
    rng = np.random.default_rng(7)
    a, b, c = rng.standard_normal((3, 8)).astype(np.float32)
    rows = [a] * 3 + [b] * 5 + [c] * 2 + [b] * 1
    order = rng.permutation(len(rows))
    vectors = np.array(rows)[order]
    monkeypatch.setattr(vector_checks, "row_hashes", lambda v: np.zeros(len(v), dtype=np.uint64))
    assert largest_identical_group(vectors) == 6
    assert largest_identical_group(np.array([a, b, c, a * 2])) == 1


def test_norm_summary_equals_numpy_float64_norms():
    """vectors_norm_min / _max / _mean (summed in float32, overflowing rows again in float64)
    against numpy's float64 norms, on unit, scaled, huge and tiny rows."""
    from evalkit.embed.vector_checks import vector_stats

    rng = np.random.default_rng(7)
    x = rng.standard_normal((5000, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x[:100] *= 3.5
    x[100] *= np.float32(1e25)  # squares overflow float32
    x[101] *= np.float32(1e-22)  # squares underflow float32
    q = rng.standard_normal((30, 384)).astype(np.float32)
    ref = np.linalg.norm(np.concatenate([x, q]).astype(np.float64), axis=1)
    got = vector_stats(x, q, chunk=1000)
    assert got["vectors_norm_min"] == pytest.approx(ref.min(), rel=1e-6)
    assert got["vectors_norm_max"] == pytest.approx(ref.max(), rel=1e-6)
    assert got["vectors_norm_mean"] == pytest.approx(ref.mean(), rel=1e-6)
