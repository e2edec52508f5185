"""What the checks talk to: a model version's raw vectors in one role, no retries, prefixes applied.

OpenAI-compatible versions are called over raw HTTP (:class:`Endpoint`: one request per call, never
raising for HTTP errors), in-process models through ``version.embed(texts, role, raw=True)``; a
refusal is a :class:`ProbeError`.

>>> ep = Endpoint("http://127.0.0.1:8000/v1", "e5", api_key="EMPTY")
>>> ep.root, ep.url("/embeddings"), ep.root_url("/health")
('http://127.0.0.1:8000', 'http://127.0.0.1:8000/v1/embeddings', 'http://127.0.0.1:8000/health')
>>> decode_embeddings({"data": [{"index": 1, "embedding": [0.0, 1.0]},
...                             {"index": 0, "embedding": "AACAPwAAAAA="}]}).tolist()
[[1.0, 0.0], [0.0, 1.0]]
>>> ep.close()
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

import base64
import binascii
import json
import os
import ssl
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import httpx2
import numpy as np

from evalkit.embed.model_version import ModelVersion
from evalkit.embed.openai_backend import OpenAIEmbedder
from evalkit.embed.tls import tls_context
from evalkit.redact import redact

#: Sentinel: send the endpoint's configured key (``Authorization: Bearer <key>``).
CONFIGURED = "__configured__"


class MalformedResponse(ValueError):
    """A 200 answer whose body is not a valid embeddings list."""


@dataclass(frozen=True)
class Reply:
    """One HTTP exchange: ``status`` is None when no response arrived (``error`` says why)."""

    status: int | None
    body: Any
    text: str
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200

    def message(self, limit: int = 300) -> str:
        """The server's error message (OpenAI's ``error.message``) or raw text, keys redacted."""
        body = self.body if isinstance(self.body, dict) else {}
        inner = body.get("error", body.get("detail", body.get("message")))
        if self.error:
            text = self.error
        elif isinstance(inner, dict) and inner.get("message"):
            text = str(inner["message"])
        elif isinstance(inner, str | list):
            text = str(inner)
        else:
            text = self.text
        return redact(text[:limit])

    def summary(self) -> str:
        """``"HTTP 400: <message>"`` / ``"HTTP 200"`` / ``"no response: <error>"``."""
        if self.status is None:
            return f"no response: {self.error}"
        if self.ok:
            return "HTTP 200"
        return f"HTTP {self.status}: {self.message(160)}"


def decode_embeddings(body: Any) -> np.ndarray:
    """The ``(n, d)`` float32 matrix of an embeddings response in ``index`` order (float lists or
    base64 little-endian float32); else :class:`MalformedResponse`."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or not data:
        raise MalformedResponse("response has no non-empty 'data' list")
    rows: list[np.ndarray] = []
    index = []
    for k, item in enumerate(data):
        if not isinstance(item, dict):
            raise MalformedResponse(f"data[{k}] is {type(item).__name__}, not an object")
        idx = item.get("index", k)
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise MalformedResponse(f"data[{k}].index is {idx!r}, not an integer")
        index.append(idx)
        emb = item.get("embedding")
        if isinstance(emb, str):
            try:
                buf = base64.b64decode(emb, validate=True)
            except (binascii.Error, ValueError) as err:
                raise MalformedResponse(f"data[{k}].embedding is not base64 ({err})") from err
            if not buf or len(buf) % 4:
                raise MalformedResponse(f"data[{k}].embedding decodes to {len(buf)} bytes")
            rows.append(np.frombuffer(buf, dtype="<f4").astype(np.float32))
        elif isinstance(emb, list) and emb:
            try:
                rows.append(np.asarray(emb, dtype=np.float32).reshape(-1))
            except (TypeError, ValueError) as err:
                raise MalformedResponse(f"data[{k}].embedding has non-numbers ({err})") from err
        else:
            raise MalformedResponse(f"data[{k}].embedding is {type(emb).__name__}")
    n = len(rows)
    if sorted(index) != list(range(n)):
        raise MalformedResponse(f"indices {sorted(index)[:8]} are not 0..{n - 1}")
    dims = sorted({r.shape[0] for r in rows})
    if len(dims) > 1:
        raise MalformedResponse(f"embeddings have different dimensions {dims}")
    out = np.empty((n, dims[0]), dtype=np.float32)
    out[np.asarray(index)] = np.stack(rows)
    return out


class Endpoint:
    """One OpenAI-compatible server: ``base_url`` ends in ``/v1`` (``root`` is without it)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str = "EMPTY",
        timeout_s: float = 120.0,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.root = self.base_url.removesuffix("/v1")
        self.model = model
        self._api_key = api_key
        self._client = httpx2.Client(timeout=timeout_s, verify=verify)
        self.requests = 0
        self.last_error: Exception | None = None  # of the last request that got no answer

    def close(self) -> None:
        self._client.close()

    def url(self, path: str) -> str:
        return self.base_url + path

    def root_url(self, path: str) -> str:
        return self.root + path

    def request(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        auth: str | None = CONFIGURED,
    ) -> Reply:
        """One request; ``auth`` is a key, ``CONFIGURED`` (the endpoint's) or None (no header)."""
        self.requests += 1
        key = self._api_key if auth == CONFIGURED else auth
        headers = {} if auth is None else {"Authorization": f"Bearer {key}"}
        try:
            r = self._client.request(method, url, json=body, headers=headers)
        except httpx2.HTTPError as err:
            self.last_error = err
            return Reply(None, None, "", f"{type(err).__name__}: {err}")
        text = r.text
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        return Reply(r.status_code, parsed, text[:2000])

    def get(self, url: str, *, auth: str | None = CONFIGURED) -> Reply:
        return self.request("GET", url, auth=auth)

    def embeddings(
        self,
        inputs: Any,
        *,
        model: str | None = None,
        url: str | None = None,
        auth: str | None = CONFIGURED,
        **extra: Any,
    ) -> Reply:
        """POST ``{"model", "input", **extra}`` to ``/v1/embeddings`` (or ``url``)."""
        body = {"model": self.model if model is None else model, "input": inputs, **extra}
        return self.request("POST", url or self.url("/embeddings"), body=body, auth=auth)


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
    last_tokens: int | None = field(default=None, init=False)  # the last usage.prompt_tokens
    last_reply: Reply | None = field(default=None, init=False)

    @property
    def name(self) -> str:
        return str(self.version.name)

    @property
    def requests(self) -> int:
        return self.endpoint.requests if self.endpoint is not None else self.local_requests

    @property
    def supports_dimensions(self) -> bool:
        return self.endpoint is not None

    @property
    def extra(self) -> dict[str, Any]:
        """Request-body fields the version always sends (``input_type``)."""
        it = self.version.input_type(self.role)
        return {"input_type": it} if it else {}

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
        """The raw HTTP reply for ``texts`` as the version would send them."""
        v = self.version
        prefix = v.prefix(self.role)
        body: dict[str, Any] = {"encoding_format": v.encoding_format, **self.extra}
        if dimensions is not None:
            body["dimensions"] = int(dimensions)
        body.update(extra)
        return self.endpoint.embeddings([prefix + t for t in texts], **body)


def prompt_tokens(body: Any) -> int | None:
    """``usage.prompt_tokens`` of an embeddings reply, if positive.

    >>> prompt_tokens({"usage": {"prompt_tokens": 12, "total_tokens": 12}}), prompt_tokens({})
    (12, None)
    """
    usage = body.get("usage") if isinstance(body, dict) else None
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return int(tokens) if isinstance(tokens, int | float) and tokens > 0 else None


def target_for(version: Any, role: str, *, timeout_s: float = 120.0) -> Target:
    """A :class:`Target` for ``version``: raw HTTP for OpenAI-compatible versions, else local."""
    if not is_openai(version):
        return Target(version, role)
    key, tls = api_key_of(version), tls_context(version.ca_bundle)
    endpoint = Endpoint(
        version.base_url, version.model, api_key=key, timeout_s=timeout_s, verify=tls
    )
    return Target(version, role, endpoint)
