"""report.md / report.html / verdict.json, and report.html rendered in headless Chromium.

Chromium comes from Debian (``apt-get install -y chromium``); Playwright drives it through
``executable_path`` (``playwright install`` is never run).  Without /usr/bin/chromium the browser
test is skipped with that reason.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from evalkit.compare.report import comparison_metrics, write_report
from evalkit.compare.verdict import compare_versions
from tests.test_compare_verdict import CHECKS_OK, embed, load_collection, version

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _scatter_png(path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rng = np.random.default_rng(0)
    fig = Figure(figsize=(4, 3))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    x = rng.random(200)
    ax.scatter(x, 0.3 * x + rng.normal(0, 0.05, 200), s=4)
    ax.set_xlabel("cosine")
    ax.set_ylabel("CTR")
    fig.savefig(path, format="png")
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    data = load_collection("cranfield")
    q, d = embed(data)
    base = version("v1", data, q, d)
    degraded = version(
        "v2_truncated", data, q[:, :16], d[:, :16], latencies=base.latencies_s * 1.05
    )
    verdict = compare_versions(
        base, [degraded], data=data, checks=CHECKS_OK, settings={"regressions": 3}
    )
    out = tmp_path_factory.mktemp("report")
    files = write_report(verdict, out, scatter_png=_scatter_png(out / "scatter.png"))
    return verdict, files


def test_verdict_json(report) -> None:
    verdict, files = report
    doc = json.loads(files.verdict_json.read_text())
    assert doc["verdict"] == "BLOCK" and doc["exit_code"] == 3
    assert doc["test"] == "student" and doc["correction"] == "holm"
    [cand] = doc["candidates"]
    gates = {g["name"]: g for g in cand["gates"]}
    assert set(gates) == {
        "primary_metric",
        "judgment_coverage",
        "secondary_metrics",
        "mean_cosine_shift",
        "top_k_agreement",
        "low_score_share_increase",
        "unjudged_increase",
        "vector_contract",
        "latency_p95_increase",
        "endpoint_checks",
    }
    # Cranfield's judgments leave most of a top 10 unjudged: the coverage line is a follow-up,
    # and verdict.json carries both versions' shares and the judged-only call
    assert gates["judgment_coverage"]["status"] == "WARN"
    cov = cand["coverage"]
    assert cov["sparse"] and set(cov["unjudged"]) == {"v1", "v2_truncated"}
    assert cov["judged_only"]["status"] in ("better", "no_worse", "worse", "inconclusive")
    assert gates["top_k_agreement"]["status"] == "WARN"  # behaviour change: a follow-up
    assert gates["top_k_agreement"]["threshold"] == ">= 0.92"
    assert gates["top_k_agreement"]["observed"] == pytest.approx(
        verdict.candidates[0].overlap.agreement
    )
    assert doc["comparison_metrics"] == pytest.approx(comparison_metrics(verdict))
    # The checklist lists (issue 8): each item has name, observed, expected, why, what to do.
    assert {i["name"] for i in doc["blockers"]} == {"primary_metric", "vector_contract"}
    assert "top_k_agreement" in {i["name"] for i in doc["follow_ups"]}
    assert "endpoint_checks" in {i["name"] for i in doc["passed"]}
    for item in doc["passed"] + doc["follow_ups"] + doc["blockers"] + doc["actions"]:
        assert {"name", "observed", "expected", "why", "what_to_do"} <= set(item)
    assert all(i["what_to_do"] for i in doc["follow_ups"] + doc["blockers"] + doc["actions"])
    assert doc["quality_status"] == "worse"
    q = {x["metric"]: x for x in doc["quality"]}
    m = verdict.candidates[0].metric("ndcg@10")
    assert q["ndcg@10"]["status"] == "worse"
    assert (q["ndcg@10"]["delta"], q["ndcg@10"]["ci_low"], q["ndcg@10"]["ci_high"]) == (
        pytest.approx((m.delta, m.ci_low, m.ci_high))
    )
    assert q["ndcg@10"]["p"] == pytest.approx(m.p_value)
    assert "threshold_0.3_mapped" in doc["comparison_metrics"]
    assert len(cand["regressions"]) == 3 and cand["slices"]


def test_report_markdown(report) -> None:
    verdict, files = report
    md = files.markdown.read_text()
    assert md.startswith("# Release verdict: BLOCK (exit code 3)")
    assert "| top_k_agreement | WARN |" in md
    # The three lists come first, then the evidence.
    order = [md.index(h) for h in ("### Blockers", "### Passed", "### Follow-ups", "## Evidence")]
    assert order == sorted(order)
    assert "paired Student t-test" in md and "ndcg_at_10" in md
    assert "### Worst regressions (ndcg_at_10)" in md and "### Slices" in md


def test_report_html_is_self_contained(report) -> None:
    _, files = report
    page = files.html.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", page)
    assert "<script" not in page and "<link" not in page
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', page)
    assert [alt for alt, _ in images] == [
        "metric bars",
        "score distributions",
        "similarity vs click",
    ]
    for _, data in images:
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")


def test_report_html_renders_in_headless_chromium(report, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not installed at {CHROMIUM} (CI: apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    _, files = report
    shot = tmp_path / "report.png"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(files.html.resolve().as_uri())
            page.wait_for_load_state("load")
            verdict_text = page.inner_text("#verdict")
            images = page.evaluate(
                "Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])"
            )
            title = page.title()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert "Verdict:" in verdict_text and "BLOCK" in verdict_text
    assert "BLOCK" in title
    assert len(images) == 3
    for alt, complete, width in images:
        assert complete and width > 0, alt
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000


def test_terminal_checklist_renders_with_rich(report) -> None:
    from rich.console import Console

    from evalkit.compare import checklist_table

    verdict, _ = report
    console = Console(record=True, width=200, color_system=None)
    console.print(checklist_table(verdict))
    text = console.export_text()
    assert "Release verdict: BLOCK (exit code 3)" in text
    for gate in ("mean_cosine_shift", "top_k_agreement", "primary_metric", "endpoint_checks"):
        assert gate in text
