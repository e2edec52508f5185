"""The ``online`` config section and ``gates.online`` as typed, frozen records (the gates' config
here, apart from :mod:`evalkit.online.canary_gates`: no import circle with the compare package).

>>> s = OnlineSettings(path="canary/*.parquet")
>>> s.column("arm"), s.control, s.split
('ab_group', 'control', 0.5)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evalkit.config_schema import read_section, setting, unknown_keys
from evalkit.errors import ConfigError
from evalkit.online.gateway_log import DEFAULT_COLUMNS

FORMATS = ("parquet", "json", "csv", "tsv")


@dataclass(frozen=True)
class OnlineSettings:
    """Where the log is and how to read it (the ``online`` section; each key's help below)."""

    path: str = setting("", help="the gateway log: a file, a folder of parts, a glob or a URL")
    format: str | None = setting(
        None, choices=FORMATS, help="parquet | json | csv | tsv; null = by the file extension"
    )
    columns: dict[str, str] = setting(
        factory=lambda: dict(DEFAULT_COLUMNS), help="the log's name of each gateway column"
    )
    control: str = setting("control", help="the arm column's value of the production version A")
    treatment: str = setting("treatment", help="the arm column's value of the candidate B")
    split: float = setting(0.5, gt=0, lt=1, help="the treatment share: units planned for B")
    unit: str | None = setting(
        None, choices=("user", "request"), help="the randomization unit; null = user when logged"
    )
    slices: tuple[str, ...] = setting((), help="categorical log columns to slice by")
    score_bins: int = setting(20, ge=1, help="equal-count bins of each arm's similarity scores")
    cutoffs: tuple[float, float] | None = setting(
        None, help="[A's cut-off, B's cut-off] of a score threshold an offline run mapped"
    )
    sequential: bool = setting(True, help="always-valid intervals (looked at every day)")
    offline_run_id: str | None = setting(None, help="the offline run shown beside; null = latest")
    seed: int = setting(0, help="the simulated canary's seed")
    simulated: bool = setting(False, help="write the demo's simulated canary, then read it")
    users: int = setting(20_000, ge=1, help="simulated canary: users (both arms)")
    days: int = setting(14, ge=1, help="simulated canary: days")

    def __post_init__(self) -> None:
        bad = sorted(set(self.columns) - set(DEFAULT_COLUMNS))
        if bad:
            raise unknown_keys("online.columns", bad, DEFAULT_COLUMNS)
        object.__setattr__(self, "columns", {**DEFAULT_COLUMNS, **self.columns})

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> OnlineSettings:
        """Read the ``online`` config section; one-line errors name the key.

        >>> OnlineSettings.from_mapping({"path": "x.parquet", "columns": {"arm": "bucket"}}).column("arm")
        'bucket'
        """
        out = read_section(cls, cfg, "online")
        if not out.simulated and not out.path:
            raise ConfigError(
                "online.path is not set (expected the gateway log: a file, a folder of parts, a "
                "glob or a URL; or online=simulated for the demo canary)"
            )
        return out

    def column(self, key: str) -> str:
        """The log's name of contract column ``key`` (``arm`` -> ``ab_group``)."""
        return self.columns.get(key, DEFAULT_COLUMNS[key])


@dataclass(frozen=True)
class Margin:
    """``gates.online.<metric>.margin``: what B may lose and still be called no worse."""

    margin: float = setting(0.0, ge=0, le=1, help="what B may lose and still be called no worse")


@dataclass(frozen=True)
class OnlineGates:
    """``gates.online`` with the YAML's names (each key's help below)."""

    ctr: Margin = setting(factory=lambda: Margin(0.005), help="request CTR, B - A")
    score_click: Margin = setting(factory=lambda: Margin(0.02), help="within-request score AUC")
    latency_p95_increase: float = setting(
        0.20, ge=0, help="served p95 ratio - 1 above which the latency gate blocks"
    )
    srm_alpha: float = setting(0.001, ge=0, le=1, help="sample ratio mismatch blocks at p < this")

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> OnlineGates:
        """Read ``gates.online`` (unknown keys and bad values refused in one line)."""
        return read_section(cls, cfg, "gates.online")
