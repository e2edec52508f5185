"""The test collections shipped in ``tests/data`` (BEIR layout, gzip-compressed).

``collection(name)`` is the folder to hand to ``load_beir`` or to the CLI as ``dataset.path``
(evalkit reads ``.jsonl.gz`` / ``.tsv.gz`` directly).  Tests that parse the files themselves use
``read_jsonl`` / ``read_text`` (plain gzip + json, independent of evalkit); tests that edit a
collection work on ``unpack(name, folder)``, a plain, uncompressed copy.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"
NAMES = ("adi", "cisi", "cranfield", "med")
#: The BEIR files of a collection, relative to its folder (as shipped: compressed).
FILES = ("corpus.jsonl.gz", "queries.jsonl.gz", "qrels/test.tsv.gz")


def collection(name: str) -> Path:
    """``tests/data/<name>``; fails the test (not skips) when it is missing."""
    folder = DATA / name
    if not (folder / "corpus.jsonl.gz").is_file():
        pytest.fail(f"test collection {name!r} not found at {folder} (it ships with the repo)")
    return folder


def read_text(path: Path) -> str:
    """The text of a (gzip-compressed) file, decompressed with plain ``gzip``."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return fh.read()


def read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of a (gzip-compressed) JSON-lines file, one per non-blank line."""
    return [json.loads(line) for line in read_text(path).splitlines() if line.strip()]


def unpack(name: str, folder: Path) -> Path:
    """A plain BEIR copy of collection ``name`` in ``folder`` (created): corpus.jsonl,
    queries.jsonl, qrels/test.tsv, for tests that edit a collection's files."""
    source = collection(name)
    for rel in FILES:
        target = folder / rel.removesuffix(".gz")
        target.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(source / rel, "rb") as fh:
            target.write_bytes(fh.read())
    return folder
