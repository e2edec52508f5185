"""A deliberately degraded candidate is blocked, and the version compared with itself passes.

The candidate is the same e5 model with its vectors truncated to 48 dimensions WITHOUT
re-normalisation - the classic silent upgrade bug - declared on the command line as a second
model version.  Through the real pipeline (ADI, human judgments), the verdict must BLOCK on the
vector contract (and report the behaviour changes as follow-ups); the baseline against an identical copy of itself must PASS the quality
and drift gates with agreement 1.0 and shift 0.0.
"""

from __future__ import annotations

import json

import pytest

from .cli import run_evalkit

pytestmark = pytest.mark.slow
E5 = "_target_:evalkit.embed.local_models.E5Small,num_threads:2"


def _gates(out_dir):
    verdict = json.loads((out_dir / "verdict.json").read_text())
    return verdict, {g["name"]: g for g in verdict["candidates"][0]["gates"]}


def test_truncated_unnormalised_candidate_is_blocked(tmp_path, shared_data, shared_cache):
    res = run_evalkit(
        f"cache.dir={shared_cache}",
        "dataset=beir",
        f"dataset.path={shared_data / 'adi'}",
        "models=[e5_small]",
        f"+models.e5_degraded={{{E5},name:e5_degraded,dimensions:48,normalize:false}}",
        "tracking.experiment=degraded",
        work=tmp_path,
    )
    assert res.returncode == 3, res.stderr[-3000:]
    verdict, gates = _gates(res.out_dir)
    assert verdict["verdict"] == "BLOCK"
    # A broken contract blocks: the baseline's vectors are unit-length, the candidate's are not.
    assert gates["vector_contract"]["status"] == "BLOCK"
    assert "vector_contract" in {i["name"] for i in verdict["blockers"]}
    # The behaviour changes it causes are reported as follow-ups.
    assert gates["low_score_share_increase"]["status"] == "WARN"
    assert gates["top_k_agreement"]["status"] == "WARN"
    assert gates["mean_cosine_shift"]["status"] == "WARN"
    assert gates["mean_cosine_shift"]["observed"] < -0.03


def test_version_against_identical_copy_passes(tmp_path, shared_data, shared_cache):
    res = run_evalkit(
        f"cache.dir={shared_cache}",
        "dataset=beir",
        f"dataset.path={shared_data / 'adi'}",
        "models=[e5_small]",
        f"+models.e5_copy={{{E5},name:e5_copy}}",
        "tracking.experiment=self",
        work=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    verdict, gates = _gates(res.out_dir)
    cm = verdict["candidates"][0]["comparison_metrics"]
    assert cm["top3_agreement"] == 1.0 and cm["mean_cosine_shift"] == 0.0
    assert cm["delta_ndcg_at_10"] == 0.0
    for name in (
        "mean_cosine_shift",
        "top_k_agreement",
        "low_score_share_increase",
        "primary_metric",
        "vector_contract",
    ):
        assert gates[name]["status"] == "PASS", gates[name]
