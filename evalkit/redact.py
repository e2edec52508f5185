"""Keep API keys out of every logged line: a logging filter and the function behind it.

Servers sometimes echo the request back in their error bodies (the ``Authorization`` header,
the key itself), and evalkit logs server errors verbatim.  :func:`redact` replaces the values of
the secrets it is given and any ``Bearer <token>`` / ``Authorization: <value>`` / ``api_key=...``
spelling by ``[REDACTED]``; :class:`RedactingFilter` applies it to every record a handler emits
(message, arguments and traceback text); :func:`install_redaction` puts that filter on the
root logger's handlers (Hydra's console and ``<job>.log`` file handlers) and on evalkit's.

>>> redact("HTTP 401: bad key sk-123abc, header Authorization: Bearer sk-123abc", ["sk-123abc"])
'HTTP 401: bad key [REDACTED], header Authorization: [REDACTED]'
>>> redact('{"api_key": "xyz", "n": 1}')
'{"api_key": "[REDACTED]", "n": 1}'
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from typing import Any

MASK = "[REDACTED]"
# Shorter values are not treated as secrets (they would mask ordinary words, e.g. "EMPTY").
MIN_SECRET_LEN = 6
#: ``Authorization: Bearer x``, ``"authorization": "Basic x"``, ``Bearer x``, ``api_key=x``, ...
_PATTERNS = (
    re.compile(
        r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token)\s+)?[^\s\"',}]+"
    ),
    re.compile(r"(?i)\b(bearer\s+)[^\s\"',}]+"),
    re.compile(
        r"(?i)((?:api[_-]?key|x-api-key|access[_-]?token)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}&]+"
    ),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret value and every credential-looking value replaced by MASK."""
    for secret in sorted(
        {s for s in secrets if s and len(s) >= MIN_SECRET_LEN}, key=len, reverse=True
    ):
        text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def env_secrets(names: Iterable[str]) -> list[str]:
    """The values of the environment variables ``names`` (those that are set)."""
    return [os.environ[n] for n in dict.fromkeys(names) if os.environ.get(n)]


class RedactingFilter(logging.Filter):
    """Rewrite each record so that its message and traceback text carry no secret.

    The secrets are read when the record is emitted (``names`` are environment variables), so
    a key exported after start-up is masked too.
    """

    def __init__(self, names: Iterable[str] = ("OPENAI_API_KEY",)) -> None:
        super().__init__()
        self.names = list(dict.fromkeys(names))

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = env_secrets(self.names)
        message = record.getMessage()
        clean = redact(message, secrets)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        return True


def install_redaction(names: Iterable[str] = ("OPENAI_API_KEY",)) -> RedactingFilter:
    """Attach one :class:`RedactingFilter` to every handler of the root logger and of the
    ``evalkit`` logger (idempotent: an earlier evalkit filter is replaced)."""
    flt = RedactingFilter(names)
    for logger in (logging.getLogger(), logging.getLogger("evalkit")):
        for handler in logger.handlers:
            for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
                handler.removeFilter(old)
            handler.addFilter(flt)
    return flt


def api_key_envs(cfg: Any) -> list[str]:
    """Environment variables holding API keys of the selected versions (for redaction)."""
    names = ["OPENAI_API_KEY"]
    for version in (cfg.get("models") or {}).values():
        env = version.get("api_key_env") if hasattr(version, "get") else None
        if isinstance(env, str) and env:
            names.append(env)
    return names
