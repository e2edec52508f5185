"""The ``online`` config section (``conf/online/*.yaml``) and ``gates.online`` as typed, frozen
records (the gates' config lives here, apart from the gate functions of :mod:`evalkit.online.canary_gates`,
so that :class:`evalkit.compare.gate_config.GateConfig` can read it without an import circle).

>>> s = OnlineSettings(path="canary/*.parquet")
>>> s.column("arm"), s.control, s.split
('ab_group', 'control', 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from evalkit.errors import ConfigError
from evalkit.online.gateway_log import DEFAULT_COLUMNS


@dataclass(frozen=True)
class OnlineSettings:
    """Where the log is and how to read it.

    - ``path``: a file, a folder of parts, a glob or an fsspec URL (Parquet, JSON lines, CSV, TSV);
    - ``format``: ``parquet`` | ``json`` | ``csv`` | ``tsv``, or None to tell by the extension;
    - ``columns``: contract key (:data:`~evalkit.online.gateway_log.DEFAULT_COLUMNS`) -> log column;
    - ``control`` / ``treatment``: the arm column's values; ``split``: the share of units planned
      for the treatment;
    - ``unit``: the randomization unit's contract key (``user`` or ``request``), None = ``user``
      when the log has that column, else ``request``;
    - ``slices``: categorical columns (log names) to slice by, beside the query length and
      frequency bands;
    - ``score_bins``: equal-count bins of the similarity score per arm;
    - ``cutoffs``: ``(control cut-off, treatment cut-off)`` of a score threshold an offline run
      mapped (the share of clicks above each is compared), or None;
    - ``sequential``: always-valid intervals (the canary is looked at every day);
    - ``offline_run_id``: the offline evaluation to show beside (None: the latest of the pair).
    """

    path: str = ""
    format: str | None = None
    columns: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_COLUMNS))
    control: str = "control"
    treatment: str = "treatment"
    split: float = 0.5
    unit: str | None = None
    slices: tuple[str, ...] = ()
    score_bins: int = 20
    cutoffs: tuple[float, float] | None = None
    sequential: bool = True
    offline_run_id: str | None = None
    seed: int = 0
    simulated: bool = False  # online=simulated: write a simulated canary of the demo, then read it
    users: int = 20_000  # simulated canary: users (both arms)
    days: int = 14  # simulated canary: days

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> OnlineSettings:
        """Read the ``online`` config section; one-line errors name the key.

        >>> OnlineSettings.from_mapping({"path": "x.parquet", "columns": {"arm": "bucket"}}).column("arm")
        'bucket'
        """
        cfg = dict(cfg or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ConfigError(
                f"online has unknown keys {', '.join(unknown)} (expected {', '.join(sorted(known))})"
            )
        columns = dict(cfg.pop("columns", None) or {})
        bad = sorted(set(columns) - set(DEFAULT_COLUMNS))
        if bad:
            raise ConfigError(
                f"online.columns has unknown keys {', '.join(bad)} (expected "
                f"{', '.join(DEFAULT_COLUMNS)}: each maps a gateway column to the log's name)"
            )
        cutoffs = cfg.pop("cutoffs", None)
        slices = cfg.pop("slices", None) or ()
        try:
            out = cls(
                **{k: v for k, v in cfg.items() if v is not None or k in ("unit", "format")},
                columns={**DEFAULT_COLUMNS, **{k: str(v) for k, v in columns.items()}},
                slices=(slices,) if isinstance(slices, str) else tuple(str(s) for s in slices),
                cutoffs=None if cutoffs is None else (float(cutoffs[0]), float(cutoffs[1])),
            )
        except (TypeError, ValueError, IndexError) as err:
            raise ConfigError(f"online settings are malformed: {err}") from None
        if not 0.0 < float(out.split) < 1.0:
            raise ConfigError(
                f"online.split={out.split} (expected the treatment share, 0 < split < 1)"
            )
        if out.unit not in (None, "user", "request"):
            raise ConfigError(
                f"online.unit={out.unit!r} (expected user or request: the randomization unit)"
            )
        if not out.simulated and not out.path:
            raise ConfigError(
                "online.path is not set (expected the gateway log: a file, a folder of parts, a "
                "glob or a URL; or online=simulated for the demo canary)"
            )
        return out

    def column(self, key: str) -> str:
        """The log's name of contract column ``key`` (``arm`` -> ``ab_group``)."""
        return self.columns.get(key, DEFAULT_COLUMNS[key])


KEYS = {"ctr", "score_click", "latency_p95_increase", "srm_alpha"}


@dataclass(frozen=True)
class Margin:
    """``gates.online.<metric>.margin``: what B may lose and still be called no worse."""

    margin: float


@dataclass(frozen=True)
class OnlineGates:
    """``gates.online`` with the YAML's names: ``ctr.margin`` (absolute request-CTR points B may
    lose), ``score_click.margin`` (within-request AUC B may lose), ``latency_p95_increase``
    (0.20), ``srm_alpha`` (0.001)."""

    ctr: Margin = Margin(0.005)
    score_click: Margin = Margin(0.02)
    latency_p95_increase: float = 0.20
    srm_alpha: float = 0.001

    @property
    def ctr_margin(self) -> float:
        return self.ctr.margin

    @property
    def score_click_margin(self) -> float:
        return self.score_click.margin

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> OnlineGates:
        """Read ``gates.online`` (unknown keys and bad values refused in one line)."""
        cfg = dict(cfg or {})
        unknown = sorted(set(cfg) - KEYS)
        if unknown:
            raise ConfigError(
                f"gates.online has unknown keys {', '.join(unknown)} "
                f"(expected {', '.join(sorted(KEYS))})"
            )
        d = cls()

        def num(value: Any, key: str, hi: float | None = None) -> float:
            try:
                x = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"gates.online.{key}={value!r} is not a number") from None
            if math.isnan(x) or x < 0 or (hi is not None and x > hi):
                bound = ">= 0" + (f" and <= {hi}" if hi is not None else "")
                raise ConfigError(
                    f"gates.online.{key}={value!r} is out of range (expected {bound})"
                )
            return x

        def margin(section: str, default: Margin) -> Margin:
            sec = cfg.get(section) or {}
            if not isinstance(sec, Mapping) or set(sec) - {"margin"}:
                raise ConfigError(
                    f"gates.online.{section} must be a mapping with margin (got {sec!r})"
                )
            return Margin(num(sec.get("margin", default.margin), f"{section}.margin", hi=1.0))

        return cls(
            ctr=margin("ctr", d.ctr),
            score_click=margin("score_click", d.score_click),
            latency_p95_increase=num(
                cfg.get("latency_p95_increase", d.latency_p95_increase), "latency_p95_increase"
            ),
            srm_alpha=num(cfg.get("srm_alpha", d.srm_alpha), "srm_alpha", hi=1.0),
        )
