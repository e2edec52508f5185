"""What the vector checks embed through: the model version's raw vectors, one role, no retries.

Prefixes applied, no chunking, truncation or normalisation by evalkit; a refusal is a
:class:`ProbeError`.  OpenAI-compatible versions are called over raw HTTP (status codes seen,
``dimensions`` sent), in-process models through ``version.embed(texts, role, raw=True)``.

>>> import numpy as np
>>> from evalkit.embed.model_version import ModelVersion
>>> class Toy(ModelVersion):
...     backend = "toy"
...     def _embed_batch(self, texts, role, dimensions):
...         return np.ones((len(texts), 3), dtype=np.float32)
>>> t = target_for(Toy("toy"), "query")
>>> t.supports_dimensions, t.embed(["a", "b"]).shape
(False, (2, 3))
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import numpy as np

from evalkit.checks.endpoint import Endpoint, MalformedResponse, Reply, decode_embeddings
from evalkit.embed.model_version import ModelVersion
from evalkit.embed.openai_backend import OpenAIEmbedder
from evalkit.embed.tls import tls_context


class ProbeError(Exception):
    """The target refused or failed a request; ``status`` is the HTTP status if there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        self.message = message
        super().__init__(f"HTTP {status}: {message}" if status is not None else message)


def is_openai(version: ModelVersion) -> TypeGuard[OpenAIEmbedder]:
    """Whether ``version`` is served by an OpenAI-compatible HTTP endpoint."""
    return isinstance(version, OpenAIEmbedder)


def api_key_of(version: OpenAIEmbedder) -> str:
    """The key the version would send (its env variable, ``"EMPTY"`` if unset); never logged."""
    return os.environ.get(version.api_key_env, "") or "EMPTY"


@dataclass
class Target:
    """Raw vectors of one model version in one role; counts the requests it makes."""

    version: Any
    role: str
    endpoint: Endpoint | None = None
    local_requests: int = field(default=0, init=False)
    #: ``usage.prompt_tokens`` of the last successful HTTP request (None: not reported / local).
    last_tokens: int | None = field(default=None, init=False)
    #: The last HTTP reply (what :func:`~evalkit.checks.api_contract.check_over_long` can reuse).
    last_reply: Reply | None = field(default=None, init=False)

    @property
    def name(self) -> str:
        return str(self.version.name)

    @property
    def requests(self) -> int:
        return self.endpoint.requests if self.endpoint is not None else self.local_requests

    @property
    def supports_dimensions(self) -> bool:
        """Whether a ``dimensions`` value reaches the backend (only HTTP endpoints take one)."""
        return self.endpoint is not None

    def embed(self, texts: list[str], *, dimensions: int | None = None) -> np.ndarray:
        """Raw float32 ``(len(texts), d)`` vectors, or :class:`ProbeError`."""
        if self.endpoint is None:
            self.local_requests += 1
            try:
                out = self.version.embed(list(texts), self.role, raw=True)
            except Exception as err:  # the backend's own failure is what the check reports
                raise ProbeError(f"{type(err).__name__}: {err}") from err
            return np.asarray(out, dtype=np.float32)
        reply = self.post(texts, dimensions=dimensions)
        self.last_reply = reply
        if not reply.ok:
            raise ProbeError(reply.message() or reply.summary(), reply.status)
        try:
            out = decode_embeddings(reply.body)
        except MalformedResponse as err:
            raise ProbeError(f"malformed response: {err}", reply.status) from err
        if out.shape[0] != len(texts):
            raise ProbeError(
                f"{out.shape[0]} embeddings returned for {len(texts)} inputs", reply.status
            )
        self.last_tokens = prompt_tokens(reply.body)
        return out

    def post(self, texts: list[str], *, dimensions: int | None = None, **extra: Any) -> Reply:
        """The raw HTTP reply for ``texts`` as the version would send them (HTTP targets only)."""
        v = self.version
        prefix = v.prefix(self.role)
        body: dict[str, Any] = {"encoding_format": v.encoding_format}
        if input_type := v.input_type(self.role):
            body["input_type"] = input_type
        if dimensions is not None:
            body["dimensions"] = int(dimensions)
        body.update(extra)
        return self.endpoint.embeddings([prefix + t for t in texts], **body)


def prompt_tokens(body: Any) -> int | None:
    """``usage.prompt_tokens`` of an embeddings reply, if the server reports a positive count.

    >>> prompt_tokens({"usage": {"prompt_tokens": 12, "total_tokens": 12}}), prompt_tokens({})
    (12, None)
    """
    usage = body.get("usage") if isinstance(body, dict) else None
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return int(tokens) if isinstance(tokens, int | float) and tokens > 0 else None


def target_for(version: Any, role: str, *, timeout_s: float = 120.0) -> Target:
    """A :class:`Target` for ``version``: raw HTTP for OpenAI-compatible versions, else local."""
    if is_openai(version):
        endpoint = Endpoint(
            version.base_url,
            version.model,
            api_key=api_key_of(version),
            timeout_s=timeout_s,
            verify=tls_context(version.ca_bundle),
        )
        return Target(version, role, endpoint)
    return Target(version, role)
