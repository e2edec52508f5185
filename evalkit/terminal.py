"""The terminal: evalkit's rich console, progress bars only on a tty, quiet third-party libraries.

:func:`make_console` is the console every task prints its tables on (160 columns off a terminal).

Progress bars of long stages (embedding, FAISS build, search, the long-text search of the
endpoint checks) use :func:`progress_bar`, which draws only when stderr is a terminal (tqdm's
``disable=None``): nothing in CI logs or pipes.  ``datasets`` draws a "Generating train split"
bar for every file it reads; evalkit turns those off.  Library loggers (``httpx2``, which
openai 3 uses for one INFO line per request, ``httpx``, ``datasets``, ...) are set to WARNING in
``conf/config.yaml`` (``hydra.job_logging.loggers``); :func:`quiet_libraries` applies the same
levels when evalkit is used without Hydra's logging set-up.

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

#: Loggers that log every request or file at INFO, or housekeeping a user need not see:
#: matplotlib's "generated new fontManager" and MLflow's "Creating initial MLflow database
#: tables" (``mlflow.store.db.utils``: MLflow resets its ``mlflow`` logger to INFO when imported,
#: not this child).
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
#: Loggers whose ERROR lines evalkit reports itself, as one line naming the file and row:
#: ``datasets``' JSON builder logs "Failed to load JSON from file ..." (twice) before raising.
REPORTED_LOGGERS = ("datasets.packaged_modules.json.json",)


def quiet_libraries() -> None:
    """No ``datasets`` progress bars; noisy library loggers at WARNING (those whose errors evalkit
    reports itself at CRITICAL) unless set otherwise on purpose.

    ``datasets`` reads ``HF_DATASETS_DISABLE_PROGRESS_BARS`` when it is imported, so a run that
    never loads a dataset through it (the demo) does not pay for importing it here.
    """
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
