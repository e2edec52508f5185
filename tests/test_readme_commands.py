"""README.md starts with exactly two set-up commands, and .ci/run runs the second one verbatim
(issue 9, item 14: the test command installs what the browser test needs)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .cli import REPO


def _setup_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_has_two_setup_commands_and_ci_runs_the_test_command():
    commands = _setup_commands()
    assert len(commands) == 2
    test_command = commands[1]
    assert "bash tests/install_browser.sh" in test_command and "python -m pytest -q" in test_command
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in ci


def test_browser_script_explains_the_extra_step_when_it_cannot_install(tmp_path):
    """No chromium, no apt-get, no sudo: one line with the extra step (or the opt-out)."""
    script = REPO / "tests" / "install_browser.sh"
    (tmp_path / "id").symlink_to(shutil.which("id"))
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path), "EVALKIT_CHROMIUM": "/nonexistent"}
    missing = subprocess.run(["/bin/bash", str(script)], env=env, capture_output=True, text=True)
    assert missing.returncode == 1 and "sudo apt-get install chromium" in missing.stderr
    skip = subprocess.run(
        ["/bin/bash", str(script)],
        env={**env, "EVALKIT_SKIP_BROWSER": "1"},
        capture_output=True,
        text=True,
    )
    assert skip.returncode == 0 and "skipped" in skip.stderr
    ci = subprocess.run(
        ["/bin/bash", str(script)], env={**env, "CI": "true"}, capture_output=True, text=True
    )
    assert ci.returncode == 0 and "will be skipped" in ci.stderr


def test_browser_script_is_a_no_op_when_chromium_is_installed():
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed here (tests/install_browser.sh installs it)")
    done = subprocess.run(
        ["/bin/bash", str(REPO / "tests" / "install_browser.sh")], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stderr == ""
