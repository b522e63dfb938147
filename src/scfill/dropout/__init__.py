"""Dropout identification: for every observed zero, the probability it is a technical dropout.

The models, shared by all methods (``specs/dropout.md``):

- :mod:`scfill.dropout.gamma_normal`: scImpute's Gamma–Normal mixture per gene and cell
  group (cnnImpute, scGACL).
- :mod:`scfill.dropout.gamma_normal_zinb`: the mixture's imputable genes, their zeros scored
  by the ML ZINB (``"gamma_normal-zinb"``).
- :mod:`scfill.dropout.zinb_mle`: the ZINB biozero model fitted per gene by maximum
  likelihood with shrunk dispersions (``"zinb-ml"``, the default ZINB model).
- :mod:`scfill.dropout.zinb`: MaskClass's ZINB biozero model as the paper gives it
  (``"zinb-paper"``: moment dispersion, logistic dropout curve, cell-sparsity adjustment).

``"zinb"`` names :data:`ZINB_DEFAULT`; ``benchmarks/results/dropout_models.md`` measures the
models on the simulator's ground truth.

:func:`estimate` returns a :class:`DropoutModel`: the fitted parameters, and
``model.probability(rows)`` giving the dense probabilities of a block of cells on demand
(``model.matrix()`` for all of them as CSR, ``model.above(t)`` for the zeros above a
threshold). Models that still produce a whole CSR (:class:`DropoutResult`: ``zinb-ml``,
``gamma_normal-zinb``) are wrapped in :class:`FixedDropout`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from scfill.dropout.model import DropoutModel, FixedDropout

MODELS = ("gamma_normal", "gamma_normal-zinb", "zinb", "zinb-ml", "zinb-paper")
#: The ZINB model ``"zinb"`` stands for: the ML fit separates dropouts from biological zeros
#: with ROC AUC 0.939–0.948 on the MaskClass presets where the paper's model reaches
#: 0.648–0.717, Brier score 0.105–0.112 against 0.183–0.200
#: (benchmarks/results/dropout_models.md).
ZINB_DEFAULT = "zinb-ml"

__all__ = ["MODELS", "ZINB_DEFAULT", "DropoutModel", "DropoutResult", "FixedDropout",
           "estimate"]


@dataclass
class DropoutResult:
    """Output of a dropout model that computes every probability at once.

    Attributes
    ----------
    probability
        cells × genes CSR float32 holding, at observed zeros only, the probability that the
        zero is a technical dropout (entries not stored are 0).
    params
        Fitted parameters (per gene, or per gene and group), as arrays.
    summary
        Plain-JSON counts for ``uns``: genes fitted, skipped and failed, and why.
    """

    probability: sp.csr_matrix
    params: dict[str, np.ndarray] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def estimate(
    model: str,
    counts: sp.csr_matrix,
    library_size: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    **options: Any,
) -> DropoutModel:
    """Fit dropout model ``model`` (one of :data:`MODELS`) to raw ``counts``.

    ``labels`` (cell-group codes) are used by ``gamma_normal``, which fits per group;
    ``options`` go to the model's function.
    """
    if model == "gamma_normal":
        from scfill.dropout.gamma_normal import dropout_probability
    elif model == "gamma_normal-zinb":
        from scfill.dropout.gamma_normal_zinb import dropout_probability
    elif model == "zinb-paper" or (model == "zinb" and ZINB_DEFAULT == "zinb-paper"):
        from scfill.dropout.zinb import dropout_probability
    elif model in ("zinb", "zinb-ml"):
        from scfill.dropout.zinb_mle import dropout_probability
    else:
        from scfill.errors import InputError

        raise InputError(f"unknown dropout model {model!r}.", fix=f"use one of {MODELS}.")
    result = dropout_probability(counts, library_size, labels=labels, **options)
    if isinstance(result, DropoutResult):
        wrapped = FixedDropout(result.probability)
        wrapped.params, wrapped.summary = result.params, result.summary
        return wrapped
    return result
