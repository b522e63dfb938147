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

Everything works on row blocks (:mod:`scfill.rows`): a method's reconstruction arrives
block by block (:func:`reconstruction_blocks`) and is combined block by block
(:func:`combine`), so no dense cells × genes matrix is built.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from scfill.errors import InputError
from scfill.rows import row_blocks

RULES = ("dropout", "zeros", "all", "none")


def check_rule(rule: str) -> None:
    """Raise :class:`InputError` for an unknown rule."""
    if rule not in RULES:
        raise InputError(f"unknown combine rule {rule!r}.", fix=f"use one of {RULES}.")


def combine_block(
    observed: sp.csr_matrix,
    reconstruction: np.ndarray,
    *,
    rule: str,
    dropout: np.ndarray | None = None,
    threshold: float = 0.5,
) -> np.ndarray:
    """Apply ``rule`` to one row block.

    Parameters
    ----------
    observed
        Observed values of the block's rows (CSR), in the space of ``reconstruction``.
    reconstruction
        Dense prediction of the same rows; negative values count as 0. Not modified.
    rule
        One of :data:`RULES`.
    dropout
        Needed for ``"dropout"``: the rows' dropout probabilities (dense, at zeros).
    threshold
        A zero is a dropout when its probability is strictly greater.

    Returns
    -------
    The combined block, dense float32.
    """
    check_rule(rule)
    if reconstruction.shape != observed.shape:
        raise ValueError(f"reconstruction block shape {reconstruction.shape} != observed "
                         f"{observed.shape}")
    if rule == "none":
        return observed.toarray().astype(np.float32, copy=False)
    recon = np.maximum(reconstruction, 0, dtype=np.float32)
    if rule == "all":
        return recon
    if rule == "dropout" and dropout is None:
        raise ValueError("the 'dropout' rule needs dropout probabilities")
    out = observed.toarray().astype(np.float32, copy=False)
    fill = out == 0
    if rule == "dropout":
        fill &= dropout > threshold
    out[fill] = recon[fill]
    return out


def reconstruction_blocks(reconstruction, shape: tuple[int, int]
                          ) -> Iterator[tuple[slice, np.ndarray]]:
    """A method's reconstruction (row blocks, or a CSR prediction) as checked row blocks.

    Raises ``TypeError`` for a dense array (not a row block stream), ``ValueError`` when the
    blocks skip, repeat or reorder rows, have the wrong shape, or stop before the last row
    (a bug in the method).
    """
    n_rows, n_cols = shape
    if isinstance(reconstruction, np.ndarray):
        raise TypeError("reconstruct() returned a dense array; it must yield (rows, block) "
                        "pairs over data.row_blocks() or return a CSR prediction")
    if sp.issparse(reconstruction):
        if reconstruction.shape != shape:
            raise ValueError(f"prediction shape {reconstruction.shape} != data {shape}")
        prediction = sp.csr_matrix(reconstruction)
        for rows in row_blocks(n_rows, n_cols):
            yield rows, prediction[rows].toarray()
        return
    expected = 0
    for rows, block in reconstruction:
        start, stop, step = rows.indices(n_rows)
        if start != expected or step != 1 or block.shape != (stop - start, n_cols):
            raise ValueError(f"reconstruction block {rows} of shape {block.shape} does not "
                             f"continue at row {expected} with {n_cols} columns")
        expected = stop
        yield slice(start, stop), block
    if expected != n_rows:
        raise ValueError(f"reconstruction stopped at row {expected} of {n_rows}")


def combine(
    observed: sp.csr_matrix,
    reconstruction,
    *,
    rule: str,
    dropout=None,
    threshold: float = 0.5,
) -> Iterator[tuple[slice, np.ndarray, np.ndarray | None]]:
    """Combine a whole reconstruction with ``observed``, one row block at a time.

    Parameters
    ----------
    observed
        Observed values (CSR, cells × genes) in the reconstruction's space.
    reconstruction
        What :meth:`Method.reconstruct` gave: row blocks or a CSR prediction.
    rule, threshold
        As in :func:`combine_block`.
    dropout
        The cells' :class:`~scfill.dropout.DropoutModel` (needed for ``"dropout"``); its
        probabilities are computed once per block and handed on.

    Yields
    ------
    ``(rows, combined block, dropout probabilities of the block or None)``.
    """
    check_rule(rule)
    if rule == "dropout" and dropout is None:
        raise ValueError("the 'dropout' rule needs a dropout model")
    for rows, block in reconstruction_blocks(reconstruction, observed.shape):
        probability = None if dropout is None else dropout.probability(rows)
        yield rows, combine_block(observed[rows], block, rule=rule, dropout=probability,
                                  threshold=threshold), probability
