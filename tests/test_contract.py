"""The contract every registered method keeps, checked on tiny data with tiny settings.

Shapes and storage of the output, observed non-zeros kept, same seed same output (and a
different seed a different one for stochastic methods), save → load → identical output,
transductive methods refusing new cells, unfitted models raising ``NotFittedError``, bad
parameters raising ``InputError`` and every ``uns`` value writable to h5ad. A new method
must add its tiny settings to :data:`FAST`.
"""

from __future__ import annotations

import inspect

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

import scfill
from conftest import make_counts
from scfill.errors import InputError, NotFittedError
from scfill.methods.base import registered

#: Settings that make each method fit in about a second on the tiny data.
FAST = {
    "none": {},
    "knn": {"k": 5},
    "maskclass": {"epochs": 1, "batch_size": 16},
    "cnnimpute": {"subset_size": 8, "epochs": 1, "batch_size": 16},
    "alra": {},
    "magic": {"n_pca": 10},
    "scvi": {"epochs": 1, "n_samples": 2},
    "dca": {"epochs": 1},
    "deepimpute": {"max_epochs": 1, "sub_outputdim": 10},
    "scgacl": {"pretrain_epochs": 1, "vade_epochs": 1, "joint_epochs": 1, "batch_size": 32,
               "hidden_dims": (32, 32, 64)},
    "scmaskgan": {"epochs": 1, "batch_size": 16, "n_candidates": 24, "channels": 4,
                  "tune_k": False},
}
#: Methods whose result depends on the seed.
STOCHASTIC = {"maskclass", "cnnimpute", "scvi", "scgacl", "scmaskgan"}
#: Methods that do not give the same output twice for one seed, and why.
NOT_REPRODUCIBLE = {"deepimpute": "TensorFlow's CPU kernels are not bit-reproducible (two "
                                  "runs with one seed differ)"}
N_CELLS, N_GENES = 90, 30


def _params(name: str) -> dict:
    if name not in FAST:
        pytest.fail(f"add tiny settings for method {name!r} to tests/test_contract.py FAST")
    return dict(FAST[name])


def _method(name: str):
    cls = scfill.get_method(name)
    missing = getattr(cls, "missing", None)
    if missing is not None and missing():
        pytest.skip(missing())
    return cls(**_params(name))


def _data(seed: int = 7) -> ad.AnnData:
    return make_counts(N_CELLS, N_GENES, seed=seed)


def _impute(name: str, model=None, adata=None, seed: int = 0) -> ad.AnnData:
    adata = _data() if adata is None else adata
    scfill.impute(adata, _method(name) if model is None else model, labels_key="group",
                  seed=seed, device="cpu")
    return adata


METHODS = sorted(registered())


@pytest.fixture(params=METHODS)
def name(request) -> str:
    return request.param


def test_every_registered_method_has_tiny_settings():
    assert set(METHODS) <= set(FAST), f"add {set(METHODS) - set(FAST)} to FAST"


def test_output_shapes_and_observed_non_zeros(name):
    out = _impute(name)
    cls = scfill.get_method(name)
    imputed = out.layers["imputed"]
    assert sp.isspmatrix_csr(imputed) and imputed.dtype == np.float32
    assert imputed.shape == (N_CELLS, N_GENES)
    assert np.isfinite(imputed.data).all() and imputed.data.min() >= 0
    assert ("dropout_probability" in out.layers) == (cls.dropout_model is not None)
    if cls.combine_rule != "all":
        observed = scfill.impute(_data(), "none", copy=True).layers["imputed"]
        nonzero = observed.nonzero()
        np.testing.assert_allclose(np.asarray(imputed[nonzero]).ravel(),
                                   np.asarray(observed[nonzero]).ravel(), rtol=1e-6)
    info = out.uns["scfill"]
    assert info["method"] == name and info["storage"]["imputed"]["format"] == "csr"


def test_same_seed_same_output(name):
    if name in NOT_REPRODUCIBLE:
        pytest.skip(NOT_REPRODUCIBLE[name])
    first = _impute(name, seed=3).layers["imputed"]
    again = _impute(name, seed=3).layers["imputed"]
    assert (first != again).nnz == 0
    if name in STOCHASTIC:
        other = _impute(name, seed=4).layers["imputed"]
        assert (first != other).nnz > 0


def test_save_load_gives_the_same_output(name, tmp_path):
    model = _method(name)
    first = _impute(name, model=model)
    if not model.can_save():
        with pytest.raises(InputError, match="cannot be saved"):
            model.save(tmp_path / "model")
        return
    model.save(tmp_path / "model")
    loaded = scfill.load_model(tmp_path / "model")
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    again = _impute(name, model=loaded)
    assert again.uns["scfill"]["fitted_here"] is False
    assert (first.layers["imputed"] != again.layers["imputed"]).nnz == 0


def test_new_cells(name):
    model = _method(name)
    _impute(name, model=model)
    other = _data(seed=8)
    other.obs_names = [f"other{i}" for i in range(N_CELLS)]
    if model.transductive:
        with pytest.raises(InputError, match="transductive"):
            _impute(name, model=model, adata=other)
    else:
        out = _impute(name, model=model, adata=other)
        assert out.layers["imputed"].shape == (N_CELLS, N_GENES)
    with pytest.raises(InputError, match=r"lacks 1 of the \d+ genes"):
        _impute(name, model=model, adata=other[:, 1:].copy())


def test_unfitted_model_raises(name, tmp_path):
    model = _method(name)
    data = scfill.prepare(_data(), model, labels_key="group", device="cpu")
    with pytest.raises(NotFittedError, match="has not been fitted"):
        model.reconstruct(data)
    if model.can_save():
        with pytest.raises(NotFittedError):
            model.save(tmp_path / "model")


def test_numeric_parameters_are_checked(name):
    cls = scfill.get_method(name)
    numeric = [p for p, v in inspect.signature(cls.__init__).parameters.items()
               if isinstance(v.default, int | float) and not isinstance(v.default, bool)]
    for param in numeric:
        with pytest.raises(InputError, match=param):
            cls(**{**_params(name), param: "bad"}).check_params()
    with pytest.raises(InputError, match="bad parameters"):
        scfill.impute(_data(), name, params={"no_such_parameter": 1})


def test_every_uns_value_writes_to_h5ad(name, tmp_path):
    out = _impute(name)
    scfill.write(out, tmp_path / "out.h5ad")
    back = ad.read_h5ad(tmp_path / "out.h5ad")
    assert set(back.uns["scfill"]) == set(out.uns["scfill"])
    assert back.uns["scfill"]["method"] == name
