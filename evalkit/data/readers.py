"""Read one table - a local file (:func:`read_file`) or a split of a Hub dataset or local dataset
folder (:func:`read_hub`) - with the ``datasets`` library, as a :class:`TableSource`.

Reading problems become :class:`~evalkit.errors.DataError`: a missing file or column (naming the
columns that exist), lines that are not JSON (naming row and line), bytes that are not UTF-8
(naming the file's encoding - byte-order mark, NUL bytes, else ``charset-normalizer``'s guess -
and the ``iconv`` that converts it) and a cut ``.gz`` / ``.bz2`` / ``.xz`` (naming the last whole
row).  CSV / TSV columns are read as strings, so an id ``1`` stays ``"1"`` and ``"007"`` keeps its
zeros.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "items.csv"
>>> _ = path.write_text("id,title\\n1,red shoe\\n2,blue hat\\n", encoding="utf-8")
>>> src = read_file(path, ["id", "title"])
>>> src.table.column("id").to_pylist(), src.label == str(path)
(['1', '2'], True)
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import json
import logging
import lzma
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from evalkit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: Accepted ``format`` values and the ``datasets`` builder each one uses.
FORMATS = {
    **dict.fromkeys(("json", "jsonl", "ndjson"), "json"),
    **dict.fromkeys(("csv", "tsv"), "csv"),
    **dict.fromkeys(("parquet", "pq"), "parquet"),
}
_COMPRESSION = (".gz", ".bz2", ".xz", ".zst", ".zstd")


@dataclass(frozen=True)
class TableSource:
    """A table read from ``label`` (row ``i`` = data row ``i + 1``) and, from the Hub, its commit."""

    table: pa.Table
    label: str
    revision: str | None = None


def infer_format(path: str | Path, fmt: str | None = None) -> str:
    """The :data:`FORMATS` key: ``fmt``, else the file extension's (past compression suffixes)."""
    if fmt:
        key = str(fmt).lower().lstrip(".")
        if key not in FORMATS:
            raise ConfigError(
                f"format {fmt!r} for {path} is unknown (expected one of {', '.join(FORMATS)})"
            )
        return key
    suffixes = [s.lower() for s in Path(str(path)).suffixes]
    while suffixes and suffixes[-1] in _COMPRESSION:
        suffixes.pop()
    ext = suffixes[-1].lstrip(".") if suffixes else ""
    if ext not in FORMATS:
        raise ConfigError(
            f"cannot infer the format of {path} from its extension {ext or '(none)'!r}: "
            f"set format to one of {', '.join(sorted(set(FORMATS)))}"
        )
    return ext


def read_file(
    path: str | Path,
    columns: Sequence[str],
    fmt: str | None = None,
    *,
    cache_dir: str | None = None,
) -> TableSource:
    """Read ``columns`` of a local jsonl / json / csv / tsv / parquet file (labelled as given)."""
    import datasets

    label = str(path)
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(
            f"file not found (resolved to {p.resolve()})", file=label, expected="an existing file"
        )
    if not p.is_file():
        raise DataError("is not a file", file=label, expected="a data file, not a directory")
    key = infer_format(p, fmt)
    builder = FORMATS[key]
    columns = list(dict.fromkeys(columns))
    kwargs: dict[str, Any] = {"parse_agent_traces": False}
    if builder != "json":
        _require_columns(columns_of(p, key, label), columns, label)
        kwargs = {"columns": columns}
    if builder == "csv":
        kwargs = {"sep": "\t" if key == "tsv" else ",", **_as_strings(columns)}
    if p.stat().st_size == 0:
        raise DataError("file is empty", file=label, expected="a header and data rows")
    try:
        ds = datasets.load_dataset(
            builder, data_files=str(p), split="train", cache_dir=cache_dir, **kwargs
        )
    except Exception as exc:  # the datasets builders raise many types; name the file instead
        raise _diagnose(p, key, label, exc) from exc
    table = ds.with_format("arrow")[:]
    _require_columns(table.column_names, columns, label)
    table = table.select(columns)
    try:  # pyarrow's JSON reader does not check UTF-8; a full validation does, in bulk
        table.validate(full=True)
    except pa.ArrowInvalid as exc:
        raise _diagnose(p, key, label, exc) from exc
    return TableSource(table, label)


def read_hub(
    path: str,
    columns: Sequence[str],
    *,
    name: str | None = None,
    split: str = "train",
    revision: str | None = None,
    data_dir: str | None = None,
    cache_dir: str | None = None,
) -> TableSource:
    """Read ``columns`` of one split of a Hub dataset id (or a local dataset folder) through its
    builder, so the resolved commit is known; CSV / TSV files are read as strings."""
    import datasets
    from datasets.packaged_modules.csv.csv import Csv

    label = f"{path}" + (f" [{name}]" if name else "") + f" split {split!r}"
    columns = list(dict.fromkeys(columns))
    common = {"name": name, "revision": revision, "data_dir": data_dir, "cache_dir": cache_dir}
    try:
        builder = datasets.load_dataset_builder(path, **common)
        if isinstance(builder, Csv):
            header = _hub_csv_header(builder, split)
            if header is not None:
                _require_columns(header, columns, label)
                builder = datasets.load_dataset_builder(path, **common, **_as_strings(columns))
        builder.download_and_prepare()
        ds = builder.as_dataset(split=split)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read the dataset: {_describe(exc)}", file=label) from exc
    table = ds.with_format("arrow")[:]
    _require_columns(table.column_names, columns, label)
    local = Path(path).expanduser().exists()
    rev = None if local else (str(builder.hash) if builder.hash else revision)
    return TableSource(table.select(columns), label, rev)


def _as_strings(columns: list[str]) -> dict[str, Any]:
    """The csv builder's options that read ``columns`` as strings (``""`` stays ``""``)."""
    import datasets

    features = datasets.Features({c: datasets.Value("string") for c in columns})
    return {"features": features, "keep_default_na": False, "usecols": columns}


def columns_of(path: Path, key: str, label: str) -> list[str]:
    """The columns of a csv / tsv (header), parquet (schema) or JSON-lines file (first object)."""
    if FORMATS[key] == "csv":
        try:
            with open_bytes(path) as fh:
                first = fh.readline().decode("utf-8-sig")
            header = next(csv.reader([first], delimiter="\t" if key == "tsv" else ","), None)
        except UnicodeDecodeError as exc:
            raise _encoding_error(path, label, "the header line", exc.reason, None) from exc
        except EOFError as exc:
            raise stream_problem(path, label, 1) or DataError(str(exc), file=label) from exc
        if "\0" in first:  # UTF-16 / UTF-32 without a byte-order mark decodes, NUL bytes and all
            raise _encoding_error(path, label, "the header line", "NUL bytes", None)
        if not header:
            raise DataError(
                "file is empty", file=label, expected="a header line naming the columns"
            )
        return header
    if FORMATS[key] == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"not a readable parquet file: {exc}", file=label) from exc
    try:
        with open_bytes(path) as fh:
            first = fh.readline().decode("utf-8-sig").strip()
        row = json.loads(first) if first else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(
            f"the first line is not a JSON object ({exc})", file=label, row=1, expected="JSON lines"
        ) from exc
    return list(row) if isinstance(row, dict) else []


def _require_columns(existing: Sequence[str], wanted: Sequence[str], label: str) -> None:
    missing = [c for c in wanted if c not in existing]
    if missing:
        raise DataError(
            f"column {missing[0]!r} is missing; the columns are {', '.join(map(repr, existing))}",
            file=label,
            field=missing[0],
            expected="the column names configured for this table (see conf/dataset/*.yaml)",
        )


def open_bytes(path: Path) -> io.BufferedIOBase:
    """``path`` opened for reading bytes, decompressed by its suffix."""
    return OPENERS.get(path.suffix.lower(), open)(path, "rb")


def _hub_csv_header(builder: Any, split: str) -> list[str] | None:
    from datasets.utils.file_utils import xopen

    files = (builder.config.data_files or {}).get(split)
    if not files:
        return None
    sep = builder.config.sep or ","
    try:
        with xopen(files[0], "r", encoding="utf-8-sig") as fh:
            return next(csv.reader([fh.readline()], delimiter=sep), None)
    except Exception:  # a remote hiccup here only costs the early column check
        log.debug("could not read the header of %s", files[0], exc_info=True)
        return None


def _describe(exc: BaseException) -> str:
    """The innermost meaningful message of a chained exception."""
    seen = exc
    while seen.__cause__ is not None:
        seen = seen.__cause__
    text = str(seen) or type(seen).__name__
    return text if seen is exc else f"{exc}: {text}"


def _diagnose(path: Path, key: str, label: str, exc: BaseException) -> DataError:
    """Turn a failed read into a DataError naming the first bad row / line, if it can be found."""
    header_lines = 1 if FORMATS[key] == "csv" else 0
    damaged = stream_problem(path, label, header_lines)
    if damaged is not None:
        return damaged
    bad = _undecodable(path)[0]
    if bad is not None:
        line, data_row, reason = bad
        row = data_row - header_lines if data_row > header_lines else None
        return _encoding_error(path, label, f"line {line}", reason, row)
    if FORMATS[key] == "json":
        bad_json = _first_invalid_json_line(path)
        if bad_json is not None:
            line, data_row, reason = bad_json
            return DataError(
                f"line {line} is not a JSON object ({reason})",
                file=label,
                row=data_row,
                expected="one JSON object per line",
            )
    reason = _describe(exc)
    if "corresponds to no data" in reason:  # datasets' message for a table of zero rows
        return DataError("the file has no data rows", file=label, expected="at least one row")
    return DataError(f"cannot read the file as {key}: {reason}", file=label)


def _encoding_error(path: Path, label: str, what: str, reason: str, row: int | None) -> DataError:
    """``what`` is not UTF-8: name the file's encoding and the ``iconv`` that converts it."""
    damaged = stream_problem(path, label)
    if damaged is not None:
        return damaged
    with open_bytes(path) as fh:
        head = fh.read(HEAD_BYTES)
    wide = wide_or_marked(head)
    if wide is not None:
        return DataError(
            f"the file is {wide}, not UTF-8",
            file=label,
            expected=f"UTF-8 text: convert it, {convert_hint(wide)}",
        )
    found = legacy_encoding(_undecodable(path)[1])
    looks = f"; the file looks like {_codec_label(found)}" if found else ""
    fix = convert_hint(found) if found else "iconv -f <its encoding> -t UTF-8"
    return DataError(
        f"{what} is not valid UTF-8 ({reason}){looks}",
        file=label,
        row=row,
        expected=f"UTF-8 text: convert it, {fix}",
    )


def _undecodable(path: Path) -> tuple[tuple[int, int, str] | None, bytes]:
    """The first line that is not UTF-8 as ``(line, data row, reason)`` (blank lines are not
    rows), and up to ``HEAD_BYTES`` of such lines (what the encoding is guessed from)."""
    first, sample, size, rows = None, [], 0, 0
    with open_bytes(path) as fh:
        for line_no, raw in enumerate(fh, start=1):
            line = raw.removeprefix(codecs.BOM_UTF8) if line_no == 1 else raw
            rows += bool(line.strip())
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                where = f"byte 0x{line[exc.start]:02x} at column {exc.start + 1}"
                first = first or (line_no, rows, where)
                sample.append(raw)
                size += len(raw)
                if size >= HEAD_BYTES:
                    break
    return first, b"".join(sample)


def _first_invalid_json_line(path: Path) -> tuple[int, int, str] | None:
    """``(line, data row, reason)`` of the first non-blank line that is not a JSON object."""
    with io.TextIOWrapper(open_bytes(path), encoding="utf-8-sig", newline="") as fh:
        first = fh.read(1)
        if first == "[":  # a JSON array file, not JSON lines: no per-line diagnosis
            return None
        rows = 0
        for line_no, line in enumerate(fh, start=1):
            text = first + line if line_no == 1 else line
            if not text.strip():
                continue
            rows += 1
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                return line_no, rows, exc.msg
            if not isinstance(obj, dict):
                return line_no, rows, f"found a JSON {type(obj).__name__}"
    return None


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


def _codec_label(codec: str) -> str:
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
