"""The evaluation's inputs as MLflow datasets (``log_input``): catalog, queries, judgments, clicks.

Each table's **digest is evalkit's fingerprint** of it (the first 32 hex characters), with its
source, a column schema, its row count as profile and its role as ``mlflow.data.context`` tag;
no table is converted to pandas or hashed again.

>>> from evalkit.data.schema import Catalog, Queries, Judgments, EvalData
>>> data = EvalData("toy", Catalog(["d1"], ["red shoe"], source="items.csv"),
...                 Queries(["q1"], ["shoe"]), Judgments({"q1": {"d1": 1}}),
...                 fingerprint={"catalog": "ab" * 32, "queries": "cd" * 32, "judgments": "ef" * 32})
>>> [(d.dataset.name, d.dataset.digest, d.tags[0].value) for d in dataset_inputs(data)]
[('toy/catalog', 'abababababababababababababababab', 'catalog'), ('toy/queries', 'cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd', 'queries'), ('toy/judgments', 'efefefefefefefefefefefefefefefef', 'judgments')]
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.filesystem_dataset_source import FileSystemDatasetSource
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import DatasetInput, InputTag
from mlflow.types import ColSpec, DataType, Schema
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from evalkit.data.schema import EvalData

#: MLflow's limit on a dataset digest.
DIGEST_CHARS = 32


class LocalSource(FileSystemDatasetSource):
    """A file or folder on this machine (MLflow source type ``local``); never loaded by MLflow."""

    def __init__(self, uri: str) -> None:
        self._uri = uri

    @property
    def uri(self) -> str:
        return self._uri

    @staticmethod
    def _get_source_type() -> str:
        return "local"

    def load(self, dst_path: str | None = None) -> str:
        return self._uri

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False

    @classmethod
    def _resolve(cls, raw_source: Any) -> LocalSource:
        return cls(str(raw_source))

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self._uri}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> LocalSource:
        return cls(source_dict["uri"])


class TableDataset(MetaDataset):
    """A :class:`MetaDataset` (source, digest, schema: no data) with a row-count profile."""

    def __init__(
        self, source: DatasetSource, name: str, digest: str, schema: Schema, rows: int
    ) -> None:
        self._rows = rows
        super().__init__(source=source, name=name, digest=digest, schema=schema)

    @property
    def profile(self) -> dict[str, int]:
        return {"num_rows": self._rows}

    def to_dict(self) -> dict[str, str]:
        return {**super().to_dict(), "profile": json.dumps(self.profile)}


def source_of(label: str) -> DatasetSource:
    """A file / folder that exists -> ``local`` source (absolute URI); anything else (a Hub
    repository, a synthetic generator) -> ``code`` source carrying the label.

    >>> source_of("simulated:pbm").to_dict()
    {'tags': {'evalkit.source': 'simulated:pbm'}}
    """
    paths = [p.strip() for p in label.split(",") if p.strip()]
    if paths and all(os.path.exists(p) for p in paths):
        return LocalSource(",".join(Path(p).resolve().as_uri() for p in paths))
    return CodeDatasetSource({"evalkit.source": label or "in memory"})


def _tables(data: EvalData) -> dict[str, tuple[str, int, dict[str, DataType]]]:
    s, d = DataType.string, DataType.double
    cat, q = data.catalog, data.queries
    text = _present(text=(cat.texts, s))
    catalog_cols = {"id": s, "title": s, **text, **dict.fromkeys(cat.attributes, s)}
    extra = _present(language=(q.language, s), frequency=(q.frequency, d))
    query_cols = {"id": s, "text": s, **extra, **dict.fromkeys(q.attributes, s)}
    tables = {
        "catalog": (cat.source, len(cat), catalog_cols),
        "queries": (q.source, len(q), query_cols),
    }
    if (j := data.judgments) is not None:
        cols = {"query_id": s, "item_id": s, "grade": DataType.long}
        tables["judgments"] = (j.source or j.method, len(j), cols)
    if (c := data.clicks) is not None:
        extra = _present(impressions=(c.impressions, d), mean_position=(c.mean_position, d))
        cols = {"query_id": s, "item_id": s, "clicks": d, **extra}
        tables["clicks"] = (c.source, len(c.query_ids), cols)
    return tables


def _present(**columns: tuple[object, DataType]) -> dict[str, DataType]:
    return {name: t for name, (value, t) in columns.items() if value is not None}


def dataset_inputs(data: EvalData) -> list[DatasetInput]:
    """One :class:`DatasetInput` per table that has a fingerprint, context-tagged."""
    out = []
    for context, (label, rows, columns) in _tables(data).items():
        digest = data.fingerprint.get(context)
        if not digest:
            continue
        ds = TableDataset(
            source_of(label),
            name=f"{data.name}/{context}",
            digest=digest[:DIGEST_CHARS],
            schema=Schema([ColSpec(type=t, name=n) for n, t in columns.items()]),
            rows=rows,
        )
        out.append(
            DatasetInput(ds._to_mlflow_entity(), tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)])
        )
    return out
