"""Vector sanity checks: dimensions, norms, NaN / inf / zero vectors, determinism, batch
invariance, a multilingual probe set, and mixed-script / punctuation-heavy inputs.

>>> import numpy as np
>>> v = np.array([[3.0, 4.0], [0.6, 0.8]])
>>> check_norms(v, SanityConfig()).status
<Status.FAIL: 'FAIL'>
>>> float(row_cosines(v, v[::-1]).min())
1.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from evalkit.checks.config import SanityConfig
from evalkit.checks.probes import BASIC, FILLERS, MIXED_SCRIPT, MULTILINGUAL, PUNCTUATION
from evalkit.checks.result import Check, Status
from evalkit.checks.target import ProbeError, Target

Enabled = Callable[[str], bool]


def norm_stats(vectors: np.ndarray) -> dict[str, float]:
    """``min``, ``max``, ``mean``, ``std`` of the finite rows' L2 norms (NaN if there are none)."""
    v = np.asarray(vectors, dtype=np.float64)
    n = np.linalg.norm(v[np.isfinite(v).all(axis=1)], axis=1)
    if n.size == 0:
        return dict.fromkeys(("min", "max", "mean", "std"), float("nan"))
    return {k: float(getattr(n, k)()) for k in ("min", "max", "mean", "std")}


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length in float64 (zero rows stay zero)."""
    v = np.asarray(vectors, dtype=np.float64)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):  # inf / inf rows become NaN: reported, not warned
        return v / np.where(n > 0, n, 1.0)


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of row ``i`` of ``a`` with row ``i`` of ``b``."""
    return np.einsum("ij,ij->i", unit_rows(a), unit_rows(b))


def cosine_matrix(a: np.ndarray) -> np.ndarray:
    """All pairwise cosines between the rows of ``a``."""
    ua = unit_rows(a)
    return ua @ ua.T


def collapsed_pairs(
    vectors: np.ndarray, min_cosine: float, texts: Sequence[str] | None = None
) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, cosine)``, ``i < j``, of different texts at least ``min_cosine`` similar."""
    sim = cosine_matrix(vectors)
    i, j = np.nonzero(np.triu(sim >= min_cosine, k=1))
    pairs = zip(i.tolist(), j.tolist())
    return [(a, b, float(sim[a, b])) for a, b in pairs if texts is None or texts[a] != texts[b]]


def multilingual_scores(vectors: np.ndarray, meaning: np.ndarray, lang: np.ndarray) -> dict:
    """Cross-language similarity of same-meaning vs unrelated sentences (pairs in different
    languages only): ``margin`` (mean same-meaning minus mean unrelated cosine), ``worst_gap``
    (lowest same-meaning minus highest unrelated) and ``top1_accuracy`` (share of sentences whose
    nearest sentence in another language has the same meaning)."""
    sim = cosine_matrix(vectors)
    meaning = np.asarray(meaning)
    lang = np.asarray(lang)
    cross = lang[:, None] != lang[None, :]
    same = (meaning[:, None] == meaning[None, :]) & cross
    other = (meaning[:, None] != meaning[None, :]) & cross
    nearest = np.where(cross, sim, -np.inf).argmax(axis=1)
    return {
        "same_meaning_mean": float(sim[same].mean()),
        "unrelated_mean": float(sim[other].mean()),
        "margin": float(sim[same].mean() - sim[other].mean()),
        "worst_gap": float(sim[same].min() - sim[other].max()),
        "top1_accuracy": float((meaning[nearest] == meaning).mean()),
        "languages": int(np.unique(lang).size),
        "sentences": int(len(meaning)),
    }


def skipped(name: str) -> Check:
    return Check(name, Status.SKIP, None, None, "skipped by checks.skip")


def failed(name: str, expected: object, err: ProbeError, what: str) -> Check:
    """A FAIL because the endpoint refused or broke on the probe request."""
    return Check(name, Status.FAIL, f"error: {err}", expected, f"{what} failed: {err}")


def check_native_dimension(vectors: np.ndarray, cfg: SanityConfig) -> Check:
    """The dimension returned when none is requested, vs ``expected_dimension`` (if set)."""
    dim, want = int(vectors.shape[1]), cfg.expected_dimension
    status, why = Status.PASS, f"{dim} dimensions as expected"
    if want is None:
        why = f"returns {dim}-dimensional vectors by default"
        want = "any (checks.sanity.expected_dimension: null)"
    elif dim != want:
        status = Status.FAIL
        why = f"returns {dim} dimensions by default, not {want}: the default dimension changed"
    return Check("dimensions.native", status, dim, want, why)


def check_dimension_honoured(target: Target, d: int, full: np.ndarray, texts: list[str]) -> Check:
    """Request ``dimensions=d``; PASS if exactly ``d`` values come back for every input."""
    name, native = f"dimensions.honoured.{d}", int(full.shape[1])
    if not target.supports_dimensions:
        why = "in-process model: no dimensions parameter (evalkit truncates client-side)"
        return Check(name, Status.SKIP, None, d, why)
    if d > native:
        why = f"larger than the native dimension {native}: not requested"
        return Check(name, Status.SKIP, None, d, why)
    try:
        got = target.embed(texts, dimensions=d)
    except ProbeError as err:
        return failed(name, d, err, f"request with dimensions={d}")
    dim = int(got.shape[1])
    if dim != d:
        why = (
            f"dimensions={d} was ignored: {dim} (native) dimensions came back"
            if dim == native
            else f"dimensions={d} was answered with {dim} dimensions"
        )
        return Check(name, Status.FAIL, {"dimensions": dim}, d, why)
    stats = norm_stats(got)
    prefix_cos = float(row_cosines(got, full[:, :d]).min())
    renormalised = abs(stats["mean"] - 1.0) <= 0.01 and stats["std"] <= 0.01
    note = "re-normalised" if renormalised else f"not re-normalised (mean norm {stats['mean']:.3f})"
    kind = "the full vector's first d values" if prefix_cos >= 0.9999 else "not a prefix"
    observed = {"dimensions": dim, "norm_mean": stats["mean"], "prefix_cosine": prefix_cos}
    return Check(name, Status.PASS, observed, d, f"{d} dimensions returned, {note}, {kind}")


def check_finite(vectors: np.ndarray, n_texts: int) -> Check:
    """No NaN or infinite values in any vector."""
    bad_rows = ~np.isfinite(vectors).all(axis=1)
    nan = int(np.isnan(vectors).any(axis=1).sum())
    inf = int(np.isinf(vectors).any(axis=1).sum())
    observed = {"vectors": n_texts, "with_nan": nan, "with_inf": inf}
    if not bad_rows.any():
        return Check("vectors.finite", Status.PASS, observed, "no NaN or inf", "all values finite")
    why = (
        f"{int(bad_rows.sum())} of {n_texts} vectors have NaN/inf values (first: probe "
        f"text {int(np.flatnonzero(bad_rows)[0]) + 1})"
    )
    return Check("vectors.finite", Status.FAIL, observed, "no NaN or inf", why)


def check_nonzero(vectors: np.ndarray, n_texts: int) -> Check:
    """No all-zero vectors (a zero vector has no direction: cosine is undefined)."""
    zero = np.isfinite(vectors).all(axis=1) & (np.abs(vectors).max(axis=1, initial=0) == 0)
    observed = {"vectors": n_texts, "zero": int(zero.sum())}
    if not zero.any():
        return Check("vectors.nonzero", Status.PASS, observed, "no zero vectors", "no zero vectors")
    why = (
        f"{int(zero.sum())} of {n_texts} vectors are all zeros (first: probe text "
        f"{int(np.flatnonzero(zero)[0]) + 1})"
    )
    return Check("vectors.nonzero", Status.FAIL, observed, "no zero vectors", why)


def check_norms(vectors: np.ndarray, cfg: SanityConfig) -> Check:
    """Norm spread of finite non-zero rows, and whether they are unit length vs ``normalized``."""
    stats = norm_stats(vectors[np.abs(vectors).max(axis=1, initial=0) > 0])
    tol = cfg.norm_tolerance
    unit = bool(np.isfinite(stats["min"]) and stats["min"] >= 1 - tol and stats["max"] <= 1 + tol)
    observed = {**stats, "normalized": unit}
    span = f"norms {stats['min']:.4f}..{stats['max']:.4f} (std {stats['std']:.2g})"
    if cfg.normalized is None:
        why = f"{span}: {'normalised' if unit else 'not normalised'}"
        return Check("vectors.norms", Status.PASS, observed, "report only", why)
    expected = f"unit length (±{tol:g})" if cfg.normalized else "not normalised"
    if unit == cfg.normalized:
        return Check("vectors.norms", Status.PASS, observed, expected, f"{span} as expected")
    why = (
        f"{span}: the endpoint does not normalise (inner-product scores change; evalkit "
        "re-normalises only with normalize: true)"
        if cfg.normalized
        else f"{span}: vectors are normalised but the contract says they are not"
    )
    return Check("vectors.norms", Status.FAIL, observed, expected, why)


def compare_repeats(name: str, a: np.ndarray, b: np.ndarray, min_cosine: float, what: str) -> Check:
    """PASS if every row pair is at least ``min_cosine`` similar (bit-identical noted)."""
    cos = row_cosines(a, b)
    with np.errstate(invalid="ignore"):
        diff = float(np.abs(a.astype(np.float64) - b).max())
    observed = {"min_cosine": float(cos.min()), "max_abs_diff": diff, "texts": int(len(cos))}
    status = Status.PASS
    if diff == 0.0:
        why = f"{what}: bit-identical vectors"
    elif cos.min() >= min_cosine:
        why = f"{what}: not bit-identical (max |diff| {diff:.2g}) but within tolerance"
    else:
        status = Status.FAIL
        why = (
            f"{what}: cosine drops to {cos.min():.6f} (text {int(cos.argmin()) + 1}), below "
            f"{min_cosine:g}"
        )
    return Check(name, status, observed, f"cosine >= {min_cosine:g}", why)


def check_determinism(
    target: Target, first: np.ndarray, texts: list[str], cfg: SanityConfig
) -> Check:
    """Embed the same texts again in a second request and compare."""
    name, expected = "determinism", f"cosine >= {cfg.determinism_min_cosine:g}"
    try:
        again = target.embed(texts)
    except ProbeError as err:
        return failed(name, expected, err, "second request for the same texts")
    if again.shape != first.shape:
        why = f"same texts came back with shape {again.shape}, first time {first.shape}"
        return Check(name, Status.FAIL, {"shape": list(again.shape)}, expected, why)
    return compare_repeats(name, first, again, cfg.determinism_min_cosine, "same texts twice")


def check_batch_invariance(target: Target, texts: list[str], cfg: SanityConfig) -> Check:
    """Each text alone (one request each) vs the same texts inside one batch with fillers."""
    name, expected = "batch_invariance", f"cosine >= {cfg.batch_invariance_min_cosine:g}"
    fillers = list(FILLERS)
    batch = fillers[:2] + [texts[0]] + fillers[2:5] + texts[1:] + fillers[5:]
    where = [2, *range(6, 5 + len(texts))]
    try:
        alone = np.concatenate([target.embed([t]) for t in texts])
        together = target.embed(batch)
    except ProbeError as err:
        return failed(name, expected, err, "single / batched requests")
    if together.shape[1] != alone.shape[1]:
        observed = {"dim_alone": alone.shape[1], "dim_batched": together.shape[1]}
        why = "batched and single requests return different dimensions"
        return Check(name, Status.FAIL, observed, expected, why)
    return compare_repeats(
        name, alone, together[where], cfg.batch_invariance_min_cosine, "alone vs in a batch"
    )


def multilingual_probe() -> tuple[list[str], np.ndarray, np.ndarray]:
    """The probe sentences with their meaning index and language code."""
    rows = [(text, m, code) for m, group in enumerate(MULTILINGUAL) for code, text in group.items()]
    texts, meaning, lang = zip(*rows)
    return list(texts), np.array(meaning), np.array(lang)


def check_multilingual(
    vectors: np.ndarray, meaning: np.ndarray, lang: np.ndarray, cfg: SanityConfig
) -> Check:
    """Separation margin of translations vs unrelated sentences across languages."""
    expected = f"margin >= {cfg.multilingual_min_margin:g}"
    if not np.isfinite(vectors).all():
        why = "probe vectors contain NaN/inf: similarities are undefined"
        return Check("multilingual", Status.FAIL, None, expected, why)
    s = multilingual_scores(vectors, meaning, lang)
    what = (
        f"translations {s['same_meaning_mean']:.3f} vs unrelated {s['unrelated_mean']:.3f}: "
        f"margin {s['margin']:.3f}, cross-language top-1 {s['top1_accuracy']:.0%} "
        f"({s['languages']} languages)"
    )
    status = Status.PASS
    if s["margin"] <= 0:
        status, what = Status.FAIL, f"{what}: translations are no closer than unrelated sentences"
    elif s["margin"] < cfg.multilingual_min_margin:
        status, what = Status.WARN, f"{what}: weak separation"
    return Check("multilingual", status, s, expected, what)


def check_inputs(target: Target, name: str, texts: Sequence[str], cfg: SanityConfig) -> Check:
    """Unusual inputs: all accepted, finite, non-zero, and distinct inputs not collapsed."""
    texts = list(texts)
    expected = "all accepted, finite, non-zero, distinct vectors"
    refused: list[str] = []
    try:
        vectors = target.embed(texts)
    except ProbeError:  # find which inputs are refused, one request each
        rows = []
        for t in texts:
            try:
                rows.append(target.embed([t])[0])
            except ProbeError as err:
                refused.append(f"{t[:30]!r}: {err}")
                rows.append(None)
        kept = [r for r in rows if r is not None]
        vectors = np.stack(kept) if kept else np.zeros((0, 1), dtype=np.float32)
        texts = [t for t, r in zip(texts, rows) if r is not None]
    finite = np.isfinite(vectors).all(axis=1)
    zero = finite & (np.abs(vectors).max(axis=1, initial=0) == 0)
    ok = finite & ~zero
    good = [t for t, k in zip(texts, ok) if k]
    pairs = collapsed_pairs(vectors[ok], cfg.collapse_min_cosine, good)
    observed = {
        "inputs": len(texts) + len(refused),
        "refused": len(refused),
        "non_finite": int((~finite).sum()),
        "zero": int(zero.sum()),
        "collapsed_pairs": len(pairs),
    }
    problems = [
        f"{len(refused)} refused (first {refused[0]})" if refused else "",
        f"{observed['non_finite']} with NaN/inf" if observed["non_finite"] else "",
        f"{observed['zero']} zero vectors" if observed["zero"] else "",
    ]
    if any(problems):
        return Check(name, Status.FAIL, observed, expected, "; ".join(p for p in problems if p))
    if pairs:
        a, b, c = pairs[0]
        why = (
            f"{len(pairs)} pair(s) of different inputs get the same vector, e.g. "
            f"{good[a][:25]!r} and {good[b][:25]!r} (cosine {c:.6f})"
        )
        return Check(name, Status.WARN, observed, expected, why)
    return Check(name, Status.PASS, observed, expected, f"{len(texts)} inputs embedded cleanly")


def run_sanity(
    target: Target, cfg: SanityConfig, enabled: Enabled = lambda name: True
) -> list[Check]:
    """Every vector-sanity check against ``target`` (one role), in a fixed order."""
    checks: list[Check] = []

    def add(name: str, run: Callable[[], Check]) -> None:
        checks.append(run() if enabled(name) else skipped(name))

    def attempt(texts: list[str]) -> tuple[np.ndarray | None, ProbeError | None]:
        try:
            return target.embed(texts), None
        except ProbeError as err:
            return None, err

    basic = list(BASIC)
    first, first_err = attempt(basic)
    ml_texts, meaning, lang = multilingual_probe()
    ml_vectors, ml_err = attempt(ml_texts) if enabled("multilingual") else (None, None)

    names = ["dimensions.native", *(f"dimensions.honoured.{d}" for d in cfg.dimensions)]
    names += ["vectors.finite", "vectors.nonzero", "vectors.norms", "determinism"]
    if first is None:
        for n in names:
            add(n, lambda n=n: failed(n, None, first_err, "embedding the basic probe texts"))
    else:
        pool = first
        if ml_vectors is not None and ml_vectors.shape[1] == first.shape[1]:
            pool = np.concatenate([first, ml_vectors])
        add("dimensions.native", lambda: check_native_dimension(first, cfg))
        for d in cfg.dimensions:
            add(
                f"dimensions.honoured.{d}",
                lambda d=d: check_dimension_honoured(target, d, first[:2], basic[:2]),
            )
        add("vectors.finite", lambda: check_finite(pool, len(pool)))
        add("vectors.nonzero", lambda: check_nonzero(pool, len(pool)))
        add("vectors.norms", lambda: check_norms(pool, cfg))
        add("determinism", lambda: check_determinism(target, first, basic, cfg))
    add("batch_invariance", lambda: check_batch_invariance(target, basic[:3], cfg))
    add(
        "multilingual",
        lambda: (
            check_multilingual(ml_vectors, meaning, lang, cfg)
            if ml_vectors is not None
            else failed("multilingual", None, ml_err, "embedding the multilingual probes")
        ),
    )
    for name, texts in (("inputs.mixed_script", MIXED_SCRIPT), ("inputs.punctuation", PUNCTUATION)):
        add(name, lambda name=name, texts=texts: check_inputs(target, name, texts, cfg))
    return checks
