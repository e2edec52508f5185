"""What an embedding endpoint is expected to do: the contract ``evalkit task=check`` tests against.

Read from the ``checks`` config group (``conf/checks/*.yaml``); the defaults below (and
``conf/checks/openai_default.yaml``, which mirrors them) encode what the OpenAI embeddings API
documents: ``dimensions`` honoured, unit-length vectors, 401 without a valid key, 400 on an empty
or mixed-type input list, 400 naming the limit on over-long input, 404 for an unknown model.
A team writes its own contract once (``conf/checks/<name>.yaml``) and selects it with
``checks=<name>``.

>>> cfg = ChecksConfig.from_mapping({"sanity": {"dimensions": [64]}, "on_fail": {"contract.auth": "WARN"}})
>>> cfg.sanity.dimensions, cfg.contract.empty_input_status, cfg.outcome_override("contract.auth.none")
((64,), (400,), <Status.WARN: 'WARN'>)
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from evalkit.checks.result import Status
from evalkit.errors import ConfigError
from evalkit.plain import plain_mapping

SECTIONS = ("sanity", "long_text", "contract")
ROLES = ("query", "document")


@dataclass(frozen=True)
class SanityConfig:
    """Vector sanity: dimensions, norms, finiteness, determinism, batch invariance, probes."""

    role: str = "query"
    #: Each value is requested (``dimensions`` in the request) and must come back exactly.
    dimensions: tuple[int, ...] = (256, 512)
    #: The native (default) dimension the endpoint must return; null = report only.
    expected_dimension: int | None = None
    #: True: vectors must have unit L2 norm; False: must not; null: report only.
    normalized: bool | None = True
    norm_tolerance: float = 0.01
    determinism_min_cosine: float = 0.99999
    batch_invariance_min_cosine: float = 0.9999
    #: Mean same-meaning minus mean unrelated cosine across languages (WARN below, FAIL <= 0).
    multilingual_min_margin: float = 0.05
    #: Distinct inputs whose vectors are at least this similar count as collapsed.
    collapse_min_cosine: float = 0.9999


@dataclass(frozen=True)
class LongTextConfig:
    """Longest accepted input (exponential then binary search), silent truncation, chunking."""

    role: str = "document"
    start_words: int = 256
    max_words: int = 8192
    #: The documented input limit in tokens (OpenAI: 8192): after the first probe, the search
    #: jumps to just past it (words from the token counts the server reports in ``usage``) and
    #: stops there when it is accepted; null = double from ``start_words`` up to ``max_words``.
    max_tokens: int | None = 8192
    #: The truncation probe runs at min(longest accepted, this many words): long enough to cross
    #: the usual model windows (512-2048 tokens), without two more requests at the full limit.
    #: null = at the longest accepted length.
    truncation_words: int | None = 1024
    #: Binary search stops when the bracket is narrower than this share of the lower bound.
    resolution: float = 0.05
    max_requests: int = 16
    #: FAIL when the endpoint accepts fewer words than this.
    min_accepted_words: int = 0
    #: Share of the words at the end replaced by different ones in the truncation probe.
    truncation_tail: float = 0.25
    #: OpenAI rejects over-long input; a silently truncating endpoint FAILs unless allowed.
    allow_silent_truncation: bool = False
    chunk_words: int = 256
    chunks: int = 4
    #: (max - min) / mean of the chunk vectors' norms above this is a WARN.
    max_norm_spread: float = 0.25


@dataclass(frozen=True)
class ContractConfig:
    """HTTP contract of an OpenAI-compatible server (expected status codes per request)."""

    health_route: str = "/health"
    health_status: tuple[int, ...] = (200,)
    #: ``<root>/embeddings`` (no ``/v1``): null = report what happens.
    path_without_v1_status: tuple[int, ...] | None = None
    #: True: requests without a valid key are rejected; False: the server is open.
    auth_required: bool = True
    auth_rejected_status: tuple[int, ...] = (401,)
    empty_input_status: tuple[int, ...] = (400,)
    mixed_input_status: tuple[int, ...] = (400,)
    #: null = reuse the long-text search's probe just past ``long_text.max_tokens`` (no second
    #: request of that size) when it ran, else send 9000 words.
    over_long_words: int | None = None
    over_long_status: tuple[int, ...] = (400,)
    #: The over-long error message must state the limit (a number such as 8192).
    over_long_states_limit: bool = True
    unknown_model: str = "evalkit-no-such-model"
    unknown_model_status: tuple[int, ...] = (404,)
    encoding_max_abs_diff: float = 1e-6
    usage_required: bool = True
    timeout_s: float = 120.0


@dataclass(frozen=True)
class ChecksConfig:
    """All sections plus which to run, which to skip and per-check FAIL overrides."""

    sections: tuple[str, ...] = SECTIONS
    #: Check names (or dotted prefixes such as ``contract.auth``) not run: reported as SKIP.
    skip: tuple[str, ...] = ()
    #: ``{name or prefix: WARN | SKIP}``: what a FAIL of that check becomes.
    on_fail: Mapping[str, Status] = field(default_factory=dict)
    sanity: SanityConfig = field(default_factory=SanityConfig)
    long_text: LongTextConfig = field(default_factory=LongTextConfig)
    contract: ContractConfig = field(default_factory=ContractConfig)
    #: ``{version name: {section: {key: value}}}``: that endpoint's own expectations, merged
    #: over the rest (one task=check run can hold several endpoints to different contracts).
    versions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> ChecksConfig:
        """Build from the ``checks`` config node (a dict or OmegaConf node); None = defaults."""
        cfg = _plain(cfg, "checks")
        unknown = sorted(set(cfg) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(
                f"checks has unknown key(s) {', '.join(unknown)} "
                f"(expected {', '.join(f.name for f in fields(cls))})"
            )
        sections = _tuple(cfg.get("sections", SECTIONS), str, "checks.sections")
        bad = [s for s in sections if s not in SECTIONS]
        if bad:
            raise ConfigError(
                f"checks.sections has unknown section(s) {bad} (expected some of {list(SECTIONS)})"
            )
        on_fail_raw = _plain(cfg.get("on_fail"), "checks.on_fail")
        on_fail: dict[str, Status] = {}
        for name, value in on_fail_raw.items():
            try:
                status = Status(str(value).upper())
            except ValueError:
                status = None
            if status not in (Status.WARN, Status.SKIP, Status.FAIL):
                raise ConfigError(
                    f"checks.on_fail.{name}={value!r} is invalid (expected WARN, SKIP or FAIL)"
                )
            on_fail[str(name)] = status
        out = cls(
            sections=sections,
            skip=_tuple(cfg.get("skip", ()), str, "checks.skip"),
            on_fail=on_fail,
            sanity=_section(SanityConfig, cfg.get("sanity"), "checks.sanity"),
            long_text=_section(LongTextConfig, cfg.get("long_text"), "checks.long_text"),
            contract=_section(ContractConfig, cfg.get("contract"), "checks.contract"),
            versions=_plain(cfg.get("versions"), "checks.versions"),
        )
        out._validate()
        for name in out.versions:
            out.for_version(name)  # surface a bad override now, not mid-run
        return out

    def for_version(self, name: str) -> ChecksConfig:
        """This contract with ``versions[name]`` merged over it (itself if there is none).

        >>> cfg = ChecksConfig.from_mapping({"versions": {"e5": {"sanity": {"dimensions": []}}}})
        >>> cfg.for_version("e5").sanity.dimensions, cfg.for_version("other").sanity.dimensions
        ((), (256, 512))
        """
        override = self.versions.get(name)
        if not override:
            return self
        override = _plain(override, f"checks.versions.{name}")
        if "versions" in override:
            raise ConfigError(f"checks.versions.{name} cannot itself contain 'versions'")
        base = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "versions"}
        merged: dict[str, Any] = {}
        for key, value in base.items():
            if dataclasses.is_dataclass(value):
                value = dataclasses.asdict(value)
                sub = _plain(override.get(key), f"checks.versions.{name}.{key}")
                value.update(sub)
            elif key in override:
                value = override[key]
            merged[key] = value
        merged["on_fail"] = {k: str(v) for k, v in dict(merged["on_fail"]).items()}
        unknown = sorted(set(override) - set(base))
        if unknown:
            raise ConfigError(
                f"checks.versions.{name} has unknown key(s) {', '.join(unknown)} "
                f"(expected {', '.join(base)})"
            )
        try:
            return ChecksConfig.from_mapping(merged)
        except ConfigError as err:
            raise ConfigError(f"checks.versions.{name}: {err}") from None

    def _validate(self) -> None:
        s, lt, c = self.sanity, self.long_text, self.contract
        for where, role in (("checks.sanity.role", s.role), ("checks.long_text.role", lt.role)):
            if role not in ROLES:
                raise ConfigError(f"{where}={role!r} is unknown (expected query or document)")
        _positive("checks.sanity.dimensions", *s.dimensions)
        if s.expected_dimension is not None:
            _positive("checks.sanity.expected_dimension", s.expected_dimension)
        _positive(
            "checks.long_text",
            lt.start_words,
            lt.max_words,
            lt.max_requests,
            lt.chunk_words,
            lt.chunks,
        )
        if lt.start_words > lt.max_words:
            raise ConfigError(
                f"checks.long_text.start_words={lt.start_words} exceeds max_words={lt.max_words} "
                "(expected start_words <= max_words)"
            )
        if not 0.0 < lt.truncation_tail < 1.0:
            raise ConfigError(
                f"checks.long_text.truncation_tail={lt.truncation_tail} is out of range "
                "(expected a share between 0 and 1)"
            )
        if lt.resolution <= 0:
            raise ConfigError(
                f"checks.long_text.resolution={lt.resolution} is invalid (expected > 0)"
            )
        if c.over_long_words is not None:
            _positive("checks.contract.over_long_words", c.over_long_words)
        if not c.health_route.startswith("/"):
            raise ConfigError(
                f"checks.contract.health_route={c.health_route!r} is invalid (expected a path "
                "starting with /)"
            )

    def skipped(self, name: str) -> bool:
        """Whether ``checks.skip`` names this check or a dotted prefix of it."""
        return any(_matches(name, p) for p in self.skip)

    def outcome_override(self, name: str) -> Status | None:
        """What a FAIL of ``name`` becomes per ``checks.on_fail`` (longest prefix wins)."""
        hits = [p for p in self.on_fail if _matches(name, p)]
        return self.on_fail[max(hits, key=len)] if hits else None


def _matches(name: str, pattern: str) -> bool:
    return name == pattern or name.startswith(pattern + ".")


def _plain(cfg: Any, where: str) -> dict[str, Any]:
    return plain_mapping(cfg, where)


def _positive(where: str, *values: int) -> None:
    for v in values:
        if v < 1:
            raise ConfigError(f"{where} has {v} (expected integers >= 1)")


def _tuple(value: Any, kind: type, where: str) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{where}={value!r} is invalid (expected a list of {kind.__name__})")
    return tuple(_scalar(v, kind, where) for v in value)


def _scalar(value: Any, kind: type, where: str) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}={value!r} is invalid (expected true or false)")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}={value!r} is invalid (expected an integer)")
    if kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise ConfigError(f"{where}={value!r} is invalid (expected a number)")
    if isinstance(value, str):
        return value
    raise ConfigError(f"{where}={value!r} is invalid (expected a string)")


def _convert(value: Any, hint: Any, where: str) -> Any:
    """Convert ``value`` to the dataclass field type ``hint`` (scalars, tuples, optionals)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _convert(value, args[0], where)
    if origin is tuple:
        return _tuple(value, typing.get_args(hint)[0], where)
    return _scalar(value, hint, where)


def _section(cls: type, raw: Any, where: str) -> Any:
    values = _plain(raw, where)
    hints = typing.get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"{where} has unknown key(s) {', '.join(unknown)} (expected {', '.join(known)})"
        )
    return cls(**{k: _convert(v, hints[k], f"{where}.{k}") for k, v in values.items()})


def config_params(cfg: ChecksConfig) -> dict[str, Any]:
    """The contract as flat ``checks.*`` params (what the endpoint was held to)."""
    plain = dataclasses.asdict(cfg)
    plain["on_fail"] = {k: str(v) for k, v in cfg.on_fail.items()}
    plain.pop("versions", None)  # logged already merged, per version
    return {"checks": plain}
