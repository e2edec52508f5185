"""Refuse to compare versions evaluated on different data.

Two versions are comparable only if every part of their ``VersionResult.fingerprint`` matches
(a part present on one side only is a difference too); without fingerprints a warning is logged.

>>> check_fingerprints({"catalog": "aa", "queries": "bb"}, {"catalog": "aa", "queries": "bb"})
>>> try:
...     check_fingerprints({"catalog": "aa", "queries": "bb"}, {"catalog": "aa", "queries": "cc"},
...                        names=("use_m3", "e5_small"))
... except FingerprintMismatch as err:
...     print(err)  # doctest: +ELLIPSIS
cannot compare e5_small with use_m3: their datasets differ in queries (use_m3 bb, e5_small cc)...
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from evalkit.errors import FingerprintMismatch

log = logging.getLogger(__name__)

PARTS = ("catalog", "queries", "judgments", "clicks")


def fingerprint_differences(baseline: Mapping[str, str], candidate: Mapping[str, str]) -> list[str]:
    """Names of the parts whose digests differ (``dataset`` only if no listed part explains it)."""
    parts = [p for p in PARTS if baseline.get(p) != candidate.get(p)]
    parts += sorted(
        k
        for k in set(baseline) | set(candidate)
        if k not in PARTS and k != "dataset" and baseline.get(k) != candidate.get(k)
    )
    if not parts and baseline.get("dataset") != candidate.get("dataset"):
        parts.append("dataset")
    return parts


def _short(digest: str | None) -> str:
    return "absent" if digest is None else str(digest)[:12]


def check_fingerprints(
    baseline: Mapping[str, str],
    candidate: Mapping[str, str],
    names: tuple[str, str] = ("baseline", "candidate"),
) -> None:
    """Raise :class:`FingerprintMismatch` naming every differing part; log if nothing to check."""
    if not baseline and not candidate:
        log.warning(
            "%s and %s carry no dataset fingerprints; cannot verify they used the same data", *names
        )
        return
    diff = fingerprint_differences(baseline, candidate)
    if not diff:
        return
    detail = ", ".join(
        f"{p} ({names[0]} {_short(baseline.get(p))}, {names[1]} {_short(candidate.get(p))})"
        for p in diff
    )
    raise FingerprintMismatch(
        f"cannot compare {names[1]} with {names[0]}: their datasets differ in {detail}; "
        "evaluate both versions on the same catalog, queries, judgments and clicks"
    )
