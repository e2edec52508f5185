"""Model versions: the common options every embedding backend shares, and what a call returns.

A :class:`ModelVersion` turns texts into vectors for a ``role`` (``"query"`` or ``"document"``).
Backends implement one raw request (``_embed_batch``; the OpenAI backend overrides the batch loop
to run requests concurrently); this class adds the prefixes (also in ``raw`` mode), chunking,
``dimensions`` truncation and ``normalize`` (after pooling and truncation).  ``spec(role)`` is
everything that determines a vector (the cache key); ``params()`` is the flat, secret-free dict
logged to MLflow.  Options: docs/how-to/model-versions.md.

>>> import numpy as np
>>> class Toy(ModelVersion):
...     backend = "toy"
...     def _embed_batch(self, texts, role, dimensions):
...         return np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)
>>> toy = Toy("toy", dimensions=2, query_prefix="q: ")
>>> np.round(toy.embed(["ab"], "query").astype(float), 3).tolist()  # "q: ab": 5 chars; 2 dims
[[0.981, 0.196]]
>>> toy.spec("query")["prefix"], toy.params()["dimensions"]
('q: ', 2)
"""

from __future__ import annotations

import copy
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, TypedDict, Unpack

import numpy as np

from evalkit.embed.chunking import Chunking, pool, split
from evalkit.errors import ConfigError, DataError, EndpointError

ROLES = ("query", "document")

# Bump when evalkit's own post-processing (pooling, truncation, normalisation) changes, so cached
# vectors computed by an older evalkit are not reused.
SPEC_VERSION = 1

BatchCallback = Callable[[int, np.ndarray], None]


@dataclass(frozen=True)
class EmbeddingResult:
    """Vectors for the texts of one ``embed_texts`` call, in input order, plus how they were made.

    ``latencies_s`` holds one wall-clock latency per (successful) request made in this call, so
    ``n_requests == len(latencies_s)``; ``n_cached`` counts unique texts served from the cache.
    """

    vectors: np.ndarray  # float32 (n, d)
    latencies_s: np.ndarray  # float64 (n_requests,)
    n_requests: int
    n_cached: int
    batch_size: int
    concurrency: int
    dim: int
    n_retries: int = 0
    n_unique: int = 0
    wall_s: float = 0.0
    raw_dim: int | None = None  # dimension before client-side truncation (None: no texts)
    n_failed: int = 0  # requests that failed (error status, timeout, no connection)
    n_tokens: int | None = None  # tokens the server reported for these requests (None: unknown)


def reported_tokens(results: Sequence[EmbeddingResult]) -> int | None:
    """The tokens the server reported for the requests of ``results``, summed; None (unknown,
    never 0) when no request was made or some requests' responses did not report them.

    >>> def made(n, tokens):
    ...     return EmbeddingResult(np.zeros((0, 2)), np.zeros(n), n, 0, 8, 1, 2, n_tokens=tokens)
    >>> reported_tokens([made(2, 30), made(0, None)]), reported_tokens([made(2, 30), made(1, None)])
    (30, None)
    """
    made = [r for r in results if r.n_requests]
    if not made or any(r.n_tokens is None for r in made):
        return None
    return sum(int(r.n_tokens or 0) for r in made)


@dataclass
class RequestLog:
    """What a batch loop did: one latency per successful request, the number of requests that
    failed (HTTP error, timeout, connection) and how many of them were retried, and the tokens
    the responses reported (``usage``; servers that report none leave ``tokens`` unknown).

    >>> rlog = RequestLog(latencies_s=[0.1, 0.2])
    >>> rlog.add_usage(7); rlog.reported_tokens is None   # one of two requests reported usage
    True
    >>> rlog.add_usage(5); rlog.reported_tokens
    12
    """

    latencies_s: list[float] = field(default_factory=list)
    retries: int = 0
    failed: int = 0
    # per endpoint URL: {"requests": n, "retries": n, "failures": n} (OpenAI-compatible backends)
    endpoints: dict[str, dict[str, int]] = field(default_factory=dict)
    tokens: int = 0  # the tokens the responses reported, summed
    usage_reports: int = 0  # the responses that reported them

    def add_usage(self, tokens: int | None) -> None:
        """Count one response's reported tokens (None: it reported none)."""
        if tokens is not None:
            self.tokens += tokens
            self.usage_reports += 1

    @property
    def reported_tokens(self) -> int | None:
        """The tokens of this loop's requests when every successful request reported them;
        None when unknown (no request, or a response without ``usage``)."""
        n = len(self.latencies_s)
        return self.tokens if n and self.usage_reports == n else None

    def count(self, endpoint: str, what: str, n: int = 1) -> None:
        """Add ``n`` to one endpoint's ``requests`` / ``retries`` / ``failures`` counter."""
        row = self.endpoints.setdefault(endpoint, {"requests": 0, "retries": 0, "failures": 0})
        row[what] = row.get(what, 0) + n


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ConfigError(f"role={role!r} is unknown (expected 'query' or 'document')")
    return role


def check_texts(texts: Sequence[str], source: str = "texts") -> list[str]:
    """``texts`` as a list, or :class:`DataError` naming the first non-string (1-based row)."""
    if isinstance(texts, str):
        raise DataError(
            "got a single string", file=source, field="texts", expected="a list of strings"
        )
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        i = bad[0]
        raise DataError(
            f"text is {type(texts[i]).__name__} ({len(bad)} non-string text(s) in total)",
            file=source,
            row=i + 1,
            field="text",
            expected="a string",
        )
    return texts


def check_dimensions(value: Any, what: str = "dimensions") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what}={value!r} is invalid (expected null or an integer >= 1)")
    return value


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero), float32."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    np.maximum(norms, np.finfo(np.float32).tiny, out=norms)
    return (v / norms).astype(np.float32, copy=False)


def l2_normalize_in_place(vectors: np.ndarray) -> np.ndarray:
    """:func:`l2_normalize` on a writable float32 matrix, in place (same values).

    >>> l2_normalize_in_place(np.array([[3.0, 4.0]], dtype=np.float32)).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.maximum(norms, np.finfo(np.float32).tiny, out=norms)
    vectors /= norms
    return vectors


class OptionValues(TypedDict, total=False):
    """The shared options as keyword arguments (``models.<name>.<option>`` in the YAML)."""

    batch_size: int
    dimensions: int | None
    normalize: bool
    query_prefix: str
    document_prefix: str
    chunking: Chunking | Mapping[str, Any] | None
    revision: str | None


@dataclass(frozen=True)
class ModelOptions:
    """The options every model version has, whatever its backend (``models.<name>.<option>``).

    Attributes:
        batch_size: texts per request (with chunking: one batch of texts, its chunks split into
            requests of at most ``batch_size``).
        dimensions: keep the first ``d`` dimensions and re-normalise (client-side; sent to the
            server where the backend sends them); null = all.
        normalize: L2-normalise the final vectors (after pooling and truncation).
        query_prefix: text prepended to every query.
        document_prefix: text prepended to every catalog text.
        chunking: split long texts into windows of whitespace tokens and pool their vectors;
            null (or ``size: null``) = no chunking.
        revision: a free-form label (e.g. a deployment tag) that enters ``spec`` and
            ``params``: change it when a served model changes behind an unchanged name, so
            cached vectors are not reused.

    >>> ModelOptions.checked("e5", batch_size=8, chunking={"size": 128, "overlap": 16}).chunking
    Chunking(size=128, overlap=16, pooling='mean')
    >>> ModelOptions.checked("e5", ModelOptions(batch_size=32)).batch_size
    32
    >>> ModelOptions.checked("e5", batch_size=0)
    Traceback (most recent call last):
    ...
    evalkit.errors.ConfigError: models.e5.batch_size=0 is invalid (expected an integer >= 1)
    """

    batch_size: int = 64
    dimensions: int | None = None
    normalize: bool = True
    query_prefix: str = ""
    document_prefix: str = ""
    chunking: Chunking | None = None
    revision: str | None = None

    @classmethod
    def checked(
        cls, name: str, defaults: ModelOptions | None = None, **values: Unpack[OptionValues]
    ) -> ModelOptions:
        """The options of version ``name``: ``values`` over ``defaults``, each checked (a
        :class:`~evalkit.errors.ConfigError` names ``models.<name>.<option>``)."""
        unknown = [key for key in values if key not in OPTION_NAMES]
        if unknown:
            raise TypeError(
                f"ModelOptions.checked() got an unexpected keyword argument {unknown[0]!r}"
            )
        merged: dict[str, Any] = {f.name: getattr(defaults or cls(), f.name) for f in fields(cls)}
        merged.update(values)
        return cls(
            batch_size=_checked_batch_size(name, merged["batch_size"]),
            **_checked_prefixes(name, merged["query_prefix"], merged["document_prefix"]),
            dimensions=check_dimensions(merged["dimensions"], f"models.{name}.dimensions"),
            normalize=bool(merged["normalize"]),
            chunking=Chunking.from_config(merged["chunking"]),
            revision=None if merged["revision"] is None else str(merged["revision"]),
        )


OPTION_NAMES = tuple(f.name for f in fields(ModelOptions))


def _checked_batch_size(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"models.{name}.batch_size={value!r} is invalid (expected an integer >= 1)"
        )
    return value


def _checked_prefixes(name: str, query_prefix: Any, document_prefix: Any) -> dict[str, str]:
    prefixes = {"query_prefix": query_prefix, "document_prefix": document_prefix}
    for key, value in prefixes.items():
        if not isinstance(value, str):
            raise ConfigError(f"models.{name}.{key}={value!r} is invalid (expected a string)")
    return {key: value or "" for key, value in prefixes.items()}


class ModelVersion(ABC):
    """One embedding-model version: a backend plus evalkit's shared options.

    The shared options (:class:`ModelOptions`) arrive as flat keywords, as the YAML of
    ``conf/models/`` gives them, and are held in ``options``; ``batch_size``, ``dimensions``,
    ``normalize``, ``query_prefix``, ``document_prefix``, ``chunking`` and ``revision`` read
    them.  A backend declares only its own keywords and passes the rest on
    (``**options: Unpack[OptionValues]``).

    Args:
        name: the version's name (its ``conf/models/`` file's): the MLflow child run, reports,
            the cache spec.
    """

    backend: ClassVar[str] = "abstract"
    #: What the version can do, for the run and the engines (never sniffed with ``hasattr``):
    #: ``brings_vectors`` - it reads vectors the team brings, by id (:meth:`vectors_for`),
    #: and embeds nothing (no cache, no requests to time); ``calls_endpoint`` - it sends HTTP
    #: requests (its workers mostly wait on the network).
    brings_vectors: ClassVar[bool] = False
    calls_endpoint: ClassVar[bool] = False
    #: the model's input limit in tokens when known (None: by backend,
    #: :func:`evalkit.embed.chunking.input_limit_tokens`)
    max_input_tokens: int | None = None

    #: this backend's defaults of the shared options (a backend may start from others, e.g. a
    #: batch size that suits its engine)
    default_options: ClassVar[ModelOptions] = ModelOptions()
    #: the shared options this backend takes (a precomputed version takes no prefixes)
    takes_options: ClassVar[tuple[str, ...]] = OPTION_NAMES

    def __init__(self, name: str, **options: Unpack[OptionValues]) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(
                f"model version name={name!r} is invalid (expected a non-empty string)"
            )
        for key in options:
            if key not in self.takes_options:  # as Python says it of an undeclared keyword
                raise TypeError(
                    f"{type(self).__name__}.__init__() got an unexpected keyword argument {key!r}"
                )
        self.name = name
        self.options = ModelOptions.checked(name, self.default_options, **options)

    # ------------------------------------------------------------------ the shared options

    @property
    def batch_size(self) -> int:
        return self.options.batch_size

    @property
    def dimensions(self) -> int | None:
        return self.options.dimensions

    @property
    def normalize(self) -> bool:
        return self.options.normalize

    @property
    def query_prefix(self) -> str:
        return self.options.query_prefix

    @property
    def document_prefix(self) -> str:
        return self.options.document_prefix

    @property
    def chunking(self) -> Chunking | None:
        return self.options.chunking

    @property
    def revision(self) -> str | None:
        return self.options.revision

    # ------------------------------------------------------------------ capabilities

    def vectors_for(self, ids: list[str], role: str) -> EmbeddingResult:
        """The vectors of ``ids`` (in that order) of a version that ``brings_vectors``."""
        raise ConfigError(
            f"model version {self.name!r} embeds texts: it has no stored vectors to read by id"
        )

    def streams(self, role: str = "document") -> bool:
        """Whether ``engine=ray`` reads this role's vectors part by part, never whole on the
        driver (a precomputed Parquet catalog)."""
        return False

    # ------------------------------------------------------------------ backend hooks

    @abstractmethod
    def _embed_batch(self, texts: list[str], role: str, dimensions: int | None) -> np.ndarray:
        """One raw request: vectors for ``texts`` (already prefixed / chunked), shape (n, d)."""

    def _backend_params(self) -> dict[str, Any]:
        """Backend-specific flat params (no secrets)."""
        return {}

    def _backend_spec(self, role: str) -> dict[str, Any]:
        """Backend-specific part of ``spec``: what, besides evalkit's options, fixes a vector."""
        return {}

    @property
    def concurrency(self) -> int:
        """Requests in flight at once (1 for in-process models)."""
        return 1

    def _sends_dimensions(self) -> bool:
        """Whether ``dimensions`` reaches the backend (then it changes what the backend returns)."""
        return False

    def with_load(self, batch_size: int, concurrency: int) -> ModelVersion:
        """A shallow copy sending ``batch_size`` texts per request, ``concurrency`` requests in
        flight where the backend can (in-process models always run one at a time).  Used by the
        latency probe to time every version under the same load; a model already loaded is
        shared, not loaded again."""
        clone = copy.copy(self)
        clone.options = replace(self.options, batch_size=int(batch_size))
        return clone

    # ------------------------------------------------------------------ description

    def prefix(self, role: str) -> str:
        return self.query_prefix if check_role(role) == "query" else self.document_prefix

    def spec(self, role: str) -> dict[str, Any]:
        """Everything that determines the vector of a text in ``role`` (JSON-serialisable)."""
        return {
            "backend": self.backend,
            **self._backend_spec(check_role(role)),
            "prefix": self.prefix(role),
            "dimensions": self.dimensions,
            "normalize": self.normalize,
            "chunking": self.chunking.as_dict() if self.chunking else None,
            "revision": self.revision,
            "evalkit_spec_version": SPEC_VERSION,
        }

    def cache_spec(self, role: str) -> dict[str, Any]:
        """``spec`` of the vectors the cache stores: before client-side truncation and
        normalisation, so versions differing only in those (a ``dimensions`` sweep) share them."""
        spec = self.spec(role)
        del spec["normalize"]
        if not self._sends_dimensions():
            del spec["dimensions"]
        spec["stage"] = "pooled"
        return spec

    def params(self) -> dict[str, Any]:
        """Flat, MLflow-loggable parameters of this version (never an API key)."""
        c = self.chunking
        return {
            "name": self.name,
            "backend": self.backend,
            "batch_size": self.batch_size,
            "concurrency": self.concurrency,
            "dimensions": self.dimensions,
            "normalize": self.normalize,
            "query_prefix": self.query_prefix,
            "document_prefix": self.document_prefix,
            "chunk_size": c.size if c else None,
            "chunk_overlap": c.overlap if c else None,
            "chunk_pooling": c.pooling if c else None,
            "revision": self.revision,
            **self._backend_params(),
        }

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.params().items() if k != "name")
        return f"{type(self).__name__}(name={self.name!r}, {shown})"

    # ------------------------------------------------------------------ embedding

    def embed(
        self,
        texts: Sequence[str],
        role: str,
        *,
        raw: bool = False,
        dimensions: int | None = None,
    ) -> np.ndarray:
        """Vectors for ``texts`` in order, batched, without cache or de-duplication.

        ``raw=True`` returns what the backend returns (prefixes applied; no chunking, pooling,
        truncation, normalisation, nor checks of finiteness / requested dimension - only the
        response's count and order are enforced).  ``dimensions`` overrides the configured
        dimensions for this call (sent to the server when the backend sends dimensions).
        """
        check_role(role)
        texts = check_texts(texts)
        batches = [texts[i : i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        parts: list[np.ndarray | None] = [None] * len(batches)

        def keep(i: int, vectors: np.ndarray) -> None:
            parts[i] = vectors

        self.embed_batches(batches, role, on_batch=keep, raw=raw, dimensions=dimensions)
        if not batches:
            return np.zeros((0, self._effective_dimensions(dimensions) or 0), dtype=np.float32)
        return self._concat([p for p in parts if p is not None], "batches")

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
        """Embed each batch of texts; call ``on_batch(i, vectors)`` as soon as batch ``i`` is done.

        Batches may finish out of order (concurrent backends).  If a batch fails, the batches
        already handed to ``on_batch`` stay done and the error propagates.  With
        ``finalize=False`` the vectors are checked and pooled but not truncated / normalised
        (what the cache stores; apply :meth:`finalize` afterwards).
        """
        check_role(role)
        dims = self._effective_dimensions(dimensions)
        rlog = request_log if request_log is not None else RequestLog()
        for i, batch in enumerate(batches):
            pieces, owner = self._prepare(batch, role, raw)
            parts = []
            for start in range(0, len(pieces), self.batch_size):
                chunk = pieces[start : start + self.batch_size]
                t0 = time.perf_counter()
                out = self._embed_batch(chunk, role, dims)
                rlog.latencies_s.append(time.perf_counter() - t0)
                parts.append(self._as_matrix(out, len(chunk), f"batch {i + 1}/{len(batches)}"))
            n = len(batches)
            on_batch(i, self._finish(parts, owner, len(batch), raw, dims, i, n, finalize))
        return rlog

    # ------------------------------------------------------------------ shared steps

    def _effective_dimensions(self, dimensions: int | None) -> int | None:
        if dimensions is None:
            return self.dimensions
        return check_dimensions(dimensions, "dimensions")

    def _prepare(
        self, texts: Sequence[str], role: str, raw: bool
    ) -> tuple[list[str], np.ndarray | None]:
        """Prefix (and unless ``raw``, chunk) texts; ``owner`` maps pieces to texts, or None."""
        prefix = self.prefix(role)
        if self.chunking is not None and not raw:
            pieces, owner = split(texts, self.chunking)
        else:
            pieces, owner = list(texts), None
        if prefix:
            pieces = [prefix + p for p in pieces]
        return pieces, owner

    def _as_matrix(self, out: Any, n: int, where: str) -> np.ndarray:
        try:
            m = np.asarray(out, dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise EndpointError(
                f"model version {self.name!r}, {where}: backend returned non-numeric vectors ({err})"
            ) from err
        if m.ndim != 2 or m.shape[0] != n:
            raise EndpointError(
                f"model version {self.name!r}, {where}: backend returned an array of shape "
                f"{m.shape} for {n} input(s) (expected ({n}, d))"
            )
        return m

    def _concat(self, parts: list[np.ndarray], what: str) -> np.ndarray:
        dims = sorted({p.shape[1] for p in parts})
        if len(dims) > 1:
            raise EndpointError(
                f"model version {self.name!r}: {what} came back with different dimensions {dims} "
                "(expected one dimension for every vector)"
            )
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def _finish(
        self,
        parts: list[np.ndarray],
        owner: np.ndarray | None,
        n_texts: int,
        raw: bool,
        dims: int | None,
        batch_no: int,
        n_batches: int,
        finalize: bool = True,
    ) -> np.ndarray:
        """Check and pool one batch, then (if ``finalize``) truncate and normalise it.

        ``raw`` returns the concatenated backend output untouched.
        """
        where = f"batch {batch_no + 1}/{n_batches}"
        m = self._concat(parts, f"the requests of {where}")
        if raw:
            return m
        finite = np.isfinite(m).all(axis=1)
        if not finite.all():
            bad = np.flatnonzero(~finite)
            rows = owner[bad] if owner is not None else bad
            raise EndpointError(
                f"model version {self.name!r}, {where}: {bad.size} vector(s) contain NaN or "
                f"infinite values (first at text {int(rows[0]) + 1} of the batch) "
                "(expected finite numbers)"
            )
        if owner is not None:
            m = pool(m, owner, n_texts, self.chunking.pooling)
        return self.finalize(m, dims) if finalize else np.ascontiguousarray(m, dtype=np.float32)

    def finalize(
        self,
        vectors: np.ndarray,
        dimensions: int | None = None,
        *,
        unit_norm: bool = False,
        in_place: bool = False,
    ) -> np.ndarray:
        """evalkit's client-side post-processing: keep the first ``dimensions`` (default: the
        configured ones) and L2-normalise if ``normalize``.  Vectorised; float32 out.

        ``unit_norm=True`` says the rows are already L2-normalised (as stored): they are not
        normalised again unless truncated.  ``in_place=True`` lets an untruncated, writable
        ``vectors`` be normalised in place (no second copy of a large matrix).
        """
        dims = self._effective_dimensions(dimensions)
        m = np.asarray(vectors, dtype=np.float32)
        truncated = False
        if dims is not None:
            if m.shape[1] < dims:
                raise EndpointError(
                    f"model version {self.name!r}: vectors have {m.shape[1]} dimensions, "
                    f"fewer than the requested dimensions={dims} (expected >= {dims})"
                )
            truncated = dims < m.shape[1]
            m = m[:, :dims]
        if self.normalize and not (unit_norm and not truncated):
            if in_place and not truncated and m.flags.writeable and m.flags.c_contiguous:
                l2_normalize_in_place(m)
            else:
                m = l2_normalize(m)
        return np.ascontiguousarray(m, dtype=np.float32)
