"""evalkit.embed: model versions, their vectors, and the on-disk vector cache.

>>> from evalkit.embed import E5Small
>>> E5Small("e5_small").embed(["a red shoe"], "document").shape
(1, 384)
"""

from evalkit.embed.base import ROLES, EmbeddingResult, ModelVersion
from evalkit.embed.chunking import Chunking
from evalkit.embed.local import E5Small, SentenceTransformerModel, UseM3
from evalkit.embed.openai_backend import OpenAIEmbedder

__all__ = [
    "ROLES",
    "Chunking",
    "E5Small",
    "EmbeddingResult",
    "ModelVersion",
    "OpenAIEmbedder",
    "SentenceTransformerModel",
    "UseM3",
]
