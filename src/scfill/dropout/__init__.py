"""Dropout identification: for every observed zero, the probability it is a technical dropout.

Two models, shared by all methods (``specs/dropout.md``):

- :mod:`scfill.dropout.gamma_normal`: scImpute's Gamma–Normal mixture per gene and cell
  group (cnnImpute, scGACL).
- :mod:`scfill.dropout.zinb`: MaskClass's ZINB biozero model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

MODELS = ("gamma_normal", "zinb")


@dataclass
class DropoutResult:
    """Output of a dropout model.

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
) -> DropoutResult:
    """Run dropout model ``model`` (one of :data:`MODELS`) on raw ``counts``.

    ``labels`` (cell-group codes) are used by ``gamma_normal``, which fits per group;
    ``options`` go to the model's function.
    """
    if model == "gamma_normal":
        from scfill.dropout.gamma_normal import dropout_probability
    elif model == "zinb":
        from scfill.dropout.zinb import dropout_probability
    else:
        from scfill.errors import InputError

        raise InputError(f"unknown dropout model {model!r}.", fix=f"use one of {MODELS}.")
    return dropout_probability(counts, library_size, labels=labels, **options)
