"""A full disk is named as one (issue 26, item 6).

Before: "cannot use a file: 41984 requested and 29664 written" (numpy's short write) or a bare
"No space left on device".  Now one line names the file, says the disk is full and how much is
free there.  The disk is a real 1 MB tmpfs mounted for the test (it needs root; skipped
otherwise), filled up but for a few KB.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest

from evalkit.embed import VectorCache, embed_texts
from evalkit.embed.cache import text_key_array
from evalkit.errors import DiskFullError, disk_full, os_error_line

from .cli import run_evalkit
from .test_embed_cache import Counting, texts_n

FREE_KB = 24


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MB tmpfs at ``tmp_path/disk`` with about FREE_KB KB left free."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        filler = mount / "filler"
        with contextlib.suppress(OSError), open(filler, "wb") as f:
            f.write(bytes(2**20))
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        os.truncate(filler, filler.stat().st_size - (FREE_KB * 1024 - free))
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_shard_on_a_full_disk_names_the_file_and_the_free_space(full_disk):
    keys = text_key_array(texts_n(200))
    vectors = np.ones((200, 64), np.float32)  # 51 KB: more than is free
    with VectorCache(full_disk / "store", {"backend": "full"}) as cache:
        cache.put(keys, vectors)
        with pytest.raises(DiskFullError) as caught:
            cache.flush()
        cache._pending_rows = 0  # noqa: SLF001 - nothing left to write on close
    line = str(caught.value)
    assert "\n" not in line
    assert re.match(
        rf"cannot write {re.escape(str(cache.dir))}/\S+\.vectors\.npy: the disk is full", line
    )
    assert "bytes written" in line or "No space left on device" in line
    assert re.search(r"[\d.]+ KB free of 1\.0 MB now", line), line
    assert caught.value.errno == errno.ENOSPC
    assert not [p for p in Path(cache.dir).iterdir() if p.name.endswith(".tmp")]  # no partial file


def test_the_cli_says_the_disk_is_full_in_one_line(tmp_path, full_disk, shared_data):
    res = run_evalkit(
        "dataset=beir",
        f"dataset.path={shared_data / 'adi'}",
        "models=[use_m3]",
        f"cache.dir={full_disk / 'cache'}",
        "tracking.experiment=full-disk",
        work=tmp_path,
    )
    assert res.returncode == 1, res.stderr[-3000:]
    (line,) = [x for x in res.stderr.splitlines() if "disk is full" in x]
    assert f"cannot write {full_disk / 'cache'}/" in line
    assert re.search(r"[\d.]+ KB free of 1\.0 MB now", line) and "Traceback" not in res.stderr


@pytest.mark.parametrize(
    "err",
    [
        OSError("41984 requested and 29664 written"),  # numpy's short write: no errno, no path
        OSError(errno.ENOSPC, "No space left on device"),  # fsync / close: no path
    ],
    ids=["short write", "bare ENOSPC"],
)
def test_a_pathless_full_disk_error_gets_the_path_it_was_writing(tmp_path, err):
    where = tmp_path / f"shard-{uuid.uuid4().hex[:6]}.vectors.npy"
    full = disk_full(err, where)
    assert isinstance(full, DiskFullError) and full.filename == str(where)
    assert str(full).startswith(f"cannot write {where}: the disk is full (")
    assert " free of " in str(full)  # tmp_path's disk: readable
    assert os_error_line(OSError(errno.ENOSPC, "No space left on device", str(where))).startswith(
        f"cannot write {where}: the disk is full"
    )


def test_embedding_into_a_full_disk_store_stops_with_that_line(full_disk):
    with pytest.raises(DiskFullError, match="the disk is full"):
        embed_texts(Counting(batch_size=50), texts_n(3000), "query", full_disk / "store",
                    progress=False, shard_mb=0.05)  # fmt: skip
