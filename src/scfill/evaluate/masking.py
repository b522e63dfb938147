"""Evaluation protocols: what the method is shown, and what it is scored against.

``truth``
    Simulated data (:func:`scfill.simulate`): the method sees the observed counts ``X``;
    it is scored against ``layers["true_counts"]`` (MaskClass, scGACL).
``mask-nonzero:F``
    scGACL's real-data protocol: a fraction F (0.3, 0.4, 0.5 in the paper) of all observed
    non-zeros is set to 0 in the data the method sees, and scored at those entries against
    the values before masking.
``mask-expressed:F``
    cnnImpute's protocol: keep the genes expressed (non-zero) in at least half of the
    cells, drop cells with no count in them, and hide a fraction F (0.1 in the paper) of
    the non-zeros of that matrix. The method sees only the kept genes and cells, as in the
    paper ("we initially extracted the expression profiles of genes expressed in at least
    half of the cells").
``downstream``
    The data as given; the imputed data is clustered and compared to labels (all seeds).
"""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import scipy.sparse as sp

from scfill.errors import InputError

KINDS = ("truth", "mask-nonzero", "mask-expressed", "downstream")
#: cnnImpute: genes "expressed in at least half of the cells" enter its masking protocol.
EXPRESSED_SHARE = 0.5
#: Layer of a simulated dataset holding the counts before dropout (scfill.simulate).
TRUE_COUNTS = "true_counts"


@dataclass(frozen=True)
class Protocol:
    """A parsed protocol name: its kind and, for masking, the fraction hidden."""

    kind: str
    fraction: float | None = None

    def __str__(self) -> str:
        return self.kind if self.fraction is None else f"{self.kind}:{self.fraction:g}"

    @property
    def masks(self) -> bool:
        """Whether this protocol hides observed values from the method."""
        return self.kind.startswith("mask-")


def parse_protocol(text: str | Protocol) -> Protocol:
    """Parse ``"truth"``, ``"downstream"``, ``"mask-nonzero:0.3"`` or ``"mask-expressed:0.1"``.

    Raises
    ------
    InputError
        Unknown kind, a masking protocol without a fraction, or a fraction outside (0, 1).
    """
    if isinstance(text, Protocol):
        return text
    kind, sep, value = str(text).strip().lower().partition(":")
    if kind not in KINDS:
        raise InputError(f"unknown protocol {text!r}.", fix="use truth, downstream, "
                         "mask-nonzero:FRACTION (e.g. 0.3) or mask-expressed:FRACTION (e.g. 0.1).")
    if not kind.startswith("mask-"):
        if sep:
            raise InputError(f"protocol {kind!r} takes no fraction (got {text!r}).",
                             fix=f"write just {kind}.")
        return Protocol(kind)
    try:
        fraction = float(value)
    except ValueError:
        raise InputError(f"protocol {text!r} needs a fraction of non-zeros to hide.",
                         fix=f"write e.g. {kind}:0.3.") from None
    if not 0 < fraction < 1:
        raise InputError(f"protocol {text!r}: the fraction {fraction:g} is not between 0 and 1.",
                         fix=f"write e.g. {kind}:0.3.")
    return Protocol(kind, fraction)


@dataclass
class Degraded:
    """What a protocol hands the method and keeps back for scoring.

    Attributes
    ----------
    counts
        The counts the method sees (CSR float32), cells × genes of ``cells``/``genes``.
    reference
        The counts it is scored against, same shape: true counts (``truth``), the counts
        before masking (masking), or ``counts`` itself (``downstream``).
    cells, genes
        Integer positions of the kept cells and genes in the input AnnData.
    hidden
        Boolean CSR pattern of the masked entries; None when nothing was hidden.
    """

    counts: sp.csr_matrix
    reference: sp.csr_matrix
    cells: np.ndarray
    genes: np.ndarray
    hidden: sp.csr_matrix | None = None


def hide_nonzeros(counts: sp.csr_matrix, fraction: float,
                  rng: np.random.Generator) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Set ``round(fraction · nnz)`` non-zeros, drawn without replacement, to zero.

    Returns the masked counts (zeros removed from the pattern) and the boolean pattern of
    the hidden entries.
    """
    counts = sp.csr_matrix(counts, dtype=np.float32, copy=True)
    counts.eliminate_zeros()
    chosen = rng.choice(counts.nnz, size=round(fraction * counts.nnz), replace=False)
    rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))[chosen]
    hidden = sp.csr_matrix((np.ones(len(chosen), dtype=bool), (rows, counts.indices[chosen])),
                           shape=counts.shape)
    counts.data[chosen] = 0
    counts.eliminate_zeros()
    return counts, hidden


def expressed_genes(counts: sp.csr_matrix, share: float = EXPRESSED_SHARE) -> np.ndarray:
    """Positions of genes with a non-zero count in at least ``share`` of the cells."""
    expressed = (sp.csr_matrix(counts) > 0).getnnz(axis=0)
    return np.flatnonzero(expressed >= share * counts.shape[0])


def degrade(adata: ad.AnnData, protocol: Protocol, rng: np.random.Generator) -> Degraded:
    """Apply ``protocol`` to ``adata.X`` (raw counts).

    Raises
    ------
    InputError
        ``truth`` without a ``true_counts`` layer, or ``mask-expressed`` when no gene is
        expressed in half of the cells.
    """
    counts = sp.csr_matrix(adata.X, dtype=np.float32)
    cells, genes = np.arange(adata.n_obs), np.arange(adata.n_vars)
    if protocol.kind == "truth":
        if TRUE_COUNTS not in adata.layers:
            raise InputError(f"protocol 'truth' needs layers[{TRUE_COUNTS!r}] (the counts "
                             f"before dropout); this dataset has "
                             f"{', '.join(adata.layers) or 'no layers'}.",
                             fix="use a simulated dataset (scfill simulate, or --dataset "
                             "preset:NAME) or a masking protocol.")
        reference = sp.csr_matrix(adata.layers[TRUE_COUNTS], dtype=np.float32)
        return Degraded(counts, reference, cells, genes)
    if protocol.kind == "downstream":
        return Degraded(counts, counts, cells, genes)
    if protocol.kind == "mask-expressed":
        genes = expressed_genes(counts)
        if len(genes) == 0:
            raise InputError("no gene is expressed in at least half of the cells, so "
                             "mask-expressed has nothing to mask.",
                             fix="use mask-nonzero:FRACTION for this dataset.")
        counts = counts[:, genes]
        cells = np.flatnonzero(counts.getnnz(axis=1) > 0)
        counts = counts[cells]
    masked, hidden = hide_nonzeros(counts, protocol.fraction, rng)
    return Degraded(masked, counts, cells, genes, hidden)
