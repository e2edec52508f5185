"""Run every configured endpoint check against one model version (``task=check``, release gates).

>>> import numpy as np
>>> from evalkit.embed.model_version import ModelVersion
>>> class Toy(ModelVersion):
...     backend = "toy"
...     def _embed_batch(self, texts, role, dimensions):
...         return np.array([[len(t) % 7 + 1.0, 1.0] for t in texts], dtype=np.float32)
>>> checks = run_checks(Toy("toy"), {"sections": ["sanity"], "skip": ["multilingual"]})
>>> [c.name for c in checks][:2], next(c for c in checks if c.name == "vectors.norms").status
(['dimensions.native', 'dimensions.honoured.256'], <Status.FAIL: 'FAIL'>)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from evalkit.checks.api_contract import run_contract
from evalkit.checks.config import ChecksConfig
from evalkit.checks.longtext import run_long_text
from evalkit.checks.result import Check, Status
from evalkit.checks.sanity import run_sanity
from evalkit.checks.target import Target, is_openai, target_for
from evalkit.embed.openai_backend import not_found_hint
from evalkit.embed.tls import certificate_problem
from evalkit.errors import EndpointError
from evalkit.redact import register_key_envs

log = logging.getLogger(__name__)


def as_config(checks_cfg: ChecksConfig | Mapping[str, Any] | None) -> ChecksConfig:
    """A :class:`ChecksConfig` from a config node, a dict, None (defaults) or itself."""
    if isinstance(checks_cfg, ChecksConfig):
        return checks_cfg
    return ChecksConfig.from_mapping(checks_cfg)


def apply_on_fail(check: Check, cfg: ChecksConfig) -> Check:
    """A FAIL becomes what ``checks.on_fail`` says for its name (reason says so)."""
    to = cfg.outcome_override(check.name) if check.status is Status.FAIL else None
    if to is None or to is Status.FAIL:
        return check
    return check.replace(status=to, reason=f"{check.reason} [FAIL -> {to} by checks.on_fail]")


def ensure_reachable(target: Target) -> None:
    """:class:`EndpointError` (exit code 1) if an HTTP target does not answer or needs ``/v1``."""
    ep = target.endpoint
    if ep is None:
        return
    reply = ep.get(ep.url("/models"))
    if reply.status is None and ep.last_error is not None:
        certificate = certificate_problem(ep.last_error, ep.base_url, f"models.{target.name}")
        if certificate is not None:
            raise EndpointError(f"model version {target.name!r}: {certificate}")
    if reply.status is None:
        raise EndpointError(
            f"model version {target.name!r}: cannot reach {ep.base_url} "
            f"({reply.error}) (expected a running OpenAI-compatible server)"
        )
    if reply.status == 404 and not ep.base_url.endswith("/v1"):
        url = ep.url("/embeddings")
        probe = target.post(["evalkit"])
        if probe.status == 404:
            raise EndpointError(
                f"model version {target.name!r}: HTTP 404 from POST {url}: {probe.message(160)}; "
                f"{not_found_hint(ep.base_url, target.name)} (expected an OpenAI-compatible "
                "server answering POST <base_url>/embeddings)"
            )


def run_checks(
    version: Any, checks_cfg: ChecksConfig | Mapping[str, Any] | None = None
) -> list[Check]:
    """All configured checks for one model version (its ``api_key_env`` redacted from them)."""
    cfg = as_config(checks_cfg).for_version(version.name)
    register_key_envs([version.api_key_env] if is_openai(version) else [])

    def enabled(name: str) -> bool:
        return not cfg.skipped(name)

    shared: dict[str, Any] = {}  # long-text probe past the limit, reused by contract.over_long
    lt = cfg.long_text
    sections = [
        ("sanity", cfg.sanity.role, lambda t: run_sanity(t, cfg.sanity, enabled)),
        ("long_text", lt.role, lambda t: run_long_text(t, lt, enabled, shared)),
        ("contract", cfg.sanity.role, lambda t: run_contract(t, cfg.contract, enabled, shared)),
    ]
    checks: list[Check] = []
    for section, role, run in sections:
        if section not in cfg.sections:
            continue
        target: Target = target_for(version, role, timeout_s=cfg.contract.timeout_s)
        t0 = time.perf_counter()
        try:
            ensure_reachable(target)
            got = run(target)
        finally:
            if target.endpoint is not None:
                target.endpoint.close()
        seconds = time.perf_counter() - t0
        what = "checks %s for %s: %d checks, %d requests, %.1f s"
        log.info(what, section, version.name, len(got), target.requests, seconds)
        checks += got
    return [apply_on_fail(c, cfg) for c in checks]
