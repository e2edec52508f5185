"""Reuse of a latency probe of in-process models when nothing about it changed.

Every probe of in-process models is stored (per-request latencies) as
``<store_dir>/<sha256 of key>.json`` (:func:`probe_key`) and reused while younger than
``latency.max_age_s``.  When and why: docs/explanation/verdict.md ("Latency that can be trusted").

>>> import tempfile
>>> from evalkit.embed.local_models import UseM3
>>> from evalkit.embed.latency_probe import ProbeSettings
>>> d = tempfile.mkdtemp()
>>> vs, texts = [UseM3("a", threads=1), UseM3("b", threads=1)], ["red shoe", "blue hat"]
>>> s, keep = ProbeSettings(texts=2, min_requests=3), ReuseSettings(store_dir=Path(d))
>>> first = probe_or_reuse(vs, texts, s, keep)
>>> again = probe_or_reuse(vs, texts, s, keep)
>>> first["a"].reused_age_s is None, bool((first["b"].latencies_s == again["b"].latencies_s).all())
(True, True)
>>> import shutil; shutil.rmtree(d)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import socket
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.config_schema import read_section, setting, settings_of
from evalkit.embed.latency_probe import (
    ProbeResult,
    ProbeSettings,
    backend_kind,
    probe_latency,
    sample_texts,
)
from evalkit.embed.local_models import package_version
from evalkit.embed.model_version import ModelVersion
from evalkit.runtime import user_numba_dir

log = logging.getLogger(__name__)

#: Version of the stored file's layout; a change re-measures everything.
FORMAT = 1
DEFAULT_MAX_AGE_S = 86400.0
#: Keys of the ``latency`` section read by :class:`ProbeSettings`.
PROBE_KEYS = tuple(settings_of(ProbeSettings))


def user_latency_dir(environ: Mapping[str, str]) -> Path:
    """The per-user store, beside numba's cache (:func:`evalkit.runtime.user_numba_dir`)."""
    return user_numba_dir(environ).parent / "latency"


@dataclass(frozen=True)
class ReuseSettings:
    """The ``latency`` config section's reuse settings."""

    max_age_s: float = setting(
        DEFAULT_MAX_AGE_S, ge=0, help="seconds a stored in-process probe is reused; 0 = never"
    )
    store_dir: Path | None = setting(None, help="where probes are stored; null = per user")

    @property
    def enabled(self) -> bool:
        return self.max_age_s > 0

    def directory(self, environ: Mapping[str, str] | None = None) -> Path:
        if self.store_dir is not None:
            return self.store_dir
        return user_latency_dir(os.environ if environ is None else environ)

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> ReuseSettings:
        """Read ``max_age_s`` and ``store_dir`` of the ``latency`` config section."""
        return read_section(cls, cfg, "latency", ignore=PROBE_KEYS)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_identity() -> dict[str, Any]:
    """What identifies this machine's speed: host name, CPU model, CPU count, usable CPUs."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {
        "hostname": socket.gethostname(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "arch": platform.machine(),
        "system": platform.system(),
    }


#: Parameters applied to an in-process model's output, not to the model call: a dimension sweep
#: reuses one probe.
AFTER_THE_MODEL = ("dimensions", "normalize")


def probe_key(
    versions: Sequence[ModelVersion], sample: Sequence[str], settings: ProbeSettings
) -> dict[str, Any]:
    """Everything that determines an in-process probe's measurement (JSON-serialisable)."""
    return {
        "format": FORMAT,
        "evalkit": package_version("evalkit"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": machine_identity(),
        "settings": asdict(settings),
        "texts_sha256": hashlib.sha256(
            json.dumps(list(sample), ensure_ascii=False).encode("utf-8")
        ).hexdigest(),
        "versions": [
            {
                "class": f"{type(v).__module__}.{type(v).__qualname__}",
                "params": {k: x for k, x in v.params().items() if k not in AFTER_THE_MODEL},
                "spec": v.cache_spec("query"),
            }
            for v in versions
        ],
    }


def _canonical(key: Mapping[str, Any]) -> str:
    return json.dumps(key, sort_keys=True, default=str, ensure_ascii=False)


def store_path(directory: Path, key: Mapping[str, Any]) -> Path:
    """``<directory>/<sha256 of the canonical key>.json``."""
    return directory / f"{hashlib.sha256(_canonical(key).encode('utf-8')).hexdigest()}.json"


#: The integer fields of a stored :class:`ProbeResult`.
_INTS = ("batch_size", "concurrency", "n_texts", "retries")


def _result_doc(r: ProbeResult) -> dict[str, Any]:
    return {
        "version": r.version,
        "latencies_s": [float(x) for x in r.latencies_s],  # repr floats: read back exactly
        "throughput": float(r.throughput),
    } | {key: getattr(r, key) for key in _INTS}


def save_probe(path: Path, key: Mapping[str, Any], results: Mapping[str, ProbeResult]) -> None:
    """Write the probe atomically (a temporary file, then renamed)."""
    doc = {
        "key": json.loads(_canonical(key)),
        "created_unix": time.time(),
        "results": [_result_doc(r) for r in results.values()],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_probe(
    path: Path,
    key: Mapping[str, Any],
    names: Sequence[str],
    max_age_s: float,
    now: float | None = None,
) -> dict[str, ProbeResult] | None:
    """The stored probe for ``key`` if readable, of the version ``names`` and younger than
    ``max_age_s`` (each result's ``reused_age_s`` set), else None."""
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc["key"] != json.loads(_canonical(key)):
            log.debug("stored latency probe %s: key differs, re-measuring", path)
            return None
        created = float(doc["created_unix"])
        results = {}
        for r in doc["results"]:
            lat = np.asarray(r["latencies_s"], dtype=np.float64)
            if lat.ndim != 1 or not np.isfinite(lat).all() or (lat < 0).any():
                raise ValueError("latencies_s must be finite non-negative seconds")
            version, throughput = str(r["version"]), float(r["throughput"])
            ints = {key: int(r[key]) for key in _INTS}
            results[version] = ProbeResult(version, lat, throughput, **ints)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.debug("stored latency probe %s is unreadable (%s): ignored, re-measuring", path, exc)
        return None
    if list(results) != list(names):
        log.debug("stored latency probe %s holds other versions: re-measuring", path)
        return None
    age = (time.time() if now is None else now) - created
    if not 0 <= age < max_age_s:
        log.debug("stored latency probe %s is %.0f s old: re-measuring", path, age)
        return None
    return {n: replace(r, reused_age_s=age) for n, r in results.items()}


def probe_or_reuse(
    versions: Sequence[ModelVersion],
    texts: Sequence[str],
    settings: ProbeSettings,
    reuse: ReuseSettings,
) -> dict[str, ProbeResult]:
    """:func:`~evalkit.embed.latency_probe.probe_latency`, or the stored probe when every version
    runs in process, reuse is on and nothing about it changed; a fresh one is stored."""
    in_process = bool(versions) and all(backend_kind(v.params()) == "in-process" for v in versions)
    if not (in_process and reuse.enabled and settings.enabled and texts):
        return probe_latency(versions, texts, settings)
    sample = sample_texts(texts, settings.texts, settings.seed)
    key = probe_key(versions, sample, settings)
    path = store_path(reuse.directory(), key)
    stored = load_probe(path, key, [v.name for v in versions], reuse.max_age_s)
    if stored is not None:
        age = next(iter(stored.values())).reused_age_s
        log.info(
            "latency probe not run: reused the one measured %s ago on this machine (%s; "
            "latency.max_age_s)",
            format_age(age),
            path,
        )
        return stored
    results = probe_latency(versions, texts, settings)
    if results:
        try:
            save_probe(path, key, results)
        except OSError as exc:
            log.warning("latency probe not stored for reuse (%s): %s", path, exc)
    return results


def format_age(age_s: float | None) -> str:
    """A probe's age for people.

    >>> format_age(42.4), format_age(754), format_age(5 * 3600 + 60)
    ('42 s', '13 min', '5.0 h')
    """
    if age_s is None:
        return "unknown time"
    if age_s < 60:
        return f"{age_s:.0f} s"
    if age_s < 3600:
        return f"{age_s / 60:.0f} min"
    return f"{age_s / 3600:.1f} h"
