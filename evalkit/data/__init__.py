"""evalkit.data: load, validate and fingerprint catalogs, queries and judgments.

Loaders (instantiated from ``conf/dataset/*.yaml``) all return :class:`EvalData`:

- :func:`evalkit.data.beir.load_beir` - a BEIR folder (corpus.jsonl, queries.jsonl,
  qrels/<split>.tsv)
- :func:`evalkit.data.tabular.load_tabular` - parquet / jsonl / csv files with configurable columns
- :func:`evalkit.data.hub.load_hub` - Hugging Face Hub datasets (or local dataset folders)

Import the loader modules directly; this package only re-exports the boundary types.
"""

from evalkit.data.schema import Catalog, EvalData, Judgments, Queries

__all__ = ["Catalog", "EvalData", "Judgments", "Queries"]
