"""Training profiles (fast/paper) of MaskClass and cnnImpute, the grouped subset networks,
the subsampled t-SNE pre-clustering, and ``--n-top-genes`` in evaluate and benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import make_counts
from scfill import cluster
from scfill.cli import main
from scfill.errors import InputError
from scfill.methods import profiles
from scfill.methods.cnnimpute import CnnImpute
from scfill.methods.cnnimpute import model as cnn_model
from scfill.methods.cnnimpute.module import (
    CoexpressionCNN,
    GroupedCoexpressionCNN,
    grouped_masked_mse,
    masked_mse,
)
from scfill.methods.cnnimpute.plan import GroupedEarlyStopping
from scfill.methods.maskclass import MaskClass
from test_cnnimpute import FAST as CNN_TINY
from test_cnnimpute import _prepared as cnn_data
from test_maskclass import _prepared as maskclass_data

# -- profile resolution ------------------------------------------------------------------


def test_explicit_parameters_win_over_the_profile():
    table = {"fast": {"epochs": 10, "lr": 1e-3}}
    settings, source = profiles.resolve_profile(table, "fast", {"epochs": 3, "lr": None})
    assert settings == {"epochs": 3, "lr": 1e-3}
    assert source == {"epochs": "user", "lr": "profile"}


def test_precision_auto_follows_the_hardware(monkeypatch):
    cpu = torch.device("cpu")
    assert profiles.resolve_precision("float32", cpu) == torch.float32
    assert profiles.resolve_precision("bfloat16", cpu) == torch.bfloat16
    monkeypatch.setattr(profiles, "bfloat16_native", lambda device: False)
    assert profiles.resolve_precision("auto", cpu) == torch.float32
    monkeypatch.setattr(profiles, "bfloat16_native", lambda device: True)
    assert profiles.resolve_precision("auto", cpu) == torch.bfloat16


def test_default_profile_is_fast_and_paper_is_the_papers_schedule():
    assert MaskClass().profile == "fast" and CnnImpute().profile == "fast"
    paper = MaskClass(profile="paper").settings()[0]
    assert paper == {"epochs": 300, "batch_size": 32, "lr": 1e-4, "patience": 0,
                     "min_delta": 0.0, "warmup": 0}
    cnn = CnnImpute(profile="paper").settings()[0]
    assert (cnn["learning_rate"], cnn["batch_size"], cnn["epochs"], cnn["patience"]) == \
        (1e-4, 32, 150, 5)
    assert cnn["precision"] == "float32" and cnn["batch_subsets"] is False


@pytest.mark.parametrize(("model", "message"), [
    (MaskClass(profile="slow"), "profile='slow' is not allowed"),
    (MaskClass(patience=-1), "patience=-1 is out of range"),
    (CnnImpute(profile="slow"), "profile='slow' is not allowed"),
    (CnnImpute(precision="half"), "precision='half' is not allowed"),
    (CnnImpute(min_delta=-1.0), "min_delta=-1.0 is out of range"),
])
def test_bad_profile_settings_raise(model, message):
    with pytest.raises(InputError, match=message):
        model.check_params()


# -- MaskClass ---------------------------------------------------------------------------


def test_maskclass_fast_stops_on_the_validation_masked_loss_and_records_it():
    model = MaskClass(epochs=30, patience=1, min_delta=10.0, warmup=2).fit(maskclass_data())
    info = model.info_
    assert info["profile"] == "fast" and info["settings"]["batch_size"] == 256
    assert info["settings_source"]["epochs"] == "user"
    assert info["settings_source"]["batch_size"] == "profile"
    # after 2 warm-up epochs, min_delta 10 is never reached: epoch 2 is the best, 3 stops
    assert info["stopped_early"] and info["epochs_run"] == 4 and info["best_epoch"] == 2
    assert len(model.history_["val_mask_loss"]) == 4


def test_maskclass_paper_profile_trains_every_epoch_without_validation():
    model = MaskClass(profile="paper", epochs=3).fit(maskclass_data())
    assert model.info_["epochs_run"] == 3 and not model.info_["stopped_early"]
    assert "val_mask_loss" not in model.history_
    assert model.info_["settings"]["lr"] == 1e-4


def test_maskclass_validation_draws_are_the_same_every_epoch():
    data = maskclass_data()
    model = MaskClass(epochs=4, patience=4, warmup=0, lr=1e-12).fit(data)
    # a learning rate of ~0 leaves the network as initialised: the same draws score the same
    losses = model.history_["val_mask_loss"]
    assert max(losses) - min(losses) < 1e-6


def test_maskclass_fast_same_seed_same_output():
    outputs = [np.concatenate([b for _, b in _blocks(MaskClass(epochs=6).fit(maskclass_data()),
                                                     maskclass_data())]) for _ in range(2)]
    np.testing.assert_array_equal(outputs[0], outputs[1])


def _blocks(model, data):
    out = model.reconstruct(data)
    return [(slice(0, out.shape[0]), np.asarray(out))] if isinstance(out, np.ndarray) else out


# -- cnnImpute ---------------------------------------------------------------------------


def _subset_nets(n: int, n_inputs: int = 40, n_outputs: int = 8) -> list[CoexpressionCNN]:
    nets = []
    for seed in range(n):
        torch.manual_seed(seed)
        nets.append(CoexpressionCNN(n_inputs, n_outputs))
    return nets


def test_grouped_network_computes_each_subset_network():
    nets = _subset_nets(3)
    grouped = GroupedCoexpressionCNN(nets).eval()
    x = torch.rand(6, 3, 40)
    expected = torch.stack([net.eval()(x[:, g]) for g, net in enumerate(nets)], dim=1)
    torch.testing.assert_close(grouped(x), expected)


def test_grouped_subsets_learn_only_from_their_own_loss():
    grouped = GroupedCoexpressionCNN(_subset_nets(2))
    x, y = torch.rand(5, 2, 40), torch.rand(5, 2, 8)
    observed = torch.ones_like(y, dtype=torch.bool)
    observed[:, 1] = False  # subset 1 has nothing observed
    grouped_masked_mse(grouped(x), y, observed).sum().backward()
    assert grouped.hidden_weight.grad[1].abs().max() == 0
    assert grouped.hidden_weight.grad[0].abs().max() > 0
    assert grouped.conv1.weight.grad[16:].abs().max() == 0


def test_grouped_masked_mse_is_each_subsets_masked_mse():
    pred, target = torch.rand(4, 3, 5), torch.rand(4, 3, 5)
    mask = torch.rand(4, 3, 5) > 0.5
    per = grouped_masked_mse(pred, target, mask)
    for g in range(3):
        torch.testing.assert_close(per[g], masked_mse(pred[:, g], target[:, g], mask[:, g]))


def test_grouped_early_stopping_keeps_each_subsets_best_epoch():
    grouped = GroupedCoexpressionCNN(_subset_nets(2))
    stop = GroupedEarlyStopping(2, patience=1)
    # subset 0 is best at epoch 0, subset 1 at epoch 1
    curves = [(1.0, 5.0), (2.0, 4.0), (3.0, 6.0)]
    states = []
    for epoch, (a, b) in enumerate(curves):
        states.append([grouped.group_state(g) for g in range(2)])
        done = stop.step({"val_sse_0": a, "val_n_0": 1.0, "val_sse_1": b, "val_n_1": 1.0},
                         epoch, grouped)
        with torch.no_grad():
            grouped.hidden_weight.add_(1.0)
        if done:
            break
    assert done and stop.best_epochs == [0, 1]
    stop.restore(grouped)
    torch.testing.assert_close(grouped.group_state(0)["hidden_weight"],
                               states[0][0]["hidden_weight"])
    torch.testing.assert_close(grouped.group_state(1)["hidden_weight"],
                               states[1][1]["hidden_weight"])


@pytest.mark.parametrize("params", [{"batch_subsets": True}, {"precision": "bfloat16"}])
def test_cnnimpute_fast_variants_are_deterministic_and_impute_only_missing(params):
    data = cnn_data()
    fits = [CnnImpute(**CNN_TINY, **params).fit(data) for _ in range(2)]
    np.testing.assert_array_equal(fits[0].prediction_.toarray(), fits[1].prediction_.toarray())
    info = fits[0].info_
    assert info["batched_subsets"] is params.get("batch_subsets", False)
    assert info["settings_source"]["epochs"] == "user"
    predicted = fits[0].prediction_.toarray() != 0
    missing = fits[0]._missing(data).toarray()
    assert not (predicted & ~missing).any()
    assert len(info["groups"][0]["models"]) > 1


def test_cnnimpute_records_profile_and_dtype(monkeypatch):
    monkeypatch.setattr(cnn_model, "resolve_precision",
                        lambda precision, device: torch.float32)
    info = CnnImpute(**CNN_TINY).fit(cnn_data()).info_
    assert info["profile"] == "fast" and info["dtype"] == "float32"
    assert info["settings"]["learning_rate"] == 4e-4


# -- pre-clustering on a sample ----------------------------------------------------------


def _blobs(n_per: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(3), n_per)
    centres = rng.normal(0, 6, (3, 20))
    return centres[truth] + rng.normal(0, 1, (truth.size, 20)), truth


def test_tsne_on_a_sample_labels_every_cell_and_recovers_groups():
    from sklearn.metrics import adjusted_rand_score

    points, truth = _blobs()
    labels, k = cluster.tsne_density_peaks(points, seed=0, max_cells=200)
    assert labels.shape == truth.shape and k == 3
    assert adjusted_rand_score(truth, labels) > 0.95


def test_assign_by_neighbours_takes_the_majority():
    sample = np.array([[0.0], [0.1], [0.2], [10.0]])
    labels = np.array([0, 0, 1, 1])
    # 0.19's nearest sampled point is labelled 1, but two of its three nearest are 0
    out = cluster.assign_by_neighbours(np.array([[0.19], [9.0]]), sample, labels, k=3)
    np.testing.assert_array_equal(out, [0, 1])
    out = cluster.assign_by_neighbours(np.array([[0.19]]), sample, labels, k=1)
    np.testing.assert_array_equal(out, [1])


def test_tsne_sample_is_deterministic():
    points, _ = _blobs(100)
    a, _ = cluster.tsne_density_peaks(points, seed=3, max_cells=120)
    b, _ = cluster.tsne_density_peaks(points, seed=3, max_cells=120)
    np.testing.assert_array_equal(a, b)


# -- --n-top-genes -----------------------------------------------------------------------


def test_evaluate_takes_n_top_genes(tmp_path, monkeypatch):
    path = tmp_path / "counts.h5ad"
    make_counts().write_h5ad(path)
    seen = []
    import scfill.pipeline

    real = scfill.pipeline.impute

    def spy(*args, **kwargs):
        seen.append(kwargs.get("n_top_genes"))
        return real(*args, **kwargs)

    monkeypatch.setattr(scfill, "impute", spy)
    out = tmp_path / "r.csv"
    assert main(["-q", "evaluate", "--method", "knn", "--dataset", str(path), "--repeats",
                 "1", "--n-top-genes", "10", "-o", str(out)]) == 0
    assert seen == [10] and "mse" in set(pd.read_csv(out)["metric"])


def record_job(*, path: str, dataset: str, method: str, protocol: str, repeat: int,
               seed: int, **options) -> list[dict]:
    """A benchmark job that writes the options it got next to the dataset."""
    (Path(path).parent / "options.json").write_text(json.dumps(options))
    return [{"dataset": dataset, "method": method, "protocol": protocol, "repeat": repeat,
             "seed": seed, "metric": "mse", "value": 0.0}]


def test_benchmark_passes_n_top_genes_to_its_jobs(tmp_path):
    from scfill.bench.runner import BenchmarkConfig, run_grid

    path = tmp_path / "counts.h5ad"
    make_counts().write_h5ad(path)
    config = BenchmarkConfig(methods=["knn"], datasets=[str(path)],
                             protocols=["mask-nonzero:0.1"], out=tmp_path / "run", repeats=1,
                             n_top_genes=10, umap_dataset="", job="test_profiles:record_job")
    _, runs, _ = run_grid(config)
    assert list(runs["status"]) == ["ok"]
    options = json.loads((tmp_path / "run" / "datasets" / "options.json").read_text())
    assert options["n_top_genes"] == 10
    assert json.loads((tmp_path / "run" / "settings.json").read_text())["n_top_genes"] == 10
