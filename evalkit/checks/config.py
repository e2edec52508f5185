"""What an embedding endpoint is expected to do: the contract ``evalkit task=check`` tests against.

Read from ``conf/checks/*.yaml`` (``checks=<name>``); the defaults encode what the OpenAI
embeddings API documents.

>>> cfg = ChecksConfig.from_mapping({"sanity": {"dimensions": [64]}, "on_fail": {"contract.auth": "WARN"}})
>>> cfg.sanity.dimensions, cfg.contract.empty_input_status, cfg.outcome_override("contract.auth.none")
((64,), (400,), <Status.WARN: 'WARN'>)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evalkit.checks.result import Status
from evalkit.config_schema import plain, read_section, setting
from evalkit.errors import ConfigError

SECTIONS = ("sanity", "long_text", "contract")
ROLES = ("query", "document")


@dataclass(frozen=True)
class SanityConfig:
    """Vector sanity: dimensions, norms, finiteness, determinism, batch invariance, probes."""

    role: str = setting("query", choices=ROLES, help="which role's prefix / input_type probes use")
    dimensions: tuple[int, ...] = setting(
        (256, 512), ge=1, help="each is sent as `dimensions` and must come back exactly"
    )
    expected_dimension: int | None = setting(
        None, ge=1, help="the native dimension when none is requested; null = report only"
    )
    normalized: bool | None = setting(
        True, help="vectors must have unit L2 norm (false: must not); null = report only"
    )
    norm_tolerance: float = setting(0.01, ge=0, help="|norm - 1| allowed when normalized")
    determinism_min_cosine: float = setting(0.99999, help="same texts, second request")
    batch_invariance_min_cosine: float = setting(0.9999, help="a text alone vs inside a batch")
    multilingual_min_margin: float = setting(
        0.05, help="translations minus unrelated mean cosine (WARN below, FAIL <= 0)"
    )
    collapse_min_cosine: float = setting(
        0.9999, help="distinct inputs at least this similar count as collapsed"
    )


@dataclass(frozen=True)
class LongTextConfig:
    """Longest accepted input (exponential then binary search), silent truncation, chunking."""

    role: str = setting("document", choices=ROLES, help="long texts are catalog documents")
    start_words: int = setting(256, ge=1, help="the first length tried")
    max_words: int = setting(8192, ge=1, help="the length search's hard cap")
    max_tokens: int | None = setting(
        8192, help="the documented input limit; null = double from start_words to max_words"
    )
    truncation_words: int | None = setting(
        1024, help="the truncation probe's length at most; null = the longest accepted"
    )
    resolution: float = setting(
        0.05, gt=0, help="the search stops when the bracket is below this share"
    )
    max_requests: int = setting(16, ge=1, help="bound on the length and truncation searches")
    min_accepted_words: int = setting(0, help="FAIL when the endpoint accepts fewer words")
    truncation_tail: float = setting(
        0.25, gt=0, lt=1, help="share of the words replaced at the end in the truncation probe"
    )
    allow_silent_truncation: bool = setting(False, help="a silently truncating endpoint passes")
    chunk_words: int = setting(256, ge=1, help="chunk size of the chunking probe")
    chunks: int = setting(4, ge=1, help="chunks in the probe document")
    max_norm_spread: float = setting(
        0.25, help="(max - min) / mean of the chunk norms above this WARNs"
    )

    def __post_init__(self) -> None:
        if self.start_words > self.max_words:
            raise ConfigError(
                f"checks.long_text.start_words={self.start_words} exceeds "
                f"max_words={self.max_words} (expected start_words <= max_words)"
            )


@dataclass(frozen=True)
class ContractConfig:
    """HTTP contract of an OpenAI-compatible server (expected status codes per request)."""

    health_route: str = setting("/health", help="GET <root><route>; a path starting with /")
    health_status: tuple[int, ...] = setting((200,), help="expected status of the health route")
    path_without_v1_status: tuple[int, ...] | None = setting(
        None, help="POST <root>/embeddings (no /v1); null = report what happens"
    )
    auth_required: bool = setting(True, help="requests without a valid key are rejected")
    auth_rejected_status: tuple[int, ...] = setting((401,), help="status without a valid key")
    empty_input_status: tuple[int, ...] = setting((400,), help="status of input: []")
    mixed_input_status: tuple[int, ...] = setting((400,), help="status of mixed-type input")
    over_long_words: int | None = setting(
        None, ge=1, help="one over-long input's words; null = reuse the long-text probe"
    )
    over_long_status: tuple[int, ...] = setting((400,), help="status of an over-long input")
    over_long_states_limit: bool = setting(True, help="the over-long error states the limit")
    unknown_model: str = setting("evalkit-no-such-model", help="a model name the server lacks")
    unknown_model_status: tuple[int, ...] = setting((404,), help="status of an unknown model")
    encoding_max_abs_diff: float = setting(1e-6, help="float vs base64 answers")
    usage_required: bool = setting(True, help="usage.prompt_tokens / total_tokens present")
    timeout_s: float = setting(120.0, gt=0, help="per-request timeout of every check request")

    def __post_init__(self) -> None:
        if not self.health_route.startswith("/"):
            raise ConfigError(
                f"checks.contract.health_route={self.health_route!r} is invalid (expected a "
                "path starting with /)"
            )


@dataclass(frozen=True)
class ChecksConfig:
    """All sections plus which to run, which to skip and per-check FAIL overrides."""

    sections: tuple[str, ...] = setting(SECTIONS, choices=SECTIONS, help="which checks run")
    skip: tuple[str, ...] = setting((), help="check names or dotted prefixes not run (SKIP)")
    on_fail: Mapping[str, Status] = setting(
        factory=dict,
        choices=(Status.WARN, Status.SKIP, Status.FAIL),
        help="what a FAIL becomes per check name or prefix",
    )
    sanity: SanityConfig = setting(factory=SanityConfig, help="vector sanity")
    long_text: LongTextConfig = setting(factory=LongTextConfig, help="long inputs")
    contract: ContractConfig = setting(factory=ContractConfig, help="the HTTP contract")
    versions: Mapping[str, Any] = setting(
        factory=dict, help="per model version, merged over the rest: {name: {section: {...}}}"
    )

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> ChecksConfig:
        """Build from the ``checks`` config node (a dict or OmegaConf node); None = defaults."""
        out = read_section(cls, cfg, "checks")
        for name in out.versions:
            out.for_version(name)  # surface a bad override now, not mid-run
        return out

    def for_version(self, name: str) -> ChecksConfig:
        """This contract with ``versions[name]`` merged over it (itself if there is none)."""
        where = f"checks.versions.{name}"
        override = plain(self.versions.get(name), where)
        if not override:
            return self
        if "versions" in override:
            raise ConfigError(f"{where} cannot itself contain 'versions'")
        merged = {k: v for k, v in dataclasses.asdict(self).items() if k != "versions"}
        for key, value in override.items():
            section = isinstance(merged.get(key), dict) and key != "on_fail"
            merged[key] = (
                {**merged[key], **value} if section and isinstance(value, Mapping) else value
            )
        return read_section(ChecksConfig, merged, where)

    def skipped(self, name: str) -> bool:
        """Whether ``checks.skip`` names this check or a dotted prefix of it."""
        return any(_matches(name, p) for p in self.skip)

    def outcome_override(self, name: str) -> Status | None:
        """What a FAIL of ``name`` becomes per ``checks.on_fail`` (longest prefix wins)."""
        hits = [p for p in self.on_fail if _matches(name, p)]
        return self.on_fail[max(hits, key=len)] if hits else None


def _matches(name: str, pattern: str) -> bool:
    return name == pattern or name.startswith(pattern + ".")


def config_params(cfg: ChecksConfig) -> dict[str, Any]:
    """The contract as flat ``checks.*`` params (what the endpoint was held to)."""
    plain = dataclasses.asdict(cfg)
    plain["on_fail"] = {k: str(v) for k, v in cfg.on_fail.items()}
    plain.pop("versions", None)  # logged already merged, per version
    return {"checks": plain}
