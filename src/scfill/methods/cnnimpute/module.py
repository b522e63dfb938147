"""cnnImpute's network (pure torch): a 1-D CNN from co-expressed inputs to target genes.

Paper (Zhang et al. 2024, Fig. 1B and Methods): input (``n_inputs`` × 1) →
Conv1D(16, k=3, ReLU) → MaxPool(2) → BatchNorm → Conv1D(16, k=3, ReLU) → MaxPool(2) →
BatchNorm → flatten → Dropout(0.3) → Dense(1024, ReLU) → Dense(``n_outputs``). The output is
kept non-negative with a ReLU, as in the authors' code (expression is ≥ 0 in log space).

``head="gap"`` is the authors' code instead of the paper: after the second convolution a
global average pool (16 numbers) replaces MaxPool → BatchNorm → flatten, then BatchNorm.

With ``n_real`` (the flatten head), the convolutional part runs only on the real leading
inputs and the padding's constants (:mod:`scfill.methods.cnnimpute.prefix`): the same
network and output, computed in a fraction of the time.
"""

from __future__ import annotations

import torch
from torch import nn

from scfill.methods.cnnimpute.prefix import prefix_features, prefix_inputs, stage_lengths
from scfill.nn.losses import TINY, weighted_mse

#: Convolution filters, kernel size and pooling width (paper, Methods).
FILTERS, KERNEL, POOL = 16, 3, 2
#: Width of the hidden dense layer (paper, Methods).
HIDDEN = 1024
HEADS = ("flatten", "gap")
#: Shortest input both heads accept: conv → pool → conv → pool leaves one position.
MIN_INPUTS = 10


def flat_length(n_inputs: int) -> int:
    """Positions left after conv → pool → conv → pool on ``n_inputs`` inputs (flatten head)."""
    return stage_lengths(n_inputs, KERNEL, POOL)[1]


class CoexpressionCNN(nn.Module):
    """The cnnImpute network for one target subset.

    Parameters
    ----------
    n_inputs
        Input genes (paper: 2560 = 5 × 512).
    n_outputs
        Target genes (paper: 512).
    head
        ``"flatten"`` (paper) or ``"gap"`` (authors' code: global average pool).
    dropout
        Dropout rate before the dense layer (paper: 0.3).
    n_real
        The inputs after the first ``n_real`` are always zero (the subset's padding): the
        flatten head then computes its features on the real prefix only
        (:func:`~scfill.methods.cnnimpute.prefix.prefix_features`; same output up to float
        rounding). None: no such promise, every input is computed.
    """

    def __init__(self, n_inputs: int, n_outputs: int, *, head: str = "flatten",
                 dropout: float = 0.3, n_real: int | None = None) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        layers: list[nn.Module] = [
            nn.Conv1d(1, FILTERS, KERNEL), nn.ReLU(), nn.MaxPool1d(POOL),
            nn.BatchNorm1d(FILTERS),
            nn.Conv1d(FILTERS, FILTERS, KERNEL), nn.ReLU(),
        ]
        if head == "flatten":
            layers += [nn.MaxPool1d(POOL), nn.BatchNorm1d(FILTERS), nn.Flatten()]
            n_features = FILTERS * flat_length(n_inputs)
        else:
            layers += [nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.BatchNorm1d(FILTERS)]
            n_features = FILTERS
        self.features = nn.Sequential(*layers)
        self.n_real = n_real if (
            head == "flatten" and n_real is not None
            and prefix_inputs(n_real, KERNEL, POOL) < n_inputs) else None
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(n_features, HIDDEN), nn.ReLU(),
            nn.Linear(HIDDEN, n_outputs), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: batch × n_inputs → batch × n_outputs."""
        return self.head(self.embed(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The convolutional part: ``x`` (batch × n_inputs) → the dense layers' input."""
        if self.n_real is not None:
            return prefix_features(self.features, x, self.n_real)
        return self.features(x.unsqueeze(1))


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries where ``mask`` is True (paper: missing entries and
    padding are masked); 0 when nothing is observed."""
    return weighted_mse(pred, target, mask)


class GroupedCoexpressionCNN(nn.Module):
    """Several independent :class:`CoexpressionCNN` (one per target subset) as one module.

    The same networks, computed together: the convolutions are grouped (``groups`` = the
    number of subsets, so each subset's channels see only its own input), the BatchNorms
    hold every subset's channels side by side (their statistics are per channel, as in the
    separate networks), and the dense layers keep one weight matrix per subset. Nothing is
    shared between subsets: each subset's loss moves only its own weights, so training the
    group on the sum of the subsets' losses trains each network as if alone on the same
    batches. The dense layers run one subset at a time (a loop over subsets, not cells or
    genes): on the CPU a bfloat16 ``bmm`` of these shapes measured 4× slower than ``mm``.

    Parameters
    ----------
    models
        The subset networks (same shapes, flatten head); their weights are copied, so a
        group starts where the separate networks would.
    """

    def __init__(self, models: list[CoexpressionCNN]) -> None:
        super().__init__()
        first = models[0]
        if len(first.features) != 9:
            raise ValueError("GroupedCoexpressionCNN takes flatten-head networks only")
        self.n_groups = n = len(models)
        self.conv1 = nn.Conv1d(n, n * FILTERS, KERNEL, groups=n)
        self.norm1 = nn.BatchNorm1d(n * FILTERS)
        self.conv2 = nn.Conv1d(n * FILTERS, n * FILTERS, KERNEL, groups=n)
        self.norm2 = nn.BatchNorm1d(n * FILTERS)
        self.pool = nn.MaxPool1d(POOL)
        self.dropout = nn.Dropout(first.head[0].p)
        hidden, out = first.head[1], first.head[3]
        self.hidden_weight = nn.Parameter(torch.empty(n, *hidden.weight.shape))
        self.hidden_bias = nn.Parameter(torch.empty(n, *hidden.bias.shape))
        self.out_weight = nn.Parameter(torch.empty(n, *out.weight.shape))
        self.out_bias = nn.Parameter(torch.empty(n, *out.bias.shape))
        with torch.no_grad():
            for g, model in enumerate(models):
                self.load_group_state(g, _single_state(model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: batch × subsets × n_inputs → batch × subsets × n_outputs."""
        batch = x.shape[0]
        h = self.norm1(self.pool(torch.relu(self.conv1(x))))
        h = self.norm2(self.pool(torch.relu(self.conv2(h))))
        h = self.dropout(h.reshape(batch, self.n_groups, -1))
        out = [torch.relu(nn.functional.linear(
            torch.relu(nn.functional.linear(h[:, g], self.hidden_weight[g],
                                            self.hidden_bias[g])),
            self.out_weight[g], self.out_bias[g])) for g in range(self.n_groups)]
        return torch.stack(out, dim=1)

    def group_state(self, g: int) -> dict[str, torch.Tensor]:
        """Subset ``g``'s weights and BatchNorm statistics (copies), keyed as in
        :meth:`load_group_state`."""
        channels = slice(g * FILTERS, (g + 1) * FILTERS)
        state = {}
        for name, tensor in self.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            part = tensor[g] if name.startswith(("hidden_", "out_")) else tensor[channels]
            state[name] = part.detach().clone()
        return state

    def load_group_state(self, g: int, state: dict[str, torch.Tensor]) -> None:
        """Put subset ``g``'s weights back (the inverse of :meth:`group_state`)."""
        channels = slice(g * FILTERS, (g + 1) * FILTERS)
        own = self.state_dict()
        with torch.no_grad():
            for name, value in state.items():
                target = own[name][g] if name.startswith(("hidden_", "out_")) \
                    else own[name][channels]
                target.copy_(value)


def _single_state(model: CoexpressionCNN) -> dict[str, torch.Tensor]:
    """A separate network's state under :class:`GroupedCoexpressionCNN`'s names."""
    f, h = model.features, model.head
    parts = {"conv1": f[0], "norm1": f[3], "conv2": f[4], "norm2": f[7]}
    state = {f"{name}.{key}": value for name, layer in parts.items()
             for key, value in layer.state_dict().items() if key != "num_batches_tracked"}
    state |= {"hidden_weight": h[1].weight, "hidden_bias": h[1].bias,
              "out_weight": h[3].weight, "out_bias": h[3].bias}
    return state


def grouped_masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
                       ) -> torch.Tensor:
    """Per-subset :func:`masked_mse` of batch × subsets × outputs tensors (a vector)."""
    weight = mask.to(pred.dtype)
    total = (weight * (pred - target).square()).sum(dim=(0, 2))
    return total / weight.sum(dim=(0, 2)).clamp_min(TINY)
