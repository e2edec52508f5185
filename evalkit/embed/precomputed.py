"""Vectors users bring: a model version whose catalog and query vectors are read from files.

:class:`Precomputed` reads by id Parquet (an id column and a list-of-numbers vector column; one
file, a folder of parts or a glob) or a ``.npy`` matrix plus an ids file, and checks them, else a
:class:`~evalkit.errors.DataError` names the file, 1-based row and field.  ``dimensions`` and
``normalize`` apply as for embedded vectors.  Formats and keys: docs/how-to/model-versions.md.

>>> import tempfile, numpy as np, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> np.save(d / "docs.npy", np.array([[3.0, 4.0], [0.0, 2.0]], dtype=np.float32))
>>> _ = (d / "docs.txt").write_text("b\\na\\n")
>>> v = Precomputed("mine", catalog=str(d / "docs.npy"), catalog_ids=str(d / "docs.txt"),
...                 queries=str(d / "docs.npy"), query_ids=str(d / "docs.txt"))
>>> v.vectors_for(["a", "b"], "document").vectors.tolist()
[[0.0, 1.0], [0.6000000238418579, 0.800000011920929]]
"""

from __future__ import annotations

import glob
import io
import json
import os
from typing import Any, Unpack

import numpy as np
import pandas as pd

from evalkit.embed.model_version import EmbeddingResult, ModelVersion, OptionValues, check_role
from evalkit.embed.store import Folder, is_remote, unit_norm
from evalkit.embed.vector_checks import bad_rows
from evalkit.errors import ConfigError, DataError


def _open_bytes(path: str) -> bytes:
    if is_remote(path):
        folder, name = path.rsplit("/", 1)
        return Folder(folder).read_bytes(name)
    with open(path, "rb") as f:
        return f.read()


GLOB_CHARS = "*?["


def vector_parts(path: str) -> list[str]:
    """The files of a vector source, sorted: the file itself, the ``*.parquet`` files of a folder,
    or the matches of a glob (local paths or fsspec URLs)."""
    if is_remote(path):
        import fsspec

        fs, root = fsspec.core.url_to_fs(path)
        protocol = path.split("://", 1)[0]
        if any(c in root for c in GLOB_CHARS):
            found = sorted(fs.glob(root))
        elif fs.isdir(root):
            found = sorted(p for p in fs.ls(root, detail=False) if p.endswith(".parquet"))
        else:
            return [path]
        return [f"{protocol}://{p}" if "://" not in p else p for p in found]
    if any(c in path for c in GLOB_CHARS):
        found = sorted(p for p in glob.glob(path) if os.path.isfile(p))
    elif os.path.isdir(path):
        found = sorted(os.path.join(path, n) for n in os.listdir(path) if n.endswith(".parquet"))
    else:
        return [path]
    if not found:
        raise DataError(
            "no Parquet part found", file=path, expected="*.parquet files (a folder or a glob)"
        )
    return found


def read_parquet_parts(
    path: str, id_column: str, vector_column: str
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, int]]]:
    """(ids, vectors, [(part, first row), ...]) of every part of ``path`` in order."""
    parts = vector_parts(path)
    if len(parts) == 1:
        ids, vectors = read_parquet_vectors(parts[0], id_column, vector_column)
        return ids, vectors, [(parts[0], 0)]
    all_ids, blocks, starts, n = [], [], [], 0
    for part in parts:
        ids, vectors = read_parquet_vectors(part, id_column, vector_column)
        if blocks and vectors.shape[1] != blocks[0].shape[1]:
            raise DataError(
                f"vectors have {vectors.shape[1]} dimensions, {parts[0]} has {blocks[0].shape[1]}",
                file=part,
                field=vector_column,
                expected="one dimension in every part",
            )
        all_ids.append(ids)
        blocks.append(vectors)
        starts.append((part, n))
        n += len(ids)
    return np.concatenate(all_ids), np.concatenate(blocks, axis=0), starts


def part_row(starts: list[tuple[str, int]], row: int) -> tuple[str, int]:
    """(part, 1-based row in that part) of 1-based ``row`` of the concatenated parts."""
    name, first = starts[0]
    for part, start in starts:
        if start < row:
            name, first = part, start
    return name, row - first


def read_parquet_vectors(
    path: str, id_column: str, vector_column: str
) -> tuple[np.ndarray, np.ndarray]:
    """(ids as str objects, float32 (n, d)) from a Parquet file; DataError names row / field."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        source: Any = io.BytesIO(_open_bytes(path)) if is_remote(path) else path
        schema = pq.read_schema(source)
        missing = [c for c in (id_column, vector_column) if c not in schema.names]
        if missing:
            raise DataError(
                f"no column {missing[0]!r} (columns: {', '.join(schema.names)})",
                file=path,
                field=missing[0],
                expected="an id column and a vector column (set id_column / vector_column)",
            )
        if is_remote(path):
            source.seek(0)
        table = pq.read_table(source, columns=[id_column, vector_column])
    except (OSError, pa.ArrowException) as err:
        raise DataError(
            f"cannot read Parquet ({err})", file=path, expected="a Parquet file"
        ) from err
    ids_col = table.column(id_column).combine_chunks()
    if ids_col.null_count:
        row = int(np.flatnonzero(ids_col.is_null().to_numpy(zero_copy_only=False))[0]) + 1
        raise DataError("id is null", file=path, row=row, field=id_column, expected="an id")
    ids = np.asarray([str(x) for x in ids_col.to_pylist()], dtype=object)
    col = table.column(vector_column).combine_chunks()

    def bad(problem: str, expected: str, row: int | None = None) -> DataError:
        return DataError(problem, file=path, row=row, field=vector_column, expected=expected)

    kinds = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
    if not any(k(col.type) for k in kinds):
        raise bad(f"column has type {col.type}", "a list or fixed-size list of numbers per row")
    if not (pa.types.is_floating(col.type.value_type) or pa.types.is_integer(col.type.value_type)):
        raise bad(f"vectors hold {col.type.value_type}", "numbers")
    if col.null_count:
        row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0]) + 1
        raise bad("vector is null", "a vector", row)
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths != lengths[0]).any():
        row = int(np.flatnonzero(lengths != lengths[0])[0]) + 1
        raise bad(
            f"vector has {int(lengths[row - 1])} dimensions, row 1 has {int(lengths[0])}",
            "one dimension for every vector",
            row,
        )
    dim = int(lengths[0]) if len(lengths) else 0
    values = col.flatten()
    flat = values.to_numpy(zero_copy_only=False)  # nulls inside a vector become NaN
    vectors = np.asarray(flat, dtype=np.float32).reshape(len(col), dim)
    return ids, vectors


def read_ids_file(path: str) -> np.ndarray:
    """Ids from ``.npy`` (1-D), ``.json`` (a list) or text (one per line), as str objects."""
    raw = _open_bytes(path)
    try:
        if path.endswith(".npy"):
            arr = np.load(io.BytesIO(raw), allow_pickle=False)
            if arr.ndim != 1:
                raise DataError(f"ids have shape {arr.shape}", file=path, expected="a 1-D array")
            values = arr.tolist()
        elif path.endswith(".json"):
            values = json.loads(raw)
            if not isinstance(values, list):
                raise DataError("not a JSON list", file=path, expected="a JSON list of ids")
        else:
            values = raw.decode("utf-8").splitlines()
            if values and values[-1] == "":
                values = values[:-1]
    except (ValueError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read ids ({err})", file=path, expected="ids") from err
    return np.asarray([str(v) for v in values], dtype=object)


def read_npy_vectors(path: str, ids_path: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, float32 (n, d)) from a ``.npy`` matrix and its ids file."""
    if not ids_path:
        raise ConfigError(
            f"{path}: a .npy vector file needs its ids file (set catalog_ids / query_ids)"
        )
    try:
        matrix = np.load(io.BytesIO(_open_bytes(path)), allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read .npy ({err})", file=path, expected="a .npy matrix") from err
    if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.number):
        raise DataError(
            f"array has shape {matrix.shape} and dtype {matrix.dtype}",
            file=path,
            expected="a 2-D numeric matrix (n, d)",
        )
    ids = read_ids_file(ids_path)
    if len(ids) != len(matrix):
        raise DataError(
            f"{len(ids)} ids for {len(matrix)} vectors in {path}",
            file=ids_path,
            expected="one id per vector row",
        )
    return ids, np.asarray(matrix, dtype=np.float32)


def check_vectors(
    path: str,
    file_ids: np.ndarray,
    vectors: np.ndarray,
    wanted: list[str],
    field: str,
    what: str,
    starts: list[tuple[str, int]] | None = None,
) -> np.ndarray:
    """Rows of ``vectors`` for ``wanted`` ids (in that order), after every check."""

    def where_is(row: int) -> tuple[str, int]:
        return part_row(starts, row) if starts else (path, row)

    check_parts(path, file_ids, vectors, field, where_is)
    where = pd.Index(file_ids)
    order = where.get_indexer(pd.Index(np.asarray(wanted, dtype=object)))
    if (order < 0).any():
        absent = np.flatnonzero(order < 0)
        raise DataError(
            f"{len(absent)} {what} id(s) of the evaluation have no vector, first {wanted[absent[0]]!r}",
            file=path,
            field=field,
            expected=f"a vector for every {what} id",
        )
    if len(order) == len(vectors) and (order == np.arange(len(order))).all():
        return vectors
    return vectors[order]


def check_parts(
    path: str,
    file_ids: np.ndarray,
    vectors: np.ndarray,
    field: str,
    where_is: Any = None,
) -> None:
    """Each id once, at least one dimension, finite and non-zero vectors; else a DataError
    naming the file (``where_is(row)`` maps a 1-based row to its part and row there)."""
    where_is = where_is or (lambda row: (path, row))
    where = pd.Index(file_ids)
    if not where.is_unique:
        dup = where.duplicated()
        first = int(np.flatnonzero(dup)[0])
        file, row = where_is(first + 1)
        raise DataError(
            f"id {file_ids[first]!r} appears more than once ({int(dup.sum())} repeated row(s))",
            file=file,
            row=row,
            field=field,
            expected="each id once",
        )
    if vectors.shape[1] == 0:
        raise DataError("vectors have 0 dimensions", file=path, expected="at least one dimension")
    nonfinite, zero = bad_rows(vectors)  # one pass over the matrix
    for rows, problem, expected in (
        (nonfinite, "has NaN or infinite values", "finite numbers"),
        (zero, "is all zeros", "a non-zero vector"),
    ):
        if len(rows):
            file, at = where_is(int(rows[0]) + 1)
            raise DataError(
                f"vector of id {file_ids[rows[0]]!r} {problem}",
                file=file,
                row=at,
                field="vector",
                expected=expected,
            )


class Precomputed(ModelVersion):
    """A model version whose vectors come from files.

    Args:
        catalog: the catalog vectors: Parquet (a file, a folder of parts or a glob) or ``.npy``.
        queries: the query vectors: Parquet or ``.npy``.
        catalog_ids: the ids file of a ``.npy`` catalog (same row order).
        query_ids: the ids file of a ``.npy`` query matrix.
        id_column: Parquet: the id column.
        vector_column: Parquet: the vector column (a list of numbers per row).
    """

    backend = "precomputed"
    brings_vectors = True
    takes_options = ("batch_size", "dimensions", "normalize", "revision")

    def __init__(
        self,
        name: str,
        *,
        catalog: str,
        queries: str,
        catalog_ids: str | None = None,
        query_ids: str | None = None,
        id_column: str = "id",
        vector_column: str = "vector",
        **options: Unpack[OptionValues],
    ) -> None:
        super().__init__(name, **options)
        for key, value in (("catalog", catalog), ("queries", queries)):
            if not isinstance(value, str) or not value:
                raise ConfigError(
                    f"models.{name}.{key}={value!r} is invalid (expected a Parquet or .npy path)"
                )
        self.files = {"document": catalog, "query": queries}
        self.ids_files = {"document": catalog_ids, "query": query_ids}
        self.id_column = id_column
        self.vector_column = vector_column

    def _embed_batch(self, texts: list[str], role: str, dimensions: int | None) -> np.ndarray:
        raise ConfigError(
            f"model version {self.name!r} is precomputed: it reads vectors by id from "
            f"{self.files['document']} / {self.files['query']} and cannot embed new texts "
            "(endpoint checks and latency probes do not apply to it)"
        )

    def _backend_spec(self, role: str) -> dict[str, Any]:
        return {"file": self.files[check_role(role)], "ids": self.ids_files[role]}

    def _backend_params(self) -> dict[str, Any]:
        return {
            "catalog": self.files["document"],
            "queries": self.files["query"],
            "id_column": self.id_column,
            "vector_column": self.vector_column,
        }

    def read(self, role: str) -> tuple[np.ndarray, np.ndarray, list[tuple[str, int]]]:
        """(ids, vectors, [(part, first row), ...]) of the file(s) for ``role``, as stored."""
        path = self.files[check_role(role)]
        local = not (is_remote(path) or any(c in path for c in GLOB_CHARS))  # else: when read
        if local and not (os.path.isfile(path) or os.path.isdir(path)):
            expected = "a Parquet or .npy vector file, or a folder of Parquet parts"
            raise DataError("file not found", file=path, expected=expected)
        if path.endswith(".npy"):
            ids, vectors = read_npy_vectors(path, self.ids_files[role])
            return ids, vectors, [(path, 0)]
        return read_parquet_parts(path, self.id_column, self.vector_column)

    def streams(self, role: str = "document") -> bool:
        """Whether ``engine=ray`` can read this role's vectors part by part (Parquet)."""
        return not self.files[check_role(role)].endswith(".npy")

    def vectors_for(self, ids: list[str], role: str) -> EmbeddingResult:
        """Checked, finalised vectors for ``ids`` (in that order)."""
        path = self.files[check_role(role)]
        file_ids, vectors, starts = self.read(role)
        field = self.id_column if not path.endswith(".npy") else "id"
        what = "catalog" if role == "document" else "query"
        rows = check_vectors(path, file_ids, vectors, list(ids), field, what, starts)
        del vectors
        out = self.finalize(
            rows, unit_norm=unit_norm(rows), in_place=rows.flags.writeable and rows.flags.owndata
        )
        return EmbeddingResult(
            vectors=out,
            latencies_s=np.zeros(0, dtype=np.float64),
            n_requests=0,
            n_cached=len(ids),
            batch_size=self.batch_size,
            concurrency=1,
            dim=int(out.shape[1]),
            n_unique=len(ids),
        )
