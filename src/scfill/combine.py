"""Combining a reconstruction with the observed data so that only dropouts change.

Rules
-----
``"dropout"``
    Observed non-zeros kept; a zero whose dropout probability exceeds the threshold takes
    the reconstruction; other zeros (judged biological) stay zero. scImpute, cnnImpute and
    scGACL.
``"zeros"``
    Observed non-zeros kept; every zero takes the reconstruction. MaskClass (its biozero
    regulariser already pulls likely biological zeros towards zero) and the kNN baseline.
``"all"``
    The reconstruction everywhere (smoothing peers such as MAGIC).
``"none"``
    The observed data unchanged (the "no imputation" floor).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from scfill.errors import InputError

RULES = ("dropout", "zeros", "all", "none")
#: Rows combined at a time, to bound the dense working memory.
BLOCK_ROWS = 4096


def combine(
    observed: sp.csr_matrix,
    reconstruction: np.ndarray,
    *,
    rule: str,
    dropout_probability: sp.csr_matrix | None = None,
    threshold: float = 0.5,
) -> sp.csr_matrix:
    """Apply ``rule`` to observed values and a reconstruction of the same shape.

    Parameters
    ----------
    observed
        Observed values (CSR), in the same space as ``reconstruction``.
    reconstruction
        Dense cells × genes prediction.
    rule
        One of :data:`RULES`.
    dropout_probability
        Needed for ``"dropout"``: CSR probabilities at observed zeros.
    threshold
        A zero is a dropout when its probability is strictly greater.

    Returns
    -------
    The combined matrix, CSR float32.
    """
    if rule not in RULES:
        raise InputError(f"unknown combine rule {rule!r}.", fix=f"use one of {RULES}.")
    if reconstruction.shape != observed.shape:
        raise ValueError(f"reconstruction shape {reconstruction.shape} != observed "
                         f"{observed.shape}")
    if rule == "none":
        return sp.csr_matrix(observed, dtype=np.float32)
    if rule == "dropout" and dropout_probability is None:
        raise ValueError("the 'dropout' rule needs dropout probabilities")
    blocks = []
    for start in range(0, observed.shape[0], BLOCK_ROWS):
        rows = slice(start, start + BLOCK_ROWS)
        recon = np.maximum(np.asarray(reconstruction[rows], dtype=np.float32), 0)
        if rule == "all":
            blocks.append(sp.csr_matrix(recon))
            continue
        obs = observed[rows].toarray().astype(np.float32)
        fill = obs == 0
        if rule == "dropout":
            fill &= dropout_probability[rows].toarray() > threshold
        obs[fill] = recon[fill]
        blocks.append(sp.csr_matrix(obs))
    return sp.vstack(blocks, format="csr", dtype=np.float32)
