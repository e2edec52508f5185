"""The terminal: evalkit's rich console, progress bars only on a tty, quiet third-party libraries.

>>> bar = progress_bar(range(3), desc="x", enabled=True)
>>> list(bar)
[0, 1, 2]
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from tqdm.auto import tqdm

#: Loggers that log every request or file at INFO, or housekeeping a user need not see
#: (``mlflow.store.db.utils``: MLflow resets its ``mlflow`` logger to INFO when imported).
NOISY_LOGGERS = (
    "httpx2",
    "httpx",
    "httpcore",
    "datasets",
    "filelock",
    "fsspec",
    "urllib3",
    "matplotlib",
    "mlflow.store.db.utils",
)
#: Loggers whose ERROR lines evalkit reports itself, as one line naming the file and row.
REPORTED_LOGGERS = ("datasets.packaged_modules.json.json",)


def quiet_libraries() -> None:
    """No ``datasets`` progress bars; noisy library loggers at WARNING (:data:`REPORTED_LOGGERS` at
    CRITICAL) unless set otherwise."""
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    if "datasets" in sys.modules:  # already imported: switch its bars off directly
        sys.modules["datasets"].disable_progress_bars()
    for names, level in ((NOISY_LOGGERS, logging.WARNING), (REPORTED_LOGGERS, logging.CRITICAL)):
        for name in names:
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET:
                logger.setLevel(level)


def progress_bar(
    iterable: Iterable[Any] | None = None, *, desc: str, enabled: bool = True, **kwargs: Any
) -> tqdm:
    """A tqdm bar drawn only on a terminal (``enabled=False``: never)."""
    return tqdm(iterable, desc=desc, disable=None if enabled else True, leave=False, **kwargs)


def make_console() -> Console:
    """A rich console; off a terminal (logs, CI, pipes) 160 columns wide instead of 80."""
    console = Console()
    return console if console.is_terminal else Console(width=160)
