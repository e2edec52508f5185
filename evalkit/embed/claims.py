"""Jobs that share a vector store embed each text once: claims on the texts being embedded.

A job claims the texts it misses before embedding them; a job missing texts another has claimed
waits for them, then reads them from the store (files and liveness: docs/how-to/vector-store.md).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

import numpy as np

from evalkit.embed.store import Folder, temp_name, writer_gone

log = logging.getLogger(__name__)

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
    """One job's claims in one spec folder.  ``take`` what is missing, embed and store what it
    returns, ``release``, then ``wait`` for the rest and read it from the store."""

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
