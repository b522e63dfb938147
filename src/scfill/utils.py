"""Small helpers every part of scfill uses, importing neither torch nor the methods.

- Checking and parsing method parameters (scikit-learn style: set in ``__init__``, checked
  at ``fit``).
- Importing an optional dependency with an install hint when it is missing.
- Plain values for JSON and ``uns``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import numbers
import os
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

import numpy as np

from scfill.errors import InputError, MissingDependency


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def requested_threads() -> int | None:
    """The positive thread count in ``OMP_NUM_THREADS``, or None when it is unset or bad."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def check_number(
    name: str, value: Any, *, integer: bool = False, low: float | None = None,
    high: float | None = None, low_open: bool = False, method: str = "",
    allow_inf: bool = False,
) -> None:
    """Raise :class:`InputError` unless ``value`` is a number in the given range.

    numpy scalars count as numbers (``np.int64(5)`` is an integer). NaN never passes;
    infinity only with ``allow_inf`` (for a parameter where it means "no limit").
    """
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, numbers.Integral if integer else numbers.Real)
    where = f"{method}: " if method else ""
    if isinstance(value, bool) or not ok_type:
        raise InputError(f"{where}parameter {name}={value!r} must be {kind}.",
                         fix=f"pass {name} as {kind}.")
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise InputError(f"{where}parameter {name}={value!r} is not a finite number.",
                         fix=f"pass {name} as a finite number.")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and value > high
    if too_low or too_high:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low}"
        hi = "" if high is None else f"<= {high}"
        bounds = " and ".join(b for b in (lo, hi) if b)
        raise InputError(f"{where}parameter {name}={value!r} is out of range.",
                         fix=f"use a value {bounds}.")


def check_choice(name: str, value: Any, choices: Iterable[Any], *, method: str = "") -> None:
    """Raise :class:`InputError` unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        where = f"{method}: " if method else ""
        raise InputError(f"{where}parameter {name}={value!r} is not allowed.",
                         fix=f"use one of {', '.join(map(repr, choices))}.")


def parse_param_strings(cls: type, pairs: Iterable[str]) -> dict[str, Any]:
    """Turn CLI ``key=value`` strings into typed keyword arguments of ``cls.__init__``.

    The type of each value follows the parameter's default (bool, int, float, str); an
    ``int`` default accepts ``"none"`` when the parameter may be None, and a None default
    takes ``true``/``false`` as a bool, else a number or the string.
    """
    signature = inspect.signature(cls.__init__)
    known = {n: p for n, p in signature.parameters.items() if n != "self"}
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise InputError(f"parameter {pair!r} is not of the form key=value.",
                             fix="write e.g. --param epochs=100.")
        if key not in known:
            raise InputError(f"method {cls.name!r} has no parameter {key!r}.",
                             fix=f"use one of: {', '.join(known) or '(none)'}.")
        parsed[key] = _coerce(key, raw.strip(), known[key].default)
    return parsed


def _coerce(key: str, raw: str, default: Any) -> Any:
    if raw.lower() == "none":
        return None
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1", "yes")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if default is None or default is inspect.Parameter.empty:
            if raw.lower() in ("true", "false"):  # an optional switch (default None: auto)
                return raw.lower() == "true"
            for convert in (int, float):
                try:
                    return convert(raw)
                except ValueError:
                    continue
        return raw
    except ValueError as err:
        raise InputError(f"parameter {key}={raw!r} is not a valid "
                         f"{type(default).__name__}.", fix=f"give {key} as a "
                         f"{type(default).__name__}, like {default!r}.") from err


def plain(value: Any, *, h5ad: bool = False) -> Any:
    """``value`` with numpy scalars/arrays and tuples turned into plain JSON types.

    With ``h5ad``, also what an h5ad ``uns`` cannot store: None becomes ``"None"``, and a
    list is kept as a list only when its items are all numbers, all strings or all booleans
    (h5ad writes it as one array); any other list (of mappings, of lists, mixed) becomes a
    mapping keyed by position (``"0"``, ``"1"``, ...), which h5ad writes as a group.
    """
    if isinstance(value, Mapping):
        return {str(k): plain(v, h5ad=h5ad) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        items = [plain(v, h5ad=h5ad) for v in (value.tolist() if isinstance(value, np.ndarray)
                                               else value)]
        if not h5ad:
            return items
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in items)
        if numbers or all(isinstance(v, str) for v in items) or \
                all(isinstance(v, bool) for v in items):
            return items
        return {str(i): v for i, v in enumerate(items)}
    if isinstance(value, np.generic):
        return value.item()
    if value is None:
        return "None" if h5ad else None
    return value


def constructor_params(obj: Any) -> Mapping[str, Any]:
    """The ``__init__`` arguments of ``obj`` with their current values."""
    signature = inspect.signature(type(obj).__init__)
    return {n: getattr(obj, n) for n in signature.parameters if n != "self"}


def missing_package(module: str, distribution: str, *, extra: str | None = None) -> str | None:
    """The install hint when ``module`` cannot be found, else None (nothing is imported).

    ``extra`` names the scfill extra that brings it (``"pip install 'scfill[peers]'"``).
    """
    if importlib.util.find_spec(module) is not None:
        return None
    via = f"{extra} or " if extra else ""
    return (f"the package {distribution} (module {module!r}) is not installed; install it "
            f"with {via}pip install {distribution}.")


def import_optional(module: str, distribution: str, *, needed_by: str,
                    extra: str | None = None) -> ModuleType:
    """Import an optional dependency, or raise :class:`MissingDependency` with the fix.

    Parameters
    ----------
    module
        The module to import.
    distribution
        The pip requirement that provides it (with its version pin).
    needed_by
        What needs it, for the message (``"method 'magic'"``).
    extra
        The install command of the scfill extra that brings it.
    """
    hint = missing_package(module, distribution, extra=extra)
    if hint is None:
        try:
            return importlib.import_module(module)
        except ImportError as err:  # installed but broken (e.g. a missing dependency)
            hint = f"importing {module!r} failed ({err})."
    raise MissingDependency(f"{needed_by} needs {distribution}: {hint}",
                            fix=f"run {extra or 'pip install ' + distribution}.")
