"""Logging for scfill: one package logger, silent unless the user asks."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger("scfill")
logger.addHandler(logging.NullHandler())


def set_verbosity(level: int | str = "INFO") -> None:
    """Print scfill's log lines to stderr at ``level`` (``"WARNING"`` to quiet them again)."""
    logger.setLevel(level)
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.NullHandler)
               for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s scfill %(levelname)s %(message)s",
                                               "%H:%M:%S"))
        logger.addHandler(handler)


def progress_enabled() -> bool:
    """Progress bars show when scfill logs at INFO or below (CLI default, `--quiet` hides)."""
    return logger.isEnabledFor(logging.INFO)


@contextmanager
def timed(what: str) -> Iterator[None]:
    """Log ``computing <what>`` and ``finished <what> (seconds)`` around a block."""
    logger.info("computing %s", what)
    start = time.perf_counter()
    yield
    logger.info("finished %s (%.2f s)", what, time.perf_counter() - start)
