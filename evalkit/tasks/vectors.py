"""``evalkit task=vectors``: what the vector store (``cache.dir``) holds, one line per spec folder
(the configured version and role it belongs to, ``-``: none).  ``vectors.drop=<spec prefix>`` (at
least 8 characters) deletes one spec folder first, e.g. after a broken server stored bad vectors.
"""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig

from evalkit.embed.cache import spec_hash
from evalkit.embed.model_version import ROLES
from evalkit.embed.store import TEMP_STALE_S, SpecSummary, drop_spec, inventory
from evalkit.instantiate import build

log = logging.getLogger(__name__)


def variant(spec: dict[str, Any]) -> str:
    """What sets a spec apart from its siblings of one backend and model, or ``-``.

    >>> variant({"chunking": {"size": 256, "overlap": 32, "pooling": "mean"}, "prefix": "query: "})
    "chunks 256/32 mean, prefix 'query: '"
    >>> variant({"dimensions": 128, "send_dimensions": True, "input_type": "passage"})
    'input_type passage, dimensions 128 (sent)'
    """
    parts = []
    chunking = spec.get("chunking") or {}
    if chunking.get("size"):
        parts.append(
            f"chunks {chunking['size']}/{chunking.get('overlap', 0)} {chunking.get('pooling', '')}"
        )
    if spec.get("prefix"):
        parts.append(f"prefix {spec['prefix']!r}")
    if spec.get("input_type"):
        parts.append(f"input_type {spec['input_type']}")
    if spec.get("dimensions"):
        parts.append(f"dimensions {spec['dimensions']} (sent)")
    if spec.get("revision"):
        parts.append(f"revision {spec['revision']}")
    return ", ".join(p.strip() for p in parts) or "-"


def state(s: SpecSummary) -> str:
    notes = []
    if s.damaged:
        notes.append(f"{len(s.damaged)} damaged")
    if s.temp_files:
        notes.append(f"{s.temp_files} temp ({s.temp_bytes / 1e6:,.1f} MB)")
    if s.empty and not s.temp_files:
        notes.append("empty")
    return ", ".join(notes) or "ok"


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
) -> list[dict[str, str]]:
    rows = []
    for s in summaries:
        name, role = owners.get(s.hash, ("-", "-"))
        backend = str(s.spec.get("backend", "?"))
        if s.spec.get("model"):
            backend += f" {s.spec['model']}"
        rows.append(
            {
                "version": name,
                "role": role,
                "spec": s.hash[:12],
                "backend": backend,
                "variant": variant(s.spec),
                "shards": str(s.shards),
                "vectors": f"{s.rows:,}",
                "dim": "/".join(str(d) for d in s.dims) or "-",
                "unit-norm": "yes" if s.unit_norm else "no",
                "MB": f"{s.nbytes / 1e6:,.1f}",
                "state": state(s),
            }
        )
    rows.sort(key=lambda r: (r["version"] == "-", r["version"], r["role"]))
    return rows


def format_table(rows: list[dict[str, str]]) -> str:
    """The rows as aligned columns under their keys."""
    widths = {h: max(len(h), *(len(r[h]) for r in rows)) for h in rows[0]}
    lines = ["  ".join(h.ljust(w) for h, w in widths.items())]
    lines += ["  ".join(r[h].ljust(w) for h, w in widths.items()) for r in rows]
    return "\n".join(lines)


def run(cfg: DictConfig, overrides: list[str]) -> dict[str, Any]:
    """``task=vectors``: print the store's contents, after dropping ``vectors.drop``."""
    versions = [build(cfg.models[name], f"model version {name!r}") for name in cfg.models or []]
    root = str(cfg.cache.dir)
    drop = cfg.get("vectors", {}).get("drop")
    if drop:
        gone = drop_spec(root, str(drop))
        print(
            f"dropped spec {gone.hash} from {root}: {gone.shards} shard(s), {gone.rows:,} vectors "
            f"({gone.spec.get('backend', '?')} {gone.spec.get('model', '')})".rstrip()
        )
    summaries, owners = inventory(root), configured_specs(versions)
    rows = store_rows(summaries, owners)
    total = sum(s.rows for s in summaries)
    size = sum(s.nbytes for s in summaries) / 1e6
    print(f"vector store {root}: {len(summaries)} spec(s), {total:,} vectors, {size:,.1f} MB")
    if rows:
        print(format_table(rows))
    stored = {s.hash for s in summaries}
    missing = [f"{name}/{role}" for key, (name, role) in owners.items() if key not in stored]
    if missing:
        print(f"nothing stored yet for: {', '.join(missing)}")
    for line in notes(summaries):
        print(line)
    return {"exit_code": 0, "verdict": "-"}


def notes(summaries: list[SpecSummary]) -> list[str]:
    """One line per kind of leftover the ``state`` column shows, with what to do."""
    out = []
    damaged = [f"{s.hash[:12]}: {', '.join(s.damaged)}" for s in summaries if s.damaged]
    if damaged:
        out.append(
            f"damaged shards set aside (*.damaged, no longer read) - {'; '.join(damaged)} - "
            "their rows were read from good shards or embedded again; `evalkit task=vectors "
            "vectors.drop=<spec>` deletes a spec's folder"
        )
    temps = [s for s in summaries if s.temp_files]
    if temps:
        n, mb = sum(s.temp_files for s in temps), sum(s.temp_bytes for s in temps) / 1e6
        out.append(
            f"{n} temporary file(s), {mb:,.1f} MB (counted in MB), in spec "
            f"{', '.join(s.hash[:12] for s in temps)}: a write in progress, or left by a killed "
            f"writer - the next writer of that spec removes them once untouched for "
            f"{TEMP_STALE_S / 60:.0f} min and their process is gone"
        )
    empty = [s.hash[:12] for s in summaries if s.empty and not s.temp_files]
    if empty:
        out.append(
            f"empty spec folder(s) {', '.join(empty)}: a run stopped before it stored anything; "
            "`evalkit task=vectors vectors.drop=<spec>` removes one"
        )
    return out
