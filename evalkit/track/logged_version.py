"""Rebuild a logged version from MLflow by run id (what :mod:`evalkit.track.artifacts` saved), so
a candidate is compared with a logged baseline without re-embedding it.

>>> import tempfile, pathlib, numpy as np
>>> from evalkit.track.artifacts import write_pairs
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> write_pairs(d / "pairs.npz", [("q1", "d1")], np.array([0.5], dtype=np.float32))
>>> read_pairs(d / "pairs.npz")
([('q1', 'd1')], array([0.5], dtype=float32))
"""

from __future__ import annotations

import csv
import json
import logging
import tempfile
from pathlib import Path

import numpy as np

from evalkit.data.schema import EvalData
from evalkit.errors import ConfigError, DataError
from evalkit.pairs import align_similarity
from evalkit.results import VersionResult
from evalkit.retrieve.run_file import ranking_from_trec
from evalkit.track.artifacts import CLICK_PAIRS_FILE, LATENCY_FILE, PAIRS_FILE, PER_QUERY_FILE
from evalkit.track.mlflow_tracker import Tracker

log = logging.getLogger(__name__)


def read_pairs(path: Path) -> tuple[list[tuple[str, str]], np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        pairs = list(zip(z["query_id"].tolist(), z["item_id"].tolist()))
        return pairs, z["similarity"]


def read_per_query(path: Path) -> dict[str, dict[str, float]]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        metrics = header[1:]
        out: dict[str, dict[str, float]] = {m: {} for m in metrics}
        for row in reader:
            for m, v in zip(metrics, row[1:]):
                out[m][row[0]] = float(v)
    return out


def load_version_result(tracker: Tracker, run_id: str, data: EvalData) -> VersionResult:
    """Rebuild a logged version's :class:`VersionResult` from its MLflow child run."""
    try:
        run = tracker.client.get_run(run_id)
    except Exception as exc:
        raise ConfigError(
            f"compare.baseline_run_id={run_id!r}: no such MLflow run ({exc})"
        ) from exc
    name = run.data.tags.get("evalkit.model_version")
    if not name:
        raise ConfigError(
            f"compare.baseline_run_id={run_id!r} is not an evalkit model-version run "
            "(no evalkit.model_version tag); pass the child run of the baseline version"
        )
    params = run.data.params
    fingerprint = {
        k.removeprefix("dataset.fingerprint."): v
        for k, v in params.items()
        if k.startswith("dataset.fingerprint.")
    }
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp)
        try:
            per_query = read_per_query(tracker.download(run_id, PER_QUERY_FILE, local))
            trec = tracker.download(run_id, f"runs/{name}.trec", local)
        except Exception as exc:
            raise DataError(
                f"baseline run {run_id} lacks its artifacts ({exc})",
                expected=f"{PER_QUERY_FILE} and runs/{name}.trec",
            ) from exc
        k = int(params.get("k", 0)) or None
        same_data = fingerprint.get("dataset") == data.fingerprint.get("dataset")
        ranking = ranking_from_trec(trec, data.catalog.ids, k) if same_data else None
        pairs, similarity = [], None
        latencies, throughput, extra = np.zeros(0), None, {}
        try:
            pairs, similarity = read_pairs(tracker.download(run_id, PAIRS_FILE, local))
        except Exception as exc:  # the drift gates will then say "not measured"
            log.warning("baseline run %s has no %s (%s)", run_id, PAIRS_FILE, exc)
        click_similarity = None
        if data.clicks is not None:
            try:
                cpairs, csim = read_pairs(tracker.download(run_id, CLICK_PAIRS_FILE, local))
                click_similarity = align_similarity(data.clicks, cpairs, csim)
            except Exception as exc:
                log.warning("baseline run %s has no %s (%s)", run_id, CLICK_PAIRS_FILE, exc)
        try:
            lat = json.loads(tracker.download(run_id, LATENCY_FILE, local).read_text("utf-8"))
            latencies = np.asarray(lat["latencies_s"], dtype=np.float64)
            throughput = lat.get("throughput")
            extra = {k: v for k, v in lat.items() if k not in ("latencies_s", "throughput")}
        except Exception as exc:  # the latency gate will then say "not measured"
            log.warning("baseline run %s has no %s (%s)", run_id, LATENCY_FILE, exc)
    model_params = {
        k.removeprefix("model."): v for k, v in params.items() if k.startswith("model.")
    }
    overall = {
        m: float(np.mean(list(v.values()))) if v else float("nan") for m, v in per_query.items()
    }
    return VersionResult(
        name=name,
        params=model_params,
        overall=overall,
        per_query=per_query,
        ranking=ranking,
        pair_ids=pairs,
        pair_similarity=similarity,
        latencies_s=latencies,
        throughput=throughput,
        batch_size=extra.get("batch_size"),
        concurrency=extra.get("concurrency"),
        fingerprint=fingerprint,
        click_similarity=click_similarity,
        run_id=run_id,
        extra={"dim": float(run.data.metrics.get("dim", 0))},
    )
