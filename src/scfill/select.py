"""``method="auto"``: choose the imputation method on the user's own data.

A seeded share of the data is held out, every candidate method is run on the rest and
scored on what was held out, and the best one is then refitted on all the data by the
pipeline (:func:`scfill.impute`). Two hold-outs, both from :mod:`scfill.evaluate` (the
same code the benchmarks score with, so the split and the scoring exist once):

- ``mcv:P`` (default ``mcv:0.1``): molecular cross-validation (Batson, Royer & Webber
  2019; ``specs/mcv.md``): every count is split binomially, the method sees the training
  part and its output, back on the count scale, is scored against the test part
  (normalised, log1p MSE over all entries). Needs integer counts.
- ``mask-nonzero:F``: a share F of the observed non-zeros is set to zero in what the method
  sees and its output is scored there against the hidden values (MSE, common space).

Candidates run in the order given (the default puts fast methods first) within one time
budget: each gets what is left of it and is stopped when it runs out (a ``SIGALRM`` timer
in the main thread; elsewhere an overrun is detected when the candidate returns). A
candidate that fails or runs out of time is skipped with its reason in the table and the
log; ``none`` (no imputation) is always scored as the reference but never chosen. Peers
(MAGIC, scVI, ...) are candidates only when named and installed.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from scfill._logging import logger
from scfill.errors import InputError
from scfill.utils import check_number

#: The method name that asks for selection.
AUTO = "auto"
#: scfill's own methods in the order they are tried (fast ones first) when none are named.
DEFAULT_CANDIDATES = ("knn", "alra", "maskclass", "scgacl", "scmaskgan", "cnnimpute")
#: Default hold-out (Open Problems' MCV test share, ``specs/mcv.md``).
DEFAULT_HOLDOUT = "mcv:0.1"
#: Default total time budget of the selection, seconds.
DEFAULT_TIME_BUDGET = 900.0
#: The reference every table carries (scored, never chosen).
REFERENCE = "none"
#: Score of each hold-out kind (lower is better).
METRIC = "mse"


class BudgetExceeded(Exception):
    """A candidate ran past the time left in the budget."""


@dataclass
class Selection:
    """What ``auto`` measured and chose.

    Attributes
    ----------
    winner
        The chosen method (lowest held-out score among the candidates that finished).
    scores
        One row per method tried: ``method``, ``score``, ``relative_to_none``,
        ``seconds``, ``status`` (``ok``, ``failed``, ``out_of_budget``, ``not_run``,
        ``reference``) and ``reason``.
    holdout, metric, seed
        How the candidates were scored.
    time_budget_s, budget_used_s
        The budget and the seconds the selection took.
    """

    winner: str
    scores: pd.DataFrame
    holdout: str
    metric: str = METRIC
    seed: int = 0
    time_budget_s: float = DEFAULT_TIME_BUDGET
    budget_used_s: float = 0.0
    candidates: list[str] = field(default_factory=list)

    def to_uns(self) -> dict[str, Any]:
        """Plain types for ``uns["scfill"]["auto"]`` (h5ad-writable: no None, no lists of
        dicts; the table is one dict per method)."""
        table = {str(r["method"]): {"score": _finite(r["score"]),
                                    "relative_to_none": _finite(r["relative_to_none"]),
                                    "seconds": float(r["seconds"]), "status": str(r["status"]),
                                    "reason": str(r["reason"])}
                 for r in self.scores.to_dict("records")}
        return {"winner": self.winner, "holdout": self.holdout, "metric": self.metric,
                "seed": int(self.seed), "time_budget_s": float(self.time_budget_s),
                "budget_used_s": round(float(self.budget_used_s), 3),
                "candidates": ",".join(self.candidates), "scores": table}

    def format_table(self) -> str:
        """The score table as aligned text (what the CLI prints)."""
        return format_uns_table(self.to_uns())


def format_uns_table(auto: dict[str, Any]) -> str:
    """Aligned text of a selection stored in ``uns["scfill"]["auto"]``."""
    lines = [f"method selection ({auto['holdout']}, {auto['metric']}; lower is better; "
             f"budget {auto['time_budget_s']:g} s, used {auto['budget_used_s']:.1f} s):",
             f"  {'method':<12} {'score':>10} {'vs none':>8} {'seconds':>9}  status"]
    for method, r in auto["scores"].items():
        score = "" if r["score"] == "nan" else f"{r['score']:.5f}"
        rel = "" if r["relative_to_none"] == "nan" else f"{r['relative_to_none']:.3f}"
        mark = "  <- chosen" if method == auto["winner"] else ""
        reason = f" ({r['reason']})" if r["reason"] else ""
        lines.append(f"  {method:<12} {score:>10} {rel:>8} {r['seconds']:>9.1f}  "
                     f"{r['status']}{reason}{mark}")
    return "\n".join(lines)


def auto_params(candidates: str | None, time_budget: float | None,
                param_strings: Sequence[str] = ()) -> dict[str, Any]:
    """:func:`select_method` options from the command line (``--candidates``,
    ``--time-budget``, ``--param holdout=...``)."""
    params: dict[str, Any] = {}
    for pair in param_strings:
        key, sep, value = pair.partition("=")
        if not sep or key.strip() != "holdout":
            raise InputError(f"--param {pair!r} does not apply to --method auto.",
                             fix="use --param holdout=mcv:0.1 (or mask-nonzero:0.1), "
                             "--candidates and --time-budget.")
        params["holdout"] = value.strip()
    if candidates is not None:
        params["candidates"] = candidates
    if time_budget is not None:
        params["time_budget"] = time_budget
    return params


def _finite(value: float) -> float | str:
    return float(value) if np.isfinite(value) else "nan"


def default_candidates() -> list[str]:
    """scfill's own registered methods, fast ones first (peers and ``none`` excluded)."""
    from scfill.external.peers import Peer
    from scfill.methods.base import registered

    methods = registered()
    own = [n for n, cls in methods.items() if not issubclass(cls, Peer) and n != REFERENCE]
    ordered = [n for n in DEFAULT_CANDIDATES if n in own]
    return ordered + sorted(n for n in own if n not in ordered)


def _check_candidates(candidates: Sequence[str] | str | None) -> list[str]:
    """Validated candidate names (registered; peers installed); a comma list is accepted."""
    from scfill.external.peers import Peer
    from scfill.methods.base import get

    if candidates is None:
        return default_candidates()
    if isinstance(candidates, str):
        candidates = [c for c in (p.strip() for p in candidates.split(",")) if c]
    names = [str(c).lower() for c in candidates]
    if not names:
        raise InputError("no candidate methods given.", fix="name at least one, e.g. "
                         "candidates='knn,alra,maskclass'.")
    if AUTO in names:
        raise InputError("'auto' cannot be its own candidate.", fix="name real methods.")
    for name in names:
        cls = get(name)
        if issubclass(cls, Peer) and cls.missing():
            raise InputError(f"candidate {name!r} cannot run: {cls.missing()}",
                             fix=f"install it, or leave {name!r} out of the candidates.")
    return [n for n in dict.fromkeys(names) if n != REFERENCE]


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`BudgetExceeded` in the block after ``seconds`` (main thread, POSIX);
    elsewhere nothing is interrupted and the caller checks the elapsed time."""
    usable = (hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise BudgetExceeded

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _score_one(adata: ad.AnnData, method: str, *, holdout: str, seed: int,
               labels_key: str | None, device: str, seconds_left: float) -> tuple[float, str, str]:
    """(score, status, reason) of ``method`` on the held-out part, within ``seconds_left``."""
    from scfill.evaluate.run import evaluate_method

    start = time.perf_counter()
    try:
        with _deadline(seconds_left):
            rows = evaluate_method(adata, method, protocol=holdout, seed=seed,
                                   labels_key=labels_key, device=device, dataset="auto")
    except BudgetExceeded:
        return np.nan, "out_of_budget", f"stopped after {seconds_left:.0f} s left in the budget"
    except Exception as err:  # a failing candidate is skipped, not fatal
        return np.nan, "failed", f"{type(err).__name__}: {err}"
    if time.perf_counter() - start > seconds_left:
        return np.nan, "out_of_budget", f"took longer than the {seconds_left:.0f} s left"
    values = dict(zip(rows["metric"], rows["value"], strict=True))
    score = float(values.get(METRIC, np.nan))
    if not np.isfinite(score):
        return np.nan, "failed", f"non-finite {METRIC}"
    return score, "ok", ""


def _require_integer_counts(counts) -> None:
    """MCV splits molecules: refuse non-integer or negative values before any work."""
    import scipy.sparse as sp

    values = counts.data if sp.issparse(counts) else np.asarray(counts)
    if values.size and (np.any(values < 0) or not np.array_equal(values, np.round(values))):
        raise InputError("method='auto' with the mcv hold-out splits molecules and needs "
                         "integer counts; this matrix holds non-integer or negative values.",
                         fix="give raw counts, or pass holdout='mask-nonzero:0.1'.")


def select_method(
    adata: ad.AnnData,
    *,
    candidates: Sequence[str] | str | None = None,
    time_budget: float = DEFAULT_TIME_BUDGET,
    holdout: str = DEFAULT_HOLDOUT,
    layer: str | None = None,
    labels_key: str | None = None,
    seed: int = 0,
    device: str = "auto",
) -> Selection:
    """Score each candidate on a held-out part of ``adata`` and return the best.

    Parameters
    ----------
    adata
        Raw counts in ``X`` (or ``layer``). Not modified.
    candidates
        Method names (or one comma-separated string), tried in this order. Default
        :func:`default_candidates`: scfill's own methods, fast ones first.
    time_budget
        Seconds for the whole selection (not the final refit); each candidate gets what is
        left and is skipped when it runs out.
    holdout
        ``"mcv:P"`` (molecular cross-validation, test share P; default 0.1) or
        ``"mask-nonzero:F"`` (:mod:`scfill.evaluate.masking`).
    layer, labels_key, seed, device
        As in :func:`scfill.impute`; the hold-out is drawn from ``seed``, and every
        candidate sees the same split.

    Raises
    ------
    InputError
        Bad candidates, budget or hold-out (before any work); no candidate finished.
    """
    from scfill.evaluate.masking import parse_protocol
    from scfill.validate import validate_counts

    names = _check_candidates(candidates)
    check_number("time_budget", time_budget, low=0, low_open=True, method=AUTO)
    protocol = parse_protocol(holdout)
    if protocol.kind not in ("mcv", "mask-nonzero"):
        raise InputError(f"hold-out {holdout!r} cannot select a method.",
                         fix="use mcv[:TEST_SHARE] or mask-nonzero:FRACTION.")
    counts = adata.layers[layer] if layer is not None else adata.X
    if protocol.kind == "mcv":
        _require_integer_counts(counts)
    shown = ad.AnnData(counts,
                       obs=pd.DataFrame(index=adata.obs_names),
                       var=pd.DataFrame(index=adata.var_names))
    validate_counts(shown)
    if labels_key is not None:
        shown.obs[labels_key] = adata.obs[labels_key].to_numpy()
    start = time.perf_counter()
    rows = []
    for method in [REFERENCE, *names]:
        left = time_budget - (time.perf_counter() - start)
        if left <= 0:
            rows.append((method, np.nan, 0.0, "not_run", "time budget spent"))
            logger.info("auto: %s not run (time budget spent)", method)
            continue
        t0 = time.perf_counter()
        score, status, reason = _score_one(shown, method, holdout=str(protocol), seed=seed,
                                           labels_key=labels_key, device=device,
                                           seconds_left=left)
        seconds = time.perf_counter() - t0
        if method == REFERENCE and status == "ok":
            status = "reference"
        rows.append((method, score, seconds, status, reason))
        if status in ("ok", "reference"):
            logger.info("auto: %s scored %s = %.5f (%.1f s)", method, METRIC, score, seconds)
        else:
            logger.warning("auto: %s skipped: %s", method, reason)
    table = pd.DataFrame(rows, columns=["method", "score", "seconds", "status", "reason"])
    base = table.loc[table["method"] == REFERENCE, "score"].iloc[0]
    table.insert(2, "relative_to_none", table["score"] / base if np.isfinite(base) else np.nan)
    finished = table[table["status"] == "ok"]
    if finished.empty:
        raise InputError("no candidate method finished within the time budget: "
                         + "; ".join(f"{m}: {r}" for m, r in zip(table["method"],
                                                                 table["reason"], strict=True)
                                     if r), fix="raise time_budget or name faster candidates.")
    winner = str(finished.sort_values(["score", "method"]).iloc[0]["method"])
    if np.isfinite(base) and finished["score"].min() >= base:
        logger.warning("auto: no candidate beats no imputation on the held-out data "
                       "(best %s %.3f x none)", winner, finished["score"].min() / base)
    selection = Selection(winner=winner, scores=table, holdout=str(protocol), seed=seed,
                          time_budget_s=float(time_budget),
                          budget_used_s=time.perf_counter() - start, candidates=names)
    logger.info("%s", selection.format_table())
    return selection
