"""Child side of the TensorFlow peers: runs DCA or DeepImpute inside their own virtualenv.

Started by :mod:`scfill.external.tensorflow_peers` as ``ENV/bin/python _tf_runner.py
REQUEST.json``; it never imports scfill (the env has TensorFlow 2.15, Keras 2.15 and
numpy < 2, not scfill's stack). The request names the peer, its parameters, the seed, the
thread count and two files: the input counts (``.npz``: CSR parts ``data``, ``indices``,
``indptr``, ``shape`` of cells × genes) and the output (``.npz``: ``counts``, the peer's
denoised counts, dense float32 cells × genes, and ``info``, a JSON string). The output is
written to a ``.part`` file and renamed, so the parent sees a whole file or none.

``python _tf_runner.py --check`` imports both peers (with the shims) and prints their
versions as JSON: what the setup command runs to prove the env works.

Shims (DCA 0.3.4 and DeepImpute 1.2 were written for Keras 2.4; Keras 2.15 moved or removed
what they import):

- ``keras.engine.topology.Layer`` and ``keras.engine.base_layer.InputSpec`` (DCA's
  ``layers.py``) are ``keras.layers.Layer`` / ``keras.layers.InputSpec``;
- ``keras.objectives.mean_squared_error`` (DCA's ``network.py``) is
  ``keras.losses.mean_squared_error``;
- ``dca.hyper`` (the hyper-parameter search of DCA's command line, never called by its
  API) imports ``kopt``, whose config loader calls ``yaml.load`` without a ``Loader`` and
  fails on current PyYAML; it is replaced by a module whose ``hyper`` says so.
- Keras 2.15's optimizers are the new ones. DCA trains in graph mode
  (``disable_eager_execution``), where Keras calls ``optimizer.get_updates``, which only the
  legacy optimizers have; and DeepImpute compiles ``Adam(lr=learning_rate)``, which the new
  Adam accepts with a warning and ignores (it keeps its default 1e-3, not DeepImpute's
  1e-4). So each optimizer name of ``keras.optimizers`` (and ``tf.keras.optimizers``) is
  pointed at its ``legacy`` class, which still reads ``lr``, while the peer runs.
- DCA's ``train`` replaces Keras's session (to set its thread count) after the model has
  been built and its variables initialised in the first one; under TF 2.15 the new session
  then fails with "Could not find variable mean/bias". The runner opens that session with
  DCA's thread count first, and DCA's later ``set_session`` call is made a no-op.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import types
from pathlib import Path

import numpy as np


def load_counts(path: str | os.PathLike) -> np.ndarray:
    """The input counts (CSR parts in an ``.npz``) as a dense float32 array."""
    with np.load(path) as parts:
        data, indices, indptr = parts["data"], parts["indices"], parts["indptr"]
        n_cells, n_genes = (int(n) for n in parts["shape"])
    dense = np.zeros((n_cells, n_genes), dtype=np.float32)
    rows = np.repeat(np.arange(n_cells), np.diff(indptr))
    dense[rows, indices] = data
    return dense


def save_output(path: str | os.PathLike, counts: np.ndarray, info: dict) -> None:
    """Write the denoised counts and facts of the run, atomically."""
    path = Path(path)
    partial = path.with_name(path.name + ".part")
    with open(partial, "wb") as handle:
        np.savez(handle, counts=np.asarray(counts, dtype=np.float32), info=json.dumps(info))
    partial.replace(path)


def install_keras_shims() -> None:
    """Register the Keras 2.4 module paths DCA imports, backed by Keras 2.15."""
    import keras

    topology = types.ModuleType("keras.engine.topology")
    topology.Layer = keras.layers.Layer
    base_layer = types.ModuleType("keras.engine.base_layer")
    base_layer.InputSpec = keras.layers.InputSpec
    engine = types.ModuleType("keras.engine")
    engine.topology, engine.base_layer = topology, base_layer
    objectives = types.ModuleType("keras.objectives")
    objectives.mean_squared_error = keras.losses.mean_squared_error
    for name, module in (("keras.engine", engine), ("keras.engine.topology", topology),
                         ("keras.engine.base_layer", base_layer),
                         ("keras.objectives", objectives)):
        sys.modules.setdefault(name, module)


def _no_hyper(*args, **kwargs):
    raise RuntimeError("DCA's hyper-parameter search (kopt) is not installed in scfill's env.")


def install_dca_hyper_stub() -> None:
    """Stand in for ``dca.hyper``, so that ``dca.train`` imports without ``kopt``."""
    hyper = types.ModuleType("dca.hyper")
    hyper.hyper = _no_hyper
    sys.modules.setdefault("dca.hyper", hyper)


def use_legacy_optimizers() -> None:
    """Point every optimizer name of ``keras.optimizers`` at its legacy class."""
    import keras
    import tensorflow as tf

    legacy = keras.optimizers.legacy
    names = [n for n in dir(legacy) if not n.startswith("_") and n != "Optimizer"]
    for module in (keras.optimizers, tf.keras.optimizers):
        for name in names:
            setattr(module, name, getattr(legacy, name))


def open_dca_session(threads: int | None) -> None:
    """Graph mode and one Keras session with ``threads``, kept for DCA's whole run."""
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads or 0,
                                      inter_op_parallelism_threads=threads or 0)
    backend = tf.compat.v1.keras.backend
    backend.set_session(tf.compat.v1.Session(config=config))
    backend.set_session = lambda session: None


def run_dca(counts: np.ndarray, params: dict, seed: int, threads: int | None) -> tuple:
    """DCA's ``dca.api.dca`` in denoise mode: its mean counts (``adata.X``)."""
    import anndata

    install_keras_shims()
    install_dca_hyper_stub()
    use_legacy_optimizers()
    open_dca_session(threads)
    from dca.api import dca

    adata = anndata.AnnData(counts)
    hidden = params.pop("hidden_size", None)
    if hidden is not None:
        params["hidden_size"] = tuple(hidden)
    adata = dca(adata, mode="denoise", random_state=seed, threads=threads, copy=True,
                return_info=True, **params)
    history = {k: [float(v) for v in vals] for k, vals in adata.uns["dca_loss_history"].items()}
    return np.asarray(adata.X), {"epochs": len(history.get("loss", [])), "history": history}


def run_deepimpute(counts: np.ndarray, params: dict, seed: int, threads: int | None) -> tuple:
    """DeepImpute's ``MultiNet`` (its Python API): fit, then predict with ``policy``."""
    import pandas as pd

    use_legacy_optimizers()
    from deepimpute.multinet import MultiNet

    frame = pd.DataFrame(counts, index=[f"c{i}" for i in range(counts.shape[0])],
                         columns=[f"g{j}" for j in range(counts.shape[1])])
    fit_keys = ("cell_subset", "NN_lim", "n_pred", "ntop", "minVMR", "mode")
    fit_params = {k: params.pop(k) for k in fit_keys if k in params}
    policy = params.pop("policy", "restore")
    with tempfile.TemporaryDirectory(prefix="deepimpute-") as folder:
        model = MultiNet(ncores=threads or -1, seed=seed, output_prefix=folder, verbose=0,
                         **params)
        model.fit(frame, **fit_params)
        imputed = model.predict(frame, policy=policy)
    info = {"epochs": int(model.trained_epochs),
            "test_metrics": {k: float(v) for k, v in model.test_metrics.items()}}
    return imputed.to_numpy(dtype=np.float32), info


PEERS = {"dca": run_dca, "deepimpute": run_deepimpute}


def check() -> dict:
    """Import both peers with the shims; their versions."""
    from importlib.metadata import version

    install_keras_shims()
    install_dca_hyper_stub()
    use_legacy_optimizers()
    import dca.api  # noqa: F401
    import deepimpute.multinet  # noqa: F401

    return {name: version(name) for name in ("dca", "deepimpute", "tensorflow-cpu", "keras",
                                             "numpy")}


def main(argv: list[str]) -> int:
    """Run the request named on the command line (or ``--check``)."""
    if argv == ["--check"]:
        print(json.dumps(check()))
        return 0
    request = json.loads(Path(argv[0]).read_text())
    counts = load_counts(request["input"])
    denoised, info = PEERS[request["peer"]](counts, dict(request["params"]),
                                            int(request["seed"]), request.get("threads"))
    save_output(request["output"], denoised, info)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
