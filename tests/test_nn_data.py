"""Row datasets, loaders (shuffling, sharding, state), block prediction; losses and blocks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from scfill.nn import RowDataset, RowLoader, predict_blocks
from scfill.nn import data as nn_data
from scfill.nn.blocks import FCBlock, fc_stack
from scfill.nn.losses import bce_logits, discriminator_loss, generator_loss, weighted_mse


def _fields(n=50, g=7, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.poisson(1.0, size=(n, g)).astype(np.float32)
    return x, {"counts": sp.csr_matrix(x), "dense": x * 2, "label": np.arange(n) % 3}


def test_dataset_densifies_only_the_asked_rows_with_their_types():
    x, fields = _fields()
    data = RowDataset(fields, cache_bytes=0)
    batch = data[np.array([4, 0, 9])]
    assert not data.cached and len(data) == 50
    np.testing.assert_array_equal(batch["counts"].numpy(), x[[4, 0, 9]])
    np.testing.assert_array_equal(batch["dense"].numpy(), 2 * x[[4, 0, 9]])
    assert batch["counts"].dtype == torch.float32 and batch["label"].dtype == torch.int64
    assert batch["label"].tolist() == [1, 0, 0]


def test_cache_holds_the_transformed_rows_and_gives_the_same_batches(monkeypatch):
    _, fields = _fields(n=70)
    monkeypatch.setattr(nn_data, "ROW_BLOCK", 16)  # several blocks to fill the cache

    def transform(batch):
        return {"s": batch["counts"] / 2, "zero": (batch["counts"] == 0).float()}

    cached = RowDataset(fields, transform=transform)
    streamed = RowDataset(fields, transform=transform, cache_bytes=0)
    assert cached.cached and not streamed.cached
    rows = np.array([69, 3, 17, 40])
    for name in ("s", "zero"):
        assert torch.equal(cached[rows][name], streamed[rows][name])
    # 70 rows × 7 genes × 2 float32 fields = 3,920 bytes: one byte less does not cache
    assert RowDataset(fields, transform=transform, cache_bytes=3920).cached
    assert not RowDataset(fields, transform=transform, cache_bytes=3919).cached


def test_dataset_rejects_fields_of_different_lengths():
    with pytest.raises(ValueError, match="number of rows"):
        RowDataset({"a": np.zeros((3, 2)), "b": np.zeros((4, 2))})


def test_loader_shuffles_with_its_seed_and_covers_every_row_once():
    _, fields = _fields()
    data = RowDataset(fields)

    def epochs(seed, n=2):
        loader = RowLoader(data, 16, shuffle=True, rng=seed)
        return [[b["label"].tolist() for b in loader] for _ in range(n)]

    first = epochs(0)
    assert first == epochs(0) and first != epochs(1)
    assert first[0] != first[1]  # a new order each epoch
    order = RowLoader(data, 16, shuffle=True, rng=0)
    rows = np.concatenate([b["dense"][:, 0].numpy() for b in order])
    assert sorted(rows.tolist()) == sorted((2 * data.fields["counts"].toarray()[:, 0]).tolist())
    assert [len(b["label"]) for b in RowLoader(data, 16)] == [16, 16, 16, 2]
    assert len(RowLoader(data, 16, min_batch=3)) == 3


def test_loader_over_a_subset_and_its_state_resumes_the_order():
    data = RowDataset({"i": np.arange(50)})
    subset = np.array([5, 7, 11, 13, 17, 19])
    loader = RowLoader(data, 4, shuffle=True, rng=2, rows=subset)
    next(iter(loader))  # one epoch drawn
    state = loader.state_dict()
    expected = [b["i"].tolist() for b in loader]
    other = RowLoader(data, 4, shuffle=True, rng=99, rows=subset)
    other.load_state_dict(state)
    assert [b["i"].tolist() for b in other] == expected
    assert {i for rows in expected for i in rows} == set(subset.tolist())


@pytest.mark.parametrize("n_rows", [30, 31])
def test_sharded_batches_together_are_the_one_process_batches(monkeypatch, n_rows):
    data = RowDataset({"i": np.arange(n_rows)})
    single = [b["i"].tolist() for b in RowLoader(data, 8, shuffle=True, rng=4)]
    shards = []
    for rank in range(2):
        monkeypatch.setattr(nn_data.distributed, "rank_and_world", lambda r=rank: (r, 2))
        shards.append([b["i"].tolist() for b in RowLoader(data, 4, shuffle=True, rng=4)])
    assert len(shards[0]) == len(shards[1]) == 4  # both processes take the same steps
    together = [sorted(a + b) for a, b in zip(*shards, strict=True)]
    if n_rows == 30:
        assert together == [sorted(rows) for rows in single]
    else:  # 31 rows: padded to 32 with the permutation's first row
        assert together[:3] == [sorted(rows) for rows in single[:3]]
        assert together[3] == sorted(single[3] + single[0][:1])


def test_predict_blocks_covers_every_row_in_order():
    x, fields = _fields(n=23)
    data = RowDataset(fields)
    blocks = list(predict_blocks(lambda b: b["counts"] * 3, data, block_rows=10))
    assert [r for r, _ in blocks] == [slice(0, 10), slice(10, 20), slice(20, 23)]
    np.testing.assert_array_equal(np.concatenate([v for _, v in blocks]), 3 * x)
    weight = torch.ones(1, requires_grad=True)
    _, out = next(predict_blocks(lambda b: b["counts"] * weight, data))
    assert isinstance(out, np.ndarray)


# -- losses --------------------------------------------------------------------------------


def test_weighted_mse_counts_weighted_entries_only():
    pred = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    target = torch.zeros(2, 2)
    mask = torch.tensor([[True, False], [False, True]])
    assert weighted_mse(pred, target, mask).item() == pytest.approx((1 + 25) / 2)
    weights = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    assert weighted_mse(pred, target, weights).item() == pytest.approx((2 + 25) / 3)
    assert weighted_mse(pred, target, torch.zeros(2, 2)).item() == 0.0


def test_adversarial_losses():
    logits = torch.tensor([0.0, 0.0])
    assert bce_logits(logits, 1.0).item() == pytest.approx(np.log(2))
    strong = torch.tensor([10.0])
    assert discriminator_loss(strong, -strong).item() < 1e-4  # a perfect discriminator
    assert generator_loss(-strong).item() > 9  # the generator is told it lost
    assert generator_loss(strong).item() < 1e-4


# -- blocks --------------------------------------------------------------------------------


def test_fc_block_parts_follow_the_options():
    block = FCBlock(4, 3)
    assert [type(m).__name__ for m in block] == ["Linear", "LayerNorm", "SiLU"]
    block = FCBlock(4, 3, norm="batch", activation="relu", dropout=0.3)
    assert [type(m).__name__ for m in block] == ["Linear", "BatchNorm1d", "ReLU", "Dropout"]
    assert [type(m).__name__ for m in FCBlock(4, 3, norm=None, activation=None)] == ["Linear"]
    stack = fc_stack([5, 4, 2], activation="tanh")
    assert stack(torch.zeros(3, 5)).shape == (3, 2)
    assert list(stack.state_dict()) == ["0.0.weight", "0.0.bias", "0.1.weight", "0.1.bias",
                                        "1.0.weight", "1.0.bias", "1.1.weight", "1.1.bias"]
    for bad in ({"norm": "group"}, {"activation": "swish"}, {"dropout": 1.0}):
        with pytest.raises(ValueError):
            FCBlock(2, 2, **bad)
