"""scfill: recover dropout events in single-cell RNA-seq data.

Public API: :func:`read`, :func:`write`, :func:`prepare`, :func:`impute`,
:func:`simulate`, :func:`list_methods`, :func:`get_method` and :func:`load_model` for
fitted models, and :mod:`scfill.pl` for figures of a result.

The API functions are imported on first use, so that ``import scfill`` (and with it
``scfill --help`` or a command with a bad path) does not pay for torch, scanpy and anndata.
"""

import importlib
import sys
import types

from scfill._logging import set_verbosity
from scfill.errors import InputError, NotFittedError, ScfillError, TrainingError

__version__ = "0.1.0"

#: Public name → (module, attribute), imported on first access.
_LAZY = {
    "read": ("scfill.io", "read"),
    "write": ("scfill.io", "write"),
    "get_method": ("scfill.methods", "get"),
    "list_methods": ("scfill.methods", "list_methods"),
    "impute": ("scfill.pipeline", "impute"),
    "prepare": ("scfill.preparation", "prepare"),
    "load_model": ("scfill.methods.base", "load_model"),
    "simulate": ("scfill.simulate.api", "simulate"),
}

#: Subpackages reachable as attributes (``scfill.pl``), imported on first access.
_SUBPACKAGES = ("pl",)

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


class _Package(types.ModuleType):
    """scfill's module: ``scfill.simulate`` stays the function once the subpackage loads.

    Importing ``scfill.simulate.<anything>`` makes the import system bind the subpackage
    to the attribute ``simulate`` of this module; that binding is dropped so the public
    function keeps the name (the subpackage stays reachable through ``sys.modules``).
    """

    def __setattr__(self, name: str, value) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)

    def __getattr__(self, name: str):
        if name in _SUBPACKAGES:
            return importlib.import_module(f"scfill.{name}")
        if name not in _LAZY:
            raise AttributeError(f"module 'scfill' has no attribute {name!r}")
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        super().__setattr__(name, value)
        return value

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(_LAZY) | set(_SUBPACKAGES))


sys.modules[__name__].__class__ = _Package
