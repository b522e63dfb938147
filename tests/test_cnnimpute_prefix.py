"""The prefix computation of cnnImpute's network equals the plain network (forward, gradients,
BatchNorm running statistics) on zero-padded inputs, in training and eval modes."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from scfill.methods.cnnimpute.coexpression import PAD, SubsetLayout
from scfill.methods.cnnimpute.model import subset_matrices
from scfill.methods.cnnimpute.module import KERNEL, POOL, CoexpressionCNN, masked_mse
from scfill.methods.cnnimpute.prefix import prefix_inputs, stage_lengths

#: float64: the two computations agree to rounding (relative to each tensor's largest
#: value); gradients before a BatchNorm cancel large terms, so theirs is larger. A wrong
#: computation (a padded position mistaken for a real one, a BatchNorm count off by one)
#: moves them by 1e-4 or more.
EXACT, EXACT_GRAD = 1e-9, 1e-7
#: float32: relative rounding of the outputs.
FLOAT32_OUT = 1e-5


def _pair(n_inputs: int, n_real: int, dtype: torch.dtype, seed: int = 0):
    """A plain network with random weights and BatchNorm affine parameters, and a copy
    that computes on the prefix."""
    torch.manual_seed(seed)
    plain = CoexpressionCNN(n_inputs, 64, dropout=0.3).to(dtype)
    with torch.no_grad():
        for layer in plain.modules():
            if isinstance(layer, torch.nn.BatchNorm1d):
                layer.weight.uniform_(0.5, 1.5)
                layer.bias.uniform_(-0.5, 0.5)
    fast = copy.deepcopy(plain)
    fast.n_real = n_real
    return plain, fast


def _inputs(n_cells: int, n_inputs: int, n_real: int, dtype: torch.dtype) -> torch.Tensor:
    x = torch.zeros(n_cells, n_inputs, dtype=dtype)
    x[:, :n_real] = torch.rand(n_cells, n_real, dtype=dtype) * 3
    x[:, :n_real][torch.rand(n_cells, n_real) < 0.3] = 0  # zeros among the real inputs too
    return x


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def _step(net: CoexpressionCNN, x: torch.Tensor, y: torch.Tensor, seed: int):
    """One forward (dropout drawn from ``seed``) and backward; output and gradients."""
    net.zero_grad()
    torch.manual_seed(seed)
    out = net(x)
    masked_mse(out, y, y > 0.5).backward()
    return out.detach(), {name: p.grad.clone() for name, p in net.named_parameters()}


def _compare(plain, fast, x, y, *, out_tol, grad_tol, steps=2):
    """Train steps (plain SGD, so the weights and running statistics move; Adam would turn
    gradients that are zero but for rounding into full steps), then eval: every output,
    gradient and buffer of ``fast`` within tolerance of ``plain``'s."""
    optimisers = [torch.optim.SGD(net.parameters(), lr=0.1) for net in (plain, fast)]
    for step in range(steps):
        plain.train()
        fast.train()
        a, grads_a = _step(plain, x, y, seed=step)
        b, grads_b = _step(fast, x, y, seed=step)
        assert _relative(b, a) < out_tol
        for name, grad in grads_a.items():
            assert _relative(grads_b[name], grad) < grad_tol, name
        for optimiser in optimisers:
            optimiser.step()
    for (name, buffer), other in zip(plain.named_buffers(), fast.buffers(), strict=True):
        assert torch.allclose(other.double(), buffer.double(), rtol=out_tol, atol=0), name
    plain.eval()
    fast.eval()
    with torch.no_grad():
        assert _relative(fast(x), plain(x)) < out_tol


@pytest.mark.parametrize(("n_inputs", "n_real"), [
    (2560, 1), (2560, 2), (2560, 325), (2560, 341), (2560, 342), (2560, 355), (2560, 1200),
    (203, 17), (203, 18), (204, 33),
])
def test_prefix_equals_the_plain_network_in_float64(n_inputs, n_real):
    plain, fast = _pair(n_inputs, n_real, torch.float64)
    assert fast.n_real == n_real  # the prefix is shorter than the input: it is used
    x = _inputs(12, n_inputs, n_real, torch.float64)
    y = torch.rand(12, 64, dtype=torch.float64)
    _compare(plain, fast, x, y, out_tol=EXACT, grad_tol=EXACT_GRAD)


@pytest.mark.parametrize("n_real", [1, 341, 700])
@pytest.mark.parametrize("training", [True, False])
def test_prefix_in_float32_is_as_accurate_as_the_plain_network(n_real, training):
    """Against the float64 plain network, the float32 prefix computation's outputs and
    gradients are no further off than the float32 plain network's own rounding (some
    gradients before a BatchNorm are zero but for rounding, so a relative tolerance on
    them would only measure noise). Dropout off: float32 and float64 draw other masks."""
    reference, _ = _pair(2560, n_real, torch.float64)
    reference.head[0].p = 0.0
    reference.train(training)
    plain = copy.deepcopy(reference).float()
    fast = copy.deepcopy(plain)
    fast.n_real = n_real
    x = _inputs(32, 2560, n_real, torch.float64)
    y = torch.rand(32, 64, dtype=torch.float64)
    out_ref, grads_ref = _step(reference, x, y, seed=0)
    _, grads_plain = _step(plain, x.float(), y.float(), seed=0)
    out_fast, grads_fast = _step(fast, x.float(), y.float(), seed=0)
    assert _relative(out_fast.double(), out_ref) < FLOAT32_OUT
    for name, grad in grads_ref.items():
        error_plain = float((grads_plain[name].double() - grad).abs().max())
        error_fast = float((grads_fast[name].double() - grad).abs().max())
        assert error_fast <= 10 * error_plain + FLOAT32_OUT * float(grad.abs().max()), name


def test_prefix_under_bfloat16_autocast_matches_the_plain_network():
    """Under autocast both compute in bfloat16; they differ by its rounding only."""
    plain, fast = _pair(2560, 341, torch.float32)
    x = _inputs(32, 2560, 341, torch.float32)
    outputs = []
    for net in (plain, fast):
        torch.manual_seed(0)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outputs.append(net(x).float())
    assert _relative(outputs[1], outputs[0]) < 0.05


def test_dropout_draws_the_same_masks_as_the_plain_network():
    """The dense layer's input has the plain shape, so dropout's masks are the same: with a
    large rate the outputs still agree (a different mask would move them by far more)."""
    plain, fast = _pair(2560, 341, torch.float64)
    plain.head[0].p = fast.head[0].p = 0.9
    x = _inputs(8, 2560, 341, torch.float64)
    outputs = []
    for net in (plain, fast):
        torch.manual_seed(3)
        outputs.append(net(x))
    assert _relative(outputs[1], outputs[0]) < EXACT


@pytest.mark.parametrize(("head", "n_real"), [("gap", 341), ("flatten", 2550), ("flatten", None)])
def test_prefix_is_off_where_it_does_not_apply(head, n_real):
    """The gap head, a prefix as long as the input and no promise compute every input."""
    assert CoexpressionCNN(2560, 64, head=head, n_real=n_real).n_real is None


def test_prefix_covers_the_padding_boundary():
    """The prefix ends one padded position after the real ones at the second stage, and
    never reads past the real inputs' receptive fields too little."""
    for n_real in range(1, 600):
        length = prefix_inputs(n_real, KERNEL, POOL)
        first, second = stage_lengths(length, KERNEL, POOL)
        real_first = -(-n_real // POOL)
        assert second == -(-real_first // POOL) + 1
        assert length >= n_real + KERNEL - 1 and first >= real_first + KERNEL - 1


def test_subset_inputs_are_zero_after_the_real_prefix():
    """The model's promise: a subset's inputs after its ``n_inputs`` real genes are zero."""
    values = sp.random(30, 12, density=0.6, format="csr", random_state=0, dtype=np.float32)
    layout = SubsetLayout(targets=np.array([0, 1, PAD]),
                          inputs=np.array([5, 7, 2, 9, PAD, PAD, PAD, PAD]))
    x, _, _ = subset_matrices(layout, values, values > 0)
    assert layout.n_inputs == 4
    assert x[:, layout.n_inputs:].nnz == 0
    np.testing.assert_array_equal(x[:, :4].toarray(), values[:, [5, 7, 2, 9]].toarray())
