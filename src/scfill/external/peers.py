"""Adapters for the published tools scfill is compared with: MAGIC, scVI and ALRA.

Each peer is a registered :class:`~scfill.methods.base.Method`, so ``scfill impute --method
magic`` and ``scfill evaluate`` work on it like on scfill's own methods. The peers' packages
are optional (``pip install scfill[peers]``) and imported only when a peer is fitted; a
missing package raises :class:`~scfill.errors.MissingDependency` with the install command. Peers use
no dropout model and return their own output everywhere (``combine_rule="all"``), in
scfill's common space. They are transductive (fitted on the cells they impute) and cannot
be saved.

DCA and DeepImpute cannot be installed next to scfill (DCA pins TensorFlow < 2.5); they run
in their own env, :mod:`scfill.external.tensorflow_peers`. ALRA needs no package: it
is implemented from its paper in :mod:`scfill.external.alra`, registered when this module is
imported.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import ModuleType

import numpy as np

from scfill._logging import logger, progress_enabled
from scfill.external import alra as _alra  # noqa: F401  (registers ALRA)
from scfill.methods.base import Method, PreparedData, register
from scfill.preprocess import library_size
from scfill.utils import check_choice, check_number, import_optional, missing_package

#: What ``pip install scfill[peers]`` installs (keep in step with pyproject.toml).
PEERS_EXTRA = "pip install 'scfill[peers]'"


__all__ = ["MAGIC", "SCVI", "Peer"]


class Peer(Method):
    """A published tool run through scfill: optional package, no dropout model.

    Attributes
    ----------
    module, distribution
        The Python module the peer imports and the pip distribution (with version) that
        provides it.
    """

    module: str
    distribution: str
    dropout_model = None
    combine_rule = "all"
    transductive = True

    @classmethod
    def missing(cls) -> str | None:
        """The install hint when the peer's package is absent, else None."""
        return missing_package(cls.module, cls.distribution, extra=PEERS_EXTRA)

    def reconstruct(self, data: PreparedData) -> Iterator[tuple[slice, np.ndarray]]:
        """The result :meth:`fit` stored in ``imputed_``, in row blocks (views of it).

        MAGIC and the TensorFlow peers return their whole result dense: it is the one
        dense cells × genes array (the peer's own).
        """
        for rows in data.row_blocks():
            yield rows, self.imputed_[rows]

    def _package(self) -> ModuleType:
        return import_optional(self.module, self.distribution, needed_by=f"method {self.name!r}",
                               extra=PEERS_EXTRA)


@register
class MAGIC(Peer):
    """MAGIC (van Dijk et al., Cell 2018) via ``magic-impute``: diffusion on a cell graph.

    Fed the common-space (log-normalised) matrix, as its authors recommend (normalise, then
    square-root or log); its output, dense, is in the same space.

    Parameters
    ----------
    t
        Diffusion time. 3 is the library's default; its ``t="auto"`` picks t on a random
        subsample and is not reproducible from run to run even with a seed (measured,
        ``specs/peers.md``), so it is not offered.
    knn, decay
        Adaptive-kernel neighbours and decay (library defaults 5 and 1).
    n_pca
        PCA components of the graph (library default 100; capped by the data's size).
    """

    name = "magic"
    description = "Peer: MAGIC diffusion imputation (magic-impute, van Dijk et al. 2018)."
    module = "magic"
    distribution = "magic-impute==3.0.0"
    min_cells = 6

    def __init__(self, t: int = 3, knn: int = 5, decay: float = 1.0, n_pca: int = 100) -> None:
        self.t = t
        self.knn = knn
        self.decay = decay
        self.n_pca = n_pca
        self.info_ = {}

    def check_params(self) -> None:
        """``t`` ≥ 1, ``knn`` ≥ 1, ``decay`` > 0, ``n_pca`` ≥ 1."""
        check_number("t", self.t, integer=True, low=1, method=self.name)
        check_number("knn", self.knn, integer=True, low=1, method=self.name)
        check_number("decay", self.decay, low=0, low_open=True, method=self.name)
        check_number("n_pca", self.n_pca, integer=True, low=1, method=self.name)

    def fit(self, data: PreparedData) -> MAGIC:
        """Build the diffusion operator and diffuse; stores ``imputed_``."""
        self.check_params()
        magic = self._package()
        n_pca = min(self.n_pca, min(data.n_cells, data.n_genes) - 1)
        knn = min(self.knn, data.n_cells - 2)
        operator = magic.MAGIC(t=self.t, knn=knn, decay=self.decay, n_pca=n_pca,
                               random_state=data.seed, verbose=0)
        self.imputed_ = np.asarray(operator.fit_transform(data.logcounts), dtype=np.float32)
        self.info_ = {"t": self.t, "knn": knn, "n_pca": n_pca}
        return self



@register
class SCVI(Peer):
    """scVI (Lopez et al., Nature Methods 2018) via ``scvi-tools``: a ZINB/NB variational
    autoencoder on raw counts.

    The imputed value is the posterior mean of the normalised expression (the decoder's
    frequencies, averaged over ``n_samples`` draws of the latent variables), times each
    cell's library size over the modelled genes, then put in the common space.
    ``get_normalized_expression`` keeps every draw of every cell it is given, so cells go
    through it ``chunk_cells`` at a time (3.3 GB unchunked vs 1.2 GB chunked at
    5k cells × 2k genes, ``specs/peers.md``).

    Parameters
    ----------
    epochs
        Training epochs. None uses scvi-tools' default, ``min(round(20000 / n_cells · 400),
        400)``: 400 epochs up to 20,000 cells, which takes about 10 minutes at 5k × 2k on
        two CPU cores (``specs/peers.md``); benchmarks on CPU pass fewer and say so.
    n_latent, n_hidden, n_layers
        Model size (scvi-tools defaults 10, 128, 1).
    gene_likelihood
        ``"zinb"`` (scvi-tools default), ``"nb"`` or ``"poisson"``.
    n_samples
        Posterior draws averaged for the imputed value (scvi-tools' default is one draw).
    chunk_cells
        Cells per call of ``get_normalized_expression``.
    """

    name = "scvi"
    description = "Peer: scVI variational autoencoder (scvi-tools, Lopez et al. 2018)."
    module = "scvi"
    distribution = "scvi-tools==1.4.2"
    min_cells = 10

    def __init__(self, epochs: int | None = None, n_latent: int = 10, n_hidden: int = 128,
                 n_layers: int = 1, gene_likelihood: str = "zinb", n_samples: int = 25,
                 chunk_cells: int = 1024) -> None:
        self.epochs = epochs
        self.n_latent = n_latent
        self.n_hidden = n_hidden
        self.n_layers = n_layers
        self.gene_likelihood = gene_likelihood
        self.n_samples = n_samples
        self.chunk_cells = chunk_cells
        self.info_ = {}

    def check_params(self) -> None:
        """Positive integers, and a likelihood scvi-tools knows."""
        if self.epochs is not None:
            check_number("epochs", self.epochs, integer=True, low=1, method=self.name)
        for name in ("n_latent", "n_hidden", "n_layers", "n_samples", "chunk_cells"):
            check_number(name, getattr(self, name), integer=True, low=1, method=self.name)
        check_choice("gene_likelihood", self.gene_likelihood, ("zinb", "nb", "poisson"),
                     method=self.name)

    def fit(self, data: PreparedData) -> SCVI:
        """Train the model on the raw counts; stores ``model_`` and the epochs run."""
        self.check_params()
        scvi = self._package()
        import anndata as ad

        scvi.settings.seed = data.seed
        scvi.settings.verbosity = logging.WARNING
        adata = ad.AnnData(data.counts.astype(np.float32))
        scvi.model.SCVI.setup_anndata(adata)
        self.model_ = scvi.model.SCVI(adata, n_latent=self.n_latent, n_hidden=self.n_hidden,
                                      n_layers=self.n_layers,
                                      gene_likelihood=self.gene_likelihood)
        accelerator = "gpu" if data.device.type == "cuda" else "cpu"
        self.model_.train(max_epochs=self.epochs, accelerator=accelerator, devices=1,
                          enable_progress_bar=progress_enabled(),
                          enable_checkpointing=False)
        history = self.model_.history.get("elbo_train")
        epochs_run = 0 if history is None else len(history)
        logger.info("scVI: trained %d epochs", epochs_run)
        self.info_ = {"epochs": epochs_run,
                      "elbo_train": [] if history is None else
                      history.iloc[:, 0].astype(float).tolist()}
        return self

    def reconstruct(self, data: PreparedData) -> Iterator[tuple[slice, np.ndarray]]:
        """Posterior-mean expression × library size in the common space, ``chunk_cells``
        rows at a time (dense float32)."""
        modelled = library_size(data.counts)
        for start in range(0, data.n_cells, self.chunk_cells):
            rows = slice(start, min(start + self.chunk_cells, data.n_cells))
            frequencies = self.model_.get_normalized_expression(
                indices=np.arange(rows.start, rows.stop), n_samples=self.n_samples,
                return_mean=True, library_size=1, return_numpy=True)
            expected = (np.asarray(frequencies, dtype=np.float32)
                        * modelled[rows, None].astype(np.float32))
            yield rows, data.normalizer.transform(expected, data.library_size[rows])
