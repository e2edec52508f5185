"""HTTP transport to OpenAI-compatible ``/v1/embeddings`` endpoints: requests, retries, backoff.

Transient failures (408 / 429 / 5xx, timeouts, connection errors) are retried after an exponential
backoff with jitter or the server's ``retry-after``; a request of several texts that timed out is
retried in halves (:class:`Pacing`), at most ``retry_concurrency`` retries in flight.  Every outcome
is counted in the call's :class:`~evalkit.embed.model_version.RequestLog`; errors are one line,
the API key (read from ``api_key_env`` per client, never stored) masked (:mod:`evalkit.redact`).

>>> settings = TransportSettings.checked("models.e5", timeout_s=5.0, max_retries=2)
>>> settings.timeout_s, settings.max_retries, settings.retry_concurrency
(5.0, 2, 1)
>>> Transport(settings, "e5", "http://127.0.0.1:8000/v1").backoff_s(2, retry_after=0.25)
0.25
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import time
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np
import openai

from evalkit.embed.model_version import RequestLog, positive_int
from evalkit.embed.tls import certificate_problem, check_ca_bundle, tls_context
from evalkit.errors import ConfigError, EndpointError
from evalkit.redact import redact

log = logging.getLogger(__name__)

T = TypeVar("T")

# Longest server-directed wait honoured (seconds).
MAX_RETRY_AFTER_S = 120.0


class EndpointUnavailable(EndpointError):
    """An endpoint's retry budget ran out on transient failures (another endpoint may serve)."""


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


@dataclass(frozen=True)
class TransportSettings:
    """How requests are sent (``models.<name>.<key>`` in the YAML)."""

    api_key_env: str = "OPENAI_API_KEY"
    max_retries: int = 5
    retry_concurrency: int = 1
    retry_initial_s: float = 0.5
    retry_max_s: float = 8.0
    timeout_s: float = 60.0
    ca_bundle: str | None = None

    @classmethod
    def checked(cls, where: str, **values: Any) -> TransportSettings:
        """``values`` over the defaults, each checked (errors name ``<where>.<key>``)."""
        raw = cls(**values)
        positive_int(f"{where}.retry_concurrency", raw.retry_concurrency, 1)
        positive_int(f"{where}.max_retries", raw.max_retries, 0)
        seconds = {}
        for key in ("retry_initial_s", "retry_max_s", "timeout_s"):
            value = getattr(raw, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"{where}.{key}={value!r} is invalid (expected a number > 0)")
            seconds[key] = float(value)
        if not isinstance(raw.api_key_env, str) or not raw.api_key_env:
            raise ConfigError(
                f"{where}.api_key_env={raw.api_key_env!r} is invalid (expected a variable name)"
            )
        return replace(raw, ca_bundle=check_ca_bundle(raw.ca_bundle, where), **seconds)

    def api_key(self) -> str:
        """The key, read from the environment now (never stored); ``"EMPTY"`` if unset."""
        return os.environ.get(self.api_key_env) or "EMPTY"


class Pacing:
    """Shared by the concurrent requests of one call: the largest request size (halved after a
    timeout) and the slots for retried requests."""

    def __init__(self, limit: int, retry_concurrency: int) -> None:
        self.limit = limit
        self.retry_slots = asyncio.Semaphore(retry_concurrency)

    def shrink(self, n: int) -> int:
        """After a request of ``n`` texts timed out: requests of at most ``n // 2`` (>= 1)."""
        self.limit = max(1, min(self.limit, n // 2))
        return self.limit


@dataclass(frozen=True)
class Exchange:
    """One batch's requests to one endpoint: client, URL, error prefix (``label``, ``where``), the
    call's log and pacing; ``body`` of texts, ``parse`` of a response, ``join`` of split parts."""

    client: openai.AsyncOpenAI
    url: str
    label: str
    where: str
    rlog: RequestLog
    pacing: Pacing
    body: Callable[[list[str]], dict[str, Any]]
    parse: Callable[[bytes, list[str]], np.ndarray]
    join: Callable[[list[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Failed:
    """One failed attempt: the problem (one line) and whether and when a retry may help."""

    problem: str
    retryable: bool
    retry_after: float | None = None
    timed_out: bool = False


class Transport:
    """Sends the requests of model version ``name`` (identity URL ``base_url``)."""

    def __init__(self, settings: TransportSettings, name: str, base_url: str) -> None:
        self.settings = settings
        self.name = name
        self.base_url = base_url

    def client(self, url: str) -> openai.AsyncOpenAI:
        """An async client of ``url`` (the key read now; the retries are ours)."""
        return openai.AsyncOpenAI(
            base_url=url,
            api_key=self.settings.api_key(),
            max_retries=0,
            timeout=self.settings.timeout_s,
            http_client=openai.DefaultAsyncHttpxClient(verify=tls_context(self.settings.ca_bundle)),
        )

    async def request(self, ex: Exchange, texts: list[str], attempt: int = 0) -> np.ndarray:
        """POST ``texts``, retrying transient failures (a timed-out one as smaller requests, each
        with the remaining budget); the parsed (n, d) float32 matrix."""
        while True:
            outcome = await self._attempt(ex, texts, attempt)
            if not isinstance(outcome, Failed):
                return ex.parse(outcome, texts)
            self._give_up_unless_retryable(ex, outcome, attempt)
            delay = self.backoff_s(attempt, outcome.retry_after)
            attempt += 1
            smaller = self._count_retry(ex, outcome, attempt, delay, len(texts))
            await asyncio.sleep(delay)
            if smaller:
                return await self._split(ex, texts, smaller, attempt)

    async def _attempt(self, ex: Exchange, texts: list[str], attempt: int) -> bytes | Failed:
        """One POST: the response body (counted with its latency), or what failed (counted)."""
        kwargs = ex.body(texts)
        t0 = time.perf_counter()
        try:
            async with ex.pacing.retry_slots if attempt else contextlib.nullcontext():
                response = await ex.client.embeddings.with_raw_response.create(**kwargs)
            body = response.content
        except openai.APIStatusError as err:
            failed = self._status_failure(err, ex.url)
        except openai.APITimeoutError:
            failed = Failed(f"timed out after {self.settings.timeout_s:g} s", True, timed_out=True)
        except openai.APIConnectionError as err:
            certificate = certificate_problem(err, ex.url, f"models.{self.name}")
            if certificate is not None:  # final: a retry meets the same certificate
                raise EndpointError(f"{ex.label}, {ex.where}: {certificate}") from err
            failed = Failed(f"connection failed ({connection_cause(err)})", True)
        else:
            ex.rlog.latencies_s.append(time.perf_counter() - t0)
            ex.rlog.count(ex.url, "requests")
            return body
        ex.rlog.failed += 1
        problem = redact(failed.problem, [os.environ.get(self.settings.api_key_env) or ""])
        return Failed(problem, failed.retryable, failed.retry_after, failed.timed_out)

    def _status_failure(self, err: openai.APIStatusError, url: str) -> Failed:
        """An HTTP error status: 408, 429 and 5xx may pass on a retry; a 404 says what to try."""
        status = err.status_code
        problem = f"HTTP {status}: {error_message(err)}"
        if status == 404:
            key = "base_url" if url == self.base_url else "base_urls"
            problem = not_found_problem(err, url, not_found_hint(url, self.name, key))
        headers = err.response.headers if err.response is not None else None
        return Failed(problem, status in (408, 429) or status >= 500, retry_after_s(headers))

    def _give_up_unless_retryable(self, ex: Exchange, failed: Failed, attempt: int) -> None:
        """Raise the final error unless a retry may help and the budget allows it."""
        if failed.retryable and attempt < self.settings.max_retries:
            return
        tried = f" after {attempt + 1} attempts" if attempt else ""
        error = EndpointUnavailable if failed.retryable else EndpointError
        raise error(
            f"{ex.label}, {ex.where}: {failed.problem}{tried} "
            "(expected HTTP 200 with an embeddings list)"
        )

    def _count_retry(
        self, ex: Exchange, failed: Failed, attempt: int, delay: float, n: int
    ) -> int | None:
        """Count and log a retry; the smaller request size after a timeout (else None)."""
        ex.rlog.retries += 1
        ex.rlog.count(ex.url, "retries")
        smaller = ex.pacing.shrink(n) if failed.timed_out and n > 1 else None
        log.warning(
            "%s, %s: %s; retry %d/%d in %.2f s%s",
            ex.label,
            ex.where,
            failed.problem,
            attempt,
            self.settings.max_retries,
            delay,
            f" as requests of <= {smaller} texts" if smaller else "",
        )
        return smaller

    def backoff_s(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before retry ``attempt + 1``: the server's ``retry_after``, else
        ``retry_initial_s * 2**attempt`` capped at ``retry_max_s``, minus up to 25% jitter."""
        if retry_after is not None:
            return retry_after
        backoff = min(self.settings.retry_initial_s * 2.0**attempt, self.settings.retry_max_s)
        return backoff * (1.0 - 0.25 * random.random())

    async def _split(self, ex: Exchange, texts: list[str], size: int, attempt: int) -> np.ndarray:
        """``texts`` as requests of at most ``size``, one after another, joined in order."""
        parts = [
            await self.request(ex, texts[s : s + size], attempt) for s in range(0, len(texts), size)
        ]
        return ex.join(parts)


def not_found_hint(url: str, name: str, key: str = "base_url") -> str:
    """What to try after a 404 from ``<url>/embeddings``; ``key``: ``base_url`` or ``base_urls``."""
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
    return f"HTTP 404 from {requested}: {error_message(err)}; {hint}"


def error_message(err: openai.APIStatusError) -> str:
    """The server's message in an error response, at most 300 characters."""
    inner = err.body.get("error", err.body) if isinstance(err.body, dict) else None
    if isinstance(inner, dict) and inner.get("message"):
        return str(inner["message"])[:300]
    if isinstance(inner, dict) and isinstance(inner.get("detail"), str):
        inner = inner["detail"]
    return (inner if isinstance(inner, str) else str(err.message))[:300]


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
