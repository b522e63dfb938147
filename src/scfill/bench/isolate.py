"""Run one function call in a child process: a time limit, its peak memory, its fate.

The child is a fresh interpreter running this file (``python isolate.py SPEC``), so a crash, an
out-of-memory kill or a hard exit ends only that call. The parent reaps it with
:func:`os.wait4`, whose resource usage gives the child's peak resident memory
(``ru_maxrss``) even when it was killed.

Outcomes (:attr:`Outcome.status`):

``ok``
    The function returned; :attr:`Outcome.result` holds its (JSON) value.
``skipped``
    It raised :class:`~scfill.errors.InputError` (a missing optional package, a protocol
    that does not apply to the dataset, ...): not a failure of the method.
``failed``
    It raised another exception (message and traceback kept).
``crashed``
    The process ended without a result (signal, ``os._exit``, out-of-memory kill).
``timeout``
    It ran past the time limit and was killed.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Seconds between checks on a running child.
POLL_S = 0.2
#: Characters of a failed child's stderr kept in the message.
STDERR_TAIL = 2000
#: Environment variables that cap the threads of numpy/BLAS, numba and torch.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "NUMBA_NUM_THREADS")
STATUSES = ("ok", "skipped", "failed", "crashed", "timeout")


@dataclass
class Outcome:
    """What became of one isolated call.

    Attributes
    ----------
    status
        One of :data:`STATUSES`.
    message
        Why it did not succeed (empty when ok).
    result
        The function's return value (JSON types) when ok.
    wall_s
        Wall time of the child process, start to end.
    peak_rss_mb
        The child's peak resident memory (MiB), from ``ru_maxrss``.
    """

    status: str
    message: str = ""
    result: Any = None
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    traceback: str = field(default="", repr=False)


def run_isolated(
    target: str,
    kwargs: dict[str, Any],
    *,
    timeout_s: float | None = None,
    threads: int | None = None,
    preload: tuple[str, ...] = (),
    log_path: str | os.PathLike | None = None,
) -> Outcome:
    """Call ``target(**kwargs)`` in a child process and report what happened.

    Parameters
    ----------
    target
        ``"package.module:function"``; the function takes JSON keyword arguments and
        returns a JSON value.
    kwargs
        Its keyword arguments (JSON types).
    timeout_s
        Kill the child after this many seconds (None: no limit).
    threads
        Cap the child's numpy/BLAS/numba/torch threads through :data:`THREAD_VARIABLES`
        (torch takes its default thread count from ``OMP_NUM_THREADS``); None inherits.
    preload
        Modules the child imports first (e.g. one that registers extra methods).
    log_path
        File that receives the child's stdout and stderr (default: discarded after use).
    """
    with tempfile.TemporaryDirectory(prefix="scfill-bench-") as tmp:
        spec_path, result_path = Path(tmp, "spec.json"), Path(tmp, "result.json")
        spec_path.write_text(json.dumps({
            "target": target, "kwargs": kwargs, "result": str(result_path),
            "sys_path": sys.path, "preload": list(preload)}))
        log = Path(log_path) if log_path else Path(tmp, "child.log")
        env = dict(os.environ)
        if threads is not None:
            env.update({name: str(threads) for name in THREAD_VARIABLES})
        with open(log, "wb") as sink:
            start = time.perf_counter()
            child = subprocess.Popen([sys.executable, __file__, str(spec_path)], stdout=sink,
                                     stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
            try:
                status, usage, timed_out = _reap(child, timeout_s)
            finally:
                if child.returncode is None:  # interrupted: do not leave the child running
                    os.killpg(child.pid, signal.SIGKILL)
                    os.wait4(child.pid, 0)
            wall = time.perf_counter() - start
        peak = usage.ru_maxrss / 1024  # kB on Linux
        if timed_out:
            return Outcome("timeout", f"killed after the time limit of {timeout_s:g} s",
                           wall_s=wall, peak_rss_mb=peak)
        if not result_path.exists():
            return Outcome("crashed", f"{_describe_exit(status)}; last output: "
                           f"{_tail(log)}", wall_s=wall, peak_rss_mb=peak)
        reply = json.loads(result_path.read_text())
        return Outcome(reply["status"], reply.get("message", ""), reply.get("result"),
                       wall_s=wall, peak_rss_mb=peak, traceback=reply.get("traceback", ""))


def _reap(child: subprocess.Popen, timeout_s: float | None):
    """Wait for ``child`` (killing its process group past the limit); exit status, usage."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    timed_out = False
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.monotonic() > deadline:
            timed_out = True
            os.killpg(child.pid, signal.SIGKILL)
            _, status, usage = os.wait4(child.pid, 0)
            break
        time.sleep(POLL_S)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return status, usage, timed_out


def _describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        hint = " (killed: out of memory?)" if sig == signal.SIGKILL else ""
        return f"the process died from signal {signal.Signals(sig).name}{hint}"
    return f"the process exited with code {os.WEXITSTATUS(status)} without a result"


def _tail(log: Path) -> str:
    text = log.read_text(errors="replace").strip() if log.exists() else ""
    return text[-STDERR_TAIL:] or "(none)"


def _child(spec_path: str) -> None:
    """Entry point of the child process: run the spec, write the result file.

    Nothing of scfill is imported here, so the child costs only what the job imports.
    """
    spec = json.loads(Path(spec_path).read_text())
    sys.path[:] = spec["sys_path"]
    try:
        for module in spec["preload"]:
            importlib.import_module(module)
        module_name, _, function = spec["target"].partition(":")
        call = getattr(importlib.import_module(module_name), function)
        reply = {"status": "ok", "result": call(**spec["kwargs"])}
    except Exception as err:  # any failure of the call is reported, not raised
        errors = sys.modules.get("scfill.errors")  # an InputError implies scfill is loaded
        if errors is not None and isinstance(err, errors.InputError):
            reply = {"status": "skipped", "message": str(err)}
        else:
            reply = {"status": "failed", "message": f"{type(err).__name__}: {err}",
                     "traceback": traceback.format_exc()}
    result = Path(spec["result"])
    partial = result.with_suffix(".part")
    partial.write_text(json.dumps(reply))
    partial.replace(result)


if __name__ == "__main__":
    _child(sys.argv[1])
