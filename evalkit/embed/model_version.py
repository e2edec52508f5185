"""Model versions: the options every embedding backend shares, and what a call returns.

A backend implements one raw request (``_embed_batch``); :class:`ModelVersion` adds prefixes,
chunking, ``dimensions`` truncation and ``normalize``.  Options: docs/how-to/model-versions.md.

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

# Bump when evalkit's post-processing changes: vectors cached by an older evalkit are not reused.
SPEC_VERSION = 1

BatchCallback = Callable[[int, np.ndarray], None]


@dataclass(frozen=True)
class EmbeddingResult:
    """Vectors of one ``embed_texts`` call, in input order, plus how they were made
    (``latencies_s``: one per successful request; ``n_cached``: unique texts from the cache)."""

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
    never 0) when no request was made or some responses did not report them."""
    made = [r for r in results if r.n_requests]
    if not made or any(r.n_tokens is None for r in made):
        return None
    return sum(int(r.n_tokens or 0) for r in made)


@dataclass
class RequestLog:
    """What a batch loop did: latencies, failures, retries and the tokens reported."""

    latencies_s: list[float] = field(default_factory=list)
    retries: int = 0
    failed: int = 0
    # per endpoint URL: {"requests": n, "retries": n, "failures": n} (OpenAI-compatible backends)
    endpoints: dict[str, dict[str, int]] = field(default_factory=dict)
    tokens: int = 0  # the tokens the responses reported, summed
    usage_reports: int = 0  # the responses that reported them

    def add_usage(self, tokens: int | None) -> None:
        if tokens is not None:
            self.tokens += tokens
            self.usage_reports += 1

    @property
    def reported_tokens(self) -> int | None:
        """The tokens of this loop's requests when every one reported them, else None."""
        n = len(self.latencies_s)
        return self.tokens if n and self.usage_reports == n else None

    def count(self, endpoint: str, what: str, n: int = 1) -> None:
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
    """None, or an integer >= 1; else a ConfigError naming ``what``."""
    if value is None:
        return None
    return positive_int(what, value, 1, "null or ")


def positive_int(what: str, value: Any, least: int, or_: str = "") -> int:
    """``value`` if an integer >= ``least`` (not a bool), else a ConfigError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"{what}={value!r} is invalid (expected {or_}an integer >= {least})")
    return value


def l2_normalize_in_place(vectors: np.ndarray) -> np.ndarray:
    """Rows of a writable float32 matrix scaled to unit L2 norm (all-zero rows stay zero)."""
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
        batch_size: texts per request (with chunking: chunks per request, at most).
        dimensions: keep the first ``d`` dimensions and re-normalise; null = all.
        normalize: L2-normalise the final vectors (after pooling and truncation).
        query_prefix: text prepended to every query.
        document_prefix: text prepended to every catalog text.
        chunking: split long texts into windows of whitespace tokens; null = no chunking.
        revision: a label in ``spec``: change it when a served model changes behind its name.
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
        """``values`` over ``defaults``, each checked (errors name ``models.<name>.<option>``)."""
        unknown = [key for key in values if key not in OPTION_NAMES]
        if unknown:
            raise TypeError(
                f"ModelOptions.checked() got an unexpected keyword argument {unknown[0]!r}"
            )
        merged: dict[str, Any] = {f.name: getattr(defaults or cls(), f.name) for f in fields(cls)}
        merged.update(values)
        batch_size = positive_int(f"models.{name}.batch_size", merged["batch_size"], 1)
        for key in ("query_prefix", "document_prefix"):
            if not isinstance(merged[key], str):
                raise ConfigError(
                    f"models.{name}.{key}={merged[key]!r} is invalid (expected a string)"
                )
        return cls(
            batch_size=batch_size,
            query_prefix=merged["query_prefix"],
            document_prefix=merged["document_prefix"],
            dimensions=check_dimensions(merged["dimensions"], f"models.{name}.dimensions"),
            normalize=bool(merged["normalize"]),
            chunking=Chunking.from_config(merged["chunking"]),
            revision=None if merged["revision"] is None else str(merged["revision"]),
        )


OPTION_NAMES = tuple(f.name for f in fields(ModelOptions))


class ModelVersion(ABC):
    """One embedding-model version: a backend plus the shared options (:class:`ModelOptions`,
    passed on as ``**options: Unpack[OptionValues]``).

    Args:
        name: the version's name: the MLflow child run, reports, the cache spec.
    """

    backend: ClassVar[str] = "abstract"
    #: ``brings_vectors``: it reads vectors by id (:meth:`vectors_for`) and embeds nothing;
    #: ``calls_endpoint``: it sends HTTP requests.
    brings_vectors: ClassVar[bool] = False
    calls_endpoint: ClassVar[bool] = False
    #: the model's input limit in tokens (None: :func:`evalkit.embed.chunking.input_limit_tokens`)
    max_input_tokens: int | None = None
    default_options: ClassVar[ModelOptions] = ModelOptions()
    #: the shared options this backend takes
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

    def vectors_for(self, ids: list[str], role: str) -> EmbeddingResult:
        """The vectors of ``ids`` (in that order) of a version that ``brings_vectors``."""
        raise ConfigError(
            f"model version {self.name!r} embeds texts: it has no stored vectors to read by id"
        )

    def streams(self, role: str = "document") -> bool:
        """Whether ``engine=ray`` reads this role's vectors part by part (a Parquet catalog)."""
        return False

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
        return 1

    def _sends_dimensions(self) -> bool:
        return False

    def with_load(self, batch_size: int, concurrency: int) -> ModelVersion:
        """A shallow copy (sharing a loaded model) sending ``batch_size`` texts per request and
        ``concurrency`` requests in flight where the backend can."""
        clone = copy.copy(self)
        clone.options = replace(self.options, batch_size=int(batch_size))
        return clone

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
        normalisation, so a ``dimensions`` sweep shares them."""
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

    def embed(
        self,
        texts: Sequence[str],
        role: str,
        *,
        raw: bool = False,
        dimensions: int | None = None,
    ) -> np.ndarray:
        """Vectors for ``texts`` in order, without cache or de-duplication.  ``raw=True``: what the
        backend returns for the prefixed texts (no chunking, post-processing or checks but count
        and order); ``dimensions`` overrides the configured ones for this call."""
        check_role(role)
        texts = check_texts(texts)
        batches = [texts[i : i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        parts: dict[int, np.ndarray] = {}
        self.embed_batches(
            batches, role, on_batch=parts.__setitem__, raw=raw, dimensions=dimensions
        )
        if not batches:
            return np.zeros((0, self._effective_dimensions(dimensions) or 0), dtype=np.float32)
        return self._concat([parts[i] for i in sorted(parts)], "batches")

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
        """Call ``on_batch(i, vectors)`` as each batch is done (maybe out of order; a failure
        propagates).  ``finalize=False``: checked and pooled, not truncated / normalised."""
        check_role(role)
        dims = self._effective_dimensions(dimensions)
        rlog = request_log if request_log is not None else RequestLog()
        for i, batch in enumerate(batches):
            pieces, owner = self._prepare(batch, role, raw)
            where = f"batch {i + 1}/{len(batches)}"
            parts = []
            for start in range(0, len(pieces), self.batch_size):
                chunk = pieces[start : start + self.batch_size]
                t0 = time.perf_counter()
                out = self._embed_batch(chunk, role, dims)
                rlog.latencies_s.append(time.perf_counter() - t0)
                parts.append(self._as_matrix(out, len(chunk), where))
            on_batch(i, self._finish(parts, owner, len(batch), raw, dims, where, finalize))
        return rlog

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
        where: str,
        finalize: bool = True,
    ) -> np.ndarray:
        """Check and pool one batch, then (if ``finalize``) truncate and normalise it."""
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
        """Keep the first ``dimensions`` (default: the configured ones) and L2-normalise if
        ``normalize`` (``unit_norm``: rows already are, unless truncated; ``in_place``: a writable
        untruncated ``vectors`` may be normalised in place); float32."""
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
            in_place = in_place and not truncated and m.flags.writeable and m.flags.c_contiguous
            m = l2_normalize_in_place(m if in_place else np.array(m, dtype=np.float32))
        return np.ascontiguousarray(m, dtype=np.float32)
