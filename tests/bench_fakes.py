"""Fake benchmark jobs for tests/test_bench.py, light to import (no scfill, no torch), so
that the isolated child processes start fast. The job's behaviour follows the method name.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

#: Metric values of the well-behaved fake methods (rmse, pearson).
SCORES = {"fake-good": (0.1, 0.9), "fake-bad": (0.5, 0.4)}


def fake_job(*, path: str, method: str, protocol: str, repeat: int, seed: int, params: dict,
             dataset: str, device: str) -> list[dict]:
    """Log the call next to the dataset, then behave as ``method`` says."""
    with open(Path(path).parent / "calls.log", "a") as log:
        log.write(f"{dataset} {method} {protocol} {repeat}\n")
    if method == "fake-exit":
        os._exit(3)
    if method == "fake-raise":
        raise RuntimeError("boom")
    if method == "fake-sleep":
        time.sleep(120)
    rmse, pearson = SCORES[method]
    return [{"dataset": dataset, "method": method, "protocol": protocol, "repeat": repeat,
             "seed": seed, "metric": metric, "value": value + 0.01 * repeat}
            for metric, value in (("rmse", rmse), ("pearson", pearson), ("runtime_s", 1.0))]


def calls(folder: Path) -> list[str]:
    """The calls logged so far."""
    log = Path(folder) / "calls.log"
    return log.read_text().splitlines() if log.exists() else []
