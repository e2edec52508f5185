"""The vector cache: one spec's vectors, keyed by text, in shards (:mod:`evalkit.embed.store`)
under ``<root>/<sha256(spec)[:32]>/``; the first shard by name wins a duplicate key.  For users:
docs/how-to/vector-store.md.

>>> import tempfile, numpy as np
>>> root = tempfile.mkdtemp()
>>> with VectorCache(root, {"backend": "toy"}) as c:
...     c.put(text_keys(["red shoe", "blue hat"]), np.eye(2, dtype=np.float32))
>>> with VectorCache(root, {"backend": "toy"}) as c:
...     positions, vectors = c.get(text_keys(["blue hat", "green sock"]))
>>> positions.tolist(), vectors.tolist(), c.stats.hits, c.stats.misses
([0], [[0.0, 1.0]], 1, 1)
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import mmap
import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from evalkit.config_schema import read_section, setting
from evalkit.embed.store import (
    DAMAGED,
    KEY_BYTES,
    MANIFEST,
    Damage,
    Folder,
    Shard,
    list_shards,
    read_keys,
    read_rows_into,
    read_vectors,
    read_vectors_into,
    remove_shard,
    remove_stale_temps,
    set_aside,
    shard_names,
    write_shard,
    writer_name,
)
from evalkit.errors import ConfigError
from evalkit.text_keys import text_key_array as text_key_array  # re-exported: the store's keys
from evalkit.text_keys import text_keys as text_keys

log = logging.getLogger(__name__)

#: Threads reading a gather's shard runs at once (each ``readinto`` releases the GIL).
READ_THREADS = min(4, os.cpu_count() or 1)
#: A gather takes rows from a shard's memory map (not the whole shard read) below 1/SPARSE of it.
SPARSE = 4
#: Rows of a local shard that are not one run are read this many MB at a time, through one buffer.
BLOCK_MB = 64
#: Default shard size (``cache.shard_mb``): a killed writer loses at most this much work.
SHARD_MB = 64
#: Default time between shard writes (``cache.flush_s``): what a ``kill -9`` loses at most.
FLUSH_S = 30.0
#: A call that embedded all its texts in several shards of at least this many MB merges them
#: (:meth:`VectorCache.compact`): its next warm read is a view of one file, no copy.
COMPACT_MB = 256


@dataclass(frozen=True)
class CacheSettings:
    """The ``cache`` config section; ``root`` is None (no cache) when ``enabled`` is false."""

    root: str | None = setting(
        None, key="dir", help="the vector store: a local folder or an fsspec URL (s3://...)"
    )
    shard_mb: float = setting(SHARD_MB, gt=0, help="a shard is written when this many MB wait")
    flush_s: float | None = setting(
        FLUSH_S, gt=0, help="...or this many seconds after the last one; null = size and close"
    )
    keep: bool = setting(True, key="enabled", help="false: embed every text, keep nothing")

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> CacheSettings:
        out = read_section(cls, cfg, "cache")
        return out if out.keep else replace(out, root=None)

    @property
    def enabled(self) -> bool:
        return self.root is not None


def spec_hash(spec: Mapping[str, Any]) -> str:
    """sha256 hex digest of the canonical JSON of a spec (sorted keys, no whitespace)."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass
class CacheStats:
    """Counters of one :class:`VectorCache` object (tests assert on them)."""

    hits: int = 0
    misses: int = 0
    rows_written: int = 0  # rows appended by put (including keys another writer won)


class VectorCache:
    """Vectors of one spec under ``root``; thread-safe, one object per process; :meth:`close`
    writes the last shard.  A store that may only be read is read (``read_only``; ``put`` keeps
    nothing).  ``last_unit_norm``: every vector the last :meth:`get` returned was unit-norm."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        spec: Mapping[str, Any],
        *,
        fsync: bool = True,
        shard_mb: float = SHARD_MB,
        flush_s: float | None = FLUSH_S,
    ):
        try:
            text = json.dumps(dict(spec), sort_keys=True, indent=1, ensure_ascii=False)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"cache: model spec is not JSON-serialisable ({err})") from err
        if not shard_mb or shard_mb <= 0:
            raise ConfigError(f"cache.shard_mb={shard_mb!r} is invalid (expected a number > 0)")
        if flush_s is not None and (
            isinstance(flush_s, bool) or not isinstance(flush_s, int | float) or not flush_s > 0
        ):
            raise ConfigError(
                f"cache.flush_s={flush_s!r} is invalid (expected a number of seconds > 0, or null "
                "to write shards only by size and on close)"
            )
        self.spec = dict(spec)
        self.spec_hash = spec_hash(spec)
        self.folder = Folder(root).child(self.spec_hash[:32])
        self.dir = self.folder.path if not self.folder.remote else self.folder.url
        self.root = str(root)
        self.read_only = False
        try:
            self.folder.makedirs()
            if not self.folder.remote and not os.access(self.folder.path, os.W_OK):
                raise PermissionError(13, "Permission denied", str(self.folder.path))
            if not self.folder.exists("spec.json"):
                self.folder.write_bytes("spec.json", (text + "\n").encode("utf-8"), fsync=False)
        except (OSError, ConfigError) as exc:
            err = exc.__cause__ if isinstance(exc, ConfigError) else exc
            if not isinstance(err, OSError):
                raise
            if not _is_store(Folder(root)):  # nothing to read and nowhere to write: refuse
                where = getattr(err, "filename", None) or self.dir
                raise ConfigError(
                    f"cache.dir={str(root)!r}: cannot write {where} "
                    f"({getattr(err, 'strerror', None) or err}) (expected a writable folder; or "
                    "cache.enabled=false)"
                ) from err
            self._read_only(err)  # a shared store we may only read: use what it holds
        self.fsync = fsync
        self.shard_bytes = float(shard_mb) * 2**20
        self.flush_s = float(flush_s) if flush_s is not None else None
        self._last_flush = time.monotonic()
        self.stats = CacheStats()
        self.last_unit_norm = True
        self._lock = threading.Lock()
        self._writer = writer_name()
        self._n_written = 0
        self._own: list[Shard] = []  # the shards this object wrote
        self._pending_keys: list[np.ndarray] = []
        self._pending_vectors: list[np.ndarray] = []
        self._pending_rows = 0
        self._index: _KeyIndex | None = None
        self._excluded: set[str] = set()  # damaged shards left out (set aside, or read-only)
        if not self.read_only:
            remove_stale_temps(self.folder)

    def shards(self) -> list[Shard]:
        """The committed shards of this spec (sorted by name), damaged ones left out."""
        return [s for s in list_shards(self.folder) if s.name not in self._excluded]

    @property
    def stored_dim(self) -> int:
        """The dimension of the vectors stored for this spec (0: none)."""
        with self._lock:
            return self._key_index().dim

    def outdated(self) -> bool:
        """Whether shards were added or removed since this object last read the store."""
        with self._lock:
            if self._index is None:
                return True
            now = set(shard_names(self.folder))
            return now - self._excluded != {s.name for s in self._index.shards}

    def refresh(self) -> None:
        """Read the store's shards again on the next :meth:`get` (another process wrote some)."""
        with self._lock:
            self._index = None

    def __len__(self) -> int:
        with self._lock:
            self._flush()
            return self._key_index().n_unique

    def get(self, keys: Sequence[bytes] | np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(positions, vectors)``: the indices (ascending) of ``keys`` found and their float32
        rows (None: none found; a read-only view when every hit lies in order in one shard)."""
        query = as_key_array(keys)
        n = len(query)
        with self._lock:
            if n == 0:
                return np.zeros(0, dtype=np.int64), None
            self._flush()
            pos, vectors, unit = self._get(query)
            self.last_unit_norm = unit
            self.stats.hits += len(pos)
            self.stats.misses += n - len(pos)
            return pos, vectors

    def put(self, keys: Sequence[bytes] | np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors for ``keys`` (written once ``shard_mb`` waits or ``flush_s`` passed)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        karr = as_key_array(keys)
        if vectors.ndim != 2 or vectors.shape[0] != len(karr):
            raise ValueError(f"{len(karr)} keys but vectors of shape {vectors.shape}")
        if not len(karr):
            return
        with self._lock:
            if self.read_only:  # warned once when found out
                return
            if self._pending_vectors and self._pending_vectors[0].shape[1] != vectors.shape[1]:
                self._flush()
            self._pending_keys.append(karr.copy())
            self._pending_vectors.append(vectors.copy())
            self._pending_rows += len(karr)
            self.stats.rows_written += len(karr)
            if self._pending_rows * (4 * vectors.shape[1] + KEY_BYTES) >= self.shard_bytes or (
                self.flush_s is not None and time.monotonic() - self._last_flush >= self.flush_s
            ):
                self._flush()

    def flush(self) -> None:
        """Write the buffered rows as a shard now."""
        with self._lock:
            self._flush()

    def compact(self, keys: Sequence[bytes] | np.ndarray, vectors: np.ndarray) -> bool:
        """Replace the 2+ local shards this object wrote by one of ``keys`` / ``vectors`` when
        every key of theirs is among ``keys`` (committed before they go); whether it did."""
        karr = as_key_array(keys)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(karr):
            raise ValueError(f"{len(karr)} keys but vectors of shape {vectors.shape}")
        with self._lock:
            self._flush()
            own = list(self._own)
            if self.folder.remote or self.read_only or len(own) < 2:
                return False
            parts = [read_keys(self.folder, shard) for shard in own]
            if any(part is None for part in parts):
                return False
            written = np.concatenate(parts)
            table = _KeyIndex(self.folder, [], karr, np.zeros(1, dtype=np.int64))
            if len(table.lookup(written)[0]) != len(written):
                return False  # the shards hold rows that `keys` does not: keep them
            name = f"{self._writer}-{self._n_written:06d}"
            try:
                merged = write_shard(self.folder, name, karr, vectors, fsync=self.fsync)
            except OSError as err:
                log.warning("vector store %s: shards not merged (%s)", self.dir, err)
                return False
            self._n_written += 1
            for shard in own:
                remove_shard(self.folder, shard)
            self._own = [merged]
            self._index = None
            return True

    def discard(self) -> int:
        """Take back the buffered rows and the shards this object wrote; the rows removed."""
        with self._lock:
            self._pending_keys, self._pending_vectors, self._pending_rows = [], [], 0
            rows = 0
            for shard in self._own:
                remove_shard(self.folder, shard)
                rows += shard.rows
            self._own = []
            self._index = None
            return rows

    def close(self) -> None:
        with self._lock:
            self._flush()
            self._index = None

    def __enter__(self) -> VectorCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _flush(self) -> None:
        if not self._pending_rows:
            return
        keys = np.concatenate(self._pending_keys)
        vectors = np.concatenate(self._pending_vectors)
        name = f"{self._writer}-{self._n_written:06d}"
        try:
            shard = write_shard(self.folder, name, keys, vectors, fsync=self.fsync)
        except OSError as err:
            if not _refused(err):
                raise
            self.stats.rows_written -= len(keys)
            self._pending_keys, self._pending_vectors, self._pending_rows = [], [], 0
            self._read_only(err)
            return
        self._n_written += 1
        self._own.append(shard)
        self._pending_keys, self._pending_vectors, self._pending_rows = [], [], 0
        self._index = None
        self._last_flush = time.monotonic()

    def _read_only(self, err: OSError) -> None:
        """From now on only read; warn once per store and process."""
        self.read_only = True
        if self.root in _WARNED_READ_ONLY:
            return
        _WARNED_READ_ONLY.add(self.root)
        log.warning(
            "vector store %s is read-only (%s): the vectors it holds are used, new vectors "
            "cannot be stored (they are computed again by the next run; point cache.dir at a "
            "writable folder to keep them)",
            self.root,
            getattr(err, "strerror", None) or err,
        )

    def _key_index(self) -> _KeyIndex:
        if self._index is None:
            index = _KeyIndex.load(self.folder, self.shards())
            if index.damaged:
                self._set_aside(index.damaged)
                index.damaged = {}
            self._index = index
        return self._index

    def _get(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, bool]:
        """(positions found, their vectors, all unit-norm); damaged shards' keys looked up again."""
        index = self._key_index()
        pos, vectors, unit = index.gather(*index.lookup(query))
        if not index.damaged:
            return pos, vectors, unit
        self._set_aside(index.damaged)  # each pass leaves out at least one more shard
        self._index = None
        rest = np.setdiff1d(np.arange(len(query)), pos, assume_unique=True)
        if not len(rest):
            return pos, vectors, unit
        more, extra, extra_unit = self._get(query[rest])
        if extra is None:
            return pos, vectors, unit
        if vectors is None:
            return rest[more], extra, extra_unit
        both = np.concatenate([pos, rest[more]])
        order = np.argsort(both, kind="stable")
        return both[order], np.concatenate([vectors, extra])[order], unit and extra_unit

    def _set_aside(self, damaged: Damage) -> None:
        """Leave the damaged shards out of the index, and of the store where it may be written."""
        drop = (
            f"`evalkit task=vectors vectors.drop={self.spec_hash[:12]}` deletes this spec's vectors"
        )
        for name, reason in damaged.items():
            self._excluded.add(name)
            if not self.read_only and set_aside(self.folder, name):
                what = (
                    f"; set aside as {name}.*{DAMAGED}, its rows are read from other shards or "
                    f"embedded again (`evalkit task=vectors` lists it; {drop})"
                )
            elif self.folder.exists(name + MANIFEST):
                what = (
                    " and cannot be set aside (the store is read-only): its rows are embedded "
                    f"again ({drop})"
                )
            else:  # its writer removed it meanwhile (a merge): not damage
                continue
            log.warning("vector store %s: shard %s is damaged (%s)%s", self.dir, name, reason, what)


_WARNED_READ_ONLY: set[str] = set()


def _refused(err: OSError) -> bool:
    """Whether a write failed because the store may not be written (not, say, a full disk)."""
    return isinstance(err, PermissionError) or err.errno in (errno.EACCES, errno.EPERM, errno.EROFS)


def _is_store(top: Folder) -> bool:
    try:
        if top.remote:
            return bool(top.fs.isdir(top.root))
        return top.path.is_dir()
    except OSError:
        return False


def as_key_array(keys: Sequence[bytes] | np.ndarray) -> np.ndarray:
    """Keys as a contiguous uint8 array (n, 16)."""
    if isinstance(keys, np.ndarray):
        arr = np.ascontiguousarray(keys, dtype=np.uint8)
        if arr.ndim != 2 or arr.shape[1] != KEY_BYTES:
            raise ValueError(f"keys of shape {arr.shape} (expected (n, {KEY_BYTES}))")
        return arr
    keys = list(keys)
    if any(len(k) != KEY_BYTES for k in keys):
        raise ValueError(f"keys must be {KEY_BYTES} bytes each")
    return np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), KEY_BYTES)


def populated_empty(shape: tuple[int, int]) -> np.ndarray:
    """An uninitialised float32 matrix for a large gather: ``np.empty`` with transparent huge
    pages on (the parallel reads fault them in), else pages mapped up front (``MAP_POPULATE``)."""
    nbytes = int(shape[0]) * int(shape[1]) * 4
    flag = getattr(mmap, "MAP_POPULATE", 0)
    if nbytes < 2**24 or not flag or huge_pages_on():
        return np.empty(shape, dtype=np.float32)
    try:
        buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | flag)
    except (OSError, ValueError):
        return np.empty(shape, dtype=np.float32)
    return np.frombuffer(buf, dtype=np.float32).reshape(shape)


def huge_pages_on(path: str = "/sys/kernel/mm/transparent_hugepage/enabled") -> bool:
    """Whether the kernel gives large arrays transparent huge pages (False if unreadable)."""
    try:
        with open(path) as f:
            mode = f.read()
    except OSError:
        return False
    return "[never]" not in mode and "[" in mode


def keys_distinct(keys: np.ndarray) -> bool:
    """Whether all keys differ (checked on their first 8 bytes: a collision there says False)."""
    hi = np.sort(_halves(keys)[0])
    return not bool((hi[1:] == hi[:-1]).any())


def _distinct_sorted(a: np.ndarray) -> np.ndarray:
    keep = np.ones(len(a), dtype=bool)
    keep[1:] = a[1:] != a[:-1]
    return a[keep]


def _halves(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    both = keys.view("<u8").reshape(len(keys), 2)
    return both[:, 0], both[:, 1]


class _KeyIndex:
    """All keys of the committed shards: a run of them in order is found without sorting (a
    warm catalog), anything else in a table sorted once; then gather."""

    def __init__(self, folder: Folder, shards: list[Shard], keys: np.ndarray, starts: np.ndarray):
        self.folder = folder
        self.shards = shards
        self.starts = starts  # first global row of each shard (len(shards) + 1)
        self.keys = keys  # (rows, KEY_BYTES), in shard order
        self.damaged: Damage = {}  # shards found damaged: set aside
        self._table: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        dims = {s.dim for s in shards}
        if len(dims) > 1:
            raise ConfigError(
                f"cache {folder.url} holds vectors of different dimensions {sorted(dims)} for one "
                "spec (the served model changed behind an unchanged name?): set the model "
                "version's revision, or delete that directory"
            )
        self.dim = dims.pop() if dims else 0

    def _sorted(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(first halves, second halves, global rows), by first half; built on first use."""
        if self._table is None:
            hi, lo = _halves(self.keys)
            order = np.argsort(hi, kind="stable")  # equal first halves: earlier row first
            self._table = hi[order], lo[order], order.astype(np.int64)
        return self._table

    @property
    def n_unique(self) -> int:
        hi, lo, _ = self._sorted()
        if len(hi) < 2:
            return len(hi)
        return int(len(hi) - ((hi[1:] == hi[:-1]) & (lo[1:] == lo[:-1])).sum())

    @classmethod
    def load(cls, folder: Folder, shards: list[Shard]) -> _KeyIndex:
        good, parts, damaged = [], [], {}
        for shard in shards:
            keys = read_keys(folder, shard, damaged)
            if keys is not None:
                good.append(shard)
                parts.append(keys)
        starts = np.zeros(len(good) + 1, dtype=np.int64)
        starts[1:] = np.cumsum([s.rows for s in good])
        keys = np.concatenate(parts) if parts else np.zeros((0, KEY_BYTES), np.uint8)
        index = cls(folder, good, keys, starts)
        index.damaged = damaged
        return index

    def lookup(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``query`` found, their global rows), positions ascending."""
        if not len(self.keys):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        first = self._run_of(query)
        if first is not None:  # every key, in order, in consecutive rows: no sort
            pos = np.arange(len(query), dtype=np.int64)
            return pos, pos + first
        hi, lo, rows = self._sorted()
        qhi, qlo = _halves(query)
        by_key = np.argsort(qhi)  # sorted needles: searchsorted walks the table once
        at = np.empty(len(qhi), dtype=np.int64)
        at[by_key] = np.searchsorted(hi, qhi[by_key], side="left")
        at_c = np.minimum(at, len(hi) - 1)
        same_hi = hi[at_c] == qhi
        found = same_hi & (lo[at_c] == qlo)
        # first-half collisions (about 1 in 2**64 / n): resolve the few exactly
        for j in np.flatnonzero(same_hi & ~found):
            end = np.searchsorted(hi, qhi[j], side="right")
            match = np.flatnonzero(lo[at_c[j] : end] == qlo[j])
            if match.size:
                at_c[j] += match[0]
                found[j] = True
        pos = np.flatnonzero(found)
        return pos, rows[at_c[pos]]

    def _run_of(self, query: np.ndarray) -> int | None:
        """The first global row of ``query``'s keys stored in order in consecutive rows, or
        None; a run inside one shard (read without a copy) wins over the first."""
        n = len(query)
        hi = _halves(self.keys)[0]
        runs = [
            int(first)
            for first in np.flatnonzero(hi == _halves(query[:1])[0][0])[:4]
            if first + n <= len(self.keys)
            and np.array_equal(self.keys[int(first) : int(first) + n], query)
        ]
        if not runs:
            return None
        shard_of = np.searchsorted(self.starts, [[r, r + n - 1] for r in runs], side="right")
        inside = [r for r, (a, b) in zip(runs, shard_of) if a == b]
        return inside[0] if inside else runs[0]

    def gather(
        self, pos: np.ndarray, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None, bool]:
        """Vectors of global ``rows`` (for query positions ``pos``), and whether all are unit-norm:
        a view of one shard's run, else read into one matrix (runs in parallel); rows of damaged
        shards are dropped."""
        if not len(pos):
            return pos, None, True
        plan = _GatherPlan(self.starts, rows)
        view = self._view(plan)
        if view is not None:
            return pos, view[0], view[1]
        out = populated_empty((len(pos), self.dim))
        parts = plan.parts(self.shards)
        readers = _Readers(self.folder, self.damaged, self.dim, parts)
        is_run = [part.is_run(plan.in_order) for part in parts]
        runs = [part for part, run in zip(parts, is_run) if run]  # read straight into out
        done = [(part, readers.read(part, out)) for part, run in zip(parts, is_run) if not run]
        done += zip(runs, readers.read_runs(runs, out))
        del readers
        ok = np.ones(len(pos), dtype=bool)
        for part, good in done:
            if not good:
                ok[part.sel] = False
        unit = all(part.shard.unit_norm for part, good in done if good)
        if not ok.all():
            pos, out = pos[ok], out[ok]
        return pos, (out if len(pos) else None), unit

    def _view(self, plan: _GatherPlan) -> tuple[np.ndarray, bool] | None:
        """(a read-only view, unit-norm) when every row lies in order in one shard, else None."""
        if len(plan.used) != 1:
            return None
        s = int(plan.used[0])
        first = int(plan.local[0])
        if not np.array_equal(plan.local, np.arange(first, first + len(plan.local))):
            return None
        mm = read_vectors(self.folder, self.shards[s], self.damaged)
        if mm is None:
            return None
        return mm[first : first + len(plan.local)], self.shards[s].unit_norm


@dataclass(frozen=True)
class _Part:
    """What a gather wants of one shard: output rows ``sel`` get the shard's rows ``rows``."""

    shard: Shard
    sel: np.ndarray
    rows: np.ndarray

    def is_run(self, in_order: bool) -> bool:
        """Whether a run of the shard, in order, goes to a run of the output (read straight)."""
        m = len(self.sel)
        return bool(
            self.sel[-1] - self.sel[0] + 1 == m
            and self.rows[-1] - self.rows[0] + 1 == m
            and (m == 1 or in_order or (np.diff(self.rows) == 1).all())
        )


class _GatherPlan:
    """Where a gather's global rows lie: each row's shard and row there, the shards used."""

    def __init__(self, starts: np.ndarray, rows: np.ndarray) -> None:
        self.shard_of = np.searchsorted(starts, rows, side="right") - 1
        self.local = rows - starts[self.shard_of]
        self.in_order = bool((rows[1:] > rows[:-1]).all())
        self.used = (
            np.unique(self.shard_of) if not self.in_order else _distinct_sorted(self.shard_of)
        )

    def parts(self, shards: list[Shard]) -> list[_Part]:
        """One :class:`_Part` per shard used, in shard order."""
        n = len(self.shard_of)
        by_shard = np.arange(n) if self.in_order else np.argsort(self.shard_of, kind="stable")
        bounds = np.searchsorted(self.shard_of[by_shard], np.arange(len(shards) + 1))
        out = []
        for s in self.used:
            sel = by_shard[bounds[s] : bounds[s + 1]]
            out.append(_Part(shards[int(s)], sel, self.local[sel]))
        return out


class _Readers:
    """Read a gather's parts: ``out[part.sel] = shard[part.rows]``, False when the shard is
    unreadable (recorded in ``damaged``); buffers allocated on first use, freed with the object."""

    def __init__(self, folder: Folder, damaged: Damage, dim: int, parts: list[_Part]) -> None:
        self.folder, self.damaged, self.dim, self.parts = folder, damaged, dim, parts
        self.block_rows = max(1, int(BLOCK_MB * 2**20) // (4 * max(dim, 1)))
        self._block: np.ndarray | None = None
        self._whole: tuple[np.ndarray, np.ndarray] | None = None

    def read(self, part: _Part, out: np.ndarray) -> bool:
        """A remote shard is fetched whole; a few rows of a local shard come from its memory map
        (only their pages are read), other rows of a local shard in blocks."""
        if self.folder.remote:
            return self._whole_shard(part, out)
        if len(part.sel) * SPARSE < part.shard.rows <= self.block_rows:
            mm = read_vectors(self.folder, part.shard, self.damaged)
            if mm is None:
                return False
            out[part.sel] = mm[part.rows]
            return True
        return self._blocks(part, out)

    def _blocks(self, part: _Part, out: np.ndarray) -> bool:
        """The ``BLOCK_MB`` blocks holding the rows, through one reused buffer (a merged shard is
        never in memory or mapped whole: a mapping's touched pages count as resident memory)."""
        if self._block is None:
            self._block = np.empty((self.block_rows, self.dim), dtype=np.float32)
        order = np.argsort(part.rows, kind="stable")
        rows, sel = part.rows[order], part.sel[order]
        size = len(self._block)
        for b0 in np.unique(rows // size) * size:
            i0, i1 = np.searchsorted(rows, [b0, b0 + size])
            block = self._block[: min(size, part.shard.rows - int(b0))]
            if not read_rows_into(self.folder, part.shard, int(b0), block, self.damaged):
                return False
            out[sel[i0:i1]] = block[rows[i0:i1] - b0]
        return True

    def _whole_shard(self, part: _Part, out: np.ndarray) -> bool:
        """Through buffers sized for the gather's largest shard and selection, reused."""
        if self._whole is None:
            biggest = max(p.shard.rows for p in self.parts)
            most = max(len(p.sel) for p in self.parts)  # keys may repeat: more rows than a shard
            self._whole = populated_empty((biggest, self.dim)), populated_empty((most, self.dim))
        buf, rows_buf = self._whole
        vectors = read_vectors_into(self.folder, part.shard, buf, self.damaged)
        if vectors is None:
            return False
        picked = rows_buf[: len(part.sel)]
        np.take(vectors, part.rows, axis=0, out=picked)
        out[part.sel] = picked
        return True

    def read_runs(self, runs: list[_Part], out: np.ndarray) -> list[bool]:
        """Runs read straight into ``out`` in parallel threads (``readinto`` releases the GIL)."""

        def read_run(part: _Part) -> bool:
            a = int(part.sel[0])
            view = out[a : a + len(part.sel)]
            return read_rows_into(self.folder, part.shard, int(part.rows[0]), view, self.damaged)

        workers = min(READ_THREADS, len(runs))
        if workers > 1:
            with ThreadPoolExecutor(workers) as pool:
                return list(pool.map(read_run, runs))
        return [read_run(part) for part in runs]
