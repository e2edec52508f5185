"""Shard files of a vector store: a folder (local path or fsspec URL) of bounded ``.npy`` shards.

One sub-folder per cache spec holds ``spec.json`` and shards (keys, vectors, and the manifest
that commits them); a local file is written as ``.<name>~<host>~<pid>~<random>.tmp`` and renamed
into place, and a later writer removes the ones a ``kill -9`` left (:func:`remove_stale_temps`).
The layout for users: docs/how-to/vector-store.md.

>>> import tempfile, numpy as np
>>> folder = Folder(tempfile.mkdtemp())
>>> shard = write_shard(folder, "w1-0", np.zeros((2, 16), np.uint8), np.eye(2, dtype=np.float32))
>>> [(s.name, s.rows, s.dim, s.unit_norm) for s in list_shards(folder)]
[('w1-0', 2, 2, True)]
>>> read_vectors(folder, shard).tolist()
[[1.0, 0.0], [0.0, 1.0]]
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from evalkit.errors import ConfigError, disk_full
from evalkit.text_keys import KEY_BYTES

log = logging.getLogger(__name__)

MANIFEST = ".shard.json"
#: |norm - 1| below which a row counts as stored L2-normalised (float32 rounding of a unit vector).
UNIT_NORM_TOL = 1e-5

#: A temporary file this old whose writer on this machine is gone is removed by the next writer.
TEMP_STALE_S = 600.0
#: ... and one written from another machine (its process cannot be checked) this old.
TEMP_STALE_OTHER_HOST_S = 86400.0
_HOST = socket.gethostname()


def temp_name(name: str) -> str:
    """The temporary name ``name`` is written under: ``.<name>~<host>~<pid>~<random>.tmp``."""
    return f".{name}~{_HOST}~{os.getpid()}~{uuid.uuid4().hex[:8]}.tmp"


@dataclass(frozen=True)
class TempFile:
    """A temporary file in a store folder (a write in progress, or one a kill left behind)."""

    name: str
    nbytes: int
    age_s: float
    stale: bool  # old enough and its writer gone: the next writer removes it


def writer_gone(name: str) -> bool | None:
    """Whether the process that wrote temp file ``name`` has exited (None: another machine's, or
    a name without a pid)."""
    parts = name[1:-4].rsplit("~", 3) if name.startswith(".") and name.endswith(".tmp") else []
    if len(parts) != 4 or parts[1] != _HOST or not parts[2].isdigit():
        return None
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False


def temp_files(folder: Folder) -> list[TempFile]:
    """The temporary files of a local folder (a remote store writes each file in one PUT: none)."""
    if folder.remote:
        return []
    now = time.time()
    out = []
    for name in folder.names():
        if not (name.startswith(".") and name.endswith(".tmp")):
            continue
        try:
            st = (folder.path / name).stat()
        except OSError:  # renamed into place meanwhile
            continue
        age = now - st.st_mtime
        gone = writer_gone(name)
        stale = (age >= TEMP_STALE_S and gone is True) or age >= TEMP_STALE_OTHER_HOST_S
        out.append(TempFile(name, st.st_size, age, stale))
    return out


def remove_stale_temps(folder: Folder) -> None:
    """Remove the stale temporary files of ``folder`` (see :data:`TEMP_STALE_S`)."""
    for tmp in temp_files(folder):
        if tmp.stale:
            with contextlib.suppress(OSError):
                folder.remove(tmp.name)
                log.info(
                    "vector store %s: removed %s left by a killed writer", folder.url, tmp.name
                )


def is_remote(url: str | os.PathLike[str]) -> bool:
    """Whether ``url`` names an fsspec filesystem other than the local disk (``file://``)."""
    text = str(url)
    return "://" in text and not text.startswith("file://")


class Folder:
    """A folder of the store: local (``pathlib``, memory-mapped reads) or an fsspec URL."""

    def __init__(self, url: str | os.PathLike[str]) -> None:
        text = str(url)
        self.url = text
        self.remote = is_remote(text)
        if self.remote:
            try:
                import fsspec
            except ImportError as err:  # pragma: no cover - fsspec comes with datasets
                raise ConfigError(f"cache.dir={text!r}: URLs need fsspec ({err})") from err
            try:
                self.fs, self.root = fsspec.core.url_to_fs(text)
            except (ImportError, ValueError) as err:
                raise ConfigError(
                    f"cache.dir={text!r}: cannot open this URL ({err}) (expected a local path "
                    "or an fsspec URL whose filesystem package is installed, e.g. s3fs for s3://)"
                ) from err
        else:
            self.path = Path(text[len("file://") :] if text.startswith("file://") else text)

    def child(self, name: str) -> Folder:
        return Folder(f"{self.url.rstrip('/')}/{name}")

    def _full(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"

    def makedirs(self) -> None:
        try:
            if self.remote:
                self.fs.makedirs(self.root, exist_ok=True)
            else:
                self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(
                f"cache.dir={self.url!r}: cannot create it ({getattr(err, 'strerror', None) or err})"
                " (expected a writable folder; or cache.enabled=false)"
            ) from err

    def exists(self, name: str = "") -> bool:
        if self.remote:
            return bool(self.fs.exists(self._full(name) if name else self.root))
        return (self.path / name).exists() if name else self.path.exists()

    def names(self) -> list[str]:
        """Names of the entries directly in this folder (sorted; [] if it does not exist)."""
        if self.remote:
            if not self.fs.exists(self.root):
                return []
            return sorted(
                p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.root, detail=False)
            )
        return sorted(os.listdir(self.path)) if self.path.is_dir() else []

    def size(self, name: str) -> int:
        if self.remote:
            return int(self.fs.size(self._full(name)))
        return (self.path / name).stat().st_size

    def write_bytes(self, name: str, data: bytes, fsync: bool = True) -> None:
        """Write ``name`` atomically (temporary file + rename locally; one PUT remotely)."""
        self._write(name, lambda f: f.write(data), fsync)

    def write_array(self, name: str, array: np.ndarray, fsync: bool = True) -> None:
        """Write ``array`` as the ``.npy`` file ``name`` atomically, streamed (no in-memory copy)."""
        self._write(name, lambda f: np.lib.format.write_array(f, array, allow_pickle=False), fsync)

    def _write(self, name: str, fill: Callable[[BinaryIO], object], fsync: bool) -> None:
        if self.remote:
            with self.fs.open(self._full(name), "wb") as f:
                fill(f)
            return
        tmp = self.path / temp_name(name)
        try:
            with open(tmp, "wb") as f:
                fill(f)
                f.flush()
                if fsync:
                    os.fsync(f.fileno())
            os.replace(tmp, self.path / name)
        except BaseException as exc:  # leave no partial file behind
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise disk_full(exc, self.path / name) from exc
            raise

    def read_bytes(self, name: str) -> bytes:
        if self.remote:
            with self.fs.open(self._full(name), "rb") as f:
                return bytes(f.read())
        return (self.path / name).read_bytes()

    def load_npy(self, name: str, mmap: bool = True) -> np.ndarray:
        """A ``.npy`` file: memory-mapped when local and ``mmap``, else read into memory."""
        if not self.remote:
            return np.load(self.path / name, mmap_mode="r" if mmap else None, allow_pickle=False)
        return np.load(io.BytesIO(self.read_bytes(name)), allow_pickle=False)

    def remove(self, name: str) -> None:
        if self.remote:
            self.fs.rm(self._full(name))
        else:
            (self.path / name).unlink(missing_ok=True)

    def create_exclusive(self, name: str, data: bytes) -> bool:
        """Create ``name`` holding ``data`` unless it exists (then False)."""
        try:
            if self.remote:
                with self.fs.open(self._full(name), "xb") as f:
                    f.write(data)
                return True
            fd = os.open(self.path / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return True

    def rename(self, name: str, new: str) -> None:
        """Rename an entry (``FileNotFoundError`` when it is gone)."""
        if self.remote:
            if not self.fs.exists(self._full(name)):
                raise FileNotFoundError(errno.ENOENT, "No such file", self._full(name))
            self.fs.mv(self._full(name), self._full(new))
        else:
            os.rename(self.path / name, self.path / new)


@dataclass(frozen=True)
class Shard:
    """One committed shard (from its manifest)."""

    name: str
    rows: int
    dim: int
    unit_norm: bool  # every row had |norm - 1| <= UNIT_NORM_TOL when written
    created: float = 0.0
    writer: str = ""

    @property
    def keys_file(self) -> str:
        return f"{self.name}.keys.npy"

    @property
    def vectors_file(self) -> str:
        return f"{self.name}.vectors.npy"

    @property
    def nbytes(self) -> int:
        return self.rows * (KEY_BYTES + 4 * self.dim)


def writer_name() -> str:
    """A name no other writer uses: ``<host>-<pid>-<random>``."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def unit_norm(vectors: np.ndarray) -> bool:
    """Whether every row is L2-normalised to float32 precision (``UNIT_NORM_TOL``)."""
    if not len(vectors):
        return True
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64))
    return bool(np.abs(norms - 1.0).max() <= UNIT_NORM_TOL)


def remove_shard(folder: Folder, shard: Shard) -> None:
    """Delete a shard: its manifest first (readers stop listing it), then its files."""
    for name in (shard.name + MANIFEST, shard.keys_file, shard.vectors_file):
        folder.remove(name)


def write_shard(
    folder: Folder, name: str, keys: np.ndarray, vectors: np.ndarray, fsync: bool = True
) -> Shard:
    """Write one shard: vectors, keys, then the manifest that commits them."""
    keys = np.ascontiguousarray(keys, dtype=np.uint8)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if keys.shape != (len(vectors), KEY_BYTES) or vectors.ndim != 2:
        raise ValueError(f"shard {name}: keys {keys.shape} do not match vectors {vectors.shape}")
    shard = Shard(
        name=name,
        rows=len(vectors),
        dim=int(vectors.shape[1]),
        unit_norm=unit_norm(vectors),
        created=time.time(),
        writer=name.rsplit("-", 1)[0],
    )
    folder.write_array(shard.vectors_file, vectors, fsync)
    folder.write_array(shard.keys_file, keys, fsync)
    manifest = {k: v for k, v in asdict(shard).items() if k != "name"} | {"format": 1}
    folder.write_bytes(name + MANIFEST, json.dumps(manifest).encode("utf-8"), fsync)
    return shard


def shard_names(folder: Folder) -> list[str]:
    """The names of the shards a folder's manifests commit, sorted."""
    return [e[: -len(MANIFEST)] for e in folder.names() if e.endswith(MANIFEST) and e[0] != "."]


def list_shards(folder: Folder) -> list[Shard]:
    """Committed shards of a spec folder, sorted by name (unreadable manifests skipped, logged)."""
    shards = []
    for name in shard_names(folder):
        try:
            meta: dict[str, Any] = json.loads(folder.read_bytes(name + MANIFEST))
            shards.append(
                Shard(
                    name=name,
                    rows=int(meta["rows"]),
                    dim=int(meta["dim"]),
                    unit_norm=bool(meta["unit_norm"]),
                    created=float(meta.get("created", 0.0)),
                    writer=str(meta.get("writer", "")),
                )
            )
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning(
                "vector store %s: skipping shard %s (bad manifest: %s)", folder.url, name, err
            )
    return shards


#: Read failures: shard name -> what is wrong (callers set the shard aside: :func:`set_aside`).
Damage = dict[str, str]


def _failed(folder: Folder, shard: Shard, err: Exception | str, damaged: Damage | None) -> None:
    """A shard read failed: damage (or a local file missing) is recorded in ``damaged``; anything
    else (an I/O or network error) is logged and its rows recomputed."""
    if damaged is not None and (
        isinstance(err, str | ValueError)
        or (isinstance(err, FileNotFoundError) and not folder.remote)
    ):
        damaged.setdefault(shard.name, str(err))
        return
    log.warning(
        "vector store %s: shard %s unreadable (%s); recomputing it", folder.url, shard.name, err
    )


def _load(
    folder: Folder, shard: Shard, damaged: Damage | None, what: str, shape: tuple[int, int]
) -> np.ndarray | None:
    """The shard's ``keys`` (uint8, read) or ``vectors`` (float32, memory-mapped when local), or
    None when damaged (recorded in ``damaged`` when given, else logged)."""
    dtype, mmap = (np.uint8, False) if what == "keys" else (np.float32, True)
    try:
        array = folder.load_npy(f"{shard.name}.{what}.npy", mmap=mmap)
    except (OSError, ValueError) as err:
        _failed(folder, shard, err, damaged)
        return None
    if array.dtype != dtype or array.shape != shape:
        _failed(folder, shard, f"{what} of shape {array.shape} (expected {shape})", damaged)
        return None
    return array


def read_keys(folder: Folder, shard: Shard, damaged: Damage | None = None) -> np.ndarray | None:
    return _load(folder, shard, damaged, "keys", (shard.rows, KEY_BYTES))


def read_vectors(folder: Folder, shard: Shard, damaged: Damage | None = None) -> np.ndarray | None:
    return _load(folder, shard, damaged, "vectors", (shard.rows, shard.dim))


def read_vectors_into(
    folder: Folder, shard: Shard, out: np.ndarray, damaged: Damage | None = None
) -> np.ndarray | None:
    """The shard's vectors read into ``out`` as a (rows, dim) view of it; None when damaged."""
    view = out.reshape(-1)[: shard.rows * shard.dim].reshape(shard.rows, shard.dim)
    return view if read_rows_into(folder, shard, 0, view, damaged) else None


def read_rows_into(
    folder: Folder, shard: Shard, start: int, out: np.ndarray, damaged: Damage | None = None
) -> bool:
    """Rows ``start .. start + len(out)`` of the shard read into ``out`` (C-contiguous float32):
    one ``readinto``, no page faults on a mapping.  False when the shard is damaged."""
    if folder.remote:
        vectors = read_vectors(folder, shard, damaged)
        if vectors is None:
            return False
        out[...] = vectors[start : start + len(out)]
        return True
    path = folder.path / shard.vectors_file
    try:
        with open(path, "rb") as f:
            fmt = np.lib.format
            major, _ = fmt.read_magic(f)
            read_header = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            if shape != (shard.rows, shard.dim) or fortran or dtype != np.float32:
                raise ValueError(f"array {shape} {dtype} (expected ({shard.rows}, {shard.dim}))")
            if start + len(out) > shard.rows or out.shape[1:] != (shard.dim,):
                raise ValueError(f"rows {start}..{start + len(out)} asked of {shard.rows}")
            f.seek(start * shard.dim * 4, os.SEEK_CUR)
            if f.readinto(memoryview(out).cast("B")) != out.nbytes:
                raise ValueError("file is shorter than its header says")
    except (OSError, ValueError) as err:
        _failed(folder, shard, err, damaged)
        return False
    return True


#: Suffix of a damaged shard's files once set aside.
DAMAGED = ".damaged"


def set_aside(folder: Folder, name: str) -> bool:
    """Rename the damaged shard ``name``'s manifest, then its ``.npy`` files, to ``*.damaged``;
    False when its manifest is gone (its writer removed it) or cannot be renamed (read-only)."""
    try:
        folder.rename(name + MANIFEST, name + MANIFEST + DAMAGED)
    except OSError:
        return False
    for suffix in (".keys.npy", ".vectors.npy"):
        with contextlib.suppress(OSError):
            folder.rename(name + suffix, name + suffix + DAMAGED)
    return True


@dataclass(frozen=True)
class SpecSummary:
    """What the store holds for one spec (``evalkit task=vectors``); ``nbytes``: every file of it."""

    hash: str
    spec: dict[str, Any]
    shards: int
    rows: int
    dims: tuple[int, ...]
    nbytes: int
    unit_norm: bool
    damaged: tuple[str, ...] = ()  # the shards set aside as damaged
    temp_files: int = 0  # a write in progress, or left by a killed writer
    temp_bytes: int = 0

    @property
    def empty(self) -> bool:
        """No shard, damaged or not: a run stopped before it stored anything."""
        return self.shards == 0 and not self.damaged


def _damaged_bytes(folder: Folder, names: list[str]) -> int:
    total = 0
    for name in names:
        for suffix in (MANIFEST, ".keys.npy", ".vectors.npy"):
            with contextlib.suppress(OSError):
                total += folder.size(name + suffix + DAMAGED)
    return total


def summarize(name: str, sub: Folder) -> SpecSummary:
    """What the spec folder ``sub`` (named ``name``) holds."""
    try:
        spec = json.loads(sub.read_bytes("spec.json"))
    except (OSError, ValueError):
        spec = {}
    shards = list_shards(sub)
    tail = MANIFEST + DAMAGED
    damaged = [n[: -len(tail)] for n in sub.names() if n.endswith(tail)]
    temps = temp_files(sub)
    temp_bytes = sum(t.nbytes for t in temps)
    return SpecSummary(
        hash=name,
        spec=spec,
        shards=len(shards),
        rows=sum(s.rows for s in shards),
        dims=tuple(sorted({s.dim for s in shards})),
        nbytes=sum(s.nbytes for s in shards) + _damaged_bytes(sub, damaged) + temp_bytes,
        unit_norm=all(s.unit_norm for s in shards),
        damaged=tuple(damaged),
        temp_files=len(temps),
        temp_bytes=temp_bytes,
    )


def inventory(root: str | os.PathLike[str]) -> list[SpecSummary]:
    """One :class:`SpecSummary` per spec folder under ``root`` (rows counted from manifests)."""
    top = Folder(root)
    return [
        summarize(name, top.child(name))
        for name in top.names()
        if (len(name) == 32 and all(c in "0123456789abcdef" for c in name))
        or (not name.startswith(".") and top.child(name).exists("spec.json"))
    ]


def drop_spec(root: str | os.PathLike[str], prefix: str) -> SpecSummary:
    """Delete the one spec folder under ``root`` whose name starts with ``prefix``."""
    wanted = str(prefix).strip().lower()
    if len(wanted) < 8 or any(c not in "0123456789abcdef" for c in wanted):
        raise ConfigError(
            f"vectors.drop={prefix!r} is invalid (expected the first 8 or more hex characters of "
            "a spec folder, as `evalkit task=vectors` prints them)"
        )
    found = [s for s in inventory(root) if s.hash.startswith(wanted)]
    if len(found) != 1:
        names = ", ".join(s.hash[:12] for s in found) or "none"
        raise ConfigError(
            f"vectors.drop={prefix!r}: {len(found)} spec folders of {root} start with it "
            f"({names}) (expected exactly one; `evalkit task=vectors` lists them)"
        )
    folder = Folder(root).child(found[0].hash)
    try:
        if folder.remote:
            folder.fs.rm(folder.root, recursive=True)
        else:
            shutil.rmtree(folder.path)
    except OSError as err:
        raise ConfigError(
            f"vectors.drop={prefix!r}: cannot delete {folder.url} "
            f"({getattr(err, 'strerror', None) or err}) (expected a writable vector store)"
        ) from err
    return found[0]


#: Seconds between heartbeats of a claim.
HEARTBEAT_S = 2.0
#: A claim whose heartbeat has not moved for this long (the waiter's clock) is stale.
STALE_S = 30.0
#: A claim lock held this long is a dead holder's (it is held for milliseconds).
LOCK_STALE_S = 10.0
#: Seconds between looks at the claims while waiting.
POLL_S = 0.2

LOCK = ".claims.lock"


def _as_bytes(keys: np.ndarray) -> np.ndarray:
    """16-byte keys as one fixed-width bytes value each (for ``np.isin``)."""
    return np.ascontiguousarray(keys, dtype=np.uint8).view("S16").ravel()


class Claims:
    """One job's claims in one spec folder, so that jobs sharing a store embed each text once:
    ``take`` what is missing, embed and store what it returns, ``release``, then ``wait`` for the
    texts other jobs claimed and read them from the store (docs/how-to/vector-store.md)."""

    def __init__(self, folder: Folder) -> None:
        self.folder = folder
        self.name = temp_name("claim")[:-4]  # ".claim~host~pid~rnd"
        self._beat_value = 0
        self._stop: threading.Event | None = None
        self._seen: dict[str, tuple[bytes, float]] = {}  # claim -> (beat, first seen at)
        self._claimed: dict[str, np.ndarray] = {}  # claim -> its keys, as read

    def take(self, keys: np.ndarray) -> np.ndarray:
        """Claim the ``keys`` no live claim of another job holds; the mask of those claimed.
        Where no claim can be written (a read-only store), every key: nothing is coordinated."""
        try:
            return self._take(keys)
        except (OSError, ValueError, NotImplementedError) as err:  # ValueError: no mode "xb"
            log.info("vector store %s: no claim taken (%s)", self.folder.url, err)
            self.release()
            return np.ones(len(keys), dtype=bool)

    def _take(self, keys: np.ndarray) -> np.ndarray:
        self.name = temp_name("claim")[:-4]  # a new name per claim: a claim never changes
        with self._lock():
            held = [self._keys(name) for name in self._live() if name != self.name]
            taken = np.concatenate([np.zeros(0, "S16"), *(k for k in held if k is not None)])
            mine = ~np.isin(_as_bytes(keys), taken)
            if mine.any():
                self.folder.write_array(self.name + ".npy", keys[mine], fsync=False)
                self._beat()
        if mine.any():
            self._start_heartbeat()
        return mine

    def release(self) -> None:
        """Drop this job's claim (after its vectors were written to the store)."""
        if self._stop is not None:
            self._stop.set()
            self._stop = None
        self._remove(self.name)

    def wait(self, keys: np.ndarray) -> None:
        """Until no live claim of another job holds any of ``keys`` (a claim never changes)."""
        wanted = _as_bytes(keys)
        blocks: dict[str, int] = {}  # claim -> how many of ``keys`` it holds
        logged = False
        while True:
            live = [name for name in self._live() if name != self.name]
            for name in live:
                if name not in blocks:
                    held = self._keys(name)
                    blocks[name] = 0 if held is None else int(np.isin(wanted, held).sum())
            waiting = sum(blocks[name] for name in live)
            if not waiting:
                return
            if not logged:
                log.info(
                    "vector store %s: waiting for another job embedding %d of these texts",
                    self.folder.url,
                    waiting,
                )
                logged = True
            time.sleep(POLL_S)

    def _remove(self, name: str) -> None:
        for suffix in (".npy", ".beat"):
            with contextlib.suppress(OSError):
                self.folder.remove(name + suffix)

    def _live(self) -> list[str]:
        """Names of the claims that are not stale (stale ones are removed)."""
        out = []
        for entry in self.folder.names():
            if not (entry.startswith(".claim~") and entry.endswith(".npy")):
                continue
            name = entry[:-4]
            if name != self.name and self._stale(name):
                log.info("vector store %s: claim %s is stale; taken over", self.folder.url, name)
                self._remove(name)
                continue
            out.append(name)
        return out

    def _keys(self, name: str) -> np.ndarray | None:
        """The keys of claim ``name`` (read once), or None when it was released meanwhile."""
        if name not in self._claimed:
            try:
                self._claimed[name] = _as_bytes(self.folder.load_npy(name + ".npy", mmap=False))
            except (OSError, ValueError):
                return None
        return self._claimed[name]

    def _stale(self, name: str) -> bool:
        if writer_gone(name + ".tmp") is True:
            return True
        try:
            beat = self.folder.read_bytes(name + ".beat")
        except OSError:
            beat = b""  # being written, or its writer died before the first beat
        now = time.monotonic()
        last, since = self._seen.get(name, (None, now))
        if beat != last:
            self._seen[name] = (beat, now)
            return False
        return now - since >= STALE_S

    def _beat(self) -> None:
        self._beat_value += 1
        self.folder.write_bytes(self.name + ".beat", str(self._beat_value).encode(), fsync=False)

    def _start_heartbeat(self) -> None:
        if self._stop is not None:
            return
        stop = self._stop = threading.Event()

        def run() -> None:
            while not stop.wait(HEARTBEAT_S):
                with contextlib.suppress(OSError):
                    self._beat()

        threading.Thread(target=run, name=f"heartbeat {self.name}", daemon=True).start()

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        seen: tuple[bytes, float] | None = None
        while not self.folder.create_exclusive(LOCK, self.name.encode()):
            try:
                holder = self.folder.read_bytes(LOCK)
            except FileNotFoundError:
                continue  # released meanwhile: try again
            now = time.monotonic()
            if seen is None or seen[0] != holder:
                seen = (holder, now)
            elif writer_gone(holder.decode(errors="replace") + ".tmp") or (
                now - seen[1] >= LOCK_STALE_S
            ):
                log.info("vector store %s: broke a dead job's claim lock", self.folder.url)
                with contextlib.suppress(FileNotFoundError):
                    self.folder.remove(LOCK)  # another error (no right to): no claims taken
                continue
            time.sleep(0.02)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                if self.folder.read_bytes(LOCK) == self.name.encode():  # not a breaker's
                    self.folder.remove(LOCK)
