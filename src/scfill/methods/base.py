"""The method interface, the object a method receives, and the registry of methods."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np
import scipy.sparse as sp
import torch

from scfill.errors import InputError
from scfill.preprocess import LogNormalizer
from scfill.utils import constructor_params


@dataclass
class PreparedData:
    """Everything a method may use, for the cells and genes it is asked to impute.

    Attributes
    ----------
    counts
        Raw counts, CSR float32, cells × genes (all-zero cells and genes removed).
    library_size
        Each cell's total count in the input as given (all genes), float64.
    normalizer
        The common output space (ln of counts scaled to the median library size).
    logcounts
        ``counts`` in the common space, CSR float32.
    var_names, obs_names
        Gene and cell names, in order.
    labels
        Cell-group codes (0..K-1), from the user's column or pre-clustering; None when the
        method asked for none.
    label_names
        Name of each code.
    dropout_probability
        For each observed zero, the probability that it is a technical dropout (CSR with
        values only at zeros); None when the method uses no dropout model.
    device
        Torch device to train on.
    seed
        The run's seed; :func:`scfill.nn.seed_everything` has already been called with it.
    """

    counts: sp.csr_matrix
    library_size: np.ndarray
    normalizer: LogNormalizer
    logcounts: sp.csr_matrix
    var_names: np.ndarray
    obs_names: np.ndarray
    labels: np.ndarray | None = None
    label_names: list[str] | None = None
    dropout_probability: sp.csr_matrix | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0

    @property
    def n_cells(self) -> int:
        """Number of cells."""
        return self.counts.shape[0]

    @property
    def n_genes(self) -> int:
        """Number of genes."""
        return self.counts.shape[1]

    def rng(self, stream: int = 0) -> np.random.Generator:
        """A generator derived from the seed; ``stream`` separates independent uses."""
        return np.random.default_rng([self.seed, stream])


class Method(ABC):
    """An imputation method: ``fit`` learns from the data, ``reconstruct`` predicts it.

    Subclasses declare their parameters as keyword arguments of ``__init__`` (stored as
    attributes of the same name), check them in :meth:`check_params`, and set these class
    attributes:

    Attributes
    ----------
    name
        Registry name (``scfill methods``).
    description
        One line for ``scfill methods``.
    dropout_model
        Which shared dropout model the pipeline computes for it (``"gamma_normal"``,
        ``"zinb"``) or None.
    combine_rule
        How the reconstruction meets the observed data (:mod:`scfill.combine`).
    preclustering
        Pre-clustering to run when the method needs labels and the user gives none
        (``"kmeans"``, ``"tsne_density_peaks"``), or None when it needs no labels.
    min_cells, min_genes
        Smallest data the method accepts.
    default_n_top_genes
        Genes the pipeline keeps (the most variable) when the caller gives no
        ``n_top_genes``; None keeps every gene.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    dropout_model: ClassVar[str | None] = "gamma_normal"
    combine_rule: ClassVar[str] = "dropout"
    preclustering: ClassVar[str | None] = None
    min_cells: ClassVar[int] = 2
    min_genes: ClassVar[int] = 2
    default_n_top_genes: ClassVar[int | None] = None

    #: Extra facts of a fit (loss history, chosen k, ...) copied into ``uns["scfill"]``.
    info_: dict[str, Any]

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments and their values."""
        return dict(constructor_params(self))

    def check_params(self) -> None:  # noqa: B027  (optional hook: no parameters, no checks)
        """Raise :class:`~scfill.errors.InputError` for a parameter out of range."""

    def dropout_options(self) -> dict[str, Any]:
        """Options of the shared dropout model (:func:`scfill.dropout.estimate`)."""
        return {}

    def dropout_threshold(self) -> float:
        """Probability above which a zero counts as a dropout (``combine_rule="dropout"``)."""
        return 0.5

    def check_fitted(self, data: PreparedData, *, attribute: str) -> None:
        """Raise :class:`InputError` unless fitted (``attribute`` set) on ``data``'s genes.

        ``var_names_`` holds the genes of the fit, in order.
        """
        cls = type(self).__name__
        if not hasattr(self, attribute):
            raise InputError(f"this {cls} model has not been fitted.",
                             fix=f"call fit(data) first, or {cls}.load(directory).")
        if [str(g) for g in data.var_names] != self.var_names_:
            raise InputError(
                f"the model was trained on {len(self.var_names_)} genes but the data has "
                f"{data.n_genes} (or they differ in name or order).",
                fix="subset and order the data's genes as the model's (model.var_names_).")

    @abstractmethod
    def fit(self, data: PreparedData) -> Method:
        """Learn from ``data``; return self."""

    @abstractmethod
    def reconstruct(self, data: PreparedData) -> np.ndarray:
        """Predicted expression of every cell and gene, dense float32, common space."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


_REGISTRY: dict[str, type[Method]] = {}
M = TypeVar("M", bound=type[Method])


def _register_builtins() -> None:
    """Import (and so register) scfill's own methods, then the peers."""
    from scfill import methods  # noqa: F401
    from scfill.external import peers, tensorflow_peers  # noqa: F401


def register(cls: M) -> M:
    """Class decorator: make a method available by its ``name``."""
    _REGISTRY[cls.name] = cls
    return cls


def get(name: str) -> type[Method]:
    """The method class registered as ``name``."""
    _register_builtins()

    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        raise InputError(f"unknown method {name!r}.",
                         fix=f"use one of: {', '.join(sorted(_REGISTRY))}.") from None


def list_methods() -> dict[str, str]:
    """Registered method names and their one-line descriptions."""
    _register_builtins()

    return {name: cls.description for name, cls in sorted(_REGISTRY.items())}


def registered() -> dict[str, type[Method]]:
    """A copy of the registry (name → class)."""
    _register_builtins()

    return dict(_REGISTRY)


