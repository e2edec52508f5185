"""The ``clicks`` config group (``conf/clicks/*.yaml``) as typed, frozen records.

>>> s = ClickSettings.from_mapping({"source": "simulated", "simulate": {"sessions": 20}})
>>> s.source, s.simulate.sessions, s.judgments.use, s.correlation.n_boot
('simulated', 20, 'auto', 1000)
>>> ClickSettings.from_mapping({"source": "logs"})
Traceback (most recent call last):
...
evalkit.errors.ConfigError: clicks.source='logs' is invalid (expected one of none, log, simulated: where the click log comes from)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evalkit.clicks.ingest import SHAPES, ClickColumns
from evalkit.clicks.judgments import METHODS
from evalkit.config_schema import read_section, setting
from evalkit.data.click_simulation import MODELS

SOURCES = ("none", "log", "simulated")


@dataclass(frozen=True)
class ClickJudging:
    """``clicks.judgments``: judgments derived from the clicks (:func:`~evalkit.clicks.stage.judge_clicks`)."""

    use: str = setting(
        "auto", choices=("auto", "always", "never"), help="auto: when the dataset has none"
    )
    method: str = setting(
        "auto", choices=("auto", *METHODS), help="auto: the best the log supports"
    )
    thresholds: Any = setting(
        None, help="ascending cut-offs -> grades 0..n (or {method: [...]}); null = defaults"
    )
    min_impressions: float = setting(1, ge=0, help="coec / ctr: pairs shown fewer stay unjudged")
    min_query_clicks: float = setting(1, ge=0, help="click_share: fewer clicks stay unjudged")
    max_rank: int | None = setting(None, ge=1, help="coec: only positions <= max_rank; null = all")


@dataclass(frozen=True)
class ClickCorrelationSettings:
    """``clicks.correlation``: similarity-vs-click correlation and its bootstrap."""

    min_pairs: int = setting(3, ge=1, help="spearman_within: queries with fewer pairs left out")
    n_boot: int = setting(1000, ge=1, help="bootstrap replicates (queries resampled)")
    confidence: float = setting(0.95, gt=0, lt=1, help="confidence of the intervals")
    seed: int = setting(0, help="the bootstrap's seed")
    n_bins: int = setting(20, ge=1, help="binned means in the scatter plot")


@dataclass(frozen=True)
class ClickSimulation:
    """``clicks.simulate``: the click model (:class:`~evalkit.data.click_simulation.ClickModel`)."""

    kind: str = setting("pbm", choices=MODELS, help="pbm: position-based model | cascade")
    depth: int = setting(10, help="results shown per session")
    eta: float = setting(1.0, help="pbm: P(examine rank r) = 1 / r^eta")
    alpha_min: float = setting(0.05, help="attractiveness of grade 0 (noise clicks)")
    alpha_max: float = setting(0.95, help="attractiveness of the top grade")
    max_grade: int | None = setting(None, help="null = the largest grade in the judgments")
    stop_prob: float = setting(1.0, help="cascade: probability to stop after a click")
    sessions: int = setting(100, ge=1, help="mean sessions per query")
    seed: int = setting(0, help="the simulation's seed")


@dataclass(frozen=True)
class ClickSettings:
    """The ``clicks`` group: where the log comes from and how it is read, judged, correlated."""

    source: str = setting("none", choices=SOURCES, help="where the click log comes from")
    path: tuple[str, ...] | None = setting(None, help="the click-log file (or a list of files)")
    shape: str = setting(
        "event", choices=SHAPES, help="event: a row per impression | aggregated: per pair"
    )
    format: str | None = setting(
        None, choices=("json", "csv", "tsv", "parquet"), help="null = from the file suffix"
    )
    on_invalid: str = setting(
        "error", choices=("error", "skip"), help="error: stop at a bad row | skip: drop, count"
    )
    position_base: int = setting(
        1, choices=(0, 1), help="1: the top result is position 1; 0: the log counts from 0"
    )
    columns: ClickColumns = setting(factory=ClickColumns, help="column names in the file")
    judgments: ClickJudging = setting(factory=ClickJudging, help="judgments from the clicks")
    correlation: ClickCorrelationSettings = setting(
        factory=ClickCorrelationSettings, help="similarity-vs-click correlation"
    )
    simulate: ClickSimulation = setting(factory=ClickSimulation, help="source: simulated")

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | ClickSettings | None) -> ClickSettings:
        if isinstance(cfg, ClickSettings):
            return cfg
        return read_section(cls, cfg, "clicks")
