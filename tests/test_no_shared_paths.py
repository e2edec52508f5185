"""A clean clone needs nothing beside it (issue 16): no file of the project refers to the old
``../shared`` folder of test collections; they ship in ``tests/data``."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from .cli import REPO

#: ``../shared`` (either slash), ``shared/data``, and code building it from the repository's
#: parent: ``REPO.parent / "shared"``, ``parents[2] / "shared"``.
PATTERN = re.compile(
    rb"""\.\.[/\\]shared\b|\bshared[/\\]data\b|\bparents?(\[\d+\])?\s*/\s*["']shared["']"""
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
    for text in (
        "dataset.path=../shared/data/adi",
        r"..\shared\data",
        "see shared/data/README.md",
        'DATA = REPO.parent / "shared" / "data"',
        "Path(__file__).parents[2] / 'shared'",
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
    this = Path(__file__).resolve()
    found = []
    for path in files:
        if path.resolve() == this:
            continue
        for line_no, line in enumerate(path.read_bytes().splitlines(), start=1):
            if PATTERN.search(line):
                found.append(f"{path.relative_to(REPO)}:{line_no}: {line.decode(errors='replace')}")
    if found:
        pytest.fail(
            "these lines refer to ../shared; use the collections in tests/data instead:\n"
            + "\n".join(found)
        )
