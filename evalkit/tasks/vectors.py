"""``evalkit task=vectors``: what the vector store (``cache.dir``) holds, per model version.

Every spec folder of the store is one line: the configured version and role whose cache spec it
is (or ``-`` when no selected version has that spec, e.g. an older revision), its shards, the
vectors they hold (rows; two writers racing on a text both count), the dimension and the size.

    evalkit task=vectors                                 # the default store and models
    evalkit task=vectors cache.dir=s3://bucket/vectors models=[e5_small_openai]
    evalkit task=vectors vectors.drop=3f2a9c1b7d4e       # delete one spec folder (bad vectors)

``vectors.drop`` deletes the one spec folder whose name starts with the given prefix (the
``spec`` column, at least 8 characters) - what to do when a broken server left bad vectors in
one version's shards - then lists what is left.

>>> rows = store_rows([], {})
>>> rows
[]
"""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig

from evalkit.embed.base import ROLES
from evalkit.embed.cache import spec_hash
from evalkit.embed.store import SpecSummary, drop_spec, inventory
from evalkit.instantiate import build

log = logging.getLogger(__name__)

HEADER = ("version", "role", "spec", "backend", "shards", "vectors", "dim", "unit-norm", "MB")


def configured_specs(versions: list[Any]) -> dict[str, tuple[str, str]]:
    """spec folder name -> (version name, role) of the versions that embed through the cache."""
    out: dict[str, tuple[str, str]] = {}
    for version in versions:
        if version.brings_vectors:  # precomputed: reads its own files, no cache
            continue
        for role in ROLES:
            key = spec_hash(version.cache_spec(role))[:32]
            name, roles = out.get(key, (version.name, ""))
            out[key] = (name, f"{roles}+{role}" if roles else role)
    return out


def store_rows(
    summaries: list[SpecSummary], owners: dict[str, tuple[str, str]]
) -> list[tuple[str, ...]]:
    """Table rows (strings), configured versions first."""
    rows = []
    for s in summaries:
        name, role = owners.get(s.hash, ("-", "-"))
        backend = str(s.spec.get("backend", "?"))
        if s.spec.get("model"):
            backend += f" {s.spec['model']}"
        rows.append(
            (
                name,
                role,
                s.hash[:12],
                backend,
                str(s.shards),
                f"{s.rows:,}",
                "/".join(str(d) for d in s.dims) or "-",
                "yes" if s.unit_norm else "no",
                f"{s.nbytes / 1e6:,.1f}",
            )
        )
    rows.sort(key=lambda r: (r[0] == "-", r[0], r[1]))
    return rows


def format_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADER)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADER, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def run_vectors_task(cfg: DictConfig) -> int:
    """Print the store's contents (stdout), after dropping ``vectors.drop`` if set; exit code 0."""
    versions = [build(cfg.models[name], f"model version {name!r}") for name in cfg.models or []]
    root = str(cfg.cache.dir)
    drop = cfg.get("vectors", {}).get("drop") if hasattr(cfg, "get") else None
    if drop:
        gone = drop_spec(root, str(drop))
        print(
            f"dropped spec {gone.hash} from {root}: {gone.shards} shard(s), {gone.rows:,} vectors "
            f"({gone.spec.get('backend', '?')} {gone.spec.get('model', '')})".rstrip()
        )
    summaries = inventory(root)
    rows = store_rows(summaries, configured_specs(versions))
    total = sum(s.rows for s in summaries)
    size = sum(s.nbytes for s in summaries) / 1e6
    print(f"vector store {root}: {len(summaries)} spec(s), {total:,} vectors, {size:,.1f} MB")
    if rows:
        print(format_table(rows))
    missing = [
        f"{name}/{role}"
        for key, (name, role) in configured_specs(versions).items()
        if key not in {s.hash for s in summaries}
    ]
    if missing:
        print(f"nothing stored yet for: {', '.join(missing)}")
    return 0


def run(cfg: DictConfig, overrides: list[str]) -> dict[str, Any]:
    """``task=vectors`` for :mod:`evalkit.cli`: the outcome (:class:`evalkit.sweep.JobOutcome` fields)."""
    return {"exit_code": run_vectors_task(cfg), "verdict": "-"}
