"""Seeded percentile-bootstrap confidence intervals of means, resampling queries.

The same resampled queries serve every column, so the intervals of several metrics are paired.

>>> ci = bootstrap_mean_ci(np.array([[0.1], [0.2], [0.3], [0.4]]), n_resamples=500, seed=42)
>>> bool(0.1 <= ci.low[0] < 0.25 < ci.high[0] <= 0.4)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evalkit.errors import ConfigError

_BLOCK_CELLS = 1 << 22  # cells of a block of resampled indices (rows x queries)


@dataclass(frozen=True)
class BootstrapCI:
    """Per-column mean, lower and upper interval bounds (arrays of length n_columns)."""

    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    confidence: float
    n_resamples: int


def bootstrap_means(values: np.ndarray, n_resamples: int = 1000, seed: int = 42) -> np.ndarray:
    """``(n_resamples, n_columns)`` means of ``values`` (``(n, n_columns)``) over resampled rows."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    n = x.shape[0]
    out = np.empty((n_resamples, x.shape[1]))
    rng = np.random.default_rng(seed)
    rows = max(1, _BLOCK_CELLS // max(n, 1))
    weights = np.empty((min(rows, n_resamples), n))
    for start in range(0, n_resamples, rows):
        stop = min(start + rows, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        # How often each query was drawn in each resample (one small bincount per resample keeps
        # the scatter in cache), then one matrix product for every column at once.
        for r in range(stop - start):
            weights[r] = np.bincount(idx[r], minlength=n)
        out[start:stop] = weights[: stop - start] @ x / n
    return out


def bootstrap_mean_ci(
    values: np.ndarray, n_resamples: int = 1000, seed: int = 42, confidence: float = 0.95
) -> BootstrapCI:
    """Percentile-bootstrap interval of each column's mean (NaN: < 2 rows or no resamples)."""
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"compare.confidence={confidence} must be between 0 and 1")
    if n_resamples < 0:
        raise ConfigError(f"compare.bootstrap={n_resamples} must be >= 0")
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    m = x.shape[1]
    mean = x.mean(axis=0) if x.shape[0] else np.full(m, np.nan)
    if x.shape[0] < 2 or n_resamples == 0:
        nan = np.full(m, np.nan)
        return BootstrapCI(mean, nan, nan.copy(), confidence, n_resamples)
    means = bootstrap_means(x, n_resamples, seed)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha], axis=0)
    return BootstrapCI(mean, low, high, confidence, n_resamples)
