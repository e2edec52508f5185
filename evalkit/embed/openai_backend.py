"""Model versions served by any OpenAI-compatible ``/v1/embeddings`` endpoint.

Batches go out concurrently, ``concurrency`` requests in flight per endpoint; every response is
validated and its ``usage`` tokens counted.  Of several endpoints (``base_urls``), one whose
retries run out is dropped and its batches go to the others.  How a request travels:
:mod:`evalkit.embed.openai_transport`.

>>> m = OpenAIEmbedder("e5_pool", base_url="http://a:8000/v1", model="e5",
...                    document_input_type="passage",
...                    base_urls=["http://a:8000/v1", "http://b:8000/v1/"])
>>> m.spec("document")["input_type"], m.endpoints, m.concurrency
('passage', ['http://a:8000/v1', 'http://b:8000/v1'], 8)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Sequence
from typing import Any, Unpack

import numpy as np
import openai

from evalkit.embed.model_version import (
    BatchCallback,
    ModelVersion,
    OptionValues,
    RequestLog,
    check_role,
    positive_int,
)
from evalkit.embed.openai_transport import (
    EndpointUnavailable,
    Exchange,
    Pacing,
    Transport,
    TransportSettings,
    run_sync,
)
from evalkit.embed.openai_transport import not_found_hint as not_found_hint  # re-exported
from evalkit.errors import ConfigError, EndpointError

log = logging.getLogger(__name__)

ENCODING_FORMATS = ("base64", "float")


def endpoint_urls(where: str, base_url: str, base_urls: Sequence[str] | None) -> list[str]:
    """The endpoints requests go to: ``base_urls`` (distinct, in order) or ``[base_url]``."""
    if base_urls is None:
        return [base_url]
    if isinstance(base_urls, str) or not list(base_urls):
        raise ConfigError(
            f"{where}.base_urls={base_urls!r} is invalid (expected null or a non-empty "
            "list of http(s) URLs)"
        )
    for u in base_urls:
        if not isinstance(u, str) or not u.startswith(("http://", "https://")):
            raise ConfigError(
                f"{where}.base_urls has {u!r} (expected http(s) URLs such as "
                "http://127.0.0.1:8000/v1)"
            )
    return list(dict.fromkeys(u.rstrip("/") for u in base_urls))


def usage_tokens(payload: Any) -> int | None:
    """``usage.prompt_tokens`` (else ``usage.total_tokens``) of a response, or None."""
    usage = payload.get("usage") if isinstance(payload, dict) else None
    if not isinstance(usage, dict):
        return None
    for key in ("prompt_tokens", "total_tokens"):
        value = usage.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


class OpenAIEmbedder(ModelVersion):
    """An embedding model behind an OpenAI-compatible ``/v1/embeddings`` endpoint.

    Args:
        base_url: the endpoint, e.g. ``http://127.0.0.1:8000/v1``; the version's identity.
        model: the served model name sent as ``model``.
        concurrency: requests in flight at once, per endpoint.
        send_dimensions: also send ``dimensions`` to the server (it must return exactly ``d``).
        query_input_type: sent as ``input_type`` with query requests (server-side prefixes).
        document_input_type: sent as ``input_type`` with catalog requests.
        api_key_env: the environment variable holding the key (``EMPTY`` if unset).
        encoding_format: ``base64`` (compact) or ``float``.
        max_retries: retries on 429, 5xx, timeouts and connection errors.
        retry_concurrency: retried requests in flight at once (a timed-out one is split).
        retry_initial_s: the first backoff in seconds; doubles per retry, with jitter.
        retry_max_s: the longest computed backoff in seconds.
        timeout_s: the per-request timeout in seconds.
        base_urls: several endpoints serving the same model; null = ``base_url`` alone.
        ca_bundle: a PEM file of an internal CA trusted (besides the system's) for https.
    """

    backend = "openai"
    calls_endpoint = True

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        model: str,
        concurrency: int = 4,
        send_dimensions: bool = False,
        query_input_type: str | None = None,
        document_input_type: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        encoding_format: str = "base64",
        max_retries: int = 5,
        retry_concurrency: int = 1,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 8.0,
        timeout_s: float = 60.0,
        base_urls: Sequence[str] | None = None,
        ca_bundle: str | None = None,
        **options: Unpack[OptionValues],
    ) -> None:
        super().__init__(name, **options)
        where = f"models.{name}"
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{where}.base_url={base_url!r} is invalid (expected an http(s) URL such as "
                "http://127.0.0.1:8000/v1)"
            )
        self.base_url = base_url.rstrip("/")
        if not isinstance(model, str) or not model:
            raise ConfigError(
                f"{where}.model={model!r} is invalid (expected the served model name)"
            )
        self.model = model
        self._concurrency = positive_int(f"{where}.concurrency", concurrency, 1)
        if encoding_format not in ENCODING_FORMATS:
            raise ConfigError(
                f"{where}.encoding_format={encoding_format!r} is unknown (expected base64 or float)"
            )
        self.encoding_format = str(encoding_format)
        settings = TransportSettings.checked(
            where,
            api_key_env=api_key_env,
            max_retries=max_retries,
            retry_concurrency=retry_concurrency,
            retry_initial_s=retry_initial_s,
            retry_max_s=retry_max_s,
            timeout_s=timeout_s,
            ca_bundle=ca_bundle,
        )
        self.endpoints = endpoint_urls(where, self.base_url, base_urls)
        self.transport = Transport(settings, name, self.base_url)
        self.send_dimensions = bool(send_dimensions)
        self.query_input_type = query_input_type or None
        self.document_input_type = document_input_type or None

    @property
    def api_key_env(self) -> str:
        return self.transport.settings.api_key_env

    @property
    def ca_bundle(self) -> str | None:
        return self.transport.settings.ca_bundle

    @property
    def concurrency(self) -> int:
        """Requests in flight at once over all endpoints."""
        return self._concurrency * len(self.endpoints)

    def _sends_dimensions(self) -> bool:
        return self.send_dimensions

    def with_load(self, batch_size: int, concurrency: int) -> ModelVersion:
        clone = super().with_load(batch_size, concurrency)
        clone._concurrency = int(concurrency)  # type: ignore[attr-defined]
        return clone

    def input_type(self, role: str) -> str | None:
        return self.query_input_type if check_role(role) == "query" else self.document_input_type

    def _backend_spec(self, role: str) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "model": self.model,
            "input_type": self.input_type(role),
            "send_dimensions": self.send_dimensions,
        }

    def _backend_params(self) -> dict[str, Any]:
        settings = self.transport.settings
        return {
            "base_url": self.base_url,
            "model": self.model,
            "send_dimensions": self.send_dimensions,
            "query_input_type": self.query_input_type,
            "document_input_type": self.document_input_type,
            "encoding_format": self.encoding_format,
            "api_key_env": settings.api_key_env,
            "max_retries": settings.max_retries,
            "retry_concurrency": settings.retry_concurrency,
            "timeout_s": settings.timeout_s,
            **({"base_urls": self.endpoints} if self.endpoints != [self.base_url] else {}),
        }

    def _label(self) -> str:
        return f"model version {self.name!r} ({self.base_url}, model {self.model!r})"

    def _embed_batch(self, texts: list[str], role: str, dimensions: int | None) -> np.ndarray:
        """One request (the batch loop, :meth:`embed_batches`, does not use it)."""
        return run_sync(_BatchJob(self, [], role, dimensions, RequestLog()).one(texts))

    def embed_batches(
        self,
        batches: Sequence[Sequence[str]],
        role: str,
        *,
        on_batch: BatchCallback,
        raw: bool = False,
        dimensions: int | None = None,
        request_log: RequestLog | None = None,
        finalize: bool = True,
    ) -> RequestLog:
        """Like :meth:`ModelVersion.embed_batches`, with ``concurrency`` batches in flight."""
        check_role(role)
        dims = self._effective_dimensions(dimensions)
        rlog = request_log if request_log is not None else RequestLog()
        if batches:
            run_sync(_BatchJob(self, batches, role, dims, rlog, on_batch, raw, finalize).run())
        return rlog

    def _request_body(self, texts: list[str], role: str, sent_dims: int | None) -> dict[str, Any]:
        """The keyword arguments of ``embeddings.create`` for ``texts``."""
        kwargs: dict[str, Any] = {
            "model": self.model,
            "input": texts,
            "encoding_format": self.encoding_format,
        }
        if sent_dims is not None:
            kwargs["dimensions"] = sent_dims
        input_type = self.input_type(role)
        if input_type:
            kwargs["extra_body"] = {"input_type": input_type}
        return kwargs

    def _parse(
        self,
        body: bytes,
        n: int,
        sent_dims: int | None,
        raw: bool,
        where: str,
        rlog: RequestLog,
    ) -> np.ndarray:
        """Validate one response body; rows reordered by ``index``; its ``usage`` counted."""

        def fail(problem: str, expected: str) -> EndpointError:
            return EndpointError(f"{self._label()}, {where}: {problem} (expected {expected})")

        try:
            payload = json.loads(body)
        except ValueError as err:
            raise fail(f"response is not JSON ({err})", "a JSON object") from err
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            raise fail("response has no 'data' list", "a JSON object with a 'data' list")
        if len(data) != n:
            raise fail(f"{len(data)} embeddings returned for {n} inputs", f"{n} embeddings")
        matrix = self._rows_by_index(data, n, fail)
        rlog.add_usage(usage_tokens(payload))
        if raw:
            return matrix
        if sent_dims is not None and matrix.shape[1] != sent_dims:
            raise fail(
                f"dimensions={sent_dims} was sent but the vectors have {matrix.shape[1]} "
                "dimensions (set send_dimensions: false to truncate client-side)",
                f"{sent_dims} dimensions",
            )
        finite = np.isfinite(matrix).all(axis=1)
        if not finite.all():
            bad = np.flatnonzero(~finite)
            raise fail(
                f"{bad.size} embedding(s) contain NaN or infinite values "
                f"(first at input {bad[0] + 1} of the request)",
                "finite numbers",
            )
        return matrix

    def _rows_by_index(self, data: list[Any], n: int, fail: Any) -> np.ndarray:
        """The (n, d) matrix of ``data``'s embeddings, row ``item["index"]`` each."""
        index = np.empty(n, dtype=np.int64)
        rows: list[np.ndarray] = []
        for k, item in enumerate(data):
            if not isinstance(item, dict):
                raise fail(f"data[{k}] is {type(item).__name__}", "an object per embedding")
            idx = item.get("index")
            if isinstance(idx, bool) or not isinstance(idx, int):
                raise fail(f"data[{k}].index is {idx!r}", "an integer index per embedding")
            index[k] = idx
            rows.append(self._decode(item.get("embedding"), k, fail))
        if not np.array_equal(np.sort(index), np.arange(n)):
            raise fail(
                f"indices {sorted(index.tolist())[:8]}... are not a permutation of 0..{n - 1}",
                "each input index exactly once",
            )
        dims = sorted({r.shape[0] for r in rows})
        if len(dims) != 1:
            raise fail(f"embeddings have different dimensions {dims}", "one dimension")
        matrix = np.empty((n, dims[0]), dtype=np.float32)
        matrix[index] = np.stack(rows)
        return matrix

    @staticmethod
    def _decode(value: Any, k: int, fail: Any) -> np.ndarray:
        what = f"data[{k}].embedding"
        if isinstance(value, str):
            try:
                buf = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError) as err:
                raise fail(f"{what} is not valid base64 ({err})", "base64 float32") from err
            if len(buf) % 4 or not buf:
                raise fail(f"{what} decodes to {len(buf)} bytes", "a non-empty float32 array")
            return np.frombuffer(buf, dtype="<f4")
        if isinstance(value, list) and value:
            try:
                vector = np.asarray(value, dtype=np.float32)
            except (TypeError, ValueError) as err:
                raise fail(f"{what} has non-numbers ({err})", "a list of numbers") from err
            if vector.ndim == 1:
                return vector
        raise fail(f"{what} is {type(value).__name__}", "a non-empty list of numbers or base64")


class _BatchJob:
    """The batches of one ``embed_batches`` call spread over the version's endpoints:
    ``concurrency`` workers per endpoint take batches from one stack; an endpoint whose retry
    budget runs out (:class:`EndpointUnavailable`) is dropped and its batch handed back to the
    others; the first other error stops every worker after its current batch."""

    def __init__(
        self,
        version: OpenAIEmbedder,
        batches: Sequence[Sequence[str]],
        role: str,
        dims: int | None,
        rlog: RequestLog,
        on_batch: BatchCallback = lambda i, vectors: None,
        raw: bool = False,
        finalize: bool = False,
    ) -> None:
        self.version, self.batches, self.role, self.dims = version, batches, role, dims
        self.rlog, self.on_batch, self.raw, self.finalize = rlog, on_batch, raw, finalize
        self.pacing = Pacing(version.batch_size, version.transport.settings.retry_concurrency)
        self.todo = list(enumerate(batches))[::-1]  # a stack: a failed endpoint's batch goes back
        self.failures: list[BaseException] = []
        self.gone: dict[str, EndpointUnavailable] = {}

    def exchange(self, client: openai.AsyncOpenAI, url: str, where: str) -> Exchange:
        """The requests of one batch to ``url``: their body, and how answers are read."""
        v = self.version
        sent_dims = self.dims if v.send_dimensions else None
        return Exchange(
            client=client,
            url=url,
            label=v._label() if url == v.base_url else f"{v._label()} via {url}",
            where=where,
            rlog=self.rlog,
            pacing=self.pacing,
            body=lambda texts: v._request_body(texts, self.role, sent_dims),
            parse=lambda body, texts: v._parse(
                body, len(texts), sent_dims, self.raw, where, self.rlog
            ),
            join=lambda parts: v._concat(parts, f"the split requests of {where}"),
        )

    async def one(self, texts: list[str]) -> np.ndarray:
        """One request of ``texts`` to ``base_url``."""
        client = self.version.transport.client(self.version.base_url)
        try:
            ex = self.exchange(client, self.version.base_url, "request")
            return await self.version.transport.request(ex, texts)
        finally:
            await client.close()

    async def run(self) -> None:
        """Every batch embedded and handed to ``on_batch``, or the first failure raised."""
        v = self.version
        clients = {url: v.transport.client(url) for url in v.endpoints}
        n_workers = min(v._concurrency, len(self.batches))
        try:
            # Rounds: a batch handed back by a dropped endpoint after the others' workers finished
            # is picked up by a new round on the endpoints still alive.
            while self.todo and not self.failures:
                alive = [u for u in v.endpoints if u not in self.gone]
                if not alive:
                    self.failures.append(next(iter(self.gone.values())))
                    break
                await asyncio.gather(
                    *(self._work(u, clients[u]) for u in alive for _ in range(n_workers))
                )
        finally:
            for client in clients.values():
                await client.close()
        if self.failures:
            raise self.failures[0]

    async def _batch(
        self, client: openai.AsyncOpenAI, url: str, i: int, batch: Sequence[str]
    ) -> np.ndarray:
        """One batch, sent as requests of at most ``batch_size`` (or the pacing's limit) texts."""
        v = self.version
        pieces, owner = v._prepare(batch, self.role, self.raw)
        where_batch = f"batch {i + 1}/{len(self.batches)}"
        parts = []
        start = 0
        while start < len(pieces):
            chunk = pieces[start : start + min(v.batch_size, self.pacing.limit)]
            start += len(chunk)
            where = f"{where_batch} ({len(chunk)} inputs, first {chunk[0][:40]!r})"
            parts.append(await v.transport.request(self.exchange(client, url, where), chunk))
        return v._finish(parts, owner, len(batch), self.raw, self.dims, where_batch, self.finalize)

    async def _work(self, url: str, client: openai.AsyncOpenAI) -> None:
        """One worker on ``url``: batches off the stack until none is left or it must stop."""
        while self.todo and not self.failures and url not in self.gone:
            i, batch = self.todo.pop()  # each batch is taken by one worker
            try:
                self.on_batch(i, await self._batch(client, url, i, batch))
            except EndpointUnavailable as err:
                self.rlog.count(url, "failures")
                if url not in self.gone:
                    self.gone[url] = err
                    log.warning("%s: endpoint %s dropped (%s)", self.version.name, url, err)
                if len(self.gone) == len(self.version.endpoints):
                    self.failures.append(err)
                    return
                self.todo.append((i, batch))  # another endpoint takes it
                return
            except BaseException as err:  # first error stops the others after their batch
                if isinstance(err, EndpointError):
                    self.rlog.count(url, "failures")
                self.failures.append(err)
                return
