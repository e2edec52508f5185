"""Errors evalkit raises: each names *where* the problem is (file, row, field) and *what was
expected*, so the command line prints one clear line instead of a traceback.

>>> err = DataError("title is empty", file="corpus.jsonl", row=7, field="title",
...                 expected="a non-empty string")
>>> str(err)
"corpus.jsonl, row 7, field 'title': title is empty (expected a non-empty string)"
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path


class EvalkitError(Exception):
    """Base class: anything evalkit reports to the user as a clean one-line error (exit code 1)."""


class ConfigError(EvalkitError):
    """The Hydra configuration asks for something impossible or inconsistent."""


class UsageError(ConfigError):
    """The command line itself is wrong (e.g. ``models=[x,x]``): exit code 2, not 1."""

    exit_code = 2


class DataError(EvalkitError):
    """A data file is missing, malformed, or inconsistent (``row``: 1-based, data rows only)."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        field: str | None = None,
        expected: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.row = row
        self.field = field
        self.expected = expected
        where = [str(file)] if file else []
        where += [f"row {row}"] if row is not None else []
        where += [f"field {field!r}"] if field else []
        text = ", ".join(where) + ": " + message if where else message
        super().__init__(text + (f" (expected {expected})" if expected else ""))


class EndpointError(EvalkitError):
    """An embedding endpoint answered with something unusable (wrong count, dimension, NaN, ...)."""


class FingerprintMismatch(EvalkitError):
    """Two runs were asked to be compared but their inputs differ."""


class DiskFullError(EvalkitError, OSError):
    """A write failed on a full disk (or quota): an ``OSError`` (ENOSPC) whose ``str()`` is one
    line naming the path and the free space there."""

    def __str__(self) -> str:
        return str(self.strerror)


#: numpy's message when a write to a file stops short (``ndarray.tofile`` on a full disk).
_SHORT_WRITE = re.compile(r"(\d+) requested and (\d+) written")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)  # pragma: no cover


def free_space(path: str | os.PathLike[str]) -> str | None:
    """``"<free> free of <total> now"`` where ``path`` (or its nearest existing folder) is, or
    None."""
    here = Path(os.path.abspath(os.fspath(path)))
    folder = next((p for p in (here, *here.parents) if os.path.isdir(p)), None)
    if folder is None:
        return None
    try:
        usage = shutil.disk_usage(folder)
    except OSError:
        return None
    return f"{_size(usage.free)} free of {_size(usage.total)} now"


def disk_full(exc: OSError, path: str | os.PathLike[str] | None = None) -> OSError:
    """``exc`` as a :class:`DiskFullError` naming ``path`` when it is a full disk (ENOSPC, EDQUOT,
    or numpy's bare "N requested and M written"), else ``exc`` itself.

    >>> str(disk_full(OSError("41984 requested and 29664 written"), "/x/a.npy")).split(" (")[0]
    'cannot write /x/a.npy: the disk is full'
    """
    short = _SHORT_WRITE.search(str(exc)) if exc.errno is None else None
    if isinstance(exc, DiskFullError) or not (short or exc.errno in (errno.ENOSPC, errno.EDQUOT)):
        return exc
    where = os.fspath(path or exc.filename or "a file")
    cause = (
        f"{short.group(2)} of {short.group(1)} bytes written" if short else exc.strerror or str(exc)
    )
    free = free_space(where) if where != "a file" else None
    line = (
        f"cannot write {where}: the disk is full ({cause}{'; ' + free if free else ''}) "
        "(expected free space there: free some, or point cache.dir / hydra.run.dir / "
        "tracking.uri at another disk)"
    )
    return DiskFullError(errno.ENOSPC, line, where)


def os_error_line(exc: OSError) -> str:
    """One line for a file-system error: the path and what was expected of it.

    >>> os_error_line(PermissionError(13, "Permission denied", "/ro/cache"))
    'cannot write /ro/cache: Permission denied (expected a writable folder; fix its permissions or point cache.dir / tracking.uri / hydra.run.dir elsewhere)'
    """
    full = disk_full(exc)
    if isinstance(full, DiskFullError):
        return str(full)
    path = exc.filename or "a file"
    reason = exc.strerror or str(exc)
    verb = "write" if isinstance(exc, PermissionError) or exc.errno in (30, 28) else "use"
    return (
        f"cannot {verb} {path}: {reason} (expected a writable folder; fix its permissions or "
        "point cache.dir / tracking.uri / hydra.run.dir elsewhere)"
    )
