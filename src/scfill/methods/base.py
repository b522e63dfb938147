"""The method interface, the object a method receives, saving/loading, and the registry."""

from __future__ import annotations

import functools
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import scipy.sparse as sp
import torch

from scfill.errors import InputError, NotFittedError
from scfill.preprocess import COMMON_SPACE, LogNormalizer
from scfill.rows import row_blocks
from scfill.utils import constructor_params, plain

if TYPE_CHECKING:
    from scfill.dropout import DropoutModel
    from scfill.preparation import InputLayout

#: What :meth:`Method.reconstruct` gives: row blocks ``(rows, dense float32 block)`` in row
#: order, or a CSR prediction (entries not stored are 0) for methods that predict only some
#: entries.
Reconstruction = Iterator[tuple[slice, np.ndarray]] | sp.csr_matrix


@dataclass
class PreparedData:
    """Everything a method may use, for the cells and genes it is asked to impute.

    Built by :func:`scfill.prepare` (which :func:`scfill.impute` calls).

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
    dropout
        The fitted dropout model of these cells (:class:`scfill.dropout.DropoutModel`:
        ``dropout.probability(rows)`` gives a dense block, values at zeros only); None when
        the method uses none.
    device
        Torch device to train on.
    seed
        The run's seed; :func:`scfill.nn.seed_everything` has already been called with it.
    layout
        Where these cells and genes sit in the input (set by :func:`scfill.prepare`; the
        pipeline uses it to assemble the output).
    """

    counts: sp.csr_matrix
    library_size: np.ndarray
    normalizer: LogNormalizer
    logcounts: sp.csr_matrix
    var_names: np.ndarray
    obs_names: np.ndarray
    labels: np.ndarray | None = None
    label_names: list[str] | None = None
    dropout: DropoutModel | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0
    layout: InputLayout | None = None

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

    def row_blocks(self) -> Iterator[slice]:
        """Row slices of :data:`scfill.rows.BLOCK_ELEMENTS` entries covering every cell."""
        return row_blocks(self.n_cells, self.n_genes)


def cells_digest(obs_names: Sequence[str]) -> str:
    """A short fingerprint of cell names, in order (what a transductive fit is bound to)."""
    digest = hashlib.sha256()
    for name in obs_names:
        digest.update(str(name).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class FitRecord:
    """What a fitted model remembers of the data it learnt from.

    Attributes
    ----------
    var_names
        Its genes, in order; data given to it later must have the same.
    normalizer
        The common space of the training data; new data is put in the same space.
    n_cells, cells
        Number of training cells and a fingerprint of their names (:func:`cells_digest`).
    """

    var_names: tuple[str, ...]
    normalizer: LogNormalizer
    n_cells: int
    cells: str

    @classmethod
    def of(cls, data: PreparedData) -> FitRecord:
        """The record of a fit to ``data``."""
        return cls(tuple(str(g) for g in data.var_names), data.normalizer, data.n_cells,
                   cells_digest(data.obs_names))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (genes are stored beside it by the checkpoint)."""
        return {"normalizer": self.normalizer.to_dict(), "n_cells": self.n_cells,
                "cells": self.cells}

    @classmethod
    def from_dict(cls, config: dict[str, Any], var_names: Sequence[str]) -> FitRecord:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(var_names), LogNormalizer(**config["normalizer"]),
                   int(config["n_cells"]), str(config["cells"]))


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
    transductive
        True when a fit predicts only the cells it was fitted on (cnnImpute, kNN): a
        fitted model then refuses other cells with a clear error.
    fitted_
        The :class:`FitRecord` of the last fit (absent before): every subclass's ``fit``
        sets it on success, and every ``reconstruct`` first checks the data against it
        (:class:`~scfill.errors.NotFittedError` when unfitted, :class:`InputError` for
        other genes, or other cells of a transductive model).

    Saving: :meth:`save` writes weights plus JSON through the hooks :meth:`_get_state` and
    :meth:`_set_state`, which a method that can be saved overrides.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    dropout_model: ClassVar[str | None] = "gamma_normal"
    combine_rule: ClassVar[str] = "dropout"
    preclustering: ClassVar[str | None] = None
    min_cells: ClassVar[int] = 2
    min_genes: ClassVar[int] = 2
    default_n_top_genes: ClassVar[int | None] = None
    transductive: ClassVar[bool] = False

    #: Extra facts of a fit (loss history, chosen k, ...) copied into ``uns["scfill"]``.
    info_: dict[str, Any]
    fitted_: FitRecord

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "fit" in cls.__dict__:
            cls.fit = _recording_fit(cls.__dict__["fit"])
        if "reconstruct" in cls.__dict__:
            cls.reconstruct = _checked_reconstruct(cls.__dict__["reconstruct"])

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

    @property
    def is_fitted(self) -> bool:
        """Whether the model has been fitted (or loaded)."""
        return hasattr(self, "fitted_")

    @abstractmethod
    def fit(self, data: PreparedData) -> Method:
        """Learn from ``data``; return self."""

    @abstractmethod
    def reconstruct(self, data: PreparedData) -> Reconstruction:
        """Predicted expression of every cell and gene in the common space.

        Either yields ``(rows, block)`` pairs, ``rows`` consecutive slices covering every
        cell in order and ``block`` a dense float32 ``rows × genes`` array (use
        :meth:`PreparedData.row_blocks`), or returns one CSR float32 prediction whose
        unstored entries are 0 (for methods that predict only some entries).
        """

    def check_data(self, data: PreparedData) -> None:
        """Raise unless this fitted model can predict ``data`` (see :attr:`fitted_`)."""
        record = self._require_fitted()
        genes = tuple(str(g) for g in data.var_names)
        if genes != record.var_names:
            missing = len(set(record.var_names) - set(genes))
            raise InputError(
                f"the {self.name} model was trained on {len(record.var_names)} genes but the "
                f"data has {len(genes)} ({missing} of the model's genes are missing, or the "
                "order differs).",
                fix="give data with the model's genes (scfill.impute selects them for you).")
        if self.transductive and cells_digest(data.obs_names) != record.cells:
            raise InputError(
                f"{self.name} is transductive: a fitted model predicts only the "
                f"{record.n_cells} cells it was fitted on, and these are other cells.",
                fix=f"fit it on this data instead: scfill.impute(adata, {self.name!r}).")

    def _require_fitted(self) -> FitRecord:
        if not self.is_fitted:
            raise NotFittedError(
                f"this {self.name} model has not been fitted.",
                fix="fit it first (scfill.impute(adata, model)) or load a saved one "
                "(scfill.load_model(directory)).")
        return self.fitted_

    # -- saving ----------------------------------------------------------------------------

    def _get_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The fitted state: tensors (weights, arrays) and plain-JSON extras."""
        raise InputError(f"method {self.name!r} cannot be saved.",
                         fix="refit it on each dataset instead.")

    def _set_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        """Restore what :meth:`_get_state` returned."""
        raise InputError(f"method {self.name!r} cannot be loaded.",
                         fix="refit it on each dataset instead.")

    @classmethod
    def can_save(cls) -> bool:
        """Whether the method implements the saving hooks."""
        return cls._get_state is not Method._get_state

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write the fitted model to ``directory``: weights (``model.pt``) and a JSON config
        (method, parameters, genes, normaliser, output space, scfill version, extras)."""
        from scfill import __version__
        from scfill.nn.checkpoint import save_checkpoint

        record = self._require_fitted()
        tensors, extra = self._get_state()
        config = {"method": self.name, "params": plain(self.get_params()),
                  "scfill_version": __version__, "space": COMMON_SPACE,
                  "transductive": self.transductive, "fit": record.to_dict(),
                  "extra": plain(extra), "info": plain(getattr(self, "info_", {}))}
        return save_checkpoint(directory, state=tensors, config=config,
                               var_names=record.var_names, overwrite=overwrite)

    @classmethod
    def load(cls, directory: str | Path) -> Method:
        """A fitted model from :meth:`save` (``Method.load`` picks the saved method)."""
        from scfill.nn.checkpoint import load_checkpoint

        tensors, config = load_checkpoint(directory)
        saved = config.get("method")
        target = get(saved) if cls is Method else cls
        if target.name != saved:
            raise InputError(f"{directory} holds a {saved!r} model, not {cls.name!r}.",
                             fix="load it with scfill.load_model(directory).")
        model = target(**config["params"])
        model._set_state(tensors, config.get("extra", {}))
        model.info_ = config.get("info", {})
        model.fitted_ = FitRecord.from_dict(config["fit"], config["var_names"])
        return model

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def _recording_fit(fit):
    @functools.wraps(fit)
    def wrapper(self: Method, data: PreparedData, *args: Any, **kwargs: Any) -> Method:
        result = fit(self, data, *args, **kwargs)
        self.fitted_ = FitRecord.of(data)
        return result

    return wrapper


def _checked_reconstruct(reconstruct):
    @functools.wraps(reconstruct)
    def wrapper(self: Method, data: PreparedData, *args: Any, **kwargs: Any) -> Reconstruction:
        self.check_data(data)
        return reconstruct(self, data, *args, **kwargs)

    return wrapper


def load_model(directory: str | Path) -> Method:
    """The fitted model saved in ``directory``, whatever its method."""
    return Method.load(directory)


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


