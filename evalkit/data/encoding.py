"""Which encoding a file that is not UTF-8 is in (byte-order mark, NUL bytes, else
``charset-normalizer``'s guess), for the one-line error that says how to convert it.

>>> import codecs
>>> wide_or_marked(codecs.BOM_UTF16_LE + '{"_id": "1"}'.encode("utf-16-le"))
'UTF-16 LE (byte-order mark FF FE)'
>>> wide_or_marked('{"_id": "1"}'.encode("utf-16-be"))
'UTF-16 BE without a byte-order mark'
>>> wide_or_marked(b'{"_id": "1"}') is None
True
>>> legacy_encoding('{"title": "caf\\u00e9 \\u2013 \\u201cquoted\\u201d"}\\n'.encode("cp1252") * 20)
'cp1252'
>>> legacy_encoding(b"") is None
True
>>> convert_hint("UTF-16 LE (byte-order mark FF FE)")
'iconv -f UTF-16 -t UTF-8'
>>> convert_hint("cp1252"), convert_hint("UTF-16 BE without a byte-order mark")
('iconv -f CP1252 -t UTF-8', 'iconv -f UTF-16BE -t UTF-8')
"""

from __future__ import annotations

import codecs
import re

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
    """The UTF-16 / UTF-32 form that BOM-less bytes look like (by where their NUL bytes are: ASCII
    characters leave 1 or 3 NUL bytes each), or None.

    >>> wide_encoding("<top>".encode("utf-16-le")), wide_encoding("<top>".encode("utf-32-be"))
    ('UTF-16 LE', 'UTF-32 BE')
    """
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
    """A codec's name as users know it.

    >>> describe("cp1252"), describe("cp850")
    ('Windows-1252 (cp1252)', 'cp850')
    """
    m = re.fullmatch(r"cp(125[0-8])", codec)
    return f"Windows-{m.group(1)} ({codec})" if m else codec


def convert_hint(found: str) -> str:
    """The ``iconv`` command that converts a file in encoding ``found`` (as named above) to
    UTF-8."""
    name = found.split(" (byte-order mark")[0].removesuffix(" without a byte-order mark")
    if " (byte-order mark" in found:
        name = name.split()[0]  # iconv reads the mark: UTF-16, UTF-32
    name = name.replace(" ", "").upper()
    name = re.sub(r"^ISO8859-", "ISO-8859-", name)
    return f"iconv -f {name} -t UTF-8"
