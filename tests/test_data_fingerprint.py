"""Fingerprints: match an independent byte-level reference, ignore row order, see every change."""

from __future__ import annotations

import hashlib
import random
import struct

import numpy as np
import pyarrow as pa

from evalkit.data.digest import (
    SCHEME,
    _update_strings,
    catalog_digest,
    fingerprint_data,
    judgments_digest,
    queries_digest,
)
from evalkit.data.schema import Catalog, Judgments, Queries

IDS = ["d3", "d1", "d10", "d2", "é9"]
TITLES = ["red shoe", "blue hat", "", "Schuhe grün", "tea, cup"]
TEXTS = ["leather", "wool", "x", "", "porcelain"]


def _ref_strings(values: list[str]) -> bytes:
    """The documented layout, written independently: count, int64 LE lengths, UTF-8 bytes."""
    raw = [v.encode("utf-8") for v in values]
    return (
        f"S{len(raw)}|".encode() + b"".join(struct.pack("<q", len(b)) for b in raw) + b"".join(raw)
    )


def test_catalog_digest_matches_reference_serialisation() -> None:
    order = sorted(range(len(IDS)), key=lambda i: IDS[i].encode("utf-8"))
    ref = hashlib.sha256(f"{SCHEME}|catalog|".encode())
    ref.update(_ref_strings([IDS[i] for i in order]))
    ref.update(_ref_strings([TITLES[i] for i in order]))
    ref.update(_ref_strings([TEXTS[i] for i in order]))
    assert catalog_digest(Catalog(IDS, TITLES, TEXTS)) == ref.hexdigest()


def test_judgments_digest_matches_reference_serialisation() -> None:
    qrels = {"q2": {"d1": 1, "d10": 0}, "q1": {"d3": 2}}
    rows = sorted((q, d, g) for q, items in qrels.items() for d, g in items.items())
    ref = hashlib.sha256(f"{SCHEME}|judgments|".encode())
    ref.update(b"human|")
    ref.update(_ref_strings([r[0] for r in rows]))
    ref.update(_ref_strings([r[1] for r in rows]))
    ref.update(f"i{len(rows)}|".encode() + b"".join(struct.pack("<q", r[2]) for r in rows))
    assert judgments_digest(Judgments(qrels)) == ref.hexdigest()


def test_sliced_arrow_arrays_hash_like_fresh_ones() -> None:
    big = pa.array(["zz", *IDS, "yy"], pa.large_string())
    a, b = hashlib.sha256(), hashlib.sha256()
    _update_strings(a, big.slice(1, len(IDS)))
    _update_strings(b, pa.array(IDS, pa.large_string()))
    assert a.hexdigest() == b.hexdigest()


def test_row_order_does_not_matter() -> None:
    rng = random.Random(7)
    perm = list(range(len(IDS)))
    rng.shuffle(perm)
    attrs = {"colour": ["red", "blue", None, "green", "white"], "size": [1, 2, 3, 4, 5]}
    a = Catalog(IDS, TITLES, TEXTS, attrs)
    b = Catalog(
        [IDS[i] for i in perm],
        [TITLES[i] for i in perm],
        [TEXTS[i] for i in perm],
        {k: [v[i] for i in perm] for k, v in reversed(attrs.items())},
    )
    assert catalog_digest(a) == catalog_digest(b)
    q1 = Queries(["q1", "q2"], ["a", "b"], ["en", "de"], [1.0, 2.5], {"seg": ["h", "t"]})
    q2 = Queries(["q2", "q1"], ["b", "a"], ["de", "en"], [2.5, 1.0], {"seg": ["t", "h"]})
    assert queries_digest(q1) == queries_digest(q2)
    j1 = Judgments({"q1": {"d1": 1, "d2": 0}, "q2": {"d3": 2}})
    j2 = Judgments({"q2": {"d3": 2}, "q1": {"d2": 0, "d1": 1}})
    assert judgments_digest(j1) == judgments_digest(j2)


def test_every_change_changes_the_right_digest() -> None:
    cat = Catalog(IDS, TITLES, TEXTS, {"size": [1, 2, 3, 4, 5]})
    qs = Queries(["q1", "q2"], ["a", "b"], frequency=[1.0, 2.0])
    j = Judgments({"q1": {"d1": 1}, "q2": {"d3": 2}})
    base = fingerprint_data(cat, qs, j, "title")

    def changed(**kw) -> set[str]:
        fp = fingerprint_data(
            kw.get("cat", cat),
            kw.get("qs", qs),
            kw.get("j", j),
            kw.get("tf", "title"),
            kw.get("clicks"),
        )
        return {k for k in base if fp.get(k) != base[k]} | (set(fp) - set(base))

    titles = list(TITLES)
    titles[3] = "Schuhe grun"
    assert changed(cat=Catalog(IDS, titles, TEXTS, cat.attributes)) == {"catalog", "dataset"}
    assert changed(cat=Catalog(IDS, TITLES, None, cat.attributes)) == {"catalog", "dataset"}
    assert changed(cat=Catalog(IDS, TITLES, TEXTS, {"size": [1, 2, 3, 4, 6]})) == {
        "catalog",
        "dataset",
    }
    # moving a character between adjacent strings must change the hash (lengths are hashed)
    moved = ["red sho", "eblue hat", *TITLES[2:]]
    assert changed(cat=Catalog(IDS, moved, TEXTS, cat.attributes)) == {"catalog", "dataset"}
    assert changed(qs=Queries(["q1", "q2"], ["a", "b"], frequency=[1.0, 2.5])) == {
        "queries",
        "dataset",
    }
    assert changed(j=Judgments({"q1": {"d1": 2}, "q2": {"d3": 2}})) == {"judgments", "dataset"}
    assert changed(j=Judgments(j.qrels, method="coec")) == {"judgments", "dataset"}
    assert changed(j=None) == {"judgments", "dataset"}
    assert changed(tf="text") == {"dataset"}
    assert changed(clicks="ab" * 32) == {"clicks", "dataset"}


def test_large_catalog_is_hashed_in_bulk() -> None:
    """200k rows: ids/titles hashed from Arrow buffers; equal content, equal digest."""
    n = 200_000
    ids = [f"item-{i}" for i in range(n)]
    titles = [f"title {i % 977} {i}" for i in range(n)]
    perm = np.random.default_rng(0).permutation(n)
    a = Catalog(ids, list(titles))
    b = Catalog([ids[i] for i in perm], [titles[i] for i in perm])
    assert catalog_digest(a) == catalog_digest(b)
    titles[123_456] += "!"
    assert catalog_digest(Catalog(ids, titles)) != catalog_digest(a)
