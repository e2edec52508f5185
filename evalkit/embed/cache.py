"""On-disk vector cache: one directory per spec, append-only float32 files, a SQLite index.

Layout under ``root`` (``cache.dir``, default ``.cache/evalkit``)::

    <root>/<sha256(spec)[:32]>/spec.json          the spec, for humans
    <root>/<sha256(spec)[:32]>/index.sqlite       key (16-byte blake2b of the text) -> (file, row)
    <root>/<sha256(spec)[:32]>/<writer>.f32       raw float32 rows, one file per writing session

Each writing session (one :class:`VectorCache` object that calls ``put``) appends to its own
uniquely named vector file, so concurrent writers (Hydra joblib sweep jobs) never share a
file.  A ``put`` first appends + fsyncs the vectors, then commits their index rows in one SQLite
transaction (WAL mode, ``INSERT OR IGNORE``: the first writer of a key wins).  A crash can
therefore leave only unreferenced bytes at the end of a file, never an index row pointing at
missing data, and earlier entries are untouched.  Reads memory-map the vector files.

>>> import tempfile, numpy as np
>>> root = tempfile.mkdtemp()
>>> keys = text_keys(["red shoe", "blue hat"])
>>> with VectorCache(root, {"backend": "toy"}) as c:
...     c.put(keys, np.eye(2, dtype=np.float32))
>>> with VectorCache(root, {"backend": "toy"}) as c:
...     positions, vectors = c.get(text_keys(["blue hat", "green sock"]))
>>> positions.tolist(), vectors.tolist(), c.stats.hits, c.stats.misses
([0], [[0.0, 1.0]], 1, 1)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import sqlite3
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.errors import ConfigError

log = logging.getLogger(__name__)

KEY_BYTES = 16
_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,
                                  dim INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, file INTEGER NOT NULL,
                                    row INTEGER NOT NULL) WITHOUT ROWID;
"""


def spec_hash(spec: Mapping[str, Any]) -> str:
    """sha256 hex digest of the canonical JSON of a spec (sorted keys, no whitespace).

    >>> spec_hash({"b": 1, "a": None}) == spec_hash({"a": None, "b": 1})
    True
    """
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def text_keys(texts: Sequence[str]) -> list[bytes]:
    """16-byte blake2b digests of the UTF-8 texts (the cache key within a spec)."""
    return [hashlib.blake2b(t.encode("utf-8"), digest_size=KEY_BYTES).digest() for t in texts]


@dataclass
class CacheStats:
    """Counters of one :class:`VectorCache` object (tests assert on them)."""

    lookups: int = 0  # keys looked up
    hits: int = 0
    misses: int = 0
    rows_written: int = 0  # rows appended by put (including keys another writer won)
    puts: int = 0  # put calls (one per finished batch)


class VectorCache:
    """Vectors of one spec under ``root``; see the module docstring for layout and guarantees.

    Thread-safe (one lock); each process opens its own object.  Use as a context manager or
    call :meth:`close`.
    """

    def __init__(
        self, root: str | os.PathLike[str], spec: Mapping[str, Any], *, fsync: bool = True
    ):
        try:
            text = json.dumps(dict(spec), sort_keys=True, indent=1, ensure_ascii=False)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"cache: model spec is not JSON-serialisable ({err})") from err
        self.spec = dict(spec)
        self.spec_hash = spec_hash(spec)
        self.dir = Path(root) / self.spec_hash[:32]
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            if not os.access(self.dir, os.W_OK):
                raise PermissionError(13, "Permission denied", str(self.dir))
            self._write_spec(text)
            self._conn = sqlite3.connect(
                self.dir / "index.sqlite",
                timeout=120.0,
                isolation_level=None,  # autocommit; transactions are explicit
                check_same_thread=False,
            )
        except (OSError, sqlite3.OperationalError) as err:
            where = getattr(err, "filename", None) or self.dir
            raise ConfigError(
                f"cache.dir={str(root)!r}: cannot write {where} ({getattr(err, 'strerror', None) or err})"
                " (expected a writable folder; or cache.enabled=false)"
            ) from err
        self.fsync = fsync
        self.stats = CacheStats()
        self._lock = threading.Lock()
        self._conn.execute("PRAGMA busy_timeout = 120000")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        with self._transaction():
            for statement in _SCHEMA.strip().split(";"):
                if statement.strip():
                    self._conn.execute(statement)
        self._conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS lookup (pos INTEGER PRIMARY KEY, key BLOB)"
        )
        self._files: dict[int, tuple[str, int]] = {}
        self._out: Any = None  # this session's open vector file
        self._out_id = -1
        self._out_dim = -1
        self._out_rows = 0

    # ------------------------------------------------------------------ plumbing

    def _write_spec(self, text: str) -> None:
        target = self.dir / "spec.json"
        if target.exists():
            return
        tmp = self.dir / f".spec.{uuid.uuid4().hex}.tmp"
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, target)

    @contextlib.contextmanager
    def _transaction(self):  # type: ignore[no-untyped-def]
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _refresh_files(self) -> None:
        rows = self._conn.execute("SELECT id, name, dim FROM files").fetchall()
        self._files = {int(i): (str(n), int(d)) for i, n, d in rows}

    def _open_output(self, dim: int) -> None:
        if self._out is not None:
            self._out.close()
        name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}.f32"
        self._out = open(self.dir / name, "ab")  # noqa: SIM115 - kept open across puts
        with self._transaction():
            cur = self._conn.execute("INSERT INTO files (name, dim) VALUES (?, ?)", (name, dim))
        self._out_id = int(cur.lastrowid)
        self._out_dim = dim
        self._out_rows = 0

    # ------------------------------------------------------------------ API

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def get(self, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray | None]:
        """Cached vectors for ``keys``: ``(positions, vectors)``.

        ``positions`` (int64, ascending) are the indices into ``keys`` that were found and
        ``vectors`` their rows (float32, ``(len(positions), d)``), or ``None`` when nothing
        was found.
        """
        n = len(keys)
        with self._lock:
            self.stats.lookups += n
            if n == 0:
                return np.zeros(0, dtype=np.int64), None
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany("INSERT INTO lookup VALUES (?, ?)", enumerate(keys))
                found = self._conn.execute(
                    "SELECT lookup.pos, vectors.file, vectors.row FROM lookup "
                    "JOIN vectors ON vectors.key = lookup.key ORDER BY lookup.pos"
                ).fetchall()
            finally:
                self._conn.execute("ROLLBACK")  # discards the temporary lookup rows
            if not found:
                self.stats.misses += n
                return np.zeros(0, dtype=np.int64), None
            table = np.asarray(found, dtype=np.int64)
            pos, file_ids, rows = table[:, 0], table[:, 1], table[:, 2]
            if not set(np.unique(file_ids).tolist()) <= set(self._files):
                self._refresh_files()
            pos, vectors = self._gather(pos, file_ids, rows)
            self.stats.hits += len(pos)
            self.stats.misses += n - len(pos)
            return pos, vectors

    def _gather(
        self, pos: np.ndarray, file_ids: np.ndarray, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        dims = {self._files[int(f)][1] for f in np.unique(file_ids)}
        if len(dims) > 1:
            raise ConfigError(
                f"cache {self.dir} holds vectors of different dimensions {sorted(dims)} for one "
                "spec (the served model changed behind an unchanged name?): set the model "
                "version's revision, or delete that directory"
            )
        dim = dims.pop()
        out = np.empty((len(pos), dim), dtype=np.float32)
        ok = np.ones(len(pos), dtype=bool)
        for fid in np.unique(file_ids):
            name, _ = self._files[int(fid)]
            sel = np.flatnonzero(file_ids == fid)
            path = self.dir / name
            n_rows = path.stat().st_size // (4 * dim) if path.exists() else 0
            inside = rows[sel] < n_rows
            if not inside.all():
                log.warning(
                    "cache %s: %d index rows point past the end of %s; recomputing them",
                    self.dir,
                    int((~inside).sum()),
                    name,
                )
                ok[sel[~inside]] = False
                sel = sel[inside]
            if sel.size:
                mm = np.memmap(path, dtype=np.float32, mode="r", shape=(n_rows, dim))
                out[sel] = mm[rows[sel]]
                del mm
        if not ok.all():
            pos, out = pos[ok], out[ok]
        return pos, (out if len(pos) else None)

    def put(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Append vectors for ``keys`` durably (vectors fsynced before their index commit)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(keys):
            raise ValueError(f"{len(keys)} keys but vectors of shape {vectors.shape}")
        if not len(keys):
            return
        with self._lock:
            if self._out is None or self._out_dim != vectors.shape[1]:
                self._open_output(int(vectors.shape[1]))
            self._out.write(vectors.tobytes())
            self._out.flush()
            if self.fsync:
                os.fsync(self._out.fileno())
            start = self._out_rows
            self._out_rows += len(keys)
            fid = self._out_id
            with self._transaction():
                self._conn.executemany(
                    "INSERT OR IGNORE INTO vectors (key, file, row) VALUES (?, ?, ?)",
                    ((k, fid, start + j) for j, k in enumerate(keys)),
                )
            self.stats.rows_written += len(keys)
            self.stats.puts += 1

    def close(self) -> None:
        with self._lock:
            if self._out is not None:
                self._out.close()
                self._out = None
            self._conn.close()

    def __enter__(self) -> VectorCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
