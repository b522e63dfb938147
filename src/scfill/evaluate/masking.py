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
``mcv`` / ``mcv:P``
    Molecular cross-validation (Batson, Royer & Webber 2019), as the Open Problems denoising
    task runs it: every count x is split into a training part x' ~ Binomial(x, 1 − P) and a
    test part x − x' (no overlap; Open Problems' ``split_molecules(X, train_frac=0.9,
    overlap=0)``, so P = 0.1 by default). The method sees only the training counts; genes
    with no training count are dropped (as the task's ``process_dataset`` does), cells are
    kept. Its output, back on the count scale, is scored against the test part by
    :func:`scfill.evaluate.metrics.mcv_mse` and :func:`~scfill.evaluate.metrics.poisson_loss`.
    Integer counts are required (Open Problems refuses others too). Zeros and non-zeros are
    scored alike and no ground truth is needed: given the true expression, the test part is
    independent of what the method saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import scipy.sparse as sp

from scfill.errors import InputError

KINDS = ("truth", "mask-nonzero", "mask-expressed", "downstream", "mcv")
#: Kinds that take a fraction (the share hidden or held out).
FRACTION_KINDS = ("mask-nonzero", "mask-expressed", "mcv")
#: Molecular cross-validation's test share: Open Problems' denoising task trains on
#: ``train_frac = 0.9`` of the molecules (``openproblems/tasks/denoising/datasets/utils.py``).
MCV_TEST_SHARE = 0.1
#: cnnImpute: genes "expressed in at least half of the cells" enter its masking protocol.
EXPRESSED_SHARE = 0.5
#: Layer of a simulated dataset holding the counts before dropout (scfill.simulate).
TRUE_COUNTS = "true_counts"


@dataclass(frozen=True)
class Protocol:
    """A parsed protocol name: its kind and, for masking, the fraction hidden (for ``mcv``,
    the share of molecules held out for the test part)."""

    kind: str
    fraction: float | None = None

    def __str__(self) -> str:
        return self.kind if self.fraction is None else f"{self.kind}:{self.fraction:g}"

    @property
    def masks(self) -> bool:
        """Whether this protocol hides observed values from the method."""
        return self.kind.startswith("mask-")


def parse_protocol(text: str | Protocol) -> Protocol:
    """Parse ``"truth"``, ``"downstream"``, ``"mask-nonzero:0.3"``, ``"mask-expressed:0.1"``,
    ``"mcv"`` (= ``"mcv:0.1"``) or ``"mcv:P"``.

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
                         "mask-nonzero:FRACTION (e.g. 0.3), mask-expressed:FRACTION (e.g. 0.1) "
                         "or mcv[:TEST_SHARE] (default 0.1).")
    if kind == "mcv" and not sep:
        return Protocol(kind, MCV_TEST_SHARE)
    if kind not in FRACTION_KINDS:
        if sep:
            raise InputError(f"protocol {kind!r} takes no fraction (got {text!r}).",
                             fix=f"write just {kind}.")
        return Protocol(kind)
    try:
        fraction = float(value)
    except ValueError:
        raise InputError(f"protocol {text!r} needs a fraction of non-zeros to hide (for "
                         "mcv: the test share).",
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
        before masking (masking), ``counts`` itself (``downstream``), or the test part of
        the molecules (``mcv``).
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


def split_molecules(counts: sp.csr_matrix, test_share: float,
                    rng: np.random.Generator) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Split integer counts binomially: training part ~ Binomial(x, 1 − ``test_share``),
    test part the rest (Batson et al. 2019; Open Problems with overlap 0).

    Returns the training and test counts (CSR float32, zeros removed from each pattern).

    Raises
    ------
    InputError
        A count that is not a non-negative integer.
    """
    counts = sp.csr_matrix(counts, dtype=np.float64, copy=True)
    counts.eliminate_zeros()
    if (counts.data < 0).any() or not np.array_equal(counts.data, np.round(counts.data)):
        raise InputError("molecular cross-validation splits molecules, so it needs integer "
                         "counts; this matrix holds non-integer or negative values.",
                         fix="give raw UMI/read counts, or use a masking protocol.")
    train = counts.copy()
    train.data = rng.binomial(counts.data.astype(np.int64), 1.0 - test_share).astype(np.float64)
    test = counts.copy()
    test.data = counts.data - train.data
    for part in (train, test):
        part.eliminate_zeros()
    return sp.csr_matrix(train, dtype=np.float32), sp.csr_matrix(test, dtype=np.float32)


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
        ``truth`` without a ``true_counts`` layer, ``mask-expressed`` when no gene is
        expressed in half of the cells, ``mcv`` on counts that are not integers.
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
    if protocol.kind == "mcv":
        train, test = split_molecules(counts, protocol.fraction, rng)
        genes = np.flatnonzero(train.getnnz(axis=0) > 0)
        return Degraded(train[:, genes], test[:, genes], cells, genes)
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
