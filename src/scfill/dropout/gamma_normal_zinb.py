"""Gamma–Normal gene filter with ZINB-scored zeros (``"gamma_normal-zinb"``).

The Gamma–Normal mixture (:mod:`scfill.dropout.gamma_normal`) puts every zero count of a
gene and cell group at the same point, so all of them get one probability: the mixture
cannot tell a gene's dropouts from its biological zeros, and on the simulator's ground truth
it ranks them barely better than chance (ROC AUC 0.54–0.63, and it calls 73–93 % of the
biological zeros dropouts; ``benchmarks/results/dropout_models.md``). This model keeps what
the mixture decides well, *which genes* of a group are imputable (scImpute's fit and
valid-gene filter: genes it rejects keep probability 0), and scores each zero of those
genes with the per-gene ML ZINB posterior fitted in the same groups
(:mod:`scfill.dropout.zinb_mle`, ``by_group=True``): ``1 − Pr(t = 0 | c = 0)``, which
depends on the cell's library size. Measured on the same presets beside both parents.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from scfill.dropout import DropoutResult, gamma_normal, zinb_mle


def dropout_probability(
    counts: sp.csr_matrix,
    library_size: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    **options,
) -> DropoutResult:
    """Dropout probability of every zero: ZINB posterior where the Gamma–Normal imputes.

    ``options`` go to :func:`scfill.dropout.gamma_normal.dropout_probability`.

    Returns
    -------
    DropoutResult
        ``probability`` (CSR float32 at zeros), the Gamma–Normal's ``params`` plus the ZINB
        fit's (prefixed ``zinb_``), and both summaries.
    """
    mixture = gamma_normal.dropout_probability(counts, library_size, labels=labels, **options)
    zinb = zinb_mle.dropout_probability(counts, library_size, labels=labels, by_group=True)
    imputable = sp.csr_matrix(mixture.matrix() > 0, dtype=np.float32)
    probability = sp.csr_matrix(zinb.matrix().multiply(imputable), dtype=np.float32)
    probability.eliminate_zeros()
    params = {**mixture.params, **{f"zinb_{k}": v for k, v in zinb.params.items()}}
    summary = {"model": "gamma_normal-zinb", "gamma_normal": mixture.summary,
               "zinb": zinb.summary}
    return DropoutResult(probability=probability, params=params, summary=summary)
