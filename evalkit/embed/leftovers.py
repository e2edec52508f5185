"""Leftovers of writers in a store folder: temporary files a ``kill -9`` interrupted.

A local file is written as ``.<name>~<host>~<pid>~<random>.tmp`` and renamed into place; a later
writer removes the stale ones (:func:`remove_stale_temps`).

>>> name = temp_name("w-0.vectors.npy")
>>> name.startswith(".w-0.vectors.npy~") and name.endswith(".tmp"), writer_gone(name)
(True, False)
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class Folder(Protocol):
    """What this module needs of :class:`evalkit.embed.store.Folder`."""

    remote: bool
    path: Path
    url: str

    def names(self) -> list[str]: ...

    def remove(self, name: str) -> None: ...


log = logging.getLogger(__name__)

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
