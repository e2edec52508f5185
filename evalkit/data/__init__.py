"""evalkit.data: load, validate and fingerprint catalogs, queries and judgments.

The loaders (``conf/dataset/*.yaml``: ``beir``, ``tabular``, ``hub``, ``trec``, ``demo``) all
return :class:`EvalData`; import their modules directly, this package re-exports the boundary types.
"""

from evalkit.data.schema import Catalog, EvalData, Judgments, Queries

__all__ = ["Catalog", "EvalData", "Judgments", "Queries"]
