"""API contract checks for OpenAI-compatible ``/v1/embeddings`` servers.

Each check (:data:`NAMES`) sends one or two requests and compares the answer with
:class:`~evalkit.checks.config.ContractConfig`; details: docs/how-to/openai-server.md.

>>> expect_status(400, (400,)), expect_status(200, (400, 422)), expect_status(None, (400,))
(True, False, False)
>>> states_limit("This model's maximum context length is 8192 tokens"), states_limit("too long")
(True, False)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import openai

from evalkit.checks.config import ContractConfig
from evalkit.checks.probes import BASIC, long_document
from evalkit.checks.result import Check, Status
from evalkit.checks.sanity import Enabled, skipped
from evalkit.checks.target import MalformedResponse, Reply, Target, api_key_of, decode_embeddings
from evalkit.embed.tls import tls_context

NAMES = (
    "contract.health",
    "contract.embeddings",
    "contract.path_without_v1",
    "contract.models",
    "contract.auth.none",
    "contract.auth.bearer_empty",
    "contract.auth.wrong_key",
    "contract.empty_input",
    "contract.mixed_input",
    "contract.over_long",
    "contract.unknown_model",
    "contract.encoding_format",
    "contract.usage",
)
WRONG_KEY = "evalkit-wrong-key-0000"
#: ``contract.over_long_words: null`` without a long-text probe to reuse.
OVER_LONG_WORDS = 9000
_LIMIT = re.compile(r"\d{3,}")


def expect_status(status: int | None, allowed: Sequence[int]) -> bool:
    """Whether an HTTP status (None = no response) is one of the allowed ones."""
    return status is not None and status in allowed


def states_limit(message: str) -> bool:
    """Whether an error message states a numeric limit (a number of at least 3 digits)."""
    return bool(_LIMIT.search(message or ""))


def _statuses(allowed: Sequence[int]) -> str:
    return " or ".join(str(s) for s in allowed)


def status_check(name: str, reply: Reply, allowed: Sequence[int], what: str) -> Check:
    """PASS if ``reply.status`` is allowed, else FAIL; observed = status and message."""
    observed = {"status": reply.status, "message": "" if reply.ok else reply.message(200)}
    expected = f"HTTP {_statuses(allowed)}"
    if expect_status(reply.status, allowed):
        return Check(name, Status.PASS, observed, expected, f"{what}: {reply.summary()}")
    return Check(name, Status.FAIL, observed, expected, f"{what}: got {reply.summary()}")


def check_health(target: Target, cfg: ContractConfig) -> Check:
    ep = target.endpoint
    reply = ep.get(ep.root_url(cfg.health_route))
    c = status_check("contract.health", reply, cfg.health_status, f"GET {cfg.health_route}")
    # OpenAI documents no health route: a missing one only warns
    return c.replace(status=Status.WARN) if c.status is Status.FAIL else c


def check_embeddings_via_client(
    target: Target, cfg: ContractConfig, texts: list[str]
) -> tuple[Check, Any]:
    """The ``openai`` client's default request must work: the check and the usage (or None)."""
    name = "contract.embeddings"
    expected = "HTTP 200 with a 'data' list, parsed by the openai client"
    v = target.version
    client = openai.OpenAI(
        base_url=target.endpoint.base_url,
        api_key=api_key_of(v),
        max_retries=0,
        timeout=cfg.timeout_s,
        http_client=openai.DefaultHttpxClient(verify=tls_context(v.ca_bundle)),
    )
    extra = target.extra
    try:
        raw = client.embeddings.with_raw_response.create(
            model=v.model, input=texts, extra_body=extra or None
        )
        response = raw.parse()
    except openai.APIStatusError as err:
        why = f"HTTP {err.status_code}: {str(err.message)[:200]}"
        return Check(name, Status.FAIL, {"status": err.status_code}, expected, why), None
    except openai.APIError as err:
        return Check(name, Status.FAIL, {"status": None}, expected, f"{err}"), None
    except Exception as err:  # the client could not parse the answer
        why = f"unparseable answer: {err}"
        return Check(name, Status.FAIL, {"status": 200}, expected, why), None
    finally:
        client.close()
    data = sorted(response.data or [], key=lambda d: d.index)
    observed = {"status": raw.status_code, "items": len(data)}
    if len(data) != len(texts) or not all(isinstance(d.embedding, list) for d in data):
        why = f"{len(data)} embeddings for {len(texts)} inputs"
        return Check(name, Status.FAIL, observed, expected, why), response.usage
    dim = np.asarray([d.embedding for d in data], dtype=np.float32).shape[1]
    why = f"{len(data)} embeddings of {dim} dimensions via the openai client"
    observed["dimensions"] = dim
    return Check(name, Status.PASS, observed, expected, why), response.usage


def check_path_without_v1(target: Target, cfg: ContractConfig) -> Check:
    ep = target.endpoint
    reply = ep.embeddings(["hello"], url=ep.root_url("/embeddings"), **target.extra)
    name, what = "contract.path_without_v1", "POST /embeddings (no /v1)"
    if cfg.path_without_v1_status is not None:
        return status_check(name, reply, cfg.path_without_v1_status, what)
    why = f"{what} is {'served' if reply.ok else 'not served'}: {reply.summary()}"
    return Check(name, Status.PASS, {"status": reply.status}, "report only", why)


def check_models(target: Target, cfg: ContractConfig) -> Check:
    name, expected = "contract.models", "HTTP 200 listing the configured model"
    ep = target.endpoint
    reply = ep.get(ep.url("/models"))
    if not reply.ok:
        why = f"GET /v1/models: {reply.summary()}"
        return Check(name, Status.FAIL, {"status": reply.status}, expected, why)
    data = reply.body.get("data") if isinstance(reply.body, dict) else None
    if not isinstance(data, list) or not all(isinstance(m, dict) and "id" in m for m in data):
        why = "GET /v1/models: no 'data' list of objects with 'id'"
        return Check(name, Status.FAIL, {"status": reply.status}, expected, why)
    ids = [str(m["id"]) for m in data]
    observed = {"status": reply.status, "models": ids[:20]}
    if ep.model in ids:
        return Check(name, Status.PASS, observed, expected, f"lists {ep.model!r}")
    why = f"the configured model {ep.model!r} is not listed (served: {', '.join(ids[:5])})"
    return Check(name, Status.WARN, observed, expected, why)


def check_auth(target: Target, cfg: ContractConfig, variant: str) -> Check:
    """One ``Authorization`` variant: ``none``, ``bearer_empty`` or ``wrong_key``."""
    auth, label = {
        "none": (None, "no Authorization header"),
        "bearer_empty": ("EMPTY", "Authorization: Bearer EMPTY"),
        "wrong_key": (WRONG_KEY, "a wrong key"),
    }[variant]
    reply = target.endpoint.embeddings(["hello"], auth=auth, **target.extra)
    allowed = cfg.auth_rejected_status if cfg.auth_required else (200,)
    check = status_check(f"contract.auth.{variant}", reply, allowed, label)
    if check.status is Status.FAIL and cfg.auth_required and reply.ok:
        return check.replace(
            reason=f"{label}: HTTP 200 - the endpoint does not check keys "
            "(set checks.contract.auth_required: false if it is meant to be open)"
        )
    return check


def check_over_long(
    target: Target, cfg: ContractConfig, shared: dict[str, Any] | None = None
) -> Check:
    """One input past the model's limit must be refused (or the long-text probe's, ``shared``)."""
    name = "contract.over_long"
    reused = (shared or {}).get("over_long") if cfg.over_long_words is None else None
    if reused is not None:
        n, reply = reused
    else:
        n = cfg.over_long_words or OVER_LONG_WORDS
        reply = target.endpoint.embeddings([long_document(n)], **target.extra)
    expected = f"HTTP {_statuses(cfg.over_long_status)}" + (
        " stating the limit" if cfg.over_long_states_limit else ""
    )
    observed: dict[str, Any] = {"status": reply.status, "words": n}
    if reused is not None:
        observed["reused"] = "long_text.max_accepted"
    if reply.ok:
        usage = reply.body.get("usage") if isinstance(reply.body, dict) else None
        if isinstance(usage, dict):
            observed["prompt_tokens"] = usage.get("prompt_tokens")
        if 200 in cfg.over_long_status:
            why = f"{n} words embedded (HTTP 200), as the contract allows"
            return Check(name, Status.PASS, observed, expected, why)
        why = (
            f"{n} words were embedded (HTTP 200) instead of refused: the endpoint windows or "
            "truncates over-long input (see long_text.truncation)"
        )
        return Check(name, Status.FAIL, observed, expected, why)
    observed["message"] = message = reply.message(300)
    if not expect_status(reply.status, cfg.over_long_status):
        return Check(name, Status.FAIL, observed, expected, f"{n} words: got {reply.summary()}")
    if cfg.over_long_states_limit and not states_limit(message):
        why = (
            f"{n} words refused with HTTP {reply.status}, but the message states no limit: "
            f"{message[:120]!r}"
        )
        return Check(name, Status.FAIL, observed, expected, why)
    return Check(name, Status.PASS, observed, expected, f"{n} words refused: {reply.summary()}")


def check_encoding_format(target: Target, cfg: ContractConfig, texts: list[str]) -> Check:
    """``encoding_format`` ``float`` and ``base64`` must give the same vectors."""
    name = "contract.encoding_format"
    ep = target.endpoint
    tol = cfg.encoding_max_abs_diff
    expected = f"same vectors (max |diff| <= {tol:g}); base64 as strings"
    extra = target.extra
    as_float = ep.embeddings(texts, encoding_format="float", **extra)
    as_b64 = ep.embeddings(texts, encoding_format="base64", **extra)
    for fmt, reply in (("float", as_float), ("base64", as_b64)):
        if not reply.ok:
            why = f"{fmt}: {reply.summary()}"
            return Check(name, Status.FAIL, {"status": reply.status}, expected, why)
    try:
        a = decode_embeddings(as_float.body)
        b = decode_embeddings(as_b64.body)
    except MalformedResponse as err:
        return Check(name, Status.FAIL, None, expected, f"malformed answer: {err}")
    b64_strings = all(isinstance(d.get("embedding"), str) for d in as_b64.body["data"])
    float_lists = all(isinstance(d.get("embedding"), list) for d in as_float.body["data"])
    if a.shape != b.shape:
        observed = {"float_shape": list(a.shape), "base64_shape": list(b.shape)}
        why = "float and base64 answers have different shapes"
        return Check(name, Status.FAIL, observed, expected, why)
    diff = float(np.abs(a.astype(np.float64) - b).max())
    observed = {"max_abs_diff": diff, "base64_is_string": b64_strings, "float_is_list": float_lists}
    if not diff <= tol:
        why = f"float and base64 differ by up to {diff:.3g}"
        return Check(name, Status.FAIL, observed, expected, why)
    if not (b64_strings and float_lists):
        why = (
            "same vectors, but encoding_format is ignored (answers are not in the requested format)"
        )
        return Check(name, Status.WARN, observed, expected, why)
    return Check(name, Status.PASS, observed, expected, f"identical within {diff:.2g}")


def check_usage(usage: Any, reply: Reply | None, cfg: ContractConfig) -> Check:
    """``usage.prompt_tokens`` and ``usage.total_tokens`` present (integers >= 1)."""
    if usage is not None and not isinstance(usage, dict):
        usage = {k: getattr(usage, k, None) for k in ("prompt_tokens", "total_tokens")}
    if usage is None and reply is not None and isinstance(reply.body, dict):
        usage = reply.body.get("usage")
    expected = "usage.prompt_tokens and usage.total_tokens" if cfg.usage_required else "report only"
    ok = isinstance(usage, dict) and all(
        isinstance(usage.get(k), int) and usage.get(k) >= 1
        for k in ("prompt_tokens", "total_tokens")
    )
    observed = usage if isinstance(usage, dict) else None
    if ok or not cfg.usage_required:
        why = "token usage reported" if ok else "no usage"
        return Check("contract.usage", Status.PASS, observed, expected, why)
    why = "the answer has no valid 'usage' object"
    return Check("contract.usage", Status.FAIL, observed, expected, why)


def run_contract(
    target: Target,
    cfg: ContractConfig,
    enabled: Enabled = lambda name: True,
    shared: dict[str, Any] | None = None,
) -> list[Check]:
    """Every contract check; SKIP for in-process models (there is no HTTP endpoint)."""
    if target.endpoint is None:
        return [
            Check(n, Status.SKIP, None, None, "in-process model: no HTTP endpoint") for n in NAMES
        ]
    prefix = target.version.prefix(target.role)
    texts = [prefix + t for t in BASIC[:3]]
    ep, extra = target.endpoint, target.extra
    embedded: dict[str, Any] = {}

    def embeddings() -> Check:
        check, embedded["usage"] = check_embeddings_via_client(target, cfg, texts)
        return check

    def usage() -> Check:
        if "usage" not in embedded:  # contract.embeddings was skipped
            return check_usage(None, ep.embeddings(texts, **extra), cfg)
        return check_usage(embedded["usage"], None, cfg)

    def sent(name: str, inputs: Any, allowed: Sequence[int], what: str, **kw: Any) -> Check:
        return status_check(name, ep.embeddings(inputs, **kw, **extra), allowed, what)

    unknown = cfg.unknown_model
    runs: list[Callable[[], Check]] = [
        lambda: check_health(target, cfg),
        embeddings,
        lambda: check_path_without_v1(target, cfg),
        lambda: check_models(target, cfg),
        lambda: check_auth(target, cfg, "none"),
        lambda: check_auth(target, cfg, "bearer_empty"),
        lambda: check_auth(target, cfg, "wrong_key"),
        lambda: sent("contract.empty_input", [], cfg.empty_input_status, "input: []"),
        lambda: sent(
            "contract.mixed_input",
            ["hello", 42, None],
            cfg.mixed_input_status,
            'input: ["hello", 42, null]',
        ),
        lambda: check_over_long(target, cfg, shared),
        lambda: sent(
            "contract.unknown_model",
            ["hello"],
            cfg.unknown_model_status,
            f"model {unknown!r}",
            model=unknown,
        ),
        lambda: check_encoding_format(target, cfg, texts),
        usage,
    ]
    return [run() if enabled(name) else skipped(name) for name, run in zip(NAMES, runs)]
