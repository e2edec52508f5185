"""Errors evalkit raises for bad input, bad configuration and misbehaving endpoints.

Every error names *where* the problem is (file, row, field) and *what was expected*, so the
command line can print one clear line instead of a traceback.

>>> err = DataError("title is empty", file="corpus.jsonl", row=7, field="title",
...                 expected="a non-empty string")
>>> str(err)
"corpus.jsonl, row 7, field 'title': title is empty (expected a non-empty string)"
"""

from __future__ import annotations


class EvalkitError(Exception):
    """Base class: anything evalkit reports to the user as a clean one-line error (exit code 1)."""


class ConfigError(EvalkitError):
    """The Hydra configuration asks for something impossible or inconsistent."""


class UsageError(ConfigError):
    """The command line itself is wrong (e.g. ``models=[x,x]``): exit code 2, not 1."""

    exit_code = 2


class DataError(EvalkitError):
    """A data file is missing, malformed, or inconsistent.

    ``row`` is 1-based and counts data rows (a header line is not a row).
    """

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
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field:
            where.append(f"field {self.field!r}")
        text = ", ".join(where) + ": " + self.message if where else self.message
        if self.expected:
            text += f" (expected {self.expected})"
        return text


class EndpointError(EvalkitError):
    """An embedding endpoint answered with something unusable (wrong count, dimension, NaN, ...)."""


class FingerprintMismatch(EvalkitError):
    """Two runs were asked to be compared but their inputs differ."""


def os_error_line(exc: OSError) -> str:
    """One line for a file-system error: the path and what was expected of it.

    >>> os_error_line(PermissionError(13, "Permission denied", "/ro/cache"))
    'cannot write /ro/cache: Permission denied (expected a writable folder; fix its permissions or point cache.dir / tracking.uri / hydra.run.dir elsewhere)'
    """
    path = exc.filename or "a file"
    reason = exc.strerror or str(exc)
    verb = "write" if isinstance(exc, PermissionError) or exc.errno in (30, 28) else "use"
    return (
        f"cannot {verb} {path}: {reason} (expected a writable folder; fix its permissions or "
        "point cache.dir / tracking.uri / hydra.run.dir elsewhere)"
    )
