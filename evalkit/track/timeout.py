"""``tracking.timeout_s``: how long an http(s) tracking server has to answer evalkit's up-front
check (:func:`evalkit.track.mlflow_tracker.check_reachable`), read without importing MLflow."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from evalkit.errors import ConfigError

#: Seconds an http(s) tracking server has to answer the up-front check by default.
CHECK_TIMEOUT_S = 10.0


def tracking_timeout(tracking: Mapping[str, Any] | None) -> float:
    """``tracking.timeout_s`` (seconds > 0; :data:`CHECK_TIMEOUT_S` when unset), or ConfigError.

    >>> tracking_timeout({"timeout_s": 30}), tracking_timeout({})
    (30.0, 10.0)
    """
    value = (tracking or {}).get("timeout_s")
    if value is None:
        return CHECK_TIMEOUT_S
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not seconds > 0 or math.isinf(seconds):
        raise ConfigError(f"tracking.timeout_s={value!r} is invalid (expected seconds > 0)")
    return seconds
