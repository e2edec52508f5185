"""The key of a text in the vector store: its 16-byte blake2b digest (UTF-8).

>>> keys = text_key_array(["red shoe", "blue hat"])
>>> keys.shape, keys.dtype.name, bytes(keys[1]) == text_keys(["blue hat"])[0]
((2, 16), 'uint8', True)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

KEY_BYTES = 16


def text_keys(texts: Sequence[str]) -> list[bytes]:
    return [hashlib.blake2b(t.encode("utf-8"), digest_size=KEY_BYTES).digest() for t in texts]


def text_key_array(texts: Sequence[str]) -> np.ndarray:
    """:func:`text_keys` as one uint8 array (n, 16)."""
    joined = b"".join(text_keys(texts))
    return np.frombuffer(joined, dtype=np.uint8).reshape(len(texts), KEY_BYTES)
