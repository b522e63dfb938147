"""scfill: recover dropout events in single-cell RNA-seq data.

Public API: :func:`read`, :func:`write`, :func:`prepare`, :func:`impute`,
:func:`simulate`, :func:`list_methods`, :func:`get_method` and :func:`load_model` for
fitted models, and :mod:`scfill.pl` for figures of a result.
"""

from scfill import pl
from scfill._logging import set_verbosity
from scfill.errors import InputError, NotFittedError, ScfillError, TrainingError
from scfill.io import read, write
from scfill.methods import get as get_method
from scfill.methods import list_methods
from scfill.methods.base import load_model
from scfill.pipeline import impute
from scfill.preparation import prepare
from scfill.simulate import simulate  # eager: a later import of the module would shadow a wrapper

__version__ = "0.1.0"

__all__ = [
    "InputError",
    "NotFittedError",
    "ScfillError",
    "TrainingError",
    "__version__",
    "get_method",
    "impute",
    "list_methods",
    "load_model",
    "pl",
    "prepare",
    "read",
    "set_verbosity",
    "simulate",
    "write",
]
