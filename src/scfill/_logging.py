"""Logging for scfill: one package logger, silent unless the user asks."""

from __future__ import annotations

import logging
import sys
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
    """Progress bars show when scfill logs at INFO or below (CLI default, `--quiet` hides)
    and stderr is a terminal: in a log file or CI a bar would be redrawn into the log, so
    there the training engine's one summary line per phase stands in for it."""
    return logger.isEnabledFor(logging.INFO) and _is_terminal(sys.stderr)


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


#: Format of the line :func:`timed` logs when a step starts (tests look for it).
STARTED = "%s …"


@contextmanager
def timed(what: str) -> Iterator[None]:
    """Log ``<what> …`` and ``finished <what> (seconds)`` around a block.

    ``what`` reads as a step in progress: ``"fitting maskclass"``, ``"estimating dropout
    probabilities (gamma_normal)"``.
    """
    logger.info(STARTED, what)
    start = time.perf_counter()
    yield
    logger.info("finished %s (%.2f s)", what, time.perf_counter() - start)
