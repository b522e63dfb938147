"""Small training plans and data for the engine tests (tests/test_trainer.py and the torchrun
script of tests/test_distributed.py)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from scfill.nn import RowDataset, RowLoader, TrainingPlan
from scfill.nn.losses import discriminator_loss, generator_loss

N_ROWS, N_IN = 64, 6


def regression_data(seed: int = 0) -> RowDataset:
    """``y = x·w + noise`` with a sparse ``x`` (half of its entries zero)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_ROWS, N_IN)).astype(np.float32)
    x[rng.random(x.shape) < 0.5] = 0
    y = x @ rng.normal(size=(N_IN, 2)).astype(np.float32) + 0.1 * rng.normal(size=(N_ROWS, 2))
    return RowDataset({"x": sp.csr_matrix(x), "y": y.astype(np.float32)})


def loader(batch_size: int = 16, seed: int = 1, **kw) -> RowLoader:
    """A shuffled loader over :func:`regression_data`."""
    return RowLoader(regression_data(), batch_size, shuffle=True, rng=seed, **kw)


class Regression(TrainingPlan):
    """One linear layer (dropout before it, so the torch RNG matters), SGD or Adam."""

    def __init__(self, module: nn.Module | None = None, lr: float = 0.05, adam: bool = False):
        super().__init__(module or nn.Sequential(nn.Dropout(0.2), nn.Linear(N_IN, 2)))
        self.lr, self.adam = lr, adam
        self.seen: list[tuple[str, int, tuple[str, ...]]] = []

    def configure_optimizers(self):
        cls = torch.optim.Adam if self.adam else torch.optim.SGD
        return {"opt": cls(self.module.parameters(), lr=self.lr)}

    def training_step(self, batch, ctx):
        pred = self.module(batch["x"])
        return {"loss": F.mse_loss(pred, batch["y"]),
                "mae": (pred - batch["y"]).abs().mean()}

    def validation_step(self, batch, ctx):
        return {"val_loss": F.mse_loss(self.module(batch["x"]), batch["y"])}

    def on_epoch_start(self, ctx):
        self.seen.append((ctx.phase, ctx.epoch, tuple(ctx.optimizers)))


class NoisyRegression(Regression):
    """Adds noise from the plan's own generator (checkpointed as extra state)."""

    def __init__(self, seed: int = 5, **kw):
        super().__init__(adam=True, **kw)
        self.generator = torch.Generator().manual_seed(seed)

    def training_step(self, batch, ctx):
        noise = 0.01 * torch.randn(batch["x"].shape, generator=self.generator)
        return {"loss": F.mse_loss(self.module(batch["x"] + noise), batch["y"])}

    def extra_state(self):
        return {"generator": self.generator.get_state()}

    def load_extra_state(self, state):
        self.generator.set_state(state["generator"])


class TinyGAN(TrainingPlan):
    """A generator maps noise to rows, a discriminator tells them from real rows; manual
    optimisation: the discriminator's update, then the generator's, every step."""

    automatic_optimization = False

    def __init__(self) -> None:
        module = nn.ModuleDict({"generator": nn.Linear(3, N_IN),
                                "discriminator": nn.Linear(N_IN, 1)})
        super().__init__(module)
        self.calls: list[str] = []

    def configure_optimizers(self):
        return {"discriminator": torch.optim.SGD(self.module["discriminator"].parameters(),
                                                 lr=0.05),
                "generator": torch.optim.SGD(self.module["generator"].parameters(), lr=0.05)}

    def training_step(self, batch, ctx):
        gen, disc = self.module["generator"], self.module["discriminator"]
        real = batch["x"]
        fake = gen(torch.ones(real.shape[0], 3, device=real.device))
        d_loss = discriminator_loss(disc(real), disc(fake.detach()))
        ctx.optimize("discriminator", d_loss)
        self.calls.append("discriminator")
        g_loss = generator_loss(disc(fake))
        ctx.optimize("generator", g_loss)
        self.calls.append("generator")
        return {"d_loss": d_loss, "g_loss": g_loss}


def train_both(batch_size: int, epochs: int = 4) -> dict:
    """A regression (automatic, DDP) and a GAN (manual) trained on the toy rows; their loss
    curves and final weights. Dropout is off so that one and two processes compare."""
    from scfill.nn import Phase, Trainer

    out = {}
    for name, plan in (("regression", Regression()), ("gan", TinyGAN())):
        torch.manual_seed(0)
        plan.module.apply(lambda m: m.reset_parameters() if hasattr(m, "reset_parameters")
                          else None)
        if name == "regression":
            plan.module[0].p = 0.0
        val = RowLoader(regression_data(), 16) if name == "regression" else None
        phase = Phase(name, plan, loader(batch_size), epochs, val_data=val)
        history = Trainer(device="cpu").fit([phase])
        out[name] = {"history": history.to_dict()[name]["losses"],
                     "weights": [p.detach().ravel().tolist() for p in plan.module.parameters()]}
    return out
