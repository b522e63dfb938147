"""The training engine: phases, optimisers, checks, history, early stopping, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nn_toys import NoisyRegression, Regression, TinyGAN, loader, regression_data
from scfill.errors import TrainingError
from scfill.nn import EarlyStopping, Phase, RowLoader, Trainer, TrainingPlan


def _weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_phases_run_in_order_each_with_its_own_plan_and_optimisers():
    torch.manual_seed(0)
    first, second = Regression(), TinyGAN()
    before_first = _weights(first.module)
    history = Trainer(device="cpu").fit([Phase("warmup", first, loader(), 2),
                                         Phase("adversarial", second, loader(), 3)])
    assert first.seen == [("warmup", 0, ("opt",)), ("warmup", 1, ("opt",))]
    assert list(history.phases) == ["warmup", "adversarial"]
    assert history["warmup"].epochs == 2 and history["adversarial"].epochs == 3
    assert set(history["adversarial"].losses) == {"d_loss", "g_loss"}
    # the first plan's weights stopped changing when its phase ended
    after_first = _weights(first.module)
    assert any(not torch.equal(before_first[k], after_first[k]) for k in before_first)


def test_manual_optimisation_alternates_discriminator_then_generator():
    torch.manual_seed(0)
    gan = TinyGAN()
    d_before = _weights(gan.module["discriminator"])
    g_before = _weights(gan.module["generator"])
    Trainer(device="cpu").fit([Phase("gan", gan, loader(batch_size=32), 1)])
    assert gan.calls == ["discriminator", "generator"] * 2  # 64 rows / 32 = two steps
    for before, part in ((d_before, "discriminator"), (g_before, "generator")):
        after = _weights(gan.module[part])
        assert all(not torch.equal(before[k], after[k]) for k in before)


def test_automatic_plans_must_not_call_optimize_and_need_one_optimiser():
    class Calls(Regression):
        def training_step(self, batch, ctx):
            losses = super().training_step(batch, ctx)
            ctx.optimize("opt", losses["loss"])
            return losses

    with pytest.raises(TypeError, match="automatic_optimization = False"):
        Trainer(device="cpu").fit([Phase("p", Calls(), loader(), 1)])

    class Two(Regression):
        def configure_optimizers(self):
            return {"a": torch.optim.SGD(self.module.parameters(), lr=0.1),
                    "b": torch.optim.SGD(self.module.parameters(), lr=0.1)}

    with pytest.raises(ValueError, match="2 optimisers"):
        Trainer(device="cpu").fit([Phase("p", Two(), loader(), 1)])


class _NanAt(Regression):
    """Returns a named loss that becomes NaN at a given step."""

    def __init__(self, bad_step: int):
        super().__init__()
        self.bad_step, self.steps = bad_step, 0

    def training_step(self, batch, ctx):
        losses = super().training_step(batch, ctx)
        self.steps += 1
        if self.steps == self.bad_step:
            losses["mae"] = losses["mae"] * float("nan")
        return losses


def test_non_finite_loss_stops_at_once_naming_step_and_loss():
    plan = _NanAt(bad_step=6)  # 4 steps an epoch: epoch 2, step 6 of the phase
    with pytest.raises(TrainingError) as err:
        Trainer(device="cpu", description="toy").fit([Phase("fit", plan, loader(), 5)])
    message = str(err.value)
    assert "'mae'" in message and "step 6" in message and "epoch 2" in message
    assert "learning rate" in message and "[fit]" in message
    assert plan.steps == 6  # nothing ran after the bad step


def test_non_finite_loss_given_to_optimize_is_caught_before_the_update():
    class Exploding(TinyGAN):
        def training_step(self, batch, ctx):
            loss = self.module["generator"](batch["x"][:, :3]).sum() * float("inf")
            ctx.optimize("generator", loss)
            return {"g_loss": loss}

    plan = Exploding()
    before = _weights(plan.module)
    with pytest.raises(TrainingError, match=r"ctx.optimize for 'generator' became -?inf at step 1"):
        Trainer(device="cpu").fit([Phase("gan", plan, loader(), 1)])
    after = _weights(plan.module)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_non_finite_validation_metric_is_named():
    class BadValidation(Regression):
        def validation_step(self, batch, ctx):
            return {"val_loss": torch.tensor(float("nan"))}

    with pytest.raises(TrainingError, match="validation metric 'val_loss' became nan"):
        Trainer(device="cpu").fit([Phase("fit", BadValidation(), loader(), 2,
                                         val_data=loader())])


class _Scripted(Regression):
    """Validation metric scripted per epoch; remembers the weights at each epoch's end."""

    def __init__(self, values):
        super().__init__()
        self.values, self.snapshots = values, []

    def validation_step(self, batch, ctx):
        return {"val_loss": torch.tensor(self.values[ctx.epoch])}

    def on_epoch_end(self, ctx, metrics):
        self.snapshots.append(_weights(self.module))


def test_early_stopping_on_a_named_metric_restores_the_best_weights():
    plan = _Scripted([5.0, 3.0, 1.0, 2.0, 4.0, 3.0, 0.5, 0.1])
    history = Trainer(device="cpu").fit([Phase(
        "fit", plan, loader(), 8, val_data=RowLoader(regression_data(), 64),
        early_stopping=EarlyStopping("val_loss", patience=3))])["fit"]
    assert history.stopped_early and history.epochs == 6 and history.best_epoch == 2
    assert history["val_loss"] == [5.0, 3.0, 1.0, 2.0, 4.0, 3.0]
    best, now = plan.snapshots[2], _weights(plan.module)
    assert all(torch.equal(best[k], now[k]) for k in best)
    assert any(not torch.equal(plan.snapshots[-1][k], now[k]) for k in now)


def test_early_stopping_monitors_training_losses_and_max_mode():
    plan = _Scripted([0.0] * 10)
    stopper = EarlyStopping("mae", patience=1, mode="max")
    history = Trainer(device="cpu").fit([Phase("fit", plan, loader(), 10,
                                               early_stopping=stopper)])["fit"]
    mae = history["mae"]
    assert history.stopped_early and mae[-1] <= max(mae[:-1])
    with pytest.raises(KeyError, match="monitors 'nope'"):
        Trainer(device="cpu").fit([Phase("fit", Regression(), loader(), 2,
                                         early_stopping=EarlyStopping("nope", 1))])


def test_gradient_clipping_bounds_each_update():
    def first_update(clip):
        torch.manual_seed(0)
        plan = Regression(lr=1.0)
        plan.module[0].p = 0.0
        before = torch.cat([p.detach().clone().ravel() for p in plan.module.parameters()])
        Trainer(device="cpu", grad_clip=clip).fit(
            [Phase("p", plan, RowLoader(regression_data(), 64), 1)])
        after = torch.cat([p.detach().ravel() for p in plan.module.parameters()])
        return float((after - before).norm())

    assert first_update(1e-3) == pytest.approx(1e-3, rel=1e-4)  # SGD lr 1: step = gradient
    assert first_update(None) > 0.1


def test_history_holds_the_epoch_mean_of_every_named_loss():
    class Recording(Regression):
        def __init__(self):
            super().__init__()
            self.steps = []

        def training_step(self, batch, ctx):
            losses = super().training_step(batch, ctx)
            self.steps.append((ctx.epoch, {k: float(v.detach()) for k, v in losses.items()},
                               len(batch["x"])))
            return losses

        def batch_weight(self, batch):
            return len(batch["x"])

    plan = Recording()
    history = Trainer(device="cpu").fit([Phase("fit", plan, loader(batch_size=24), 3)])
    for epoch in range(3):
        rows = [(v, n) for e, v, n in plan.steps if e == epoch]
        assert [n for _, n in rows] == [24, 24, 16]
        for name in ("loss", "mae"):
            expected = sum(v[name] * n for v, n in rows) / 64
            assert history["fit"][name][epoch] == pytest.approx(expected, rel=1e-6)
    assert history.to_dict()["fit"]["losses"]["loss"] == history["fit"]["loss"]


def test_mixed_precision_is_off_on_the_cpu():
    def run(mixed):
        torch.manual_seed(0)
        plan = Regression()
        Trainer(device="cpu", mixed_precision=mixed).fit([Phase("p", plan, loader(), 2)])
        return _weights(plan.module)

    a, b = run(True), run(False)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_phase_and_plan_mistakes_are_reported():
    with pytest.raises(ValueError, match="unique"):
        Trainer(device="cpu").fit([Phase("a", Regression(), loader(), 1),
                                   Phase("a", Regression(), loader(), 1)])

    class NoValidation(TrainingPlan):
        pass

    with pytest.raises(ValueError, match="defines no validation_step"):
        Trainer(device="cpu").fit([Phase("a", NoValidation(torch.nn.Linear(1, 1)), loader(),
                                         1, val_data=loader())])

    class Clash(Regression):
        def validation_step(self, batch, ctx):
            return {"loss": F.mse_loss(self.module(batch["x"]), batch["y"])}

    with pytest.raises(ValueError, match="name validation metrics apart"):
        Trainer(device="cpu").fit([Phase("a", Clash(), loader(), 1, val_data=loader())])


# -- checkpoints and resume --------------------------------------------------------------


def _schedule(plans):
    first, second = plans
    return [Phase("warmup", first, loader(seed=3), 3),
            Phase("main", second, loader(seed=4), 4,
                  val_data=RowLoader(regression_data(), 32),
                  early_stopping=EarlyStopping("val_loss", patience=10))]


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("stop_at", [("warmup", 1), ("main", 0), ("main", 2)])
def test_interrupted_run_resumed_gives_the_uninterrupted_weights(tmp_path, stop_at):
    def fresh(seed):
        torch.manual_seed(seed)
        return Regression(adam=True), NoisyRegression()

    torch.manual_seed(0)
    plans = fresh(1)
    history = Trainer(device="cpu", seed=7).fit(_schedule(plans))
    expected = [_weights(p.module) for p in plans]

    class Stops(NoisyRegression):
        def on_epoch_end(self, ctx, metrics):
            if (ctx.phase, ctx.epoch) == stop_at:
                raise _Interrupt

    interrupted = list(fresh(1))
    if stop_at[0] == "warmup":
        interrupted[0].on_epoch_end = Stops.on_epoch_end.__get__(interrupted[0])
    else:
        interrupted[1].on_epoch_end = Stops.on_epoch_end.__get__(interrupted[1])
    with pytest.raises(_Interrupt):
        Trainer(device="cpu", seed=7, checkpoint_dir=tmp_path, checkpoint_every=1).fit(
            _schedule(interrupted))
    assert (tmp_path / "last.pt").is_file()

    resumed = fresh(99)  # another initialisation: the checkpoint must replace it
    torch.manual_seed(123)  # and another random state
    np.random.seed(123)  # noqa: NPY002
    again = Trainer(device="cpu", seed=7, checkpoint_dir=tmp_path, checkpoint_every=1,
                    resume_from=tmp_path).fit(_schedule(resumed))
    for want, plan in zip(expected, resumed, strict=True):
        got = _weights(plan.module)
        assert all(torch.equal(want[k], got[k]) for k in want)
    assert again.to_dict() == history.to_dict()


def test_resume_needs_an_existing_checkpoint(tmp_path):
    from scfill.errors import InputError

    with pytest.raises(InputError, match="no training checkpoint"):
        Trainer(device="cpu", resume_from=tmp_path).fit([Phase("p", Regression(), loader(), 1)])


def test_checkpoint_holds_no_pickled_objects(tmp_path):
    Trainer(device="cpu", checkpoint_dir=tmp_path).fit([Phase("p", NoisyRegression(),
                                                              loader(), 2)])
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["phase_index"] == 1 and state["epochs_done"] == 0


@pytest.mark.gpu
def test_mixed_precision_on_cuda_trains_checkpoints_its_scaler_and_resumes(tmp_path):
    def run(stop_at=None, **kw):
        torch.manual_seed(0)
        plan = Regression(adam=True)
        if stop_at is not None:
            def stop(ctx, metrics):
                if ctx.epoch == stop_at:
                    raise _Interrupt
            plan.on_epoch_end = stop
        history = Trainer(device="cuda", mixed_precision=True, seed=0, **kw).fit(
            [Phase("p", plan, loader(), 6)])
        return plan, history

    plan, history = run()
    assert next(plan.module.parameters()).device.type == "cuda"
    assert np.isfinite(history["p"]["loss"]).all()
    assert history["p"]["loss"][-1] < history["p"]["loss"][0]
    with pytest.raises(_Interrupt):
        run(stop_at=3, checkpoint_dir=tmp_path, checkpoint_every=1)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["epochs_done"] == 3 and "scale" in state["scaler"]
    _, again = run(checkpoint_dir=tmp_path, resume_from=tmp_path)
    assert again["p"].epochs == 6
    np.testing.assert_allclose(again["p"]["loss"], history["p"]["loss"], rtol=1e-3)


def test_methods_leave_backward_and_optimiser_steps_to_the_trainer():
    from pathlib import Path

    import scfill.methods

    root = Path(scfill.methods.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text()
        for call in (".backward(", ".zero_grad(", "optimizer.step(", "scaler.step("):
            assert call not in text, f"{path.relative_to(root)} calls {call} itself"
