"""The seed papers' evaluation protocols and metrics, applied the same way to every method.

- :mod:`~scfill.evaluate.masking`: protocols (``truth``, ``mask-nonzero:F``,
  ``mask-expressed:F``, ``downstream``, ``mcv``): what the method sees, what it is scored
  against.
- :mod:`~scfill.evaluate.metrics`: the metrics (errors at entries, dropout calling,
  clustering agreement, distribution distances, DE-gene and trajectory agreement).
- :mod:`~scfill.evaluate.downstream`: clustering, DE genes and pseudotime of imputed data.
- :mod:`~scfill.evaluate.space`: the common space a reference and an output are compared in.
- :func:`evaluate_method`: one method × dataset × protocol × repeat → tidy rows.
"""

from scfill.evaluate.masking import Protocol, parse_protocol
from scfill.evaluate.run import COLUMNS, evaluate_method, summarize

__all__ = ["COLUMNS", "Protocol", "evaluate_method", "parse_protocol", "summarize"]
