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

import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.data.schema import EvalData
from evalkit.errors import ConfigError, DataError
from evalkit.pairs import align_similarity
from evalkit.results import VersionResult
from evalkit.retrieve.run_file import ranking_from_trec
from evalkit.track.artifacts import (
    CLICK_PAIRS_FILE,
    LATENCY_FILE,
    PAIRS_FILE,
    PER_QUERY_FILE,
    read_per_query,
)
from evalkit.track.mlflow_tracker import Tracker

log = logging.getLogger(__name__)


def read_pairs(path: Path) -> tuple[list[tuple[str, str]], np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        pairs = list(zip(z["query_id"].tolist(), z["item_id"].tolist()))
        return pairs, z["similarity"]


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
    fingerprint = _under(params, "dataset.fingerprint.")
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

        def optional(file: str, read: Callable[[Path], Any]) -> Any:
            """``read`` of an artifact, or None (warned; its gate then says "not measured")."""
            try:
                return read(tracker.download(run_id, file, local))
            except Exception as exc:
                log.warning("baseline run %s has no %s (%s)", run_id, file, exc)
                return None

        def read_latency(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
            lat = json.loads(path.read_text("utf-8"))
            return np.asarray(lat["latencies_s"], dtype=np.float64), lat

        pairs, similarity = optional(PAIRS_FILE, read_pairs) or ([], None)
        click_similarity = None
        if data.clicks is not None:
            click_similarity = optional(
                CLICK_PAIRS_FILE, lambda p: align_similarity(data.clicks, *read_pairs(p))
            )
        latencies, lat = optional(LATENCY_FILE, read_latency) or (np.zeros(0), {})
    overall = {
        m: float(np.mean(list(v.values()))) if v else float("nan") for m, v in per_query.items()
    }
    return VersionResult(
        name=name,
        params=_under(params, "model."),
        overall=overall,
        per_query=per_query,
        ranking=ranking,
        pair_ids=pairs,
        pair_similarity=similarity,
        latencies_s=latencies,
        throughput=lat.get("throughput"),
        batch_size=lat.get("batch_size"),
        concurrency=lat.get("concurrency"),
        fingerprint=fingerprint,
        click_similarity=click_similarity,
        run_id=run_id,
        extra={"dim": float(run.data.metrics.get("dim", 0))},
    )


def _under(params: dict[str, str], prefix: str) -> dict[str, str]:
    return {k.removeprefix(prefix): v for k, v in params.items() if k.startswith(prefix)}
