"""Queries in one letter case, documents in another: a warning before anything is embedded.

Terrier's Vaswani topics are upper-case, its documents are not: ``use_m3``'s nDCG@10 falls from
.136 to .039.  Per side, of (a seeded sample of) the texts with a cased letter, the share that is
all upper-case (``str.isupper``) is measured; rules: docs/how-to/own-data.md.

>>> queries = ["MEASUREMENT OF DIELECTRIC CONSTANT", "ELECTRON BEAMS IN PLASMA"] * 10
>>> titles = ["The dielectric constant of liquids", "Beams of electrons"] * 10
>>> print(case_mismatch_warning(queries, titles, versions=["use_m3", "e5_small"]))
queries are upper-case (100% of 20 queries with letters) but catalog texts are not (0% of 20): \
model versions use_m3, e5_small may be case-sensitive and match them worse; lower-case the \
queries (dataset.lowercase=queries)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from evalkit.data.digest import fingerprint_data
from evalkit.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.data.schema import EvalData

#: A side whose share of all-upper-case texts reaches this is "upper-case" ...
UPPER_SHARE = 0.9
#: ... and the other side must stay below this for a warning (both mostly upper: the case matches).
OTHER_SHARE = 0.5
#: Texts with letters a side needs before its share means anything.
MIN_TEXTS = 10
#: At most this many texts per side are looked at (a seeded sample).
SAMPLE = 20_000

_CASED = r"[\p{Lu}\p{Ll}\p{Lt}]"

_FIX = {
    "queries": "lower-case the queries (dataset.lowercase=queries)",
    "catalog texts": "lower-case the catalog texts (dataset.lowercase=catalog)",
}


def upper_share(texts: Sequence[str], *, sample: int = SAMPLE, seed: int = 0) -> tuple[float, int]:
    """``(share, n)``: of ``n`` sampled texts with a cased letter, the share that are all
    upper-case (``nan, 0`` when there are none)."""
    n = len(texts)
    if n > sample:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))
        picked = [texts[i] for i in rows.tolist()]
    else:
        picked = list(texts)
    arr = pa.array(["" if t is None else str(t) for t in picked], pa.string())
    cased = np.asarray(pc.match_substring_regex(arr, _CASED).to_numpy(zero_copy_only=False))
    upper = np.asarray(pc.utf8_is_upper(arr).to_numpy(zero_copy_only=False))
    m = int(cased.sum())
    return (float(upper[cased].mean()) if m else float("nan")), m


def case_mismatch_warning(
    queries: Sequence[str],
    catalog: Sequence[str],
    *,
    versions: Sequence[str] = (),
    sample: int = SAMPLE,
    seed: int = 0,
) -> str | None:
    """The warning text when one side is upper-case and the other is not, else ``None``;
    ``versions``, the model versions evaluated, are named (they may be case-sensitive)."""
    share = {
        "queries": upper_share(queries, sample=sample, seed=seed),
        "catalog texts": upper_share(catalog, sample=sample, seed=seed + 1),
    }
    for upper, other in (("queries", "catalog texts"), ("catalog texts", "queries")):
        (s_up, n_up), (s_other, n_other) = share[upper], share[other]
        if n_up < MIN_TEXTS or n_other < MIN_TEXTS:
            return None
        if s_up >= UPPER_SHARE and s_other < OTHER_SHARE:
            if versions:
                plural = "s" if len(versions) > 1 else ""
                who = f"model version{plural} {', '.join(versions)} may be case-sensitive and"
            else:
                who = "a case-sensitive model may"
            return (
                f"{upper} are upper-case ({s_up:.0%} of {n_up:,} {upper} with letters) but "
                f"{other} are not ({s_other:.0%} of {n_other:,}): {who} match them worse; "
                f"{_FIX[upper]}"
            )
    return None


#: ``dataset.lowercase``: which side's texts are lower-cased after loading.
LOWERCASE = ("none", "queries", "catalog", "both")


def lowercase(data: EvalData, which: str | None) -> EvalData:
    """``data`` with the queries' and / or the catalog's texts lower-cased (``dataset.lowercase``:
    none | queries | catalog | both), fingerprinted anew."""
    which = "none" if which in (None, "", False) else str(which).strip().lower()
    if which not in LOWERCASE:
        raise ConfigError(
            f"dataset.lowercase={which!r} (expected one of {', '.join(LOWERCASE)}: the side "
            "whose texts are lower-cased)"
        )
    if which == "none":
        return data
    queries, catalog = data.queries, data.catalog
    if which in ("queries", "both"):
        queries = replace(queries, texts=[t.lower() for t in queries.texts])
    if which in ("catalog", "both"):
        catalog = replace(
            catalog,
            titles=[t.lower() for t in catalog.titles],
            texts=None if catalog.texts is None else [t.lower() for t in catalog.texts],
        )
    fp = data.fingerprint
    fingerprint = fingerprint_data(
        catalog,
        queries,
        data.judgments,
        data.text_field,
        fp.get("clicks"),
        known={k: fp[k] for k in ("judgments",) if k in fp},
        title_separator=data.title_separator,
    )
    return replace(data, queries=queries, catalog=catalog, fingerprint=fingerprint)
