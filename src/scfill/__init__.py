"""scfill: recover dropout events in single-cell RNA-seq data.

Public API: :func:`read`, :func:`write`, :func:`impute`, :func:`simulate`,
:func:`list_methods`, and :mod:`scfill.methods` for fitted models.
"""

from scfill._logging import set_verbosity
from scfill.errors import InputError, ScfillError, TrainingError
from scfill.io import read, write
from scfill.methods import get as get_method
from scfill.methods import list_methods
from scfill.pipeline import impute

__version__ = "0.1.0"


def simulate(*args, **kwargs):
    """Simulate counts with Splatter's model; see :func:`scfill.simulate.simulate`."""
    from scfill.simulate import simulate as _simulate

    return _simulate(*args, **kwargs)


__all__ = [
    "InputError",
    "ScfillError",
    "TrainingError",
    "__version__",
    "get_method",
    "impute",
    "list_methods",
    "read",
    "set_verbosity",
    "simulate",
    "write",
]
