"""Helpers for benchmark scripts: run a function in a fresh process, report time and peak RSS."""

from __future__ import annotations

import multiprocessing as mp
import platform
import resource
import sys
import time
from collections.abc import Callable
from typing import Any


def _child(func: Callable[..., Any], args: tuple, queue) -> None:
    start = time.perf_counter()
    result = func(*args)
    seconds = time.perf_counter() - start
    # the process, or a child it ran (DCA/DeepImpute's TensorFlow process), if larger
    peak_kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    queue.put((seconds, peak_kib / 1024, result))


def measure(func: Callable[..., Any], *args: Any,
            timeout_s: float | None = None) -> tuple[float, float, Any]:
    """Run ``func(*args)`` in a fresh process; return (seconds, peak RSS MiB, result).

    The peak covers the whole child process (interpreter and imports included), so it is
    an upper bound on what the function itself needs. Past ``timeout_s`` the child is
    killed and ``TimeoutError`` raised.
    """
    import queue as queue_module

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_child, args=(func, args, queue))
    process.start()
    try:
        seconds, peak, result = queue.get(timeout=timeout_s)
    except queue_module.Empty:
        process.kill()
        raise TimeoutError(f"{getattr(func, '__name__', func)} ran past {timeout_s} s") from None
    process.join()
    return seconds, peak, result


def machine() -> str:
    """One line describing where a benchmark ran."""
    import os

    return (f"{platform.node()}: {os.cpu_count()} CPU cores, {platform.machine()}, "
            f"Python {sys.version.split()[0]}, no GPU")


def write_report(path, lines: list[str], *, keep: str = "## Findings") -> None:
    """Write ``lines`` to ``path``, keeping the hand-written section from ``keep`` on of the
    file it replaces, and print the result."""
    from pathlib import Path

    path = Path(path)
    previous = path.read_text() if path.exists() else ""
    kept = previous[previous.find(keep):] if keep in previous else ""
    path.write_text("\n".join(lines) + ("\n" + kept if kept else ""))
    print(path.read_text())
