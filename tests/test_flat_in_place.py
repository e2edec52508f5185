"""The flat search over a version's own matrix (no index copy) ranks exactly like IndexFlatIP."""

from __future__ import annotations

import faiss
import numpy as np

from evalkit.index.faiss_index import ArrayFlatIP, IndexSpec, build_index, stored_vectors
from evalkit.retrieve.searcher import search


def test_array_flat_ip_equals_index_flat_ip_and_copies_nothing():
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((3000, 32)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    docs[10] = docs[11]  # an exact tie
    queries = docs[rng.choice(3000, 200, replace=False)] + 0.01
    in_place = ArrayFlatIP(docs)
    assert stored_vectors(in_place) is docs  # the caller's matrix itself
    reference = build_index(docs, IndexSpec(kind="flat"))
    assert isinstance(reference, faiss.IndexFlatIP)
    s1, r1 = search(in_place, queries, depth=50, batch_size=64)
    s2, r2 = search(reference, queries, depth=50, batch_size=64)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(s1, s2)
    view = stored_vectors(reference)  # a flat index's own storage, viewed without a copy
    np.testing.assert_array_equal(view, docs)
    assert not view.flags.writeable
