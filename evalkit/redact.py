"""Keep API keys out of everything evalkit writes: logs, stdout / stderr, files, MLflow.
:func:`redact` masks registered key variables' values, credential spellings (``Bearer``,
``api_key=``) and key-shaped strings (``sk-...``, ``hf_...``).

>>> redact("HTTP 401: bad key sk-123abc, header Authorization: Bearer sk-123abc", ["sk-123abc"])
'HTTP 401: bad key [REDACTED], header Authorization: [REDACTED]'
>>> redact('{"api_key": "xyz", "n": 1}')
'{"api_key": "[REDACTED]", "n": 1}'
>>> redact("key sk-live-0123456789abcdef was rejected; see task-sk-learn")
'key [REDACTED] was rejected; see task-sk-learn'
>>> redact_data({"reason": "bad key sk-live-0123456789abcdef", "n": [1, "Bearer x"]})
{'reason': 'bad key [REDACTED]', 'n': [1, 'Bearer [REDACTED]']}
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

MASK = "[REDACTED]"
# Shorter values are not treated as secrets (they would mask ordinary words, e.g. "EMPTY").
MIN_SECRET_LEN = 6
#: ``Authorization: Bearer x``, ``"authorization": "Basic x"``, ``Bearer x``, ``api_key=x``, ...
#: and key-shaped strings.  Each pattern keeps its group 1 and masks the rest of the match.
_PATTERNS = (
    re.compile(
        r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token)\s+)?[^\s\"',}]+"
    ),
    re.compile(r"(?i)\b(bearer\s+)[^\s\"',}]+"),
    re.compile(
        r"(?i)((?:api[_-]?key|x-api-key|access[_-]?token)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}&]+"
    ),
    # OpenAI's 401: "Incorrect API key provided: <key>." (whatever the key looks like)
    re.compile(r"(?i)(incorrect api key provided:?\s*)[^\s\"',}]*[^\s\"',}.]"),
    # sk-... keys (OpenAI sk-proj-..., Anthropic sk-ant-...), also with a masked middle
    re.compile(r"(?<![A-Za-z0-9_-])()sk-[A-Za-z0-9_*-]{12,}"),
    # Hugging Face tokens
    re.compile(r"(?<![A-Za-z0-9_-])()hf_[A-Za-z0-9]{20,}"),
)
#: Environment variables whose values are secrets (:func:`register_key_envs` adds to it).
_KEY_ENVS: list[str] = ["OPENAI_API_KEY"]
#: Text suffixes of files :func:`redacted_copy` reads (anything else is sent as it is).
TEXT_SUFFIXES = (".json", ".jsonl", ".md", ".html", ".txt", ".log", ".yaml", ".yml", ".csv", ".tsv")

#: Config keys whose values are secrets: never logged, dumped or shown.
SECRET_KEY = re.compile(r"(api_key|apikey|token|secret|password|authorization)$", re.IGNORECASE)


def register_key_envs(names: Iterable[str]) -> list[str]:
    """Add names of environment variables holding API keys; returns the names now known."""
    for name in names:
        if isinstance(name, str) and name and name not in _KEY_ENVS:
            _KEY_ENVS.append(name)
    return list(_KEY_ENVS)


def env_secrets(names: Iterable[str]) -> list[str]:
    return [os.environ[n] for n in dict.fromkeys(names) if os.environ.get(n)]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret (given or registered), credential and key-shaped value masked."""
    if not text:
        return text
    values = {s for s in (*secrets, *env_secrets(_KEY_ENVS)) if s and len(s) >= MIN_SECRET_LEN}
    for secret in sorted(values, key=len, reverse=True):
        text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def redact_data(value: Any, secrets: Iterable[str] = ()) -> Any:
    """Plain data with every string value redacted (keys are kept)."""
    secrets = list(secrets)
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {k: redact_data(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_data(v, secrets) for v in value)
    return value


@contextlib.contextmanager
def redacted_copy(path: str | Path) -> Iterator[Path]:
    """``path`` itself when it holds no secret (or is not text), else a redacted copy of the same
    name in a temporary folder."""
    path, text = Path(path), ""
    if path.suffix.lower() in TEXT_SUFFIXES and path.is_file():
        with contextlib.suppress(OSError, UnicodeDecodeError):
            text = path.read_text(encoding="utf-8")
    clean = redact(text)
    if clean == text:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="evalkit-redacted-") as tmp:
        copy = Path(tmp) / path.name
        copy.write_text(clean, encoding="utf-8")
        yield copy


class RedactingFilter(logging.Filter):
    """Redact each record's message and traceback (``names`` read when it is emitted)."""

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
    """Register ``names``; one :class:`RedactingFilter` on every handler of the root and
    ``evalkit`` loggers (replacing an earlier one)."""
    names = register_key_envs(names)
    flt = RedactingFilter(names)
    for logger in (logging.getLogger(), logging.getLogger("evalkit")):
        for handler in logger.handlers:
            for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
                handler.removeFilter(old)
            handler.addFilter(flt)
    return flt


class RedactingStream(io.TextIOBase):
    """Redacts what it passes on to ``target`` line by line, so a key split over two ``write``
    calls is still masked.

    >>> out = io.StringIO()
    >>> s = RedactingStream(out)
    >>> _ = s.write("key: Bearer abc"); _ = s.write("def\\nnext"); s.flush()
    >>> out.getvalue()
    'key: Bearer [REDACTED]\\nnext'
    """

    def __init__(self, target: TextIO) -> None:
        super().__init__()
        self.target = target
        self._pending = ""

    def write(self, s: str) -> int:
        text = self._pending + s
        cut = max(text.rfind("\n"), text.rfind("\r"))
        if cut < 0:
            self._pending = text
        else:
            self._pending = text[cut + 1 :]
            self.target.write(redact(text[: cut + 1]))
        return len(s)

    def flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, ""
            self.target.write(redact(pending))
        self.target.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.target.isatty()

    def fileno(self) -> int:
        return self.target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)


@contextlib.contextmanager
def redacted_std_streams() -> Iterator[None]:
    """``sys.stdout`` and ``sys.stderr`` redacted inside the block."""
    saved = sys.stdout, sys.stderr
    if isinstance(sys.stdout, RedactingStream):  # nested (a sweep's jobs in one process)
        yield
        return
    sys.stdout, sys.stderr = RedactingStream(saved[0]), RedactingStream(saved[1])
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        sys.stdout, sys.stderr = saved


def api_key_envs(cfg: Any) -> list[str]:
    """Environment variables holding the selected versions' API keys."""
    names = ["OPENAI_API_KEY"]
    for section in (cfg.get("models") or {}).values():
        env = section.get("api_key_env") if isinstance(section, Mapping) else None
        if isinstance(env, str) and env:
            names.append(env)
    return names
