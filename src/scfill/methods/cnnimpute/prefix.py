"""Exact evaluation of the network's convolutional part on the real prefix of its input.

A subset's input holds its unique co-expressed genes first and zeros after them (the
paper's padding; :func:`~scfill.methods.cnnimpute.coexpression.input_layout`): at 5,000 ×
2,000 only ~325–355 of the 2,560 slots are real. Where a position's receptive field lies
entirely in the padding, every activation of the convolutional part is the same number for
every cell of the batch: conv → the bias, ReLU and max-pool of a constant, BatchNorm of a
constant (with the batch's statistics), and so on. :func:`prefix_features` computes the
convolutional part only on a prefix long enough to hold the real positions, their boundary
and one padded position per stage, computes each BatchNorm's batch statistics from the
prefix plus the padded positions' constant times their count, and fills the flattened
features' padded positions with that constant. The result is the plain
``features(x)`` up to float rounding, with the same gradients, in training mode (batch
statistics, running statistics updated as BatchNorm does) and eval mode (running
statistics). Everything after the features (dropout on every flattened feature, the dense
layers) is the plain network's, on a tensor of the same shape, so the dropout draws the
same masks.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def stage_lengths(n_inputs: int, kernel: int, pool: int) -> tuple[int, int]:
    """Positions after the first and after the second conv (``kernel`` wide, no padding)
    → max-pool (``pool`` wide) of ``n_inputs`` inputs."""
    first = (n_inputs - kernel + 1) // pool
    return first, (first - kernel + 1) // pool


def prefix_inputs(n_real: int, kernel: int, pool: int) -> int:
    """Input positions the prefix computation reads for ``n_real`` real leading inputs.

    After the first conv → pool, positions ``>= ceil(n_real / pool)`` see only padding, after
    the second ``>= ceil(ceil(n_real / pool) / pool)``; the prefix is sized so that the
    second stage ends one padded position after the real ones (the constant to copy), which
    also covers the first stage's boundary.
    """
    real_second = math.ceil(math.ceil(max(n_real, 1) / pool) / pool)
    first = pool * (real_second + 1) + kernel - 1
    return pool * first + kernel - 1


def _geometry(features: nn.Sequential) -> tuple[int, int]:
    """The kernel and pooling widths of ``features``."""
    return features[0].kernel_size[0], features[2].kernel_size


def prefix_features(features: nn.Sequential, x: torch.Tensor, n_real: int) -> torch.Tensor:
    """The flattened output of the flatten head's ``features`` on ``x`` (batch × inputs)
    whose inputs after the first ``n_real`` are zero, computed on the prefix only.

    ``features`` is :class:`~scfill.methods.cnnimpute.module.CoexpressionCNN`'s (conv,
    ReLU, pool, BatchNorm, conv, ReLU, pool, BatchNorm, flatten). The caller guarantees the
    zeros and that :func:`prefix_inputs` is shorter than the input.
    """
    conv1, relu1, pool1, norm1, conv2, relu2, pool2, norm2, flatten = features
    geometry = _geometry(features)
    full_first, full_second = stage_lengths(x.shape[1], *geometry)
    h = x[:, :prefix_inputs(n_real, *geometry)].unsqueeze(1)
    h = _padded_batch_norm(norm1, pool1(relu1(conv1(h))), full_first)
    h = _padded_batch_norm(norm2, pool2(relu2(conv2(h))), full_second)
    return flatten(_fill(h, full_second))


def _fill(h: torch.Tensor, length: int) -> torch.Tensor:
    """``h`` (batch × channels × prefix) extended to ``length`` positions with its last
    position, the padding's constant."""
    tail = h[:, :, -1:].expand(-1, -1, length - h.shape[2])
    return torch.cat([h, tail], dim=2)


def _padded_batch_norm(norm: nn.BatchNorm1d, h: torch.Tensor, length: int) -> torch.Tensor:
    """``norm`` applied to ``h`` filled to ``length`` positions (:func:`_fill`), returned on
    the prefix only.

    Training mode: the batch mean and biased variance over batch × ``length`` positions are
    the prefix's sums plus the padded positions' constant (the prefix's last position)
    times their count (taken about that constant); the running statistics move as
    :class:`~torch.nn.BatchNorm1d` moves them (unbiased variance, ``momentum``). Eval mode:
    the running statistics. Computed in float32 (or finer) and returned in ``h``'s dtype,
    as BatchNorm does under autocast.
    """
    values = h.to(torch.promote_types(h.dtype, torch.float32))
    if norm.training:
        # moments about the constant: the padded positions add exact zeros and nothing
        # large cancels when most of the prefix lies close to it
        batch, padded = values.shape[0], length - values.shape[2]
        count = batch * length
        constant = values[0, :, -1]
        shifted = values - constant[:, None]
        offset = shifted.sum(dim=(0, 2)) / count
        centred = shifted - offset[:, None]
        var = (centred.square().sum(dim=(0, 2)) + batch * padded * offset.square()) / count
        _update_running(norm, (constant + offset).detach(),
                        var.detach() * count / max(count - 1, 1))
    else:
        centred, var = values - norm.running_mean[:, None], norm.running_var
    scale = norm.weight * torch.rsqrt(var + norm.eps)
    return (centred * scale[:, None] + norm.bias[:, None]).to(h.dtype)


def _update_running(norm: nn.BatchNorm1d, mean: torch.Tensor, var: torch.Tensor) -> None:
    """BatchNorm's running-statistics update (``momentum`` None: the cumulative mean)."""
    with torch.no_grad():
        norm.num_batches_tracked.add_(1)
        momentum = norm.momentum
        if momentum is None:
            momentum = 1.0 / float(norm.num_batches_tracked)
        norm.running_mean.mul_(1 - momentum).add_(momentum * mean)
        norm.running_var.mul_(1 - momentum).add_(momentum * var)
