"""evalkit.embed: model versions, their vectors, and the on-disk vector cache.

>>> from evalkit.embed import UseM3, embed_texts
>>> UseM3("use_m3", threads=1).embed(["a red shoe"], "document").shape
(1, 512)
>>> embed_texts(UseM3("use_m3", threads=1), ["a", "b", "a"], "query", progress=False).n_unique
2
"""

from evalkit.embed.cache import CacheSettings, CacheStats, VectorCache
from evalkit.embed.chunking import Chunking
from evalkit.embed.embed_pass import embed_texts, vectors_of
from evalkit.embed.local_models import E5Small, SentenceTransformerModel, UseM3
from evalkit.embed.model_version import ROLES, EmbeddingResult, ModelOptions, ModelVersion

__all__ = [
    "ROLES",
    "CacheSettings",
    "CacheStats",
    "VectorCache",
    "embed_texts",
    "vectors_of",
    "Chunking",
    "E5Small",
    "EmbeddingResult",
    "ModelOptions",
    "ModelVersion",
    "OpenAIEmbedder",
    "SentenceTransformerModel",
    "UseM3",
]


def __getattr__(name: str):
    """``OpenAIEmbedder`` is imported on first use: the openai client costs ~2 s of imports
    that a run with local model versions does not need."""
    if name == "OpenAIEmbedder":
        from evalkit.embed.openai_backend import OpenAIEmbedder

        return OpenAIEmbedder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
