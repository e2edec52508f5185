"""Command-line usage errors exit 2 with one line that lists the valid choices (issue 9, item 8).

Hydra's own handling exits 1 with a multi-line message and a misleading "+key" hint; evalkit
checks every job's composition first (:mod:`evalkit.usage`), so a sweep with one bad value
fails before any job runs, while `--help`, `--cfg job` and valid commands are untouched.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from evalkit.usage import CONF_DIR, usage_error

from .cli import REPO, offline_env, run_evalkit

MODEL_FILES = sorted(p.stem for p in (CONF_DIR / "models").glob("*.yaml"))
DATASET_KEYS = ("path", "split", "name", "text_field", "title_separator", "on_invalid")

CASES = [
    (("modls=[x]",), ["unknown key 'modls'", "models", "dataset", "tracking"]),
    (("dataset=beir", "dataset.pth=x"), ["unknown key 'pth' in dataset", *DATASET_KEYS]),
    (("models=[e5_smal]",), ["no option 'e5_smal'", "conf/models/", *MODEL_FILES]),
    (("models=[]",), ["no model version", *MODEL_FILES]),
    (("--multirun", "models=[use_m3],[e5_smal]"), ["no option 'e5_smal'", *MODEL_FILES]),
    (
        ("--multirun", "models.e5_small.dimensons=128,256"),
        ["unknown key 'dimensons'", "dimensions"],
    ),
    (("dataset=nope",), ["no option 'nope' in config group dataset", "beir", "tabular", "trec"]),
]


@pytest.mark.parametrize(("overrides", "expected"), CASES)
def test_usage_error_exits_2_with_one_line_listing_choices(tmp_path, overrides, expected):
    res = run_evalkit(*overrides, work=tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("evalkit: usage error: ")
    for word in expected:
        assert word in lines[0], (word, lines[0])
    assert "Traceback" not in res.stderr and "To append" not in res.stderr
    assert not (tmp_path / "out").exists()  # nothing ran


def test_valid_commands_are_not_usage_errors():
    assert usage_error(["models=[use_m3]", "dataset=beir", "dataset.path=x"]) is None
    assert usage_error(["--multirun", "models.e5_small.dimensions=128,256"]) is None
    assert usage_error(["--multirun", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]) is None
    assert usage_error(["+extra.key=1"]) is None  # appending is explicit
    assert usage_error(["--help"]) is None


@pytest.mark.parametrize(
    ("args", "expected"),
    [(["--help"], "Config groups (group=choice"), (["--cfg", "job", "k=7"], "k: 7")],
)
def test_help_and_cfg_still_work(args, expected):
    proc = subprocess.run(
        [sys.executable, "-m", "evalkit.cli", *args],
        cwd=REPO,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout


def test_cfg_with_a_bad_key_is_a_usage_error():
    proc = subprocess.run(
        [sys.executable, "-m", "evalkit.cli", "--cfg", "job", "kk=7"],
        cwd=REPO,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "unknown key 'kk'" in proc.stderr


def test_the_unknown_key_is_named_not_a_valid_key_whose_default_is_missing():
    """`dataset.path` is `???` in conf/dataset/beir.yaml: still a valid key."""
    line = usage_error(["dataset=beir", "dataset.path=x", "dataset.pth=y"])
    assert line is not None and line.startswith("dataset.pth=y: unknown key 'pth' in dataset")
