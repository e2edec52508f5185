"""TREC run files and ranx runs from a :class:`~evalkit.retrieve.ranking.Ranking`.

Run-file scores have 9 significant digits (float32 round-trips, so trec_eval sees evalkit's
ties); ranx gets rank-derived scores (``k - rank``), since it sorts with an unstable sort.

>>> import io, numpy as np
>>> from evalkit.retrieve.ranking import Ranking
>>> r = Ranking(["q1"], np.array([[1, 0]]), np.array([[0.9, 0.5]], dtype=np.float32), ["d1", "d2"])
>>> buf = io.StringIO(); write_trec(r, buf, "demo")
>>> buf.getvalue().splitlines()[0]
'q1 Q0 d2 1 0.899999976 demo'
>>> rank_scores(r)["q1"]
{'d2': 2.0, 'd1': 1.0}
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import numpy as np

from evalkit.errors import DataError
from evalkit.retrieve.ranking import Ranking


def write_trec(ranking: Ranking, out: str | Path | TextIO, run_name: str) -> None:
    """Write ``ranking`` as a 6-column TREC run file (to a path or an open text stream)."""
    if isinstance(out, (str, Path)):
        with open(out, "w", encoding="utf-8") as fh:
            write_trec(ranking, fh, run_name)
        return
    ids = ranking.item_ids
    for qi, qid in enumerate(ranking.query_ids):
        rows, scores = ranking.indices[qi].tolist(), ranking.scores[qi].tolist()
        out.writelines(
            f"{qid} Q0 {ids[row]} {rank} {float(score):.9g} {run_name}\n"
            for rank, (row, score) in enumerate(zip(rows, scores), start=1)
            if row >= 0
        )


def read_trec(path: str | Path) -> dict[str, list[tuple[str, float]]]:
    """``{query_id: [(item_id, score), ...]}`` in file order; malformed lines and duplicate
    (query, item) pairs are errors, as in trec_eval."""
    out: dict[str, list[tuple[str, float]]] = {}
    seen: set[tuple[str, str]] = set()
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 6:
                raise DataError(
                    f"has {len(parts)} columns",
                    file=str(path),
                    row=lineno,
                    expected="6 columns: query_id Q0 item_id rank score run_name",
                )
            qid, _, did, _, score, _ = parts
            if (qid, did) in seen:
                raise DataError(
                    f"item {did!r} appears twice for query {qid!r}", file=str(path), row=lineno
                )
            seen.add((qid, did))
            try:
                out.setdefault(qid, []).append((did, float(score)))
            except ValueError:
                raise DataError(
                    f"score {score!r} is not a number", file=str(path), row=lineno, field="score"
                ) from None
    return out


def ranking_from_trec(path: str | Path, item_ids: list[str], k: int | None = None) -> Ranking:
    """Rebuild a :class:`Ranking` from a TREC run file written by :func:`write_trec`."""
    run = read_trec(path)
    row_of = {d: i for i, d in enumerate(item_ids)}
    depth = k or max((len(v) for v in run.values()), default=0)
    qids = list(run)
    indices = np.full((len(qids), depth), -1, dtype=np.int64)
    scores = np.full((len(qids), depth), -np.inf, dtype=np.float32)
    for qi, qid in enumerate(qids):
        for r, (did, s) in enumerate(run[qid][:depth]):
            if did not in row_of:
                raise DataError(
                    f"item {did!r} is not in the catalog", file=str(path), field="item_id"
                )
            indices[qi, r] = row_of[did]
            scores[qi, r] = s
    return Ranking(query_ids=qids, indices=indices, scores=scores, item_ids=item_ids)


def rank_scores(
    ranking: Ranking, query_ids: list[str] | None = None
) -> dict[str, dict[str, float]]:
    """``{query_id: {item_id: k - rank}}`` for ranx: strictly decreasing, so ties cannot reorder."""
    k = ranking.k
    ids = ranking.item_ids
    out = {}
    for qid in query_ids if query_ids is not None else ranking.query_ids:
        rows = ranking.indices[ranking.row(qid)].tolist()
        out[qid] = {ids[row]: float(k - r) for r, row in enumerate(rows) if row >= 0}
    return out
