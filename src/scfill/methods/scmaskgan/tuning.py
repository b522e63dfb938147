"""Choosing scMASKGAN's k with Optuna (paper, "Imputed method": k minimises the MSE
between the original and the imputed data).

The score is the MSE at held-out observed non-zeros. The tuning must not see what it is
scored on, so :func:`choose_holdout` picks those entries before training and
:class:`scfill.methods.scmaskgan.model.ScMaskGan` removes them from everything else: the
GAN's training data, the scaler, and the distances that rank each cell's candidates
(:func:`ranked_means` receives only the visible data; the held-out values go to
:class:`KObjective` alone).

For each held-out entry the ranking fixes the candidates' order, so the prediction for
every k is a prefix mean of one vector: computed once (``entries × n_can``), each Optuna
trial is then an index and a mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from scfill.methods.scmaskgan.impute import CandidateFill

#: Share of the observed non-zeros of the tuning cells held out for the score.
HOLDOUT_FRACTION = 0.1
#: At most this many held-out entries (the prefix means are entries × n_can floats).
MAX_HOLDOUT = 20_000
#: Cells drawn for the tuning (their held-out entries are spread over them).
TUNING_CELLS = 2_000
#: Optuna trials (TPE; k is one integer, so 30 trials cover 1–50 densely).
N_TRIALS = 30
#: Largest k tried.
MAX_K = 50


@dataclass(frozen=True)
class Holdout:
    """Held-out observed entries: row and gene indices and their (scaled) values."""

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray

    def hide(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        """A copy of ``matrix`` (CSR) with the held-out entries removed (they become zeros).

        The entries are found by position, so their values never enter the arithmetic.
        """
        visible = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        visible.sort_indices()
        position = sp.csr_matrix((np.arange(1, visible.nnz + 1, dtype=np.int64),
                                  visible.indices, visible.indptr), shape=visible.shape)
        found = np.asarray(position[self.rows, self.cols]).ravel() - 1
        visible.data[found[found >= 0]] = 0
        visible.eliminate_zeros()
        return visible


def choose_holdout(matrix: sp.csr_matrix, rng: np.random.Generator, *,
                   fraction: float = HOLDOUT_FRACTION, max_entries: int = MAX_HOLDOUT,
                   max_cells: int = TUNING_CELLS) -> Holdout:
    """Draw ``fraction`` of the non-zeros of up to ``max_cells`` random cells (at most
    ``max_entries``); their values are read from ``matrix``."""
    matrix = sp.csr_matrix(matrix)
    cells = np.sort(rng.choice(matrix.shape[0], min(max_cells, matrix.shape[0]),
                               replace=False))
    sub = matrix[cells].tocoo()
    n = min(max_entries, round(fraction * sub.nnz))
    pick = np.sort(rng.choice(sub.nnz, n, replace=False)) if n else np.zeros(0, dtype=int)
    return Holdout(rows=cells[sub.row[pick]], cols=sub.col[pick].astype(np.int64),
                   values=sub.data[pick].astype(np.float32))


@dataclass(frozen=True)
class RankedMeans:
    """For each held-out entry, the mean of its gene over the cell's r nearest candidates
    (``prefix[e, r − 1]``), and how many candidates are eligible (below θ)."""

    prefix: np.ndarray
    n_eligible: np.ndarray

    def predict(self, k: int) -> np.ndarray:
        """Predictions at the held-out entries with ``k`` neighbours."""
        used = np.minimum(k, self.n_eligible)
        return self.prefix[np.arange(len(used)), used - 1]


def ranked_means(fill: CandidateFill, values: torch.Tensor, mask: torch.Tensor,
                 labels: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> RankedMeans:
    """:class:`RankedMeans` at entries ``(rows, cols)`` of the *visible* tuning cells.

    Parameters
    ----------
    fill
        The candidates; θ comes from the moments of ``values`` (added here).
    values, mask
        The tuning cells' scaled values and observation masks with the held-out entries
        already removed (value 0, mask 0).
    labels
        Their label codes.
    rows, cols
        Held-out entries, ``rows`` indexing ``values``.
    """
    fill.add_moments(values, mask, labels)
    n_can = max(len(c) for c in fill.candidates.values())
    prefix = np.zeros((len(rows), n_can), dtype=np.float32)
    n_eligible = np.ones(len(rows), dtype=np.int64)
    for code in np.unique(labels):
        cells = np.flatnonzero(labels == code)
        order, eligible = fill.ranking(values[cells], mask[cells], int(code))
        position = np.searchsorted(cells, rows)
        inside = (position < len(cells)) & (cells[np.minimum(position, len(cells) - 1)]
                                            == rows)
        entries = np.flatnonzero(inside)
        local = torch.as_tensor(position[entries])
        candidates = fill.candidates[int(code)]
        ordered = candidates[order[local], torch.as_tensor(cols[entries])[:, None]]
        means = torch.cumsum(ordered, dim=1) / torch.arange(1, ordered.shape[1] + 1)
        prefix[entries, :means.shape[1]] = means.cpu().numpy()
        prefix[entries, means.shape[1]:] = means[:, -1:].cpu().numpy()
        n_eligible[entries] = eligible[local].cpu().numpy()
    return RankedMeans(prefix=prefix, n_eligible=n_eligible)


class KObjective:
    """Optuna's objective: MSE of the predictions with ``k`` against the held-out values."""

    def __init__(self, ranked: RankedMeans, truth: np.ndarray):
        self.ranked, self.truth = ranked, truth

    def __call__(self, k: int) -> float:
        """Mean squared error at the held-out entries."""
        return float(np.mean((self.ranked.predict(k) - self.truth) ** 2))


def tune_k(objective: KObjective, *, max_k: int, n_trials: int = N_TRIALS, seed: int = 0
           ) -> tuple[int, dict[int, float]]:
    """The k in ``1..max_k`` Optuna's TPE sampler finds with the lowest objective.

    Returns the best k and the objective of every k tried.

    Raises
    ------
    scfill.errors.MissingDependency
        When Optuna (the ``tune`` extra) is not installed.
    """
    from scfill.utils import import_optional

    optuna = import_optional("optuna", "optuna>=3.5", needed_by="scmaskgan's choice of k",
                             extra="pip install 'scfill[tune]'")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(lambda trial: objective(trial.suggest_int("k", 1, max_k)),
                   n_trials=n_trials)
    tried = {int(t.params["k"]): float(t.value) for t in study.trials}
    return int(study.best_params["k"]), tried
