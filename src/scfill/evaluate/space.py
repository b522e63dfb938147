"""Putting a reference and a method's output in the same space before scoring.

Every method returns ``imputed`` in the common space ``ln(1 + c · m / l)`` of the data it
was given (DESIGN.md): l the library sizes of that (degraded) data, m their median. A
reference (true counts, or the values before masking) is normalised with *its own* library
sizes (a cell's true library for the truth, the cell's original library before masking)
and its own median. The method's output is then re-targeted to the reference's median: a
constant rescale of the relative expression ``c / l`` it estimated, which turns neither
zero into non-zero nor changes any ordering, so entries compare like with like (relative
expression at the same scale), not the depth the degradation removed.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from scfill.preprocess import LogNormalizer, library_size


def reference_space(counts: sp.csr_matrix) -> tuple[sp.csr_matrix, float]:
    """``counts`` in the common space with their own library sizes; also the target used.

    All-zero cells stay zero.
    """
    counts = sp.csr_matrix(counts, dtype=np.float32)
    lib = library_size(counts)
    normalizer = LogNormalizer.median(lib[lib > 0])
    return normalizer.transform(counts, np.where(lib > 0, lib, 1.0)), normalizer.target


def retarget(values: sp.csr_matrix, source_target: float, target: float) -> sp.csr_matrix:
    """Common-space values scaled to ``target`` instead of ``source_target`` (CSR float32).

    ``ln(1 + c·s/l)`` becomes ``ln(1 + c·t/l)``; zeros stay zero.
    """
    out = sp.csr_matrix(values, dtype=np.float64, copy=True)
    out.data = np.log1p(np.expm1(out.data) * (target / source_target))
    return sp.csr_matrix(out, dtype=np.float32)
