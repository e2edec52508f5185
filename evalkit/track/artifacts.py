"""The files a model version's run leaves behind (output folder and MLflow artifacts), what
:mod:`evalkit.track.logged_version` reads back: ``per_query.csv``, ``runs/<version>.trec``,
``pairs.npz`` / ``click_pairs.npz`` (similarities of judged / logged pairs), ``latency.json``.

>>> _csv('a,b'), _csv("plain")
('"a,b"', 'plain')
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from evalkit.results import VersionResult
from evalkit.retrieve.run_file import write_trec

PAIRS_FILE = "pairs.npz"
CLICK_PAIRS_FILE = "click_pairs.npz"
LATENCY_FILE = "latency.json"
PER_QUERY_FILE = "per_query.csv"


def write_pairs(path: Path, pairs: list[tuple[str, str]], similarity: np.ndarray) -> None:
    q = np.array([p[0] for p in pairs], dtype=str)
    d = np.array([p[1] for p in pairs], dtype=str)
    np.savez_compressed(path, query_id=q, item_id=d, similarity=np.asarray(similarity, np.float32))


def read_per_query(path: Path) -> dict[str, dict[str, float]]:
    """``per_query.csv`` as ``{metric: {query_id: value}}``."""
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        metrics = next(reader)[1:]
        out: dict[str, dict[str, float]] = {m: {} for m in metrics}
        for row in reader:
            for m, v in zip(metrics, row[1:]):
                out[m][row[0]] = float(v)
    return out


def write_version_files(
    result: VersionResult, out: Path, click_pairs: list[tuple[str, str]] | None = None
) -> dict[str, Path]:
    """The per-query metric table and the TREC run file of one version."""
    out = out / result.name
    out.mkdir(parents=True, exist_ok=True)
    per_query = out / PER_QUERY_FILE
    metrics = list(result.per_query)
    qids = sorted(next(iter(result.per_query.values()), {}))
    with open(per_query, "w", encoding="utf-8") as fh:
        fh.write(",".join(["query_id", *metrics]) + "\n")
        for q in qids:
            fh.write(",".join([_csv(q), *(repr(result.per_query[m][q]) for m in metrics)]) + "\n")
    trec = out / "runs" / f"{result.name}.trec"
    trec.parent.mkdir(parents=True, exist_ok=True)
    write_trec(result.ranking, trec, result.name)
    pairs = out / PAIRS_FILE
    write_pairs(pairs, result.pair_ids, result.pair_similarity)
    files = {"pairs": pairs}
    if result.click_similarity is not None and click_pairs is not None:
        files["click_pairs"] = out / CLICK_PAIRS_FILE
        write_pairs(files["click_pairs"], click_pairs, result.click_similarity)
    latency = out / LATENCY_FILE
    lat = {"latencies_s": [float(x) for x in result.latencies_s], "throughput": result.throughput}
    lat.update(batch_size=result.batch_size, concurrency=result.concurrency)
    latency.write_text(json.dumps(lat), encoding="utf-8")
    return {**files, "per_query": per_query, "trec": trec, "latency": latency}


def _csv(s: str) -> str:
    return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s
