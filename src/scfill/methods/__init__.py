"""Imputation methods. Importing this package registers scfill's own methods.

The peers (:mod:`scfill.external`) register on the first registry lookup
(:func:`~scfill.methods.base.get`, :func:`list_methods`, :func:`registered`), after scfill's
own methods: importing them here would make ``scfill.external.peers`` → ``methods.base`` →
this package → ``scfill.external.peers`` a cycle when a peer module is imported first.
"""

from scfill.methods import baselines
from scfill.methods import cnnimpute as _cnnimpute  # noqa: F401  (registers cnnimpute)
from scfill.methods import maskclass as _maskclass  # noqa: F401  (registers maskclass)
from scfill.methods import scgacl as _scgacl  # noqa: F401  (registers scgacl)
from scfill.methods import scmaskgan as _scmaskgan  # noqa: F401  (registers scmaskgan)
from scfill.methods.base import Method, PreparedData, get, list_methods, register

__all__ = ["Method", "PreparedData", "baselines", "get", "list_methods", "register"]
