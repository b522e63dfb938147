"""Readers and writers: h5ad, 10x (Matrix Market folder and .h5), CSV/TSV; atomic writes.

Every reader returns an :class:`~anndata.AnnData` with cells as observations and the counts
in ``X`` as a CSR matrix. Readers check what can go wrong with the file itself (missing,
unreadable, truncated, unknown format); :mod:`scfill.validate` checks the values.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scfill._logging import logger
from scfill.errors import InputError

#: On disk, a layer is stored dense when more than this fraction of its entries is non-zero:
#: dense float32 takes 4 bytes an entry, CSR 8 (value and column index) a stored entry.
DENSE_ABOVE = 0.5
#: Entries per HDF5 chunk of a dense layer (float32: 1 MiB, a good size for gzip).
CHUNK_ENTRIES = 1 << 18
CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")
FORMATS = "h5ad, 10x .h5, a 10x Matrix Market folder (matrix.mtx[.gz]), .csv, .tsv or .txt"


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in (*CSV_SUFFIXES, ".h5ad", ".h5", ".mtx", ".mtx.gz"):
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def read(
    path: str | os.PathLike,
    *,
    layer: str | None = None,
    cells_axis: Literal[0, 1] | None = None,
) -> ad.AnnData:
    """Read a count matrix into an AnnData (cells × genes, CSR counts in ``X``).

    Parameters
    ----------
    path
        An ``.h5ad`` file, a 10x ``.h5`` file, a 10x Matrix Market folder (or its
        ``matrix.mtx[.gz]``), or a delimited text file (``.csv``, ``.tsv``, ``.txt``,
        optionally gzipped) with names in the first row and column.
    layer
        For ``.h5ad``: read this layer instead of ``X`` (it becomes ``X``; the original
        ``X`` is dropped).
    cells_axis
        For text files: 1 (default) when cells are columns (genes × cells, as scImpute,
        SAVER and DCA take), 0 when cells are rows. The orientation is recorded in
        ``uns["scfill_input"]`` so that :func:`write` gives CSV back the same way.

    Raises
    ------
    InputError
        Missing, unreadable or truncated file, unknown format, or a missing layer.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("file not found.", fix="check the path (it is relative to the "
                         f"current directory {Path.cwd()}).", source=str(path))
    if path.is_dir():
        adata = _read_10x_folder(path)
    else:
        suffix = _suffix(path)
        if not os.access(path, os.R_OK):
            raise InputError("file is not readable (permission denied).",
                             fix="check the file's permissions.", source=str(path))
        if path.stat().st_size == 0:
            raise InputError("file is empty (0 bytes).", fix="check that the file was "
                             "copied or downloaded completely.", source=str(path))
        if suffix == ".h5ad":
            adata = _read_h5ad(path, layer)
        elif suffix == ".h5":
            adata = _guard(path, lambda: _scanpy().read_10x_h5(path))
        elif suffix in (".mtx", ".mtx.gz"):
            adata = _read_10x_folder(path.parent)
        elif suffix in CSV_SUFFIXES:
            adata = _read_text(path, 1 if cells_axis is None else cells_axis)
        else:
            raise InputError(f"unknown file format {suffix or '(no extension)'!r}.",
                             fix=f"give one of: {FORMATS}.", source=str(path))
    if layer is not None and path.suffix.lower() != ".h5ad":
        raise InputError("layer= applies to .h5ad files only.", fix="drop --layer.",
                         source=str(path))
    adata.X = _as_csr(adata.X)
    adata.uns.setdefault("scfill_input", {})
    adata.uns["scfill_input"].update({"path": str(path), "layer": layer or "X"})
    logger.info("read %s: %d cells x %d genes", path, adata.n_obs, adata.n_vars)
    return adata


def _scanpy():
    import scanpy as sc

    return sc


def _guard(path: Path, reader):
    """Run ``reader`` and turn a low-level failure into an :class:`InputError`."""
    try:
        return reader()
    except InputError:
        raise
    except (OSError, ValueError, KeyError, EOFError, UnicodeDecodeError) as err:
        raise InputError(f"could not read the file ({type(err).__name__}: {err}); it may be "
                         "truncated or not of the format its name says.",
                         fix="re-export or re-download it, and check its extension.",
                         source=str(path)) from err


def _read_h5ad(path: Path, layer: str | None) -> ad.AnnData:
    adata = _guard(path, lambda: ad.read_h5ad(path))
    if layer is not None:
        if layer not in adata.layers:
            raise InputError(f"layer {layer!r} not found (layers: "
                             f"{', '.join(adata.layers) or 'none'}).",
                             fix="name an existing layer, or drop --layer to read X.",
                             source=str(path))
        adata.X = adata.layers[layer]
    return adata


def _read_10x_folder(folder: Path) -> ad.AnnData:
    names = {p.name for p in folder.iterdir()}
    if not names & {"matrix.mtx", "matrix.mtx.gz"}:
        raise InputError("folder has no matrix.mtx or matrix.mtx.gz.",
                         fix="point to a 10x Matrix Market folder (matrix.mtx[.gz], "
                         "features.tsv[.gz] or genes.tsv, barcodes.tsv[.gz]).",
                         source=str(folder))
    if not names & {"features.tsv.gz", "features.tsv", "genes.tsv", "genes.tsv.gz"}:
        raise InputError("folder has matrix.mtx but no features.tsv[.gz] or genes.tsv.",
                         fix="add the gene table that came with the matrix.", source=str(folder))
    if not names & {"barcodes.tsv", "barcodes.tsv.gz"}:
        raise InputError("folder has matrix.mtx but no barcodes.tsv[.gz].",
                         fix="add the barcode table that came with the matrix.",
                         source=str(folder))
    return _guard(folder, lambda: _scanpy().read_10x_mtx(folder, var_names="gene_symbols",
                                                         make_unique=False, cache=False))


def _read_text(path: Path, cells_axis: int) -> ad.AnnData:
    sep = "\t" if ".tsv" in path.name.lower() or ".txt" in path.name.lower() else ","
    frame = _guard(path, lambda: pd.read_csv(path, sep=sep, index_col=0))
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InputError(f"no data rows or columns (shape {frame.shape}).",
                         fix="the first row must hold names and the first column ids.",
                         source=str(path))
    non_numeric = [c for c, t in frame.dtypes.items() if not np.issubdtype(t, np.number)]
    if non_numeric:
        raise InputError(f"{len(non_numeric)} column(s) are not numeric (first: "
                         f"{non_numeric[0]!r}); the file may use another separator or hold "
                         "annotation columns.", fix=f"keep only counts, separated by {sep!r}.",
                         source=str(path))
    values = sp.csr_matrix(frame.to_numpy(dtype=np.float64))
    if cells_axis == 1:
        adata = ad.AnnData(sp.csr_matrix(values.T),
                           obs=pd.DataFrame(index=frame.columns.astype(str)),
                           var=pd.DataFrame(index=frame.index.astype(str)))
    else:
        adata = ad.AnnData(values, obs=pd.DataFrame(index=frame.index.astype(str)),
                           var=pd.DataFrame(index=frame.columns.astype(str)))
    adata.uns["scfill_input"] = {"cells_axis": int(cells_axis), "sep": sep}
    return adata


def _as_csr(matrix) -> sp.csr_matrix:
    if sp.issparse(matrix):
        return matrix.tocsr() if matrix.format != "csr" else matrix
    return sp.csr_matrix(np.asarray(matrix))


@contextmanager
def atomic_path(target: str | os.PathLike, *, force: bool = False) -> Iterator[str]:
    """Give a temporary path next to ``target``; move it onto ``target`` only on success.

    A crash leaves ``target`` as it was. Without ``force`` an existing ``target`` is
    refused before anything is written.
    """
    target = Path(target)
    if target.exists() and not force:
        raise InputError("output already exists.", fix="choose another path or pass "
                         "--force (force=True) to overwrite it.", source=str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write(
    adata: ad.AnnData,
    path: str | os.PathLike,
    *,
    layer: str | None = None,
    force: bool = False,
) -> Path:
    """Write ``adata`` atomically to ``.h5ad`` or a delimited text file.

    Parameters
    ----------
    adata
        The data, usually after :func:`scfill.impute`.
    path
        ``.h5ad`` writes everything (layers, ``uns``). ``.csv``/``.tsv`` write one matrix,
        in the orientation the input was read in (genes × cells unless it was read with
        ``cells_axis=0``).
    layer
        For text output: which matrix (default ``"imputed"`` when present, else ``X``).
    force
        Overwrite an existing file.
    """
    path = Path(path)
    suffix = _suffix(path)
    if suffix not in (".h5ad", *CSV_SUFFIXES):
        raise InputError(f"unknown output format {suffix or '(no extension)'!r}.",
                         fix="use .h5ad, .csv or .tsv.", source=str(path))
    with atomic_path(path, force=force) as tmp:
        if suffix == ".h5ad":
            adata.write_h5ad(tmp, compression="gzip")
        else:
            _write_text(adata, tmp, path, layer)
    logger.info("wrote %s", path)
    return path


def _write_text(adata: ad.AnnData, tmp: str, path: Path, layer: str | None) -> None:
    if layer is None:
        layer = "imputed" if "imputed" in adata.layers else None
    matrix = adata.X if layer is None else adata.layers[layer]
    dense = matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)
    frame = pd.DataFrame(dense, index=adata.obs_names, columns=adata.var_names)
    if adata.uns.get("scfill_input", {}).get("cells_axis", 1) == 1:
        frame = frame.T
    sep = "\t" if ".tsv" in path.name.lower() or ".txt" in path.name.lower() else ","
    compression = "gzip" if path.name.lower().endswith(".gz") else None
    frame.to_csv(tmp, sep=sep, compression=compression, float_format="%.6g")


def write_h5ad_blocks(
    adata: ad.AnnData,
    path: str | os.PathLike,
    blocks: Iterable[tuple[slice, dict[str, np.ndarray]]],
    *,
    finish: Callable[[dict[str, dict]], dict[str, Any]],
    force: bool = False,
) -> Path:
    """Write ``adata`` to ``.h5ad`` with extra layers that arrive in row blocks.

    ``adata`` is written first (without the new layers), then each block's layers are
    appended in row order (``blocks`` yields ``(rows, {layer name: dense block})``), so no
    layer is ever held whole. A layer is stored dense when its first block has more than
    :data:`DENSE_ABOVE` non-zero entries, else as CSR. Then ``finish(storage)`` (``storage``:
    per layer, the format and the first block's fill) returns entries written into ``uns``.
    The file appears only when everything was written (:func:`atomic_path`).
    """
    import h5py

    path = Path(path)
    if _suffix(path) != ".h5ad":
        raise InputError("streamed output must be .h5ad.", fix="use a .h5ad output.",
                         source=str(path))
    with atomic_path(path, force=force) as tmp:
        adata.write_h5ad(tmp, compression="gzip")
        with h5py.File(tmp, "r+") as store:
            writer = _LayerWriter(store["layers"], adata.shape)
            for rows, layers in blocks:
                for name, block in layers.items():
                    writer.add(name, rows, block)
            storage = writer.finish()
            for key, value in finish(storage).items():
                if key in store["uns"]:
                    del store["uns"][key]
                _write_elem()(store["uns"], key, value)
    logger.info("wrote %s (layers in row blocks: %s)", path,
                ", ".join(f"{k} {v['format']}" for k, v in storage.items()))
    return path


def _write_elem():
    try:
        from anndata.io import write_elem
    except ImportError:  # anndata < 0.11
        from anndata.experimental import write_elem
    return write_elem


class _LayerWriter:
    """Appends row blocks to layers of an open h5ad file (dense dataset or CSR group)."""

    def __init__(self, group, shape: tuple[int, int]) -> None:
        self.group, self.shape = group, shape
        self.written: dict[str, int] = {}
        self.storage: dict[str, dict] = {}

    def add(self, name: str, rows: slice, block: np.ndarray) -> None:
        done = self.written.get(name, 0)
        if rows.start != done or block.shape != (rows.stop - rows.start, self.shape[1]):
            raise ValueError(f"layer {name}: block {rows} {block.shape} does not continue at "
                             f"row {done}")
        if name not in self.storage:
            self._create(name, block)
        elif self.storage[name]["format"] == "dense":
            self.group[name][rows] = block
        else:
            _sparse_dataset(self.group[name]).append(sp.csr_matrix(block, dtype=np.float32))
        self.written[name] = rows.stop

    def _create(self, name: str, block: np.ndarray) -> None:
        fill = float(np.count_nonzero(block)) / max(block.size, 1)
        dense = fill > DENSE_ABOVE
        self.storage[name] = {"format": "dense" if dense else "csr",
                              "fill_first_block": round(fill, 4)}
        if dense:
            rows = max(1, min(self.shape[0], CHUNK_ENTRIES // max(self.shape[1], 1)))
            data = self.group.create_dataset(name, shape=self.shape, dtype=np.float32,
                                             chunks=(rows, self.shape[1]), compression="gzip")
            data.attrs["encoding-type"] = "array"
            data.attrs["encoding-version"] = "0.2.0"
            data[: block.shape[0]] = block
        else:
            _write_elem()(self.group, name, sp.csr_matrix(block, dtype=np.float32),
                          dataset_kwargs={"compression": "gzip"})

    def finish(self) -> dict[str, dict]:
        short = {n: k for n, k in self.written.items() if k != self.shape[0]}
        if short:
            raise ValueError(f"layers stopped before the last row: {short}")
        return self.storage


def _sparse_dataset(group):
    try:
        from anndata.io import sparse_dataset
    except ImportError:  # anndata < 0.11
        from anndata.experimental import sparse_dataset
    return sparse_dataset(group)
