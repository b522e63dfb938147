"""Parameters of the simulator: Splatter's names in snake case, their defaults and checks."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from scfill.errors import InputError
from scfill.utils import check_choice, check_number

METHODS = ("single", "groups", "paths")
DROPOUT_TYPES = ("none", "experiment", "batch", "group", "cell")
#: Tolerance on ``sum(group_prob) == 1``.
PROB_SUM_TOL = 1e-6

PerUnit = float | tuple[float, ...]
#: Fields that are always tuples (a single value is wrapped).
TUPLE_FIELDS = ("batch_cells", "group_prob", "path_from")


@dataclass(frozen=True)
class SplatParams:
    """Parameters of Splatter's ``splatSimulate``, in snake case, with Splatter's defaults.

    Parameters that Splatter allows per group (``de_*``, ``path_n_steps``, ``path_skew``),
    per batch (``batch_fac_*``) or per dropout unit (``dropout_mid``, ``dropout_shape``) take
    one value for all or a tuple with one value per unit.

    Attributes
    ----------
    n_genes
        Number of genes (Splatter ``nGenes``, 10000).
    batch_cells
        Cells per batch, consecutive (``batchCells``, 100); ``n_cells`` is their sum.
    method
        ``"single"``, ``"groups"`` or ``"paths"``; None (default) picks ``"groups"`` when
        ``group_prob`` has several groups, else ``"single"`` (Splatter's default is
        ``"single"``, and ``"groups"`` with one group falls back to it).
    group_prob
        Probability of each group or path (``group.prob``); must sum to 1.
    mean_shape, mean_rate
        Gamma distribution of gene base means (0.6, 0.3).
    lib_loc, lib_scale, lib_norm
        Log-normal (or, with ``lib_norm``, normal) library sizes (11, 0.2, False).
    out_prob, out_fac_loc, out_fac_scale
        Expression outliers (0.05, 4, 0.5).
    de_prob, de_down_prob, de_fac_loc, de_fac_scale
        Differential expression per group or path (0.1, 0.5, 0.1, 0.4).
    bcv_common, bcv_df
        Biological coefficient of variation (0.1, 60; ``inf`` skips the χ² factor).
    batch_fac_loc, batch_fac_scale, batch_rm_effect
        Batch effects (0.1, 0.1, False).
    dropout_type
        ``"none"``, ``"experiment"``, ``"batch"``, ``"group"`` or ``"cell"``.
    dropout_mid, dropout_shape
        Logistic dropout midpoint (on ln cell mean) and shape (0, -1); one value, or one per
        batch, group or cell as ``dropout_type`` says.
    path_from
        For each path, the path it starts from (0: the origin) (``path.from``, 0).
    path_n_steps, path_skew, path_nonlinear_prob, path_sigma_fac
        Steps per path (100), skew of the step distribution (0.5: uniform; 0: cells
        towards the end), share of non-linear genes (0.1), bridge noise (0.8).
    """

    n_genes: int = 10000
    batch_cells: tuple[int, ...] = (100,)
    method: str | None = None
    group_prob: tuple[float, ...] = (1.0,)
    mean_shape: float = 0.6
    mean_rate: float = 0.3
    lib_loc: float = 11.0
    lib_scale: float = 0.2
    lib_norm: bool = False
    out_prob: float = 0.05
    out_fac_loc: float = 4.0
    out_fac_scale: float = 0.5
    de_prob: PerUnit = 0.1
    de_down_prob: PerUnit = 0.5
    de_fac_loc: PerUnit = 0.1
    de_fac_scale: PerUnit = 0.4
    bcv_common: float = 0.1
    bcv_df: float = 60.0
    batch_fac_loc: PerUnit = 0.1
    batch_fac_scale: PerUnit = 0.1
    batch_rm_effect: bool = False
    dropout_type: str = "none"
    dropout_mid: PerUnit = 0.0
    dropout_shape: PerUnit = -1.0
    path_from: tuple[int, ...] = (0,)
    path_n_steps: int | tuple[int, ...] = 100
    path_skew: PerUnit = 0.5
    path_nonlinear_prob: float = 0.1
    path_sigma_fac: float = 0.8

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = _plain(f.name, getattr(self, f.name))
            if f.name in TUPLE_FIELDS and not isinstance(value, tuple):
                value = (value,)
            object.__setattr__(self, f.name, value)
        self._check()

    @property
    def n_cells(self) -> int:
        """Total number of cells (sum of ``batch_cells``)."""
        return int(sum(self.batch_cells))

    @property
    def n_batches(self) -> int:
        """Number of batches."""
        return len(self.batch_cells)

    @property
    def n_groups(self) -> int:
        """Number of groups or paths."""
        return len(self.group_prob)

    @property
    def resolved_method(self) -> str:
        """The method run: ``method``, or the default chosen from ``group_prob``."""
        if self.method is None or (self.method == "groups" and self.n_groups == 1):
            return "groups" if self.n_groups > 1 else "single"
        return self.method

    @property
    def ndropout_units(self) -> int:
        """How many ``dropout_mid``/``dropout_shape`` values ``dropout_type`` asks for."""
        return dropout_units(self.dropout_type, self.n_groups, self.n_batches, self.n_cells)

    def to_dict(self) -> dict[str, Any]:
        """All parameters as plain JSON-able values (lists, numbers, strings, booleans)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        out["method"] = self.resolved_method
        return out

    def _check(self) -> None:
        where = "simulate"
        check_number("n_genes", self.n_genes, integer=True, low=1, method=where)
        if not self.batch_cells:
            raise InputError("batch_cells is empty.", fix="give at least one batch size.")
        for n in self.batch_cells:
            check_number("batch_cells", n, integer=True, low=1, method=where)
        if self.method is not None:
            check_choice("method", self.method, METHODS, method=where)
        check_choice("dropout_type", self.dropout_type, DROPOUT_TYPES, method=where)
        _check_probs("group_prob", self.group_prob)
        total = float(sum(self.group_prob))
        if abs(total - 1.0) > PROB_SUM_TOL:
            raise InputError(f"simulate: group_prob {list(self.group_prob)} sums to {total:.6g}, "
                             "not 1.", fix="give group probabilities that sum to 1, e.g. "
                             "0.5,0.3,0.2.")
        for name in ("mean_shape", "mean_rate"):
            check_number(name, getattr(self, name), low=0, low_open=True, method=where)
        for name in ("lib_scale", "out_fac_scale", "bcv_common", "path_sigma_fac"):
            check_number(name, getattr(self, name), low=0, method=where)
        for name in ("lib_loc", "out_fac_loc"):
            check_number(name, getattr(self, name), method=where)
        if self.lib_norm and self.lib_loc <= 0:
            raise InputError(f"simulate: lib_loc={self.lib_loc} with lib_norm=True gives no "
                             "positive library sizes.", fix="use lib_loc > 0.")
        check_number("bcv_df", self.bcv_df, low=0, low_open=True, method=where,
                     allow_inf=True)
        _check_probs("out_prob", self.out_prob)
        _check_probs("path_nonlinear_prob", self.path_nonlinear_prob)
        for name in ("lib_norm", "batch_rm_effect"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"simulate: parameter {name}={getattr(self, name)!r} must be "
                                 "True or False.", fix=f"pass {name} as a boolean.")
        groups = ("group", self.n_groups)
        for name, low, unit in (("de_prob", 0, groups), ("de_down_prob", 0, groups),
                                ("de_fac_loc", None, groups), ("de_fac_scale", 0, groups),
                                ("batch_fac_loc", None, ("batch", self.n_batches)),
                                ("batch_fac_scale", 0, ("batch", self.n_batches)),
                                ("path_skew", 0, groups)):
            values = per_unit(name, getattr(self, name), unit[1], unit[0])
            _check_range(name, values, low=low,
                         high=1 if name in ("de_prob", "de_down_prob", "path_skew") else None)
        steps = self.path_n_steps
        for n in steps if isinstance(steps, tuple) else (steps,):
            check_number("path_n_steps", n, integer=True, low=2, method=where)
        per_unit("path_n_steps", steps, self.n_groups, "path")
        if self.resolved_method == "paths":
            if len(self.path_from) != self.n_groups:
                raise InputError(f"simulate: path_from has {len(self.path_from)} values but "
                                 f"group_prob has {self.n_groups} paths.",
                                 fix="give one path_from value per path.")
            path_order(self.path_from)
        if self.dropout_type != "none":
            for name in ("dropout_mid", "dropout_shape"):
                count = np.size(getattr(self, name))
                units = self.ndropout_units
                if count not in (1, units):
                    unit = {"batch": "batches", "group": "groups", "cell": "cells"}.get(
                        self.dropout_type, "experiment")
                    raise InputError(
                        f"simulate: dropout_type={self.dropout_type!r} needs one {name} value "
                        f"or one per {self.dropout_type} ({units} {unit}), got {count}.",
                        fix=f"give one value, or {units} comma-separated values.")
                _check_range(name, per_unit(name, getattr(self, name), count, "value"),
                             low=None)


def _plain(name: str, value: Any) -> Any:
    """Lists and arrays to tuples, numpy scalars to Python ones (checked later)."""
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple | np.ndarray):
        return tuple(v.item() if isinstance(v, np.generic) else v for v in value)
    if not isinstance(value, int | float):
        raise InputError(f"simulate: parameter {name}={value!r} is not a number or a list of "
                         "numbers.", fix=f"pass {name} as a number or a list of numbers.")
    return value


def _check_probs(name: str, value: Any) -> None:
    values = value if isinstance(value, tuple) else (value,)
    if not values:
        raise InputError(f"simulate: {name} is empty.", fix=f"give at least one {name} value.")
    for v in values:
        check_number(name, v, low=0, high=1, method="simulate")


def _check_range(name: str, values: np.ndarray, *, low: float | None,
                 high: float | None = None) -> None:
    if not np.all(np.isfinite(values)):
        raise InputError(f"simulate: {name} has a non-finite value.", fix="give finite numbers.")
    if (low is not None and np.any(values < low)) or (high is not None and np.any(values > high)):
        bounds = " and ".join(b for b in (f">= {low}" if low is not None else "",
                                          f"<= {high}" if high is not None else "") if b)
        raise InputError(f"simulate: {name}={values.tolist()} is out of range.",
                         fix=f"use values {bounds}.")


def per_unit(name: str, value: PerUnit, n: int, unit: str) -> np.ndarray:
    """One float per unit (group, batch, ...): a scalar is repeated, a tuple must have ``n``.

    Raises
    ------
    InputError
        When a tuple has neither 1 nor ``n`` values.
    """
    try:
        values = np.atleast_1d(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError) as err:
        raise InputError(f"simulate: {name}={value!r} is not a number or a list of numbers.",
                         fix=f"pass {name} as a number or one number per {unit}.") from err
    if values.size == 1:
        return np.full(n, values[0])
    if values.size != n:
        raise InputError(f"simulate: {name} has {values.size} values but there are {n} "
                         f"{unit}(s).", fix=f"give one value, or one per {unit} ({n}).")
    return values


def dropout_units(dropout_type: str, n_groups: int, n_batches: int, n_cells: int) -> int:
    return {"batch": n_batches, "group": n_groups, "cell": n_cells}.get(dropout_type, 1)


def path_order(path_from: tuple[int, ...]) -> list[int]:
    """Paths (0-based) in an order where each path's origin comes first (``getPathOrder``).

    Raises
    ------
    InputError
        When a value is not 0..n_paths, a path starts from itself, or the paths form a cycle.
    """
    n = len(path_from)
    for i, origin in enumerate(path_from):
        if not isinstance(origin, int) or isinstance(origin, bool) or not 0 <= origin <= n:
            raise InputError(f"simulate: path_from[{i}]={origin!r} is not a path number "
                             f"0..{n}.", fix="give for each path 0 (the origin) or the number "
                             "of the path it starts from.")
        if origin == i + 1:
            raise InputError(f"simulate: path {i + 1} starts from itself (path_from).",
                             fix="start it from 0 or from another path.")
    done = {0}
    order: list[int] = []
    while len(order) < n:
        ready = [i for i in range(n) if i + 1 not in done and path_from[i] in done]
        if not ready:
            raise InputError(f"simulate: path_from={list(path_from)} has a cycle: some paths "
                             "never lead back to the origin.",
                             fix="make every path start from 0 or from an earlier path.")
        order.extend(ready)
        done.update(i + 1 for i in ready)
    return order
