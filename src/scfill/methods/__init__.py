"""Imputation methods. Importing this package registers every built-in method."""

from scfill.methods import baselines
from scfill.methods.base import Method, PreparedData, get, list_methods, register

__all__ = ["Method", "PreparedData", "baselines", "get", "list_methods", "register"]
