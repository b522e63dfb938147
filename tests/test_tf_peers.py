"""DCA and DeepImpute adapters: a fake env plays the peer (CI has no TensorFlow); the real
env runs only with ``pytest --peers-tf`` (built by ``scfill peers setup``)."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import scfill
from conftest import make_counts
from scfill.cli import main
from scfill.errors import InputError, MissingDependency
from scfill.external import _tf_runner, tensorflow_env
from scfill.external.tensorflow_peers import DCA, DeepImpute, PeerFailed

#: The fake peer: reads the request like the real runner, records it, and answers with
#: each gene's mean count in every cell (or fails, as the request's seed says).
FAKE_PEER = """
import json, sys
import numpy as np
request = json.load(open(sys.argv[-1]))
json.dump({"argv": sys.argv[1:], "request": request},
          open(request["input"] + ".seen.json", "w"))
with np.load(request["input"]) as parts:
    n_cells, n_genes = (int(n) for n in parts["shape"])
    dense = np.zeros((n_cells, n_genes), np.float32)
    rows = np.repeat(np.arange(n_cells), np.diff(parts["indptr"]))
    dense[rows, parts["indices"]] = parts["data"]
np.save(request["input"] + ".dense.npy", dense)
if request["seed"] == 13:
    print("fake peer: out of luck", flush=True)
    sys.exit(3)
mean = np.repeat(dense.mean(0, keepdims=True), n_cells, 0)
if request["seed"] == 14:
    mean = mean[:, :-1]
with open(request["output"], "wb") as handle:
    np.savez(handle, counts=mean, info=json.dumps({"epochs": 7}))
"""


def fake_env(folder: Path, *, ready: bool = True) -> Path:
    """A folder shaped like the env whose ``bin/python`` is the fake peer."""
    python = folder / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!{sys.executable}\n{FAKE_PEER}")
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    if ready:
        (folder / tensorflow_env.READY_FILE).write_text("{}")
    return folder


@pytest.fixture
def env(tmp_path, monkeypatch):
    folder = fake_env(tmp_path / "env")
    monkeypatch.setenv(tensorflow_env.ENV_VARIABLE, str(folder))
    # temporary folders of the adapter go here, to check that they are removed
    seen = tmp_path / "seen"
    seen.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(seen))
    return folder, seen


def test_missing_env_names_the_setup_command(tmp_path, monkeypatch, counts_adata):
    monkeypatch.setenv(tensorflow_env.ENV_VARIABLE, str(tmp_path / "nowhere"))
    assert "scfill peers setup" in DCA.missing()
    with pytest.raises(MissingDependency, match=r"not installed: run `scfill peers setup`"):
        scfill.impute(counts_adata, method="dca", copy=True)
    assert main(["impute", "--method", "deepimpute", "-o", str(tmp_path / "o.h5ad"),
                 _write(counts_adata, tmp_path)]) == 2


def test_an_env_without_a_finished_setup_is_missing(tmp_path, monkeypatch):
    folder = fake_env(tmp_path / "env", ready=False)
    monkeypatch.setenv(tensorflow_env.ENV_VARIABLE, str(folder))
    assert DCA.missing() is not None
    (folder / tensorflow_env.READY_FILE).write_text("{}")
    assert DCA.missing() is None


def _write(adata, folder: Path) -> str:
    path = folder / "in.h5ad"
    adata.write_h5ad(path)
    return str(path)


class Recorder:
    """Wraps the subprocess call to keep what the fake peer saw."""

    def __init__(self, monkeypatch):
        import subprocess

        self.calls: list[dict] = []
        real_run = subprocess.run

        def run(cmd, *args, **kwargs):
            result = real_run(cmd, *args, **kwargs)
            request = Path(cmd[-1])
            seen = Path(json.loads(request.read_text())["input"] + ".seen.json")
            if seen.exists():
                self.calls.append({"cmd": cmd, **json.loads(seen.read_text()),
                                   "dense": np.load(str(seen).replace(".seen.json",
                                                                      ".dense.npy"))})
            return result

        monkeypatch.setattr("scfill.external.tensorflow_peers.subprocess.run", run)


def test_dca_round_trip_through_files_into_the_common_space(env, monkeypatch):
    adata = make_counts(60, 30, seed=2)
    recorder = Recorder(monkeypatch)
    out = scfill.impute(adata, method="dca", seed=5, copy=True,
                        params={"epochs": 11, "threads": 1})
    call = recorder.calls[-1]
    # the env's python runs the runner file on the request
    assert call["cmd"][0] == str(env[0] / "bin" / "python")
    assert call["cmd"][1] == str(tensorflow_env.RUNNER)
    request = call["request"]
    assert request["peer"] == "dca" and request["seed"] == 5 and request["threads"] == 1
    assert request["params"]["epochs"] == 11 and request["params"]["ae_type"] == "nb-conddisp"
    # the peer got the raw counts, cells x genes, exactly
    np.testing.assert_array_equal(call["dense"], adata.X.toarray())
    # and its counts came back in ln(1 + c * median lib / lib)
    counts = adata.X.toarray().astype(np.float64)
    lib = counts.sum(1)
    expected = np.log1p(np.repeat(counts.mean(0, keepdims=True), 60, 0) * np.median(lib)
                        / lib[:, None])
    np.testing.assert_allclose(out.layers["imputed"].toarray(), expected, rtol=1e-5,
                               atol=1e-6)
    assert out.uns["scfill"]["combine_rule"] == "all"
    assert out.uns["scfill"]["info"]["epochs"] == 7


def test_deepimpute_passes_its_defaults(env, monkeypatch):
    adata = make_counts(60, 30, seed=3)
    recorder = Recorder(monkeypatch)
    scfill.impute(adata, method="deepimpute", seed=0, copy=True,
                  params={"sub_outputdim": 10})
    params = recorder.calls[-1]["request"]["params"]
    assert params == {"learning_rate": 1e-4, "batch_size": 64, "max_epochs": 500,
                      "patience": 5, "sub_outputdim": 10, "minVMR": 0.5,
                      "policy": "restore"}


def test_deepimpute_refuses_data_narrower_than_its_subnetworks(env, counts_adata):
    with pytest.raises(InputError, match="only 40 genes.*sub_outputdim=20"):
        scfill.impute(counts_adata, method="deepimpute", copy=True)


def test_a_failing_peer_raises_with_its_output(env, counts_adata):
    with pytest.raises(PeerFailed, match=r"(?s)exit code 3.*fake peer: out of luck"):
        scfill.impute(counts_adata, method="dca", seed=13, copy=True)


def test_a_wrong_shape_from_the_peer_is_refused(env, counts_adata):
    with pytest.raises(PeerFailed, match="returned"):
        scfill.impute(counts_adata, method="dca", seed=14, copy=True)


def test_temporary_files_are_removed(env, counts_adata):
    seen = env[1]
    scfill.impute(counts_adata, method="dca", copy=True)
    assert not list(seen.glob("scfill-dca-*"))


@pytest.mark.parametrize(("cls", "params", "message"), [
    (DCA, {"ae_type": "gauss"}, "ae_type='gauss' is not allowed"),
    (DCA, {"epochs": 0}, "epochs=0 is out of range"),
    (DeepImpute, {"learning_rate": 0.0}, "learning_rate=0.0 is out of range"),
    (DeepImpute, {"policy": "keep"}, "policy='keep' is not allowed"),
])
def test_parameters_are_checked(cls, params, message):
    with pytest.raises(InputError, match=message):
        cls(**params).check_params()


def test_runner_file_format_round_trip(tmp_path):
    counts = sp.random(7, 5, density=0.4, format="csr", random_state=0, dtype=np.float32)
    np.savez(tmp_path / "in.npz", data=counts.data, indices=counts.indices,
             indptr=counts.indptr, shape=np.asarray(counts.shape))
    np.testing.assert_array_equal(_tf_runner.load_counts(tmp_path / "in.npz"),
                                  counts.toarray())
    _tf_runner.save_output(tmp_path / "out.npz", counts.toarray() * 2, {"epochs": 3})
    assert not list(tmp_path.glob("*.part"))
    with np.load(tmp_path / "out.npz") as reply:
        np.testing.assert_array_equal(reply["counts"], counts.toarray() * 2)
        assert json.loads(str(reply["info"])) == {"epochs": 3}


def test_benchmark_records_a_missing_env_as_skipped(tmp_path, monkeypatch):
    from scfill.bench.runner import BenchmarkConfig, run_grid

    monkeypatch.setenv(tensorflow_env.ENV_VARIABLE, str(tmp_path / "nowhere"))
    path = tmp_path / "d.h5ad"
    make_counts(60, 30).write_h5ad(path)
    _, runs, _ = run_grid(BenchmarkConfig(methods=["dca"], datasets=[str(path)],
                                          protocols=["mask-nonzero:0.1"],
                                          out=tmp_path / "out", repeats=1))
    assert runs["status"].tolist() == ["skipped"]
    assert "scfill peers setup" in runs["message"].iloc[0]


# ---------------------------------------------------------------- the real env (opt-in)
@pytest.mark.peers_tf
@pytest.mark.parametrize("method", ["dca", "deepimpute"])
def test_real_peer_denoises(method):
    """The real env (``--peers-tf``): the peer runs and fills zeros with counts."""
    if tensorflow_env.missing_env() is not None:
        pytest.fail(tensorflow_env.missing_env())
    adata = make_counts(150, 600, seed=0)
    adata.X = sp.csr_matrix(adata.X.toarray() * 12)  # DeepImpute refuses max counts < 10
    out = scfill.impute(adata, method=method, seed=0, copy=True,
                        params={"threads": 1, **({"epochs": 20} if method == "dca" else
                                                  {"max_epochs": 20})})
    imputed = out.layers["imputed"].toarray()
    observed = adata.X.toarray()
    assert np.isfinite(imputed).all() and (imputed >= 0).all()
    assert (imputed[observed == 0] > 0).mean() > 0.5
