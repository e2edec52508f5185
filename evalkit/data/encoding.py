"""What a file that is not plain UTF-8 text is: its encoding (byte-order mark, NUL bytes, else
``charset-normalizer``'s guess) and the ``iconv`` that converts it, or the data row a damaged
``.gz`` / ``.bz2`` / ``.xz`` stream reached (a partial download): one-line errors naming the fix.

>>> wide_or_marked('{"_id": "1"}'.encode("utf-16-be"))
'UTF-16 BE without a byte-order mark'
>>> convert_hint("cp1252"), convert_hint("UTF-16 LE (byte-order mark FF FE)")
('iconv -f CP1252 -t UTF-8', 'iconv -f UTF-16 -t UTF-8')
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import lzma
import re
import zlib
from pathlib import Path

from evalkit.errors import DataError

#: Byte-order marks and the encodings they announce (UTF-32 first: its LE mark starts with
#: UTF-16's).
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32 LE"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32 BE"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16 BE"),
)
#: Bytes of a file's head enough to tell its encoding.
HEAD_BYTES = 65536


def wide_encoding(raw: bytes) -> str | None:
    """The UTF-16 / UTF-32 form that BOM-less bytes look like by their NUL bytes, or None."""
    head = raw[:4096]
    if b"\0" not in head:
        return None

    def nul(step: int, at: int) -> float:
        part = head[at::step]
        return part.count(0) / max(len(part), 1)

    if nul(4, 0) < 0.5 and min(nul(4, 1), nul(4, 2), nul(4, 3)) > 0.9:
        return "UTF-32 LE"
    if nul(4, 3) < 0.5 and min(nul(4, 0), nul(4, 1), nul(4, 2)) > 0.9:
        return "UTF-32 BE"
    if nul(2, 1) > 0.5 and nul(2, 0) < 0.25:
        return "UTF-16 LE"
    if nul(2, 0) > 0.5 and nul(2, 1) < 0.25:
        return "UTF-16 BE"
    return None


def wide_or_marked(head: bytes) -> str | None:
    """``"UTF-16 LE (byte-order mark FF FE)"`` / ``"UTF-16 LE without a byte-order mark"`` for a
    UTF-16 / UTF-32 file's first bytes, else None (UTF-8, with or without its mark, is None)."""
    for bom, _codec, name in BOMS:
        if head.startswith(bom):
            if name == "UTF-8":
                return None
            return f"{name} (byte-order mark {bom.hex(' ').upper()})"
    found = wide_encoding(head)
    return f"{found} without a byte-order mark" if found else None


def legacy_encoding(sample: bytes) -> str | None:
    """charset-normalizer's guess (a Python codec name) for bytes that are not UTF-8, or None;
    Windows-1252 (Western Europe's usual code page) wins when among the tied best guesses."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(sample)) if sample else []
    if not matches:
        return None
    best = matches[0]
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    if any("cp1252" in m.could_be_from_charset for m in tied):
        return "cp1252"
    name = codecs.lookup(best.encoding).name
    return None if name in ("utf-8", "ascii") else name  # no guess for bytes UTF-8 refused


def describe(codec: str) -> str:
    """A codec's name as users know it: ``Windows-1252 (cp1252)``, ``cp850``."""
    m = re.fullmatch(r"cp(125[0-8])", codec)
    return f"Windows-{m.group(1)} ({codec})" if m else codec


def convert_hint(found: str) -> str:
    """The ``iconv`` command that converts a file in encoding ``found`` to UTF-8."""
    name = found.split(" (byte-order mark")[0].removesuffix(" without a byte-order mark")
    if " (byte-order mark" in found:
        name = name.split()[0]  # iconv reads the mark: UTF-16, UTF-32
    name = name.replace(" ", "").upper()
    name = re.sub(r"^ISO8859-", "ISO-8859-", name)
    return f"iconv -f {name} -t UTF-8"


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
            fh.read()  # after an unterminated last line the stream must still end cleanly
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
