"""The click stage of an evaluation, driven by the ``clicks`` config group (``conf/clicks/*.yaml``).

:func:`load_clicks` (after the dataset loads) reads or simulates the log and, when configured or
when the dataset has no judgments, judges it; :func:`click_report` (after every version is
embedded) correlates each version's similarities with the clicks and draws the scatter plot
(similarity vs click rate / share, one colour per version: a seeded sample of at most
``max_points`` points per version, and binned means of *all* pairs).

>>> import numpy as np
>>> from evalkit.data.click_log import ClickLog
>>> log = ClickLog(["q1"] * 4 + ["q2"] * 4, ["a", "b", "c", "d"] * 2,
...                clicks=np.array([9., 5, 2, 0, 8, 4, 1, 1]), impressions=np.full(8, 10.))
>>> sims = {"old": np.array([.9, .5, .6, .1, .8, .7, .2, .3]),
...         "new": np.array([.9, .6, .5, .1, .8, .7, .3, .2])}
>>> rep = click_report(log, log.pairs(), sims, baseline="old", cfg={"correlation": {"n_boot": 50}})
>>> m = rep.metrics("new")
>>> m["click_spearman"] > rep.metrics("old")["click_spearman"], "delta_click_spearman" in m
(True, True)
>>> rep.params()["click_measure"]
'click_rate'
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.clicks.click_settings import ClickJudging, ClickSettings
from evalkit.clicks.correlation import (
    ClickCorrelation,
    CorrelationDifference,
    click_correlation,
    difference,
)
from evalkit.clicks.ingest import load_click_log
from evalkit.clicks.judgments import ClickJudgments, judgments_from_clicks
from evalkit.config_schema import read_section
from evalkit.data.click_log import ClickLog
from evalkit.data.click_simulation import ClickModel, simulate_demo_clicks
from evalkit.data.schema import EvalData, Judgments
from evalkit.errors import ConfigError
from evalkit.pairs import align_similarity

log_ = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClickStage:
    """What :func:`load_clicks` produced; ``judgments`` is ``None`` unless clicks are judged."""

    log: ClickLog
    new_queries: dict[str, str] = field(default_factory=dict)
    judgments: Judgments | None = None

    def params(self) -> dict[str, Any]:
        """MLflow params ``clicks_*``: the log, the judgment method and its cut-offs."""
        out = {f"clicks_{k}": v for k, v in self.log.describe().items()}
        out["clicks_judgment_method"] = self.judgments.method if self.judgments else "none"
        if isinstance(self.judgments, ClickJudgments):
            out.update(self.judgments.params())
        for reason, n in self.log.skipped.items():
            out[f"clicks_skipped_{reason}"] = n
        return out


@dataclass(frozen=True)
class ClickReport:
    """Per-version correlations, differences to the baseline and the plot (``None`` if off)."""

    correlations: dict[str, ClickCorrelation]
    differences: dict[str, CorrelationDifference]
    baseline: str | None
    plot: Path | None
    measure: str
    simulated: bool

    def metrics(self, version: str) -> dict[str, float]:
        """``click_*`` metrics of ``version`` plus ``delta_click_*`` when it is not the baseline."""
        out = dict(self.correlations[version].metrics())
        if version in self.differences:
            out.update(self.differences[version].metrics())
        return out

    @property
    def label(self) -> str:
        """``click rate`` / ``click share``, with ``(simulated clicks)`` when simulated."""
        return self.measure.replace("_", " ") + (" (simulated clicks)" if self.simulated else "")

    def table(self) -> tuple[list[str], list[list[str]]]:
        """Header and rows: per version correlations and the delta to the baseline."""
        head = [
            "version",
            "spearman [95% CI]",
            "within-query spearman [95% CI]",
            "kendall",
            "pearson",
            "delta spearman vs baseline [95% CI]",
        ]

        def ci(est: Any) -> str:
            return f"{est.value:+.3f} [{est.low:+.3f}, {est.high:+.3f}]"

        diffs = {v: ci(d.spearman) for v, d in self.differences.items()}
        rows = [
            [v, ci(c.spearman), ci(c.spearman_within), f"{c.kendall.value:+.3f}"]
            + [f"{c.pearson.value:+.3f}", diffs.get(v, "(baseline)")]
            for v, c in self.correlations.items()
        ]
        return head, rows

    def params(self) -> dict[str, Any]:
        any_corr = next(iter(self.correlations.values()), None)
        out: dict[str, Any] = {"click_measure": self.measure, "click_simulated": self.simulated}
        if any_corr is not None:
            out.update(any_corr.params())
        return out


def load_clicks(cfg: Mapping[str, Any] | ClickSettings | None, data: EvalData) -> ClickStage | None:
    """Load or simulate the click log configured in ``cfg`` (the ``clicks`` group) for ``data``."""
    s = ClickSettings.from_mapping(cfg)
    if s.source == "none":
        return None
    if s.source == "log":
        if not s.path or s.path == ("???",):
            raise ConfigError("clicks.source=log needs clicks.path (the click-log file)")
        log, new_queries = load_click_log(
            list(s.path),
            shape=s.shape,
            columns=s.columns,
            catalog_ids=data.catalog.ids,
            query_ids=data.queries.ids,
            query_texts=data.queries.texts,
            format=s.format,
            on_invalid=s.on_invalid,
            position_base=s.position_base,
        )
    else:
        sim = {k: v for k, v in asdict(s.simulate).items() if k not in ("sessions", "seed")}
        log = simulate_demo_clicks(
            data, seed=s.simulate.seed, model=ClickModel(**sim), sessions=s.simulate.sessions
        )
        new_queries = {}
    log_.info(
        "click log: %d pairs, %.0f clicks, measure=%s%s",
        len(log),
        log.n_clicks,
        log.measure,
        " (simulated)" if log.simulated else "",
    )
    use = s.judgments.use
    judge = use == "always" or (use == "auto" and data.judgments is None)
    judgments = judge_clicks(log, s.judgments) if judge else None
    return ClickStage(log, new_queries, judgments)


def judge_clicks(
    log: ClickLog, jcfg: Mapping[str, Any] | ClickJudging | None = None
) -> ClickJudgments:
    """Judgments from ``log`` per the ``clicks.judgments`` config (``method: auto``: ``coec`` with
    positions and impressions, ``ctr`` with impressions, else ``click_share``)."""
    j = (
        jcfg
        if isinstance(jcfg, ClickJudging)
        else read_section(ClickJudging, jcfg, "clicks.judgments")
    )
    method = j.method
    if method == "auto":
        positions = log.positions is not None or log.mean_position is not None
        method = "click_share" if log.impressions is None else "coec" if positions else "ctr"
    thresholds = j.thresholds
    if isinstance(thresholds, Mapping):  # per-method thresholds
        thresholds = thresholds.get(method)
    return judgments_from_clicks(
        log,
        method,
        thresholds=thresholds,
        min_impressions=j.min_impressions,
        min_query_clicks=j.min_query_clicks,
        max_rank=j.max_rank,
    )


def click_report(
    log: ClickLog,
    pair_ids: Sequence[tuple[str, str]],
    similarities: Mapping[str, np.ndarray],
    *,
    baseline: str | None = None,
    cfg: Mapping[str, Any] | None = None,
    plot_path: str | Path | None = None,
) -> ClickReport:
    """Correlate each version's similarity (aligned with ``pair_ids``) with the log's rate
    (``cfg``: the ``clicks`` group; the plot is written when ``plot_path`` is given)."""
    ccfg = ClickSettings.from_mapping(cfg).correlation
    rate = log.rate()
    _, qidx = log.query_index()
    kwargs = {k: getattr(ccfg, k) for k in ("min_pairs", "n_boot", "confidence", "seed")}
    aligned = {v: align_similarity(log, pair_ids, s) for v, s in similarities.items()}
    # Pairs must be the same for every version, or the differences would not be paired.
    common = np.logical_and.reduce([np.isfinite(s) for s in aligned.values()] or [np.ones(0, bool)])
    missing = int((~common).sum()) if len(common) else 0
    if missing:
        log_.warning("click correlation: %d logged pairs have no similarity; left out", missing)
    corr = {
        v: click_correlation(np.where(common, s, np.nan), rate, qidx, measure=log.measure, **kwargs)
        for v, s in aligned.items()
    }
    if baseline is not None and baseline not in corr:
        raise ConfigError(f"baseline version {baseline!r} has no similarities for the click log")
    others = {v: c for v, c in corr.items() if v != baseline} if baseline is not None else {}
    diffs = {v: difference(c, corr[baseline]) for v, c in others.items()}
    plot = None
    if plot_path is not None:
        series = {v: (s, rate) for v, s in aligned.items()}
        plot = plot_click_scatter(
            series, plot_path, measure=log.measure, n_bins=ccfg.n_bins, simulated=log.simulated
        )
    return ClickReport(corr, diffs, baseline, plot, log.measure, log.simulated)


def binned_means(
    similarity: np.ndarray, rate: np.ndarray, n_bins: int = 20
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean similarity, mean rate and pair count of ``n_bins`` equal-count similarity bins.

    >>> s, r, n = binned_means(np.arange(10.0), np.arange(10.0) * 2, n_bins=2)
    >>> s.tolist(), r.tolist(), n.tolist()
    ([2.0, 7.0], [4.0, 14.0], [5, 5])
    """
    x = np.asarray(similarity, dtype=float)
    y = np.asarray(rate, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64)
    order = np.argsort(x, kind="stable")
    bins = np.minimum((np.arange(len(x)) * n_bins) // len(x), n_bins - 1)
    b = np.empty(len(x), dtype=np.int64)
    b[order] = bins
    count = np.bincount(b, minlength=n_bins)
    used = count > 0
    sx = np.bincount(b, weights=x, minlength=n_bins)[used] / count[used]
    sy = np.bincount(b, weights=y, minlength=n_bins)[used] / count[used]
    return sx, sy, count[used]


def plot_click_scatter(
    series: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    measure: str = "click_rate",
    n_bins: int = 20,
    max_points: int = 20000,
    seed: int = 0,
    title: str | None = None,
    simulated: bool = False,
) -> Path:
    """Write the PNG to ``path`` and return it; ``series`` maps version -> (similarity, rate)."""
    from matplotlib.figure import Figure  # no pyplot: Agg canvas, no global figure state

    label = measure.replace("_", " ")
    fig = Figure(figsize=(7.5, 5.0), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    rng = np.random.default_rng(seed)
    for i, (name, (sim, rate)) in enumerate(series.items()):
        x = np.asarray(sim, dtype=float)
        y = np.asarray(rate, dtype=float)
        ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
        shown = ok if len(ok) <= max_points else np.sort(rng.choice(ok, max_points, replace=False))
        colour = f"C{i % 10}"
        ax.scatter(x[shown], y[shown], s=6, alpha=0.25, color=colour, linewidths=0)
        bx, by, _ = binned_means(x, y, n_bins)
        ax.plot(
            bx, by, "-o", color=colour, markersize=4, label=f"{name} (binned mean, n={len(ok)})"
        )
    ax.set_xlabel("cosine similarity (query, item)")
    ax.set_ylabel(label + (" (simulated clicks)" if simulated else ""))
    ax.set_title(title or f"similarity vs {label}")
    ax.grid(alpha=0.3)
    if series:
        ax.legend(loc="best", fontsize=8)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"Title": ax.get_title(), "Description": f"x: cosine similarity; y: {label}"}
    fig.savefig(out, format="png", metadata=meta)
    return out
