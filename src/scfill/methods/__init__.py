"""Imputation methods. Importing this package registers every built-in method."""

# peers last: they register after scfill's own methods
from scfill.external import peers as _peers  # noqa: F401  (registers magic, scvi, alra)
from scfill.external import tensorflow_peers as _tf_peers  # noqa: F401  (dca, deepimpute)
from scfill.methods import baselines
from scfill.methods import cnnimpute as _cnnimpute  # noqa: F401  (registers cnnimpute)
from scfill.methods import maskclass as _maskclass  # noqa: F401  (registers maskclass)
from scfill.methods import scgacl as _scgacl  # noqa: F401  (registers scgacl)
from scfill.methods import scmaskgan as _scmaskgan  # noqa: F401  (registers scmaskgan)
from scfill.methods.base import Method, PreparedData, get, list_methods, register

__all__ = ["Method", "PreparedData", "baselines", "get", "list_methods", "register"]
