"""Compressed data files (``.gz``, ``.bz2``, ``.xz``) and what a damaged one says: the data row
a truncated download (or a corrupt stream) reached, so the user knows the file is partial.

>>> import gzip, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "corpus.jsonl.gz"
>>> whole = gzip.compress(b"".join(b'{"_id": "%d"}\\n' % i for i in range(3000)))
>>> _ = path.write_bytes(whole[: len(whole) // 2])
>>> print(stream_problem(path, "corpus.jsonl.gz"))
corpus.jsonl.gz: the gzip stream ends early after row 1,441 (a partial download? fetch the file again)
>>> _ = path.write_bytes(whole)
>>> stream_problem(path, "corpus.jsonl.gz") is None
True
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from pathlib import Path

from evalkit.errors import DataError

#: Openers of the compressed formats read line by line, by (lower-case) suffix.
OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_NAMES = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz"}
#: What the decompressors raise for a damaged stream (bz2 raises OSError).
_DAMAGED = (EOFError, gzip.BadGzipFile, zlib.error, lzma.LZMAError, OSError)


def stream_problem(path: Path, label: str, header_lines: int = 0) -> DataError | None:
    """A :class:`DataError` naming the last whole data row (a non-blank line after
    ``header_lines``) of a compressed file whose stream ends early or is corrupt, or None."""
    suffix = path.suffix.lower()
    opener = OPENERS.get(suffix)
    if opener is None:
        return None
    lines = rows = 0
    try:
        with opener(path, "rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    break  # the last line, cut or unterminated: not counted until it ends
                lines += 1
                if lines > header_lines and line.strip():
                    rows += 1
            else:
                return None
            fh.read()  # an unterminated last line: the stream must still end cleanly
            return None
    except _DAMAGED as exc:
        kind = _NAMES[suffix]
        reached = f"after row {rows:,}" if rows else "before the first row"
        if isinstance(exc, EOFError):
            return DataError(
                f"the {kind} stream ends early {reached} (a partial download? fetch the file again)",
                file=label,
            )
        return DataError(
            f"the {kind} stream is corrupt {reached} ({exc})",
            file=label,
            expected=f"a valid {kind} file: fetch or compress it again",
        )
