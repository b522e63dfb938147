"""DCA and DeepImpute, the TensorFlow peers, run in their own virtualenv as a subprocess.

Both are registered methods like MAGIC and scVI (:mod:`scfill.external.peers`): ``scfill
impute --method dca``, ``scfill evaluate`` and ``scfill benchmark`` run them. Their packages
cannot live next to scfill (:mod:`scfill.external.tensorflow_env`), so :meth:`TFPeer.fit`
writes the counts to a temporary ``.npz``, runs :mod:`scfill.external._tf_runner` with the
env's interpreter, and reads the denoised counts back from another ``.npz``. The counts are
then put in scfill's common space with the input's library sizes (``ln(1 + c · m / l)``).
When the env is missing, fitting raises :class:`~scfill.errors.MissingDependency` with the
setup command, and the benchmark records the peer as skipped with that message.

Both run at their Python API's defaults; see each class for the few settings scfill fixes.
Their training runs on CPU in TensorFlow with ``threads`` threads (default: the process's
``OMP_NUM_THREADS``, else TensorFlow's own choice); TensorFlow's CPU kernels are not
guaranteed bit-reproducible across thread counts.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from scfill._logging import logger
from scfill.errors import MissingDependency, ScfillError
from scfill.external import tensorflow_env
from scfill.external.peers import Peer
from scfill.methods.base import PreparedData, register
from scfill.utils import check_choice, check_number, requested_threads

#: Characters of the child's log quoted when it fails.
LOG_TAIL = 3000


class PeerFailed(ScfillError, RuntimeError):
    """The peer's process ended without a result (its log tail is in the message)."""


class TFPeer(Peer):
    """A peer that runs in the TensorFlow env (:mod:`scfill.external.tensorflow_env`)."""

    module = ""
    distribution = ""
    #: The runner's name for the peer.
    runner_name: str

    @classmethod
    def missing(cls) -> str | None:
        """The setup hint when the TensorFlow env is absent, else None."""
        return tensorflow_env.missing_env()

    def _runner_params(self, data: PreparedData) -> dict[str, Any]:
        """Keyword arguments handed to the peer in the env."""
        raise NotImplementedError

    def fit(self, data: PreparedData) -> TFPeer:
        """Run the peer on the raw counts in the env; stores ``imputed_`` (common space)."""
        self.check_params()
        hint = self.missing()
        if hint is not None:
            raise MissingDependency(f"method {self.name!r}: its TensorFlow env is {hint}")
        counts, info = run_peer(self.runner_name, data.counts, self._runner_params(data),
                                seed=data.seed, threads=self.threads)
        if counts.shape != (data.n_cells, data.n_genes) or not np.isfinite(counts).all():
            raise PeerFailed(f"{self.name} returned {counts.shape} values "
                             f"(finite: {bool(np.isfinite(counts).all())}) for "
                             f"{data.n_cells} cells x {data.n_genes} genes.")
        self.imputed_ = data.normalizer.transform(np.maximum(counts, 0), data.library_size)
        self.info_ = info
        return self


def run_peer(peer: str, counts, params: dict[str, Any], *, seed: int,
             threads: int | None) -> tuple[np.ndarray, dict[str, Any]]:
    """Run ``peer`` on ``counts`` (CSR, cells × genes) in the env; its counts and facts.

    Raises
    ------
    PeerFailed
        The child exited without writing a result.
    """
    import scipy.sparse as sp

    counts = sp.csr_matrix(counts, dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix=f"scfill-{peer}-") as folder:
        folder = Path(folder)
        np.savez(folder / "input.npz", data=counts.data, indices=counts.indices,
                 indptr=counts.indptr, shape=np.asarray(counts.shape))
        request = {"peer": peer, "input": str(folder / "input.npz"),
                   "output": str(folder / "output.npz"), "params": params, "seed": seed,
                   "threads": threads if threads is not None else requested_threads()}
        (folder / "request.json").write_text(json.dumps(request))
        log = folder / "peer.log"
        logger.info("running %s in %s", peer, tensorflow_env.env_path())
        with open(log, "wb") as sink:
            process = subprocess.run([str(tensorflow_env.env_python()),
                                      str(tensorflow_env.RUNNER), str(folder / "request.json")],
                                     stdout=sink, stderr=subprocess.STDOUT, check=False)
        output = folder / "output.npz"
        if process.returncode != 0 or not output.exists():
            tail = log.read_text(errors="replace")[-LOG_TAIL:]
            raise PeerFailed(f"{peer} failed (exit code {process.returncode}); its output "
                             f"ended with:\n{tail}")
        with np.load(output) as reply:
            return np.asarray(reply["counts"], dtype=np.float32), json.loads(str(reply["info"]))


@register
class DCA(TFPeer):
    """DCA (Eraslan et al., Nature Communications 2019): a deep count autoencoder.

    ``dca.api.dca`` in ``denoise`` mode on the raw counts: it normalises (size factors,
    log1p, scaling) internally and returns the mean of its count distribution per cell and
    gene on each cell's count scale; scfill puts that in the common space. Defaults are the
    API's (``dca`` 0.3.4): ``nb-conddisp`` autoencoder, hidden sizes (64, 32, 64), batch
    norm, RMSprop, batch 32, at most 300 epochs with early stopping after 15 epochs without
    improvement of the validation loss (10 % of cells) and the learning rate reduced after
    10. Open Problems' denoising task runs it the same way (``threads=1``).

    Parameters
    ----------
    ae_type
        ``"nb-conddisp"`` (default), ``"nb"``, ``"zinb"``, ``"zinb-conddisp"``, ``"poisson"``
        and the other types of ``dca.network.AE_types``.
    hidden_size
        Widths of the hidden layers.
    epochs, early_stop, reduce_lr, batch_size
        Training schedule (300, 15, 10, 32).
    learning_rate
        None keeps the optimizer's default.
    threads
        TensorFlow threads (None: ``OMP_NUM_THREADS``, else TensorFlow's choice).
    """

    name = "dca"
    description = "Peer: DCA deep count autoencoder (dca 0.3.4, Eraslan et al. 2019), own env."
    runner_name = "dca"
    min_cells = 10
    AE_TYPES = ("nb-conddisp", "nb", "nb-shared", "nb-fork", "zinb", "zinb-conddisp",
                "zinb-shared", "zinb-fork", "zinb-elempi", "poisson")

    def __init__(self, ae_type: str = "nb-conddisp", hidden_size: tuple[int, ...] = (64, 32, 64),
                 epochs: int = 300, early_stop: int = 15, reduce_lr: int = 10,
                 batch_size: int = 32, learning_rate: float | None = None,
                 threads: int | None = None) -> None:
        self.ae_type = ae_type
        self.hidden_size = hidden_size
        self.epochs = epochs
        self.early_stop = early_stop
        self.reduce_lr = reduce_lr
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.threads = threads
        self.info_ = {}

    def check_params(self) -> None:
        """A known autoencoder type, positive sizes and schedule."""
        check_choice("ae_type", self.ae_type, self.AE_TYPES, method=self.name)
        for width in tuple(self.hidden_size):
            check_number("hidden_size", width, integer=True, low=1, method=self.name)
        for name in ("epochs", "batch_size"):
            check_number(name, getattr(self, name), integer=True, low=1, method=self.name)
        for name in ("early_stop", "reduce_lr"):
            check_number(name, getattr(self, name), integer=True, low=0, method=self.name)
        if self.learning_rate is not None:
            check_number("learning_rate", self.learning_rate, low=0, low_open=True,
                         method=self.name)
        if self.threads is not None:
            check_number("threads", self.threads, integer=True, low=1, method=self.name)

    def _runner_params(self, data: PreparedData) -> dict[str, Any]:
        return {"ae_type": self.ae_type, "hidden_size": [int(w) for w in self.hidden_size],
                "epochs": self.epochs, "early_stop": self.early_stop,
                "reduce_lr": self.reduce_lr, "batch_size": self.batch_size,
                "learning_rate": self.learning_rate}


@register
class DeepImpute(TFPeer):
    """DeepImpute (Arisdakessian et al., Genome Biology 2019): sub-networks per gene subset.

    ``deepimpute.multinet.MultiNet`` (the Python API): genes with variance/mean above
    ``min_vmr`` are imputed in random subsets of ``sub_outputdim`` genes, each by a network
    (one dense layer of 256 ReLU units, dropout 0.2, softplus output) fed the 5 genes most
    correlated with each target from outside the subset, trained on log1p counts with the
    weighted MSE, Adam at learning rate 1e-4, batch 64, at most 500 epochs, early stopping
    after 5 (5 % of cells held out). ``predict(policy="restore")`` keeps observed non-zeros;
    the output is counts, put in the common space. These are ``MultiNet``'s defaults; its
    command line uses others (learning rate 5e-4, 300 epochs, 300 units).

    Under Keras 2.15 the learning rate reaches Adam only through the legacy optimizer, which
    the runner installs (:mod:`scfill.external._tf_runner`); otherwise it would silently
    train at 1e-3.

    DeepImpute needs genes outside each target subset as predictors, so data with at most
    ``sub_outputdim`` genes is refused (its network would have no input).

    Parameters
    ----------
    learning_rate, batch_size, max_epochs, patience
        Training (1e-4, 64, 500, 5).
    sub_outputdim
        Genes per sub-network (512).
    min_vmr
        Variance/mean threshold of the genes imputed (0.5).
    policy
        ``"restore"`` (observed non-zeros kept) or ``"max"``.
    threads
        TensorFlow threads (None: ``OMP_NUM_THREADS``, else all cores).
    """

    name = "deepimpute"
    description = "Peer: DeepImpute sub-network imputation (deepimpute 1.2, Arisdakessian " \
                  "et al. 2019), own env."
    runner_name = "deepimpute"
    min_cells = 20

    def __init__(self, learning_rate: float = 1e-4, batch_size: int = 64, max_epochs: int = 500,
                 patience: int = 5, sub_outputdim: int = 512, min_vmr: float = 0.5,
                 policy: str = "restore", threads: int | None = None) -> None:
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.sub_outputdim = sub_outputdim
        self.min_vmr = min_vmr
        self.policy = policy
        self.threads = threads
        self.info_ = {}

    def check_params(self) -> None:
        """Positive training settings and a known policy."""
        check_number("learning_rate", self.learning_rate, low=0, low_open=True,
                     method=self.name)
        for name in ("batch_size", "max_epochs", "patience", "sub_outputdim"):
            check_number(name, getattr(self, name), integer=True, low=1, method=self.name)
        check_number("min_vmr", self.min_vmr, low=0, method=self.name)
        check_choice("policy", self.policy, ("restore", "max"), method=self.name)
        if self.threads is not None:
            check_number("threads", self.threads, integer=True, low=1, method=self.name)

    def fit(self, data: PreparedData) -> DeepImpute:
        """Refuse data too narrow for its sub-networks, then run it (:meth:`TFPeer.fit`)."""
        from scfill.errors import InputError

        self.check_params()
        if data.n_genes <= self.sub_outputdim:
            raise InputError(f"DeepImpute imputes genes in subsets of sub_outputdim="
                             f"{self.sub_outputdim} and predicts each from genes outside it; "
                             f"this data has only {data.n_genes} genes.",
                             fix=f"give more genes, or --param deepimpute.sub_outputdim="
                             f"{max(1, data.n_genes // 2)}.")
        super().fit(data)
        return self

    def _runner_params(self, data: PreparedData) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "batch_size": self.batch_size,
                "max_epochs": self.max_epochs, "patience": self.patience,
                "sub_outputdim": self.sub_outputdim, "minVMR": self.min_vmr,
                "policy": self.policy}
