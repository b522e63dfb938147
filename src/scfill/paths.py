"""Checks of input and output paths, before any work is done (standard library only).

The command line runs these first, so that a wrong path is reported at once, before torch
or anndata are imported and long before a fit; :mod:`scfill.io` runs them again for API
callers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from scfill.errors import InputError

#: Delimited text formats (read and written).
TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")
#: Single-file input formats; a folder is read as 10x Matrix Market.
INPUT_SUFFIXES = (*TEXT_SUFFIXES, ".h5ad", ".h5", ".mtx", ".mtx.gz")
#: Formats :func:`scfill.write` produces.
OUTPUT_SUFFIXES = (".h5ad", *TEXT_SUFFIXES)
#: How the input formats are described in messages.
INPUT_FORMATS = ("h5ad, 10x .h5, a 10x Matrix Market folder (matrix.mtx[.gz]), .csv, .tsv "
                 "or .txt")


def suffix(path: str | os.PathLike) -> str:
    """The format suffix of ``path``, lower case, with ``.gz`` kept where it belongs."""
    name = Path(path).name.lower()
    for known in INPUT_SUFFIXES:
        if name.endswith(known):
            return known
    return Path(name).suffix


def check_input(path: str | os.PathLike) -> Path:
    """Return ``path`` after checking it exists, can be read and has a known format.

    Raises
    ------
    InputError
        Missing, unreadable or empty file, or an unknown extension.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("file not found.", fix="check the path (it is relative to the "
                         f"current directory {Path.cwd()}).", source=str(path))
    if path.is_dir():
        return path
    if not os.access(path, os.R_OK):
        raise InputError("file is not readable (permission denied).",
                         fix="check the file's permissions.", source=str(path))
    if suffix(path) not in INPUT_SUFFIXES:
        raise InputError(f"unknown file format {suffix(path) or '(no extension)'!r}.",
                         fix=f"give one of: {INPUT_FORMATS}.", source=str(path))
    if path.stat().st_size == 0:
        raise InputError("file is empty (0 bytes).", fix="check that the file was copied or "
                         "downloaded completely.", source=str(path))
    return path


def check_output(
    path: str | os.PathLike,
    *,
    force: bool = False,
    suffixes: Iterable[str] | None = None,
    inputs: Iterable[str | os.PathLike | None] = (),
    folder: bool = False,
) -> Path:
    """Return ``path`` after checking that an output can be written there.

    Parameters
    ----------
    path
        The output file (or, with ``folder``, the output folder).
    force
        Allow replacing an existing file (never a folder by a file, nor an input).
    suffixes
        Accepted extensions (lower case, e.g. ``(".csv",)``); None accepts any.
    inputs
        Paths the output must not be (the run's input files); None entries are skipped.
    folder
        The output is a folder: an existing folder is accepted (the caller decides what
        to do with it), an existing file is not.

    Raises
    ------
    InputError
        Unknown extension, output equal to an input, an existing output without ``force``,
        a folder where a file is wanted (or the reverse), or a parent that is a file or
        not writable.
    """
    path = Path(path)
    where = str(path)
    if path.is_dir() and not folder:
        raise InputError("the output is an existing folder.", fix="give a file name, e.g. "
                         f"{path / 'imputed.h5ad'}.", source=where)
    if suffixes is not None and not folder:
        suffixes = tuple(suffixes)
        if suffix(path) not in suffixes:
            raise InputError(f"unknown output format {suffix(path) or '(no extension)'!r}.",
                             fix=f"use one of: {', '.join(suffixes)}.", source=where)
    for given in inputs:
        if given is not None and _same_file(path, Path(given)):
            raise InputError("the output is the input file; writing it would replace the "
                             "counts it was read from.", fix="choose another output path.",
                             source=where)
    if folder:
        if path.exists() and not path.is_dir():
            raise InputError("exists and is a file, not a folder.",
                             fix="choose a folder path.", source=where)
    elif path.exists() and not force:
        raise InputError("output already exists.", fix="choose another path or pass --force "
                         "(force=True) to overwrite it.", source=where)
    _check_parent(path)
    return path


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _check_parent(path: Path) -> None:
    """The nearest existing ancestor of ``path`` must be a writable folder."""
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"cannot create the output: {parent} is a file, not a folder.",
                         fix="choose an output path inside a folder.", source=str(path))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write to the folder {parent} (permission denied).",
                         fix="choose an output in a folder you can write to.",
                         source=str(path))
