"""A clean clone needs nothing beside it (issue 16): no file of the project refers to the old
folder of test collections beside the checkout; they ship in ``tests/data``.

The folder's name is assembled from parts here (:data:`OLD`), so this file does not spell the
path it forbids either.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from .cli import REPO

#: The old folder's name, assembled so that this file does not contain the path itself.
OLD = "sha" + "red"
#: ``..`` + ``/`` + OLD (either slash), OLD + ``/data``, and code building it from the
#: repository's parent (``REPO.parent / OLD``, ``parents[2] / OLD``, with OLD quoted).
PATTERN = re.compile(
    rf"""\.\.[/\\]{OLD}\b|\b{OLD}[/\\]data\b|\bparents?(\[\d+\])?\s*/\s*["']{OLD}["']""".encode()
)
SKIP_DIRS = {".git", ".venv", "node_modules", "mlruns", "outputs", "multirun", ".cache"}


def project_files() -> list[Path]:
    """The repository's files: tracked and new (not ignored) ones per git, else a walk."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout
        names = [n for n in listed.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (e.g. an sdist)
        names = [
            str(p.relative_to(REPO))
            for p in REPO.rglob("*")
            if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(REPO).parts)
        ]
    return [REPO / n for n in names if (REPO / n).is_file()]


def test_the_pattern_finds_every_spelling():
    up, sep = "..", "/"
    for text in (
        f"dataset.path={up}{sep}{OLD}{sep}data/adi",
        f"{up}\\{OLD}\\data",
        f"see {OLD}{sep}data/README.md",
        f'DATA = REPO.parent / "{OLD}" / "data"',
        f"Path(__file__).parents[2] / '{OLD}'",
    ):
        assert PATTERN.search(text.encode()), text
    for text in (
        "cache.dir=/shared/evalkit-cache",
        "def shared_data():",
        "a shared machine",
        'store = tmp_path / "shared"',
    ):
        assert not PATTERN.search(text.encode()), text


def test_no_file_refers_to_the_shared_folder():
    files = project_files()
    assert len(files) > 50 and REPO / "tests" / "data" / "adi" / "corpus.jsonl.gz" in files
    found = []
    for path in files:
        for line_no, line in enumerate(path.read_bytes().splitlines(), start=1):
            if PATTERN.search(line):
                found.append(f"{path.relative_to(REPO)}:{line_no}: {line.decode(errors='replace')}")
    if found:
        pytest.fail(
            f"these lines refer to the old {OLD} folder beside the checkout; use tests/data instead:\n"
            + "\n".join(found)
        )
