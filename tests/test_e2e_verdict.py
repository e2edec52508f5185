"""Release verdict v2 end to end on Cranfield titles (issue 8), through the documented CLI.

- ``models=[use_m3,e5_small]``: e5 is clearly better, so the verdict is PASS or WARN (exit 0),
  quality "better", and the actions include the score-threshold mapping and "re-index the whole
  catalog" (512 -> 384 dimensions); behaviour changes are follow-ups, not blocks.
- The same with the order swapped: BLOCK (exit 3) naming the primary metric.
- ``gates=upgrade`` blocks the cross-family switch on the shadow gates (top-3 agreement).
"""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient

from .cli import run_evalkit

pytestmark = pytest.mark.slow


def doc_parent_id(res) -> str:
    """The parent run id the CLI printed ("MLflow parent run <id>; outputs in ...")."""
    line = next(x for x in res.stdout.splitlines() if x.startswith("MLflow parent run "))
    return line.split()[3].rstrip(";")


def _run(shared_data, shared_cache, work, name, models, *extra):
    res = run_evalkit(
        f"cache.dir={shared_cache}",
        "dataset=beir",
        f"dataset.path={shared_data / 'cranfield'}",
        "dataset.text_field=title",
        f"models=[{models}]",
        "tracking.experiment=verdict_v2",
        *extra,
        work=work,
        out_name=name,
    )
    doc = (
        json.loads((res.out_dir / "verdict.json").read_text())
        if res.returncode in (0, 3, 4)
        else {}
    )
    return res, doc


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_data, shared_cache):
    work = tmp_path_factory.mktemp("verdict_v2")
    forward = _run(shared_data, shared_cache, work, "forward", "use_m3,e5_small")
    swapped = _run(shared_data, shared_cache, work, "swapped", "e5_small,use_m3")
    upgrade = _run(shared_data, shared_cache, work, "upgrade", "use_m3,e5_small", "gates=upgrade")
    return work, forward, swapped, upgrade


def test_better_candidate_of_a_new_family_is_not_blocked(runs):
    work, (res, doc), _, _ = runs
    assert res.returncode == 0, res.stderr[-3000:]
    assert doc["verdict"] in ("PASS", "WARN") and doc["quality_status"] == "better"
    q = {x["metric"]: x for x in doc["quality"]}
    assert q["ndcg@10"]["status"] == "better" and q["ndcg@10"]["ci_low"] > 0
    assert q["ndcg@10"]["p"] < 0.05  # two-sided p beside a gain, never "p=1"
    assert not doc["blockers"]
    follow = {i["name"] for i in doc["follow_ups"]}
    assert "top_k_agreement" in follow  # a new family changes the top results: a follow-up
    actions = {i["name"]: i for i in doc["actions"]}
    assert actions["score_threshold_0.3"]["what_to_do"].startswith("change the 0.30 cut-off to")
    assert "re-index the whole catalog" in actions["reindex"]["what_to_do"]
    assert "512 -> 384" in actions["reindex"]["what_to_do"]
    # The terminal shows the lists first, then the evidence.
    out = res.stdout
    assert "Release verdict" in out and out.index("follow-up") < out.index(
        "Metrics per model version"
    )
    # MLflow: tags and the new parent metrics.
    client = MlflowClient(tracking_uri=f"sqlite:///{work}/mlflow.db")
    parent = client.get_run(doc_parent_id(res))
    assert parent.data.tags["evalkit.quality"] == "better"
    assert parent.data.tags["evalkit.verdict"] == doc["verdict"]
    m = parent.data.metrics
    assert m["ci_low_ndcg_at_10"] > 0 and m["ci_high_ndcg_at_10"] > m["ci_low_ndcg_at_10"]
    assert m["threshold_0.3_mapped"] == pytest.approx(
        doc["comparison_metrics"]["threshold_0.3_mapped"]
    )


def test_swapped_order_blocks_on_the_primary_metric(runs):
    _, _, (res, doc), _ = runs
    assert res.returncode == 3, res.stderr[-3000:]
    assert doc["verdict"] == "BLOCK" and doc["quality_status"] == "worse"
    assert "primary_metric" in {i["name"] for i in doc["blockers"]}
    assert "primary_metric" in res.stdout


def test_upgrade_preset_blocks_the_cross_family_switch_on_shadow_gates(runs):
    _, _, _, (res, doc) = runs
    assert res.returncode == 3, res.stderr[-3000:]
    blockers = {i["name"] for i in doc["blockers"]}
    assert "top_k_agreement" in blockers and "primary_metric" not in blockers
    assert doc["quality_status"] == "better"
