"""cnnImpute (Zhang et al., Sci. Rep. 2024): a 1-D CNN predicts likely dropouts of each
target gene from the genes most correlated with it.

Steps (paper, Methods; ``specs/cnnimpute.md``):

1. Dropout probabilities: Gamma–Normal mixture per cluster (scImpute variant), computed by
   the pipeline (``dropout_model = "gamma_normal"``) on clusters from 3-D t-SNE + density
   peaks + k-means (``preclustering = "tsne_density_peaks"``) or the user's labels. An
   entry with probability > T is *missing*; only zeros can be missing.
2. Gene selection (:mod:`scfill.methods.cnnimpute.coexpression`): targets, input pool, top-5
   correlated inputs per target, subsets of N targets.
3. One :class:`~scfill.methods.cnnimpute.module.CoexpressionCNN` per subset, trained on the
   work space with the MSE over observed target entries (missing entries and padding
   masked), 90/10 random split of cells, Adam, early stopping with the best weights kept.
4. Missing entries take the prediction (``combine_rule = "dropout"``, threshold T); every
   other entry keeps its observed value.

Work space: ln(CPM + 1) (paper), or ln(count + 1) without library normalisation
(``space="log1p_counts"``, the authors' code). Predictions go back to counts and then to the
common output space ``ln(1 + count · median / library size)``.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from scfill._logging import logger, progress_enabled
from scfill.errors import InputError
from scfill.methods.base import Method, PreparedData, register
from scfill.methods.cnnimpute.coexpression import (
    PAD,
    SubsetLayout,
    split_size,
    subset_layouts,
    target_and_pool,
)
from scfill.methods.cnnimpute.loader import StepsLoader
from scfill.methods.cnnimpute.module import (
    HEADS,
    MIN_INPUTS,
    CoexpressionCNN,
    GroupedCoexpressionCNN,
)
from scfill.methods.cnnimpute.plan import (
    CnnImputePlan,
    GroupedCnnImputePlan,
    GroupedEarlyStopping,
)
from scfill.methods.profiles import PRECISIONS, resolve_precision, resolve_profile
from scfill.nn import EarlyStopping, Phase, RowDataset, RowLoader, Trainer, predict_blocks
from scfill.preprocess import LogNormalizer
from scfill.utils import check_choice, check_number

#: Work spaces: ln(CPM + 1) (paper) and ln(count + 1) (authors' code).
SPACES = ("cpm", "log1p_counts")
#: CPM scale (paper: "each library contained a total of 10^6 reads").
CPM = 1e6
#: Fewest cells a model is trained on; fewer cannot be split 90/10 into useful parts (ours).
MIN_TRAIN_CELLS = 10
#: Rows per forward pass when predicting and validating (memory only, not a model choice).
EVAL_BATCH = 1024
#: Training schedules. ``paper``: Methods exactly (Adam 1e-4, batch 32, <= 150 epochs,
#: early stop on the validation loss with patience 5, float32, one model after another).
#: ``fast``: 4 × the batch with 4 × the learning rate (linear scaling), patience 2 with a
#: minimum decrease of 0.01 (ln-space MSE; the validation loss starts near 3), epochs of at
#: least 32 steps (a set of fewer than ~4,600 training cells passes over them several
#: times an epoch, so two epochs of patience are not a few dozen steps), and bfloat16
#: autocast of the dense layers where the device multiplies it natively
#: (:func:`~scfill.methods.profiles.bfloat16_native`; the convolutional part stays float32:
#: bfloat16 over the whole network cost accuracy, see :class:`~scfill.methods.cnnimpute.plan.
#: CnnImputePlan`). Its accuracy beside the paper's: ``benchmarks/results/
#: cnnimpute_profiles.md`` (1,000 cells) and ``profiles.md`` (500 cells).
#: Training the subsets as one grouped network (``batch_subsets=True``) is not in either
#: profile: on our CPU a step of 4 grouped subsets took 2.3 s, of the 4 networks one after
#: another 1.2 s (grouped convolutions and the 4× wider pooling are slower, and the dense
#: layers' matrix products are a small part of the step); ``benchmarks/gpu.sh`` times it on
#: a GPU.
PROFILES = {
    "paper": {"learning_rate": 1e-4, "batch_size": 32, "epochs": 150, "patience": 5,
              "min_delta": 0.0, "precision": "float32", "batch_subsets": False,
              "epoch_steps": 1},
    "fast": {"learning_rate": 4e-4, "batch_size": 128, "epochs": 150, "patience": 2,
             "min_delta": 0.01, "precision": "auto", "batch_subsets": False,
             "epoch_steps": 32},
}
#: Subset networks trained together at most (memory: a batch holds this many subsets'
#: inputs and activations, ~40 MB per subset at batch 128).
GROUP_SUBSETS = 8


@register
class CnnImpute(Method):
    """cnnImpute: a 1-D CNN on co-expressed genes imputes zeros with dropout probability > T.

    Parameters
    ----------
    profile
        ``"fast"`` (default) or ``"paper"``: the training schedule (:data:`PROFILES`);
        ``learning_rate``, ``batch_size``, ``epochs``, ``patience``, ``min_delta``,
        ``precision``, ``batch_subsets`` and ``epoch_steps`` override it.
    threshold
        T: an entry with dropout probability above it is missing (paper: 0.5).
    pool_fraction
        P: input genes are missing in at most this fraction of cells (paper: 50 %).
    inputs_per_target
        Most correlated pool genes per target (paper: 5).
    subset_size
        N: target genes per model (paper: 512); the input length is
        ``subset_size · inputs_per_target`` (paper: 2560).
    head
        ``"flatten"`` (paper) or ``"gap"``: the authors' code's global average pool. Under
        the paper's masking protocol (14 datasets × 5 seeds,
        ``benchmarks/results/cnnimpute.md``) gap's MSE was higher on every dataset (median
        1.9 × flatten's) at 0.37 × the time, so the paper's head is the default.
    space
        ``"cpm"``: ln(CPM + 1) (paper); ``"log1p_counts"``: ln(count + 1) (authors' code).
    per_cluster
        Train separate models within each cell group (the authors' code trains per cluster;
        the paper trains one model per subset on all cells, the default).
    dropout
        Dropout rate before the dense layer (paper: 0.3).
    learning_rate
        Adam's learning rate (None: the profile's; paper: 1e-4).
    batch_size
        Cells per step (None: the profile's; paper: 32).
    epochs
        Maximum epochs per model (None: the profile's; paper: 150).
    patience
        Epochs without a lower validation loss before stopping; the best weights are
        restored (None: the profile's; paper: 5).
    min_delta
        Smallest decrease of the validation loss that counts (None: the profile's; paper:
        0).
    precision
        ``"float32"``, ``"bfloat16"`` (autocast of the dense layers; the convolutional part
        and the loss stay float32) or ``"auto"`` (bfloat16 where the device has it in
        hardware) (None: the profile's).
    batch_subsets
        Train up to :data:`GROUP_SUBSETS` subset networks together as one grouped network
        (one 90/10 split and batch order for the group instead of one per subset) instead
        of one after another (None: the profile's; paper: False).
    epoch_steps
        Fewest optimiser steps an epoch holds: a dataset with fewer steps a pass over its
        training cells passes over them several times an epoch
        (:class:`~scfill.methods.cnnimpute.loader.StepsLoader`), so that early stopping's
        patience means about the same training at every size (None: the profile's;
        paper: 1, one pass an epoch).
    validation_fraction
        Cells held out for early stopping (paper: 10 %).

    Notes
    -----
    Choices the paper leaves open, and what we do:

    - Duplicate inputs (a gene among the top 5 of several targets) are removed keeping the
      first place; the input length stays ``subset_size · inputs_per_target`` by zero
      padding at the end, the paper's own padding for inputs (the authors' code keeps the
      duplicates).
    - cnnImpute is transductive (the paper trains on the data it imputes): :meth:`fit`
      predicts the missing entries right after training each subset model and keeps those
      predictions, not the weights (one 10M-parameter model per 512 targets).
    - When all targets fit in one subset (fewer than ~N genes), they are split in two
      halves: with one subset every target is excluded from the inputs and a small panel
      is left with none (measured: 0 inputs for all 173 targets of pbmc68k; see
      :func:`~scfill.methods.cnnimpute.coexpression.split_size`).
    - Training steps on a single cell are skipped (BatchNorm needs two samples); each epoch
      reshuffles, so no cell is left out for good.
    - Each subset's network computes its convolutional part on the real inputs only
      (``CoexpressionCNN(n_real=...)``, :mod:`~scfill.methods.cnnimpute.prefix`): after
      duplicates are removed a subset has ~325–355 real inputs of its 2,560 slots (5,000 ×
      2,000 simulation) and every activation over the zero padding is a per-channel
      constant. Same network, outputs and gradients up to float rounding
      (``tests/test_cnnimpute_prefix.py``); a bfloat16 step at batch 128 takes 0.53 × the
      plain one's time on one CPU thread (``benchmarks/results/cnnimpute_prefix.md``).
    - Adam runs fused (the same update in one kernel): a training step of the paper's
      network (2560 inputs, batch 32, one CPU thread) takes 76 ms instead of 128 ms, the
      optimiser's part 8 ms instead of 55 ms (``benchmarks/results/cnnimpute_step.md``).
    """

    name = "cnnimpute"
    description = "cnnImpute: 1-D CNN on co-expressed genes imputes likely dropouts."
    dropout_model = "gamma_normal"
    combine_rule = "dropout"
    preclustering = "tsne_density_peaks"
    min_cells = MIN_TRAIN_CELLS
    transductive = True

    def __init__(
        self,
        profile: str = "fast",
        threshold: float = 0.5,
        pool_fraction: float = 0.5,
        inputs_per_target: int = 5,
        subset_size: int = 512,
        head: str = "flatten",
        space: str = "cpm",
        per_cluster: bool = False,
        dropout: float = 0.3,
        learning_rate: float | None = None,
        batch_size: int | None = None,
        epochs: int | None = None,
        patience: int | None = None,
        min_delta: float | None = None,
        precision: str | None = None,
        batch_subsets: bool | None = None,
        epoch_steps: int | None = None,
        validation_fraction: float = 0.1,
    ) -> None:
        self.profile = profile
        self.threshold = threshold
        self.pool_fraction = pool_fraction
        self.inputs_per_target = inputs_per_target
        self.subset_size = subset_size
        self.head = head
        self.space = space
        self.per_cluster = per_cluster
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.min_delta = min_delta
        self.precision = precision
        self.batch_subsets = batch_subsets
        self.epoch_steps = epoch_steps
        self.validation_fraction = validation_fraction
        self.info_ = {}

    def check_params(self) -> None:
        """Raise :class:`InputError` for a parameter out of range or a network too short."""
        name = self.name
        check_choice("profile", self.profile, PROFILES, method=name)
        settings = self.settings()[0]
        check_number("threshold", self.threshold, low=0, high=1, method=name)
        check_number("pool_fraction", self.pool_fraction, low=0, high=1, method=name)
        check_number("inputs_per_target", self.inputs_per_target, integer=True, low=1,
                     method=name)
        check_number("subset_size", self.subset_size, integer=True, low=1, method=name)
        check_choice("head", self.head, HEADS, method=name)
        check_choice("space", self.space, SPACES, method=name)
        check_choice("per_cluster", self.per_cluster, (True, False), method=name)
        check_number("dropout", self.dropout, low=0, high=1, method=name)
        if self.dropout == 1:
            raise InputError(f"{name}: parameter dropout=1 would drop every feature.",
                             fix="use a value >= 0 and < 1 (paper: 0.3).")
        check_number("learning_rate", settings["learning_rate"], low=0, low_open=True,
                     method=name)
        check_number("batch_size", settings["batch_size"], integer=True, low=2, method=name)
        check_number("epochs", settings["epochs"], integer=True, low=1, method=name)
        check_number("patience", settings["patience"], integer=True, low=1, method=name)
        check_number("min_delta", settings["min_delta"], low=0, method=name)
        check_choice("precision", settings["precision"], PRECISIONS, method=name)
        check_choice("batch_subsets", settings["batch_subsets"], (True, False), method=name)
        check_number("epoch_steps", settings["epoch_steps"], integer=True, low=1, method=name)
        check_number("validation_fraction", self.validation_fraction, low=0, high=0.5,
                     low_open=True, method=name)
        n_inputs = self.subset_size * self.inputs_per_target
        if n_inputs < MIN_INPUTS:
            raise InputError(
                f"{name}: subset_size × inputs_per_target = {n_inputs} inputs is too short "
                "for two convolutions and two poolings.",
                fix=f"use subset_size × inputs_per_target >= {MIN_INPUTS} (paper: 512 × 5).")

    def settings(self) -> tuple[dict, dict]:
        """The schedule this model trains with (the profile's, overridden by parameters),
        and where each setting came from (``"profile"`` or ``"user"``)."""
        return resolve_profile(PROFILES, self.profile, {
            key: getattr(self, key) for key in PROFILES[self.profile]})

    def dropout_threshold(self) -> float:
        """T: zeros with a dropout probability above it are imputed."""
        return float(self.threshold)

    # -- fit ---------------------------------------------------------------------------

    def fit(self, data: PreparedData) -> CnnImpute:
        """Train one model per target subset (and cluster) and predict the missing entries.

        Stores ``prediction_`` (cells × genes CSR, work space, values at missing entries
        only), ``work_normalizer_`` and ``info_`` (genes selected, epochs, losses).
        """
        self.check_params()
        if data.dropout is None:
            raise InputError("cnnimpute needs dropout probabilities (data.dropout is None).",
                             fix="prepare the data with scfill.prepare(adata, 'cnnimpute'), "
                             "which fits the dropout model.")
        if self.per_cluster and data.labels is None:
            raise InputError("cnnimpute: per_cluster=True needs cell labels.",
                             fix="give labels_key, or leave per_cluster=False.")
        self.work_normalizer_, work_lib = self._work_space(data)
        values = self.work_normalizer_.transform(data.counts, work_lib)
        missing = self._missing(data)
        if not missing.nnz:
            logger.warning("cnnimpute: no zero has a dropout probability above threshold=%g, "
                           "so nothing will be imputed. With labels_key, check that each "
                           "group holds many cells; or lower threshold.", self.threshold)
        settings, source = self.settings()
        dtype = resolve_precision(settings["precision"], data.device)
        # the grouped network is the flatten head's; the authors' gap head trains alone
        grouped = settings["batch_subsets"] and self.head == "flatten"
        train = partial(self._train_grouped if grouped else self._train_each,
                        settings=settings, dtype=dtype)
        # predictions go straight into an array aligned with the missing entries (no
        # (row, gene, value) triplets of every missing entry, no COO to CSR conversion)
        predicted = np.zeros(missing.nnz, dtype=np.float32)
        slots = entry_slots(missing)
        summaries = []
        for group, cells in self._groups(data):
            if cells.size < MIN_TRAIN_CELLS:
                logger.warning("cnnimpute: group %s has %d cells (< %d); its entries are "
                               "not imputed", group, cells.size, MIN_TRAIN_CELLS)
                summaries.append({"group": group, "cells": int(cells.size), "skipped": True})
                continue
            summary = self._fit_group(data, *(_rows(m, cells) for m in (values, missing, slots,
                                                                        data.counts)),
                                      group, train, predicted)
            summaries.append({"group": group, "cells": int(cells.size), **summary})
        del slots
        self.prediction_ = sp.csr_matrix((predicted, missing.indices, missing.indptr),
                                         shape=data.counts.shape)
        self.info_ = {"profile": self.profile, "settings": settings,
                      "settings_source": source, "dtype": str(dtype).removeprefix("torch."),
                      "batched_subsets": grouped, "space": self.space, "head": self.head,
                      "groups": summaries, "n_missing": int(missing.nnz)}
        return self

    def _work_space(self, data: PreparedData) -> tuple[LogNormalizer, np.ndarray]:
        """The normaliser of the work space and the library sizes it scales by."""
        if self.space == "cpm":
            return LogNormalizer(target=CPM), data.library_size
        return LogNormalizer(target=1.0), np.ones(data.n_cells)

    def _missing(self, data: PreparedData) -> sp.csr_matrix:
        """Boolean CSR: probability > T at an observed zero."""
        return data.dropout.above(self.threshold)

    def _groups(self, data: PreparedData) -> list[tuple[str, np.ndarray]]:
        if not self.per_cluster:
            return [("all", np.arange(data.n_cells))]
        names = data.label_names or [str(i) for i in range(int(data.labels.max()) + 1)]
        return [(names[code], np.flatnonzero(data.labels == code))
                for code in np.unique(data.labels)]

    def _fit_group(self, data: PreparedData, values: sp.csr_matrix, missing: sp.csr_matrix,
                   slots: sp.csr_matrix, counts: sp.csr_matrix, group: str, train,
                   predicted: np.ndarray) -> dict:
        """Gene selection and the subset models of one group of cells.

        ``train(data, layouts, first, values, missing, slots, group, n_subsets)`` trains
        the subsets ``layouts`` (numbered from ``first``) and returns their predictions,
        as (slot, value) pairs (:func:`entry_slots`), and summaries. The predictions are
        written into ``predicted`` at their slots; returns a summary for ``info_``.
        """
        expressed = counts.getnnz(axis=0) > 0
        targets, pool = target_and_pool(missing, expressed, self.pool_fraction)
        size = split_size(targets.size, self.subset_size,
                          math.ceil(MIN_INPUTS / self.inputs_per_target))
        n_subsets = math.ceil(targets.size / size)
        logger.info("cnnimpute [%s]: %d target genes in %d subsets, %d pool genes", group,
                    targets.size, n_subsets, pool.size)
        if targets.size and not pool.size:
            logger.warning("cnnimpute [%s]: no gene is missing in <= %g of cells, so the "
                           "models have no inputs; raise pool_fraction", group,
                           self.pool_fraction)
        layouts = list(subset_layouts(values, targets, pool, subset_size=size,
                                      inputs_per_target=self.inputs_per_target))
        chunk = GROUP_SUBSETS if train.func == self._train_grouped else 1
        models = []
        bar = tqdm(total=n_subsets, desc=f"cnnimpute [{group}]", unit="subset",
                   disable=not progress_enabled())
        for first in range(0, len(layouts), chunk):
            part = layouts[first:first + chunk]
            found, summaries = train(data, part, first, values, missing, slots, group,
                                     n_subsets)
            for where, value in found:
                predicted[where - 1] = value
            models += [{"targets": layout.n_targets,
                        "unique_inputs": layout.n_inputs,
                        **summary} for layout, summary in zip(part, summaries, strict=True)]
            bar.update(len(part))
        bar.close()
        return {"targets": int(targets.size), "pool": int(pool.size), "subset_size": size,
                "models": models}

    def _train_each(self, data: PreparedData, layouts: list[SubsetLayout], first: int,
                    values: sp.csr_matrix, missing: sp.csr_matrix, slots: sp.csr_matrix,
                    group: str, n_subsets: int, *, settings: dict, dtype: torch.dtype):
        """One network per subset, trained alone (paper); predictions and summaries."""
        found, summaries = [], []
        for index, layout in enumerate(layouts, start=first):
            net, history = self._train_subset(
                data, layout, values, missing, _stream(group, index), settings, dtype,
                description=f"cnnimpute [{group}] subset {index + 1}/{n_subsets}")
            found.append(self._predict_missing(net, layout, values, slots, data.device))
            summaries.append({"epochs": history.epochs, "best_epoch": history.best_epoch,
                              "best_val_loss": min(history["val_loss"], default=None)})
        return found, summaries

    def _train_subset(self, data: PreparedData, layout: SubsetLayout, values: sp.csr_matrix,
                      missing: sp.csr_matrix, stream: int, settings: dict,
                      dtype: torch.dtype, description: str):
        """Train the subset's network on a 90/10 split of the cells; best weights kept."""
        rng = data.rng(stream)
        torch.manual_seed(int(rng.integers(2**62)))
        x, y, miss = subset_matrices(layout, values, missing)
        net = CoexpressionCNN(layout.inputs.size, layout.targets.size, head=self.head,
                              dropout=self.dropout, n_real=layout.n_inputs).to(data.device)
        rows = subset_rows(x, y, miss, layout.targets.size, data.device)
        val, train = self._split(rng, values.shape[0])
        phase = Phase(
            "train", CnnImputePlan(net, lr=settings["learning_rate"], dtype=dtype),
            StepsLoader(rows, settings["batch_size"], shuffle=True, rng=rng, rows=train,
                        min_batch=2, min_steps=settings["epoch_steps"]),
            settings["epochs"], val_data=RowLoader(rows, EVAL_BATCH, rows=val),
            early_stopping=EarlyStopping("val_loss", settings["patience"],
                                         min_delta=settings["min_delta"]))
        history = Trainer(device=data.device, description=description).fit([phase])["train"]
        return net, history

    def _split(self, rng: np.random.Generator, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
        """Validation and training cells: a random ``validation_fraction`` of them."""
        order = rng.permutation(n_cells)
        n_val = max(1, round(self.validation_fraction * order.size))
        return order[:n_val], order[n_val:]

    def _train_grouped(self, data: PreparedData, layouts: list[SubsetLayout], first: int,
                       values: sp.csr_matrix, missing: sp.csr_matrix, slots: sp.csr_matrix,
                       group: str, n_subsets: int, *, settings: dict, dtype: torch.dtype):
        """The subsets' networks as one grouped network on one split; each network starts
        from the weights it would have alone and keeps its own best epoch."""
        nets = []
        for index in range(first, first + len(layouts)):
            torch.manual_seed(int(data.rng(_stream(group, index)).integers(2**62)))
            nets.append(CoexpressionCNN(layouts[0].inputs.size, layouts[0].targets.size,
                                        head=self.head, dropout=self.dropout))
        net = GroupedCoexpressionCNN(nets).to(data.device)
        rng = data.rng(_stream(group, f"group{first}"))
        matrices = [subset_matrices(layout, values, missing) for layout in layouts]
        rows = grouped_rows(matrices, layouts[0].targets.size, data.device)
        val, train = self._split(rng, values.shape[0])
        stopping = GroupedEarlyStopping(len(layouts), settings["patience"],
                                        min_delta=settings["min_delta"])
        phase = Phase(
            "train", GroupedCnnImputePlan(net, lr=settings["learning_rate"], dtype=dtype),
            StepsLoader(rows, settings["batch_size"], shuffle=True, rng=rng, rows=train,
                        min_batch=2, min_steps=settings["epoch_steps"]),
            settings["epochs"], val_data=RowLoader(rows, EVAL_BATCH, rows=val),
            early_stopping=stopping)
        last = first + len(layouts)
        history = Trainer(device=data.device,
                          description=f"cnnimpute [{group}] subsets {first + 1}-{last} of "
                          f"{n_subsets}").fit([phase])["train"]
        net.eval()
        inputs = RowDataset({f"x{g}": m[0] for g, m in enumerate(matrices)},
                            transform=_stack_inputs, device=data.device, cache_bytes=0)
        found = predict_grouped(net, inputs, [target_slots(layout, slots) for layout in layouts])
        curves = [stopping.losses({k: v[e] for k, v in history.losses.items()})
                  for e in range(history.epochs)]
        summaries = [{"epochs": history.epochs, "best_epoch": stopping.best_epochs[g],
                      "best_val_loss": min(c[g] for c in curves)}
                     for g in range(len(layouts))]
        return found, summaries

    @staticmethod
    def _predict_missing(net: CoexpressionCNN, layout: SubsetLayout, values: sp.csr_matrix,
                         slots: sp.csr_matrix, device: torch.device):
        """Predictions at the subset's missing entries: (slot, value) arrays (slots as in
        :func:`entry_slots`), one block of cells at a time."""
        inputs = RowDataset({"x": subset_inputs(layout, values)}, device=device,
                            cache_bytes=0)
        where = target_slots(layout, slots)
        net.eval()
        n_real = layout.n_targets
        found = []
        for block, pred in predict_blocks(lambda batch: net(batch["x"])[:, :n_real], inputs,
                                          block_rows=EVAL_BATCH):
            coo = where[block].tocoo()
            found.append((coo.data, pred[coo.row, coo.col]))
        return tuple(np.concatenate(parts) for parts in zip(*found, strict=True))

    # -- reconstruct -------------------------------------------------------------------

    def reconstruct(self, data: PreparedData) -> sp.csr_matrix:
        """The predictions at the missing entries, in the common space (CSR, nothing stored
        elsewhere; the ``"dropout"`` rule keeps every other entry as observed)."""
        _, work_lib = self._work_space(data)
        counts = self.work_normalizer_.inverse(self.prediction_, work_lib)
        return data.normalizer.transform(counts, data.library_size)

    def _get_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        prediction = self.prediction_
        tensors = {"prediction.data": torch.from_numpy(prediction.data),
                   "prediction.indices": torch.from_numpy(prediction.indices.astype(np.int64)),
                   "prediction.indptr": torch.from_numpy(prediction.indptr.astype(np.int64))}
        return tensors, {"shape": list(prediction.shape),
                         "work_normalizer": self.work_normalizer_.to_dict()}

    def _set_state(self, tensors: dict[str, torch.Tensor], extra: dict) -> None:
        """Restore the stored predictions and the work space."""
        self.prediction_ = sp.csr_matrix(
            (tensors["prediction.data"].numpy(), tensors["prediction.indices"].numpy(),
             tensors["prediction.indptr"].numpy()), shape=tuple(extra["shape"]))
        self.work_normalizer_ = LogNormalizer(**extra["work_normalizer"])


def subset_inputs(layout: SubsetLayout, values: sp.csr_matrix) -> sp.csr_matrix:
    """The subset's inputs, zero-padded to the layout's length (CSR)."""
    genes = layout.inputs[layout.inputs != PAD]
    pad = sp.csr_matrix((values.shape[0], layout.inputs.size - genes.size), dtype=np.float32)
    return sp.hstack([values[:, genes], pad], format="csr", dtype=np.float32)


def subset_matrices(layout: SubsetLayout, values: sp.csr_matrix, missing: sp.csr_matrix):
    """Inputs (zero-padded to the layout's length), targets and their missing mask (CSR)."""
    real = layout.targets[layout.targets != PAD]
    return subset_inputs(layout, values), values[:, real], missing[:, real]


def entry_slots(missing: sp.csr_matrix) -> sp.csr_matrix:
    """``missing``'s structure with 1 + each entry's place in its data array as the value
    (1-based, so no slot is a stored zero that a slicing could drop).

    A subset's predictions at its missing entries are the slots of its target columns, so
    they land in one array aligned with ``missing`` (the prediction's CSR shares its
    indices). Integer values (int32 while they fit).
    """
    dtype = np.int32 if missing.nnz < np.iinfo(np.int32).max else np.int64
    return sp.csr_matrix((np.arange(1, missing.nnz + 1, dtype=dtype), missing.indices,
                          missing.indptr), shape=missing.shape)


def target_slots(layout: SubsetLayout, slots: sp.csr_matrix) -> sp.csr_matrix:
    """The slots (:func:`entry_slots`) of the subset's real targets (cells × targets)."""
    return slots[:, layout.targets[layout.targets != PAD]]


def _rows(matrix: sp.csr_matrix, cells: np.ndarray) -> sp.csr_matrix:
    """``matrix[cells]``; the matrix itself when ``cells`` are all its rows in order (the
    default single group: no copy)."""
    if cells.size == matrix.shape[0]:
        return matrix
    return matrix[cells]


def subset_rows(x: sp.csr_matrix, y: sp.csr_matrix, missing: sp.csr_matrix,
                n_outputs: int, device: torch.device) -> RowDataset:
    """The subset's cells as batches of inputs ``x``, targets ``y`` padded to ``n_outputs``,
    and the loss mask ``observed`` (see :func:`pad_targets`)."""
    return RowDataset({"x": x, "y": y, "missing": missing},
                      transform=partial(pad_targets, n_outputs=n_outputs), device=device,
                      cache_bytes=0)


def pad_targets(batch: dict[str, torch.Tensor], *, n_outputs: int) -> dict[str, torch.Tensor]:
    """Targets padded to ``n_outputs`` and the loss mask.

    The mask is True at observed target entries only: missing entries and padded targets
    (paper: padded with −1 and masked) never enter the loss.
    """
    yb, observed = batch["y"], batch["missing"] == 0
    n_pad = n_outputs - yb.shape[1]
    return {"x": batch["x"],
            "y": torch.nn.functional.pad(yb, (0, n_pad), value=float(PAD)),
            "observed": torch.nn.functional.pad(observed, (0, n_pad), value=False)}


def grouped_rows(matrices: list[tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]],
                 n_outputs: int, device: torch.device) -> RowDataset:
    """A group's cells as batches of ``x`` (cells × subsets × inputs), ``y`` and
    ``observed`` (cells × subsets × outputs); ``matrices`` are each subset's
    :func:`subset_matrices`."""
    fields = {}
    for g, (x, y, miss) in enumerate(matrices):
        fields |= {f"x{g}": x, f"y{g}": y, f"missing{g}": miss}
    return RowDataset(fields, transform=partial(_stack_targets, n_groups=len(matrices),
                                                n_outputs=n_outputs),
                      device=device, cache_bytes=0)


def _stack_targets(batch: dict[str, torch.Tensor], *, n_groups: int, n_outputs: int
                   ) -> dict[str, torch.Tensor]:
    padded = [pad_targets({"x": batch[f"x{g}"], "y": batch[f"y{g}"],
                           "missing": batch[f"missing{g}"]}, n_outputs=n_outputs)
              for g in range(n_groups)]
    return {key: torch.stack([p[key] for p in padded], dim=1) for key in ("x", "y", "observed")}


def _stack_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {"x": torch.stack([batch[f"x{g}"] for g in range(len(batch))], dim=1)}


def predict_grouped(net: GroupedCoexpressionCNN, inputs: RowDataset,
                    slots: list[sp.csr_matrix]) -> list[tuple]:
    """Each subset's (slot, value) predictions at its missing entries (``slots``: each
    subset's :func:`target_slots`), one block of cells at a time (a block's predictions of
    every subset, never all cells')."""
    found: list[list[tuple]] = [[] for _ in slots]
    for block, pred in predict_blocks(lambda batch: net(batch["x"]), inputs,
                                      block_rows=EVAL_BATCH):
        for g, where in enumerate(slots):
            coo = where[block].tocoo()
            found[g].append((coo.data, pred[coo.row, g, coo.col]))
    return [tuple(np.concatenate(parts) for parts in zip(*f, strict=True)) for f in found]


def _stream(group: str, index: int | str) -> int:
    """A random stream per (group, subset), stable across runs (no Python ``hash``)."""
    return int.from_bytes(f"{group}/{index}".encode(), "little") % (2**31) + 1
