"""``evalkit --help`` is evalkit's own help (conf/hydra/help/evalkit.yaml), not Hydra's generic
text and a dump of the whole configuration (issue 16)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .cli import REPO, offline_env

CONF = REPO / "conf"


def _help(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "evalkit.cli", *args],
        cwd=REPO,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_tasks_groups_exit_codes_and_examples():
    res = _help("--help")
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    for section in ("Tasks (task=...):", "Config groups", "Exit codes:", "Examples:"):
        assert section in out, out
    for task in ("evaluate", "check", "runs", "log", "vectors", "online"):
        assert f"\n  {task} " in out, task
    # every config group of conf/ with all its choices (Hydra's $APP_CONFIG_GROUPS)
    for group in (
        "dataset",
        "models",
        "index",
        "engine",
        "tracking",
        "gates",
        "checks",
        "clicks",
        "online",
    ):
        choices = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
        assert f"{group}: {', '.join(choices)}" in out, (group, out)
    for code in ("0 ", "3 ", "4 ", "1 ", "2 ", "130 ", "143 "):
        assert any(
            line.strip().startswith(code) or f"; {code}" in line for line in out.splitlines()
        )
    assert "INCONCLUSIVE" in out and "BLOCK" in out
    examples = out[out.index("Examples:") :].splitlines()
    assert sum(line.startswith("  evalkit") for line in examples) == 6
    # neither Hydra's generic text nor the configuration dump
    assert "Powered by Hydra" not in out and "== Config ==" not in out
    assert "primary_metric:" not in out and "_target_" not in out
    assert len(out.splitlines()) < 80


def test_hydra_help_and_cfg_stay_available():
    res = _help("--hydra-help")
    assert res.returncode == 0 and "Hydra" in res.stdout
    res = _help("--cfg", "job")
    assert res.returncode == 0 and "primary_metric:" in res.stdout


def test_help_is_not_taken_for_a_usage_error():
    """evalkit/usage.py checks argv before Hydra: --help with overrides still prints help."""
    res = _help("models=[e5_small]", "--help")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Exit codes:" in res.stdout and "usage error" not in res.stderr
    assert Path(REPO / "conf" / "hydra" / "help" / "evalkit.yaml").is_file()
