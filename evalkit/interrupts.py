"""Ctrl-C and SIGTERM (:class:`Terminated`) raised in the main thread so ``finally`` blocks end
the MLflow runs: exit codes 130 (Ctrl-C) and 143 (SIGTERM).

>>> with sigterm_as_exception():
...     pass
>>> issubclass(Terminated, KeyboardInterrupt)
True
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM as a ``KeyboardInterrupt``."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


@contextmanager
def sigterm_as_exception() -> Iterator[None]:
    """Raise :class:`Terminated` on SIGTERM inside the block (main thread only)."""
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_code_of(exc: KeyboardInterrupt) -> int:
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
