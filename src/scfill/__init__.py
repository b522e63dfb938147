"""scfill: recover dropout events in single-cell RNA-seq data.

Public API: :func:`read`, :func:`write`, :func:`impute`, :func:`simulate`,
:func:`list_methods`, :mod:`scfill.methods` for fitted models, and :mod:`scfill.pl` for
figures of a result.
"""

from scfill import pl
from scfill._logging import set_verbosity
from scfill.errors import InputError, ScfillError, TrainingError
from scfill.io import read, write
from scfill.methods import get as get_method
from scfill.methods import list_methods
from scfill.pipeline import impute
from scfill.simulate import simulate  # eager: a later import of the module would shadow a wrapper

__version__ = "0.1.0"

__all__ = [
    "InputError",
    "ScfillError",
    "TrainingError",
    "__version__",
    "get_method",
    "impute",
    "list_methods",
    "pl",
    "read",
    "set_verbosity",
    "simulate",
    "write",
]
