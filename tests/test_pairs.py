"""judged_pairs (vectorised) equals a plain-dict reference, including unknown queries and items."""

from __future__ import annotations

import random

from evalkit.pairs import judged_pairs


def test_judged_pairs_equal_reference():
    rng = random.Random(0)
    qids = [f"q{i}" for i in range(300)]
    items = [f"d{i}" for i in range(2000)]
    qrels = {
        q: {
            rng.choice([*items, "unknown-item"]): rng.randint(0, 3)
            for _ in range(rng.randint(1, 20))
        }
        for q in [*qids[:250], "unknown-query"]
    }
    q_row = {q: i for i, q in enumerate(qids)}
    i_row = {d: i for i, d in enumerate(items)}
    expected = sorted((q, d) for q, js in qrels.items() if q in q_row for d in js if d in i_row)
    pairs, qr, ir = judged_pairs(qrels, qids, items)
    assert pairs == expected
    assert qr.tolist() == [q_row[q] for q, _ in expected]
    assert ir.tolist() == [i_row[d] for _, d in expected]
    assert judged_pairs({}, qids, items)[0] == []
