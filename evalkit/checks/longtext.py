"""Long-text checks: the largest input accepted, silent truncation, and chunked long documents
(docs/how-to/openai-server.md, "Endpoint checks")."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evalkit.checks.config import LongTextConfig
from evalkit.checks.probes import long_document, with_new_tail
from evalkit.checks.result import Check, Status
from evalkit.checks.sanity import Enabled, norm_stats, row_cosines, skipped
from evalkit.checks.target import ProbeError, Target
from evalkit.embed.chunking import Chunking, split
from evalkit.terminal import progress_bar

#: 1 - cosine below this always counts as "the same vector" (float32 round-off).
SAME_VECTOR_FLOOR = 1e-6
#: 1 - cosine above this: a new tail clearly changed the vector, no repeat request needed to
#: measure the noise (an endpoint that noisy fails the determinism check, min cosine 0.99999).
CLEARLY_MOVED = 1e-3


@dataclass
class LengthSearch:
    """Outcome of :func:`search_max_length` (``min_rejected`` None: every length was accepted)."""

    max_accepted: int = 0
    min_rejected: int | None = None
    requests: int = 0
    tried: list[tuple[int, bool]] = field(default_factory=list)
    refusal: Any = None  # the first refusal's payload


def search_max_length(
    accepts: Callable[[int], tuple[bool, Any]],
    *,
    start: int,
    cap: int,
    resolution: float,
    max_requests: int,
    grow: Callable[[int], int] | None = None,
) -> LengthSearch:
    """Largest ``n`` in ``[1, cap]`` with ``accepts(n) == (True, _)``: grow from ``start``
    (doubling by default; ``grow(n) <= n`` stops), then bisect to ``resolution``."""
    grow = grow or (lambda n: 2 * n)
    out = LengthSearch()

    def probe(n: int) -> bool:
        ok, payload = accepts(n)
        out.requests += 1
        out.tried.append((n, ok))
        if ok:
            out.max_accepted = max(out.max_accepted, n)
        else:
            out.min_rejected = n if out.min_rejected is None else min(out.min_rejected, n)
            if out.refusal is None:
                out.refusal = payload
        return ok

    n = max(1, min(start, cap))
    while out.requests < max_requests:
        if not probe(n) or n >= cap:
            break
        following = min(grow(n), cap)
        if following <= n:
            break
        n = following
    while (
        out.min_rejected is not None
        and out.requests < max_requests
        and out.min_rejected - out.max_accepted > max(1.0, resolution * out.max_accepted)
    ):
        probe((out.max_accepted + out.min_rejected) // 2)
    return out


def past_limit(
    tokens: dict[int, int], max_tokens: int | None, margin: float
) -> Callable[[int], int] | None:
    """The search's growth step: from a length with a known token count straight to just past
    ``max_tokens`` (by ``margin``), else doubling; None without a documented limit.

    >>> grow = past_limit({256: 320}, 8192, 0.05)
    >>> grow(256), grow(512)
    (6882, 1024)
    >>> past_limit({7000: 9000}, 8192, 0.05)(7000)
    7000
    """
    if not max_tokens:
        return None

    def grow(n: int) -> int:
        t = tokens.get(n)
        if t is None:
            return 2 * n
        if t > max_tokens:
            return n
        return max(n + 1, math.ceil(n * max_tokens * (1.0 + margin) / t))

    return grow


def _one(target: Target, text: str) -> np.ndarray:
    return target.embed([text])[0]


def check_max_accepted(
    target: Target,
    cfg: LongTextConfig,
    vectors: dict[int, np.ndarray],
    shared: dict[str, Any] | None = None,
) -> tuple[Check, LengthSearch]:
    """Search the longest accepted input (``shared["over_long"]``: the probe past the limit)."""
    tokens: dict[int, int] = {}  # prompt tokens per accepted length
    jumps: set[int] = set()  # lengths reached by a jump past the documented limit
    grow = past_limit(tokens, cfg.max_tokens, cfg.resolution)
    bar = progress_bar(total=cfg.max_requests, desc="long-text search", unit="request")

    def step(n: int) -> int:
        if grow is None:
            return 2 * n
        following = grow(n)
        if n in tokens and following > n:
            jumps.add(min(following, cfg.max_words))
        return following

    def accepts(n: int) -> tuple[bool, Any]:
        bar.update()
        try:
            vectors[n] = _one(target, long_document(n))
        except ProbeError as err:
            return False, err
        finally:
            if n in jumps and shared is not None and target.last_reply is not None:
                shared["over_long"] = (n, target.last_reply)
        if target.last_tokens:
            tokens[n] = target.last_tokens
        return True, None

    with bar:
        s = search_max_length(
            accepts,
            start=cfg.start_words,
            cap=cfg.max_words,
            resolution=cfg.resolution,
            max_requests=cfg.max_requests,
            grow=step,
        )
    expected = (
        f">= {cfg.min_accepted_words} words; beyond the limit a 4xx error"
        if cfg.min_accepted_words
        else "a 4xx error beyond the limit (if there is one)"
    )
    status, reason = _max_accepted_outcome(s, cfg, tokens)
    observed: dict[str, Any] = {
        "max_accepted_words": s.max_accepted,
        "max_accepted_tokens": tokens.get(s.max_accepted),
        "min_refused_words": s.min_rejected,
        "requests": s.requests,
        "search_cap_words": cfg.max_words,
        "documented_limit_tokens": cfg.max_tokens,
    }
    if s.refusal is not None:
        observed["refusal_status"] = s.refusal.status
        observed["refusal_message"] = s.refusal.message[:200]
    return Check("long_text.max_accepted", status, observed, expected, reason), s


def _max_accepted_outcome(
    s: LengthSearch, cfg: LongTextConfig, tokens: dict[int, int]
) -> tuple[Status, str]:
    """PASS or FAIL and the reason: too short an input limit, or a 5xx instead of a 4xx, fail.

    >>> _max_accepted_outcome(LengthSearch(300, 316), LongTextConfig(), {})
    (<Status.PASS: 'PASS'>, 'accepts 300 words, refuses 316 (None)')
    """
    err: ProbeError | None = s.refusal
    if s.max_accepted < cfg.min_accepted_words:
        return Status.FAIL, (
            f"accepts at most {s.max_accepted} words, fewer than the required "
            f"{cfg.min_accepted_words} ({err})"
        )
    if s.min_rejected is None and tokens.get(s.max_accepted, 0) > (cfg.max_tokens or math.inf):
        return Status.PASS, (
            f"accepts {s.max_accepted} words ({tokens[s.max_accepted]} tokens), past the "
            f"documented limit of {cfg.max_tokens} tokens: the search stops there"
        )
    if s.min_rejected is None:
        return Status.PASS, (
            f"accepted every length tried up to the search cap of {cfg.max_words} words"
        )
    if err is not None and (err.status is None or err.status >= 500):
        return Status.FAIL, (
            f"accepts {s.max_accepted} words, then fails with a server error instead of a "
            f"clean 4xx refusal at {s.min_rejected} words: {err}"
        )
    return Status.PASS, f"accepts {s.max_accepted} words, refuses {s.min_rejected} ({err})"


def check_truncation(
    target: Target, cfg: LongTextConfig, n_words: int, first: np.ndarray | None
) -> Check:
    """Same long text vs a different tail: is the tail ignored, and from which word on?"""
    name = "long_text.truncation"
    expected = (
        "the tail changes the vector (or an error)"
        if not cfg.allow_silent_truncation
        else "report only (silent truncation allowed)"
    )
    if n_words < 8:
        return Check(name, Status.SKIP, None, expected, f"only {n_words} words accepted")
    tail = max(1, int(round(cfg.truncation_tail * n_words)))
    keep = n_words - tail
    try:
        a, delta, noise = _new_tail_shift(target, first, n_words, keep)
    except ProbeError as err:
        return Check(name, Status.FAIL, f"error: {err}", expected, f"long text refused: {err}")
    limit = max(SAME_VECTOR_FLOOR, 10.0 * (noise or 0.0))
    observed: dict[str, Any] = {
        "words": n_words,
        "tail_words": tail,
        "cosine_new_tail": 1.0 - delta,
        "cosine_same_text": None if noise is None else 1.0 - noise,
        "truncates": delta <= limit,
    }
    if delta > limit:
        why = (
            f"changing the last {tail} of {n_words} words moves the vector (cosine "
            f"{1 - delta:.5f}): the whole text is read"
        )
        return Check(name, Status.PASS, observed, expected, why)
    observed["reads_about_words"] = hi = _reading_stops(target, cfg, a, n_words, keep, limit)
    status = Status.PASS if cfg.allow_silent_truncation else Status.FAIL
    why = f"silently truncates: words after about {hi} of {n_words} do not change the vector"
    return Check(name, status, observed, expected, why)


def _new_tail_shift(
    target: Target, first: np.ndarray | None, n_words: int, keep: int
) -> tuple[np.ndarray, float, float | None]:
    """The text's vector, 1 - cosine after a new tail, and (if small) 1 - cosine of a repeat."""
    a = first if first is not None else _one(target, long_document(n_words))
    b = _one(target, with_new_tail(n_words, keep))
    delta = float(1.0 - row_cosines(a[None], b[None])[0])
    noise: float | None = None
    if delta <= CLEARLY_MOVED:  # close: is it the tail being ignored, or only noise?
        again = _one(target, long_document(n_words))
        noise = float(1.0 - row_cosines(a[None], again[None])[0])
    return a, delta, noise


def _reading_stops(
    target: Target, cfg: LongTextConfig, a: np.ndarray, n_words: int, keep: int, limit: float
) -> int:
    """The smallest change position leaving the vector within ``limit`` of ``a`` (binary search)."""
    lo, hi, requests = 0, keep, 0
    while hi - lo > max(1.0, cfg.resolution * hi) and requests < cfg.max_requests:
        mid = (lo + hi) // 2
        try:
            v = _one(target, with_new_tail(n_words, mid))
        except ProbeError:
            break
        requests += 1
        if 1.0 - row_cosines(a[None], v[None])[0] <= limit:
            hi = mid
        else:
            lo = mid
    return hi


def check_chunks(target: Target, cfg: LongTextConfig) -> Check:
    """Chunk a long document (the version's chunking if set), embed the chunks, compare them."""
    name = "long_text.chunks"
    chunking = getattr(target.version, "chunking", None) or Chunking(size=cfg.chunk_words)
    doc = long_document(chunking.size * cfg.chunks)
    pieces, _ = split([doc], Chunking(size=chunking.size, overlap=chunking.overlap))
    expected = f"norm spread <= {cfg.max_norm_spread:g}"
    try:
        vectors = target.embed(pieces)
    except ProbeError as err:
        return Check(name, Status.FAIL, f"error: {err}", expected, f"chunks refused: {err}")
    if not np.isfinite(vectors).all():
        return Check(name, Status.FAIL, None, expected, "chunk vectors contain NaN/inf")
    stats = norm_stats(vectors)
    spread = (stats["max"] - stats["min"]) / stats["mean"] if stats["mean"] > 0 else float("inf")
    first_last = float(row_cosines(vectors[:1], vectors[-1:])[0])
    adjacent = float(row_cosines(vectors[:-1], vectors[1:]).mean()) if len(pieces) > 1 else 1.0
    observed = {
        "chunks": len(pieces),
        "chunk_words": chunking.size,
        "norm_min": stats["min"],
        "norm_max": stats["max"],
        "norm_std": stats["std"],
        "norm_spread": spread,
        "first_last_cosine": first_last,
        "adjacent_cosine_mean": adjacent,
    }
    what = (
        f"{len(pieces)} chunks of {chunking.size} words: norm spread {spread:.3f}, "
        f"first-vs-last cosine {first_last:.3f}, adjacent {adjacent:.3f}"
    )
    if spread > cfg.max_norm_spread:
        what += ": chunk norms vary a lot, mean pooling weights chunks unequally"
        return Check(name, Status.WARN, observed, expected, what)
    return Check(name, Status.PASS, observed, expected, what)


def run_long_text(
    target: Target,
    cfg: LongTextConfig,
    enabled: Enabled = lambda name: True,
    shared: dict[str, Any] | None = None,
) -> list[Check]:
    """The long-text section against ``target`` (``shared``: see :func:`check_max_accepted`)."""
    vectors: dict[int, np.ndarray] = {}
    search: LengthSearch | None = None
    checks = [skipped("long_text.max_accepted")]
    if enabled("long_text.max_accepted"):
        checks[0], search = check_max_accepted(target, cfg, vectors, shared)
    if enabled("long_text.truncation"):
        n = search.max_accepted if search is not None else cfg.max_words
        if cfg.truncation_words:
            n = min(n, cfg.truncation_words)
        checks.append(check_truncation(target, cfg, n, vectors.get(n)))
    else:
        checks.append(skipped("long_text.truncation"))
    checks.append(
        check_chunks(target, cfg) if enabled("long_text.chunks") else skipped("long_text.chunks")
    )
    return checks
