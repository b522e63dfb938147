"""Readers and writers: h5ad, 10x (Matrix Market folder and .h5), CSV/TSV; atomic writes.

Every reader returns an :class:`~anndata.AnnData` with cells as observations and the counts
in ``X`` as a CSR matrix. Readers check what can go wrong with the file itself (missing,
unreadable, truncated, unknown format, orientation of a text table); :mod:`scfill.validate`
checks the values. Paths are checked by :mod:`scfill.paths` before anything is read or
written.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
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
from scfill.paths import OUTPUT_SUFFIXES, check_input, check_output, suffix
from scfill.validate import validate_names

#: On disk, a layer is stored dense when more than this fraction of its entries is non-zero:
#: dense float32 takes 4 bytes an entry, CSR 8 (value and column index) a stored entry.
DENSE_ABOVE = 0.5
#: Entries per HDF5 chunk of a dense layer (float32: 1 MiB, a good size for gzip).
CHUNK_ENTRIES = 1 << 18


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
        ``matrix.mtx[.gz]``; the tables may be gzipped or plain), or a delimited text file
        (``.csv``, ``.tsv``, ``.txt``, optionally gzipped) with names in the first row and
        column.
    layer
        For ``.h5ad``: read this layer instead of ``X`` (it becomes ``X``; the original
        ``X`` is dropped).
    cells_axis
        For text files: 1 when cells are columns (genes × cells, as scImpute, SAVER and DCA
        take), 0 when cells are rows. None (default): genes × cells, unless the names say
        clearly that the rows are cells (barcodes, ``cell…``; columns of Ensembl ids or
        ``gene…``), which is then logged as a warning. The orientation is recorded in
        ``uns["scfill_input"]`` so that :func:`write` gives CSV back the same way.

    Raises
    ------
    InputError
        Missing, unreadable or truncated file, unknown format, a missing layer, or
        duplicate names in a text table.
    """
    path = check_input(path)
    if cells_axis not in (None, 0, 1):
        raise InputError(f"cells_axis={cells_axis!r} is not 0, 1 or None.",
                         fix="give 0 (cells are rows), 1 (cells are columns) or None.")
    kind = "folder" if path.is_dir() else suffix(path)
    if layer is not None and kind != ".h5ad":
        raise InputError("layer= applies to .h5ad files only.", fix="drop --layer.",
                         source=str(path))
    if kind == "folder":
        adata = _read_10x_folder(path)
    elif kind == ".h5ad":
        adata = _read_h5ad(path, layer)
    elif kind == ".h5":
        adata = _guard(path, lambda: _scanpy().read_10x_h5(path))
    elif kind in (".mtx", ".mtx.gz"):
        adata = _read_10x_folder(path.parent)
    else:
        adata = _read_text(path, cells_axis)
    adata.X = _as_csr(adata.X, path)
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


def h5ad_shape(path: str | os.PathLike) -> tuple[int, int]:
    """(cells, genes) of an ``.h5ad`` file, read from its header (nothing else is loaded)."""
    import h5py

    path = check_input(path)

    def shape() -> tuple[int, int]:
        with h5py.File(path, "r") as store:
            return len(store["obs"][store["obs"].attrs["_index"]]), \
                len(store["var"][store["var"].attrs["_index"]])

    return _guard(path, shape)


def read_h5ad_without_layers(path: str | os.PathLike, *, layer: str | None = None
                             ) -> tuple[ad.AnnData, list[str]]:
    """Read an ``.h5ad`` except its layers (and ``raw``), which stay on disk.

    For large inputs written again with new layers (:func:`write_h5ad_blocks` copies the
    layers left on disk file to file, ``copy_layers_from``), so that they are never held in
    memory. ``layer`` becomes ``X`` as in :func:`read`. Returns the AnnData and the names of
    the layers left on disk.
    """
    import h5py

    path = check_input(path)
    if suffix(path) != ".h5ad":
        raise InputError("only an .h5ad input can leave its layers on disk.",
                         fix="read it with scfill.read.", source=str(path))

    def load() -> tuple[ad.AnnData, list[str]]:
        with h5py.File(path, "r") as store:
            names = list(store["layers"]) if "layers" in store else []
            if layer is not None and layer not in names:
                raise InputError(f"layer {layer!r} not found (layers: "
                                 f"{', '.join(names) or 'none'}).",
                                 fix="name an existing layer, or drop --layer to read X.",
                                 source=str(path))
            parts = {key: _read_elem()(store[key]) for key in
                     ("obs", "var", "uns", "obsm", "varm", "obsp", "varp") if key in store}
            source = store["layers"][layer] if layer is not None else store.get("X")
            if source is None:
                raise InputError("the file has no X matrix (layers: "
                                 f"{', '.join(names) or 'none'}).",
                                 fix="read the counts from a layer with --layer NAME.",
                                 source=str(path))
            return ad.AnnData(X=_read_elem()(source), **parts), names

    adata, names = _guard(path, load)
    adata.X = _as_csr(adata.X, path)
    adata.uns.setdefault("scfill_input", {})
    adata.uns["scfill_input"].update({"path": str(path), "layer": layer or "X"})
    logger.info("read %s: %d cells x %d genes (layers left on disk: %s)", path, adata.n_obs,
                adata.n_vars, ", ".join(names) or "none")
    return adata, names


def _read_h5ad(path: Path, layer: str | None) -> ad.AnnData:
    adata = _guard(path, lambda: ad.read_h5ad(path))
    if layer is not None:
        if layer not in adata.layers:
            raise InputError(f"layer {layer!r} not found (layers: "
                             f"{', '.join(adata.layers) or 'none'}).",
                             fix="name an existing layer, or drop --layer to read X.",
                             source=str(path))
        adata.X = adata.layers[layer]
    elif adata.X is None:
        raise InputError(f"the file has no X matrix (layers: {', '.join(adata.layers) or 'none'}).",
                         fix="read the counts from a layer with --layer NAME (layer=NAME).",
                         source=str(path))
    return adata


#: File names of a 10x Matrix Market folder, in order of preference.
TENX_MATRIX = ("matrix.mtx.gz", "matrix.mtx")
TENX_FEATURES = ("features.tsv.gz", "features.tsv", "genes.tsv.gz", "genes.tsv")
TENX_BARCODES = ("barcodes.tsv.gz", "barcodes.tsv")
#: Feature type kept from a v3 features table (as Cell Ranger and scanpy's ``gex_only``).
GENE_EXPRESSION = "Gene Expression"


def _read_10x_folder(folder: Path) -> ad.AnnData:
    """Read matrix.mtx, features.tsv (or genes.tsv) and barcodes.tsv, gzipped or plain."""
    names = {p.name for p in folder.iterdir()}

    def find(candidates: tuple[str, ...], problem: str, fix: str) -> Path:
        found = next((name for name in candidates if name in names), None)
        if found is None:
            raise InputError(problem, fix=fix, source=str(folder))
        return folder / found

    matrix = find(TENX_MATRIX, "folder has no matrix.mtx or matrix.mtx.gz.",
                  "point to a 10x Matrix Market folder (matrix.mtx[.gz], features.tsv[.gz] "
                  "or genes.tsv[.gz], barcodes.tsv[.gz]).")
    features = find(TENX_FEATURES, "folder has matrix.mtx but no features.tsv[.gz] or "
                    "genes.tsv[.gz].", "add the gene table that came with the matrix.")
    barcodes = find(TENX_BARCODES, "folder has matrix.mtx but no barcodes.tsv[.gz].",
                    "add the barcode table that came with the matrix.")
    import scipy.io

    counts = _guard(matrix, lambda: sp.csr_matrix(scipy.io.mmread(matrix).T,
                                                  dtype=np.float32))
    genes = _guard(features, lambda: pd.read_csv(features, sep="\t", header=None, dtype=str,
                                                 keep_default_na=False))
    cells = _guard(barcodes, lambda: pd.read_csv(barcodes, sep="\t", header=None, dtype=str,
                                                 keep_default_na=False))
    if counts.shape != (len(cells), len(genes)):
        raise InputError(f"{matrix.name} is {counts.shape[1]} genes x {counts.shape[0]} cells "
                         f"but {features.name} lists {len(genes)} genes and {barcodes.name} "
                         f"{len(cells)} barcodes.", fix="use the three files of one run "
                         "together.", source=str(folder))
    symbols = genes[1] if genes.shape[1] > 1 else genes[0]
    var = pd.DataFrame({"gene_ids": genes[0].to_numpy()}, index=pd.Index(symbols, dtype=str))
    if genes.shape[1] > 2:
        var["feature_types"] = genes[2].to_numpy()
    adata = ad.AnnData(counts, obs=pd.DataFrame(index=pd.Index(cells[0], dtype=str)), var=var)
    if "feature_types" in var and (var["feature_types"] != GENE_EXPRESSION).any():
        keep = (var["feature_types"] == GENE_EXPRESSION).to_numpy()
        logger.info("keeping the %d %r features of %d", int(keep.sum()), GENE_EXPRESSION,
                    var.shape[0])
        adata = adata[:, keep].copy()
    return adata


def _read_text(path: Path, cells_axis: int | None) -> ad.AnnData:
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
    frame.columns = _header_names(path, sep, frame.shape[1], frame.columns)
    if cells_axis is None:
        cells_axis = _guess_cells_axis(frame, path)
    values = sp.csr_matrix(frame.to_numpy(dtype=np.float64))
    rows = pd.DataFrame(index=frame.index.astype(str))
    columns = pd.DataFrame(index=frame.columns.astype(str))
    if cells_axis == 1:
        adata = ad.AnnData(sp.csr_matrix(values.T), obs=columns, var=rows)
    else:
        adata = ad.AnnData(values, obs=rows, var=columns)
    validate_names(adata, source=str(path))
    adata.uns["scfill_input"] = {"cells_axis": int(cells_axis), "sep": sep}
    return adata


def _header_names(path: Path, sep: str, n_columns: int, parsed: pd.Index) -> pd.Index:
    """The column names as written (pandas renames a repeated name ``A`` to ``A.1``)."""
    first = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str,
                        keep_default_na=False).iloc[0].tolist()
    if len(first) == n_columns + 1:
        return pd.Index(first[1:])
    if len(first) == n_columns:  # no label above the row names (R's write.table)
        return pd.Index(first)
    return parsed


#: Names that say "cell": 10x/Drop-seq barcodes (8+ bases, optional -1 suffix) or cell….
CELL_NAME = re.compile(r"^([ACGTN]{8,}([-_.]?\d+)?|cell.*)$", re.IGNORECASE)
#: Names that say "gene": Ensembl gene ids, gene…, mitochondrial and ribosomal genes.
GENE_NAME = re.compile(r"^(ENS[A-Z]*G\d{6,}(\.\d+)?|gene.*|mt-.+|rp[ls]\d+[a-z]?)$",
                       re.IGNORECASE)
#: Share of (up to NAMES_LOOKED_AT) names that must match to call an axis cells or genes.
NAME_SHARE = 0.5
NAMES_LOOKED_AT = 200


def _kind_of_names(names: pd.Index) -> str | None:
    """"cells", "genes" or None (cannot tell) from what the names look like."""
    shown = [str(name) for name in names[:NAMES_LOOKED_AT]]
    cells = sum(bool(CELL_NAME.match(name)) for name in shown) / len(shown)
    genes = sum(bool(GENE_NAME.match(name)) for name in shown) / len(shown)
    if cells >= NAME_SHARE and cells > genes:
        return "cells"
    if genes >= NAME_SHARE and genes > cells:
        return "genes"
    return None


def _guess_cells_axis(frame: pd.DataFrame, path: Path) -> int:
    """1 (genes × cells, the default) unless the names say the rows are cells."""
    rows, columns = _kind_of_names(frame.index), _kind_of_names(frame.columns)
    shape = f"{frame.shape[0]} rows x {frame.shape[1]} columns"
    if (rows == "cells" or columns == "genes") and "genes" != rows and "cells" != columns:
        logger.warning("%s: the rows look like cells (e.g. %r) and the columns like genes "
                       "(e.g. %r), %s: reading cells as rows. If that is wrong, give "
                       "--no-transpose (cells_axis=1).", path, str(frame.index[0]),
                       str(frame.columns[0]), shape)
        return 0
    logger.info("%s: reading genes as rows and cells as columns (%s); give --transpose "
                "(cells_axis=0) if the cells are the rows.", path, shape)
    return 1


def _as_csr(matrix, path: Path) -> sp.csr_matrix:
    if sp.issparse(matrix):
        return matrix.tocsr() if matrix.format != "csr" else matrix
    dense = np.asarray(matrix)
    if not (np.issubdtype(dense.dtype, np.number) or dense.dtype == bool):
        raise InputError(f"the matrix holds values of type {dense.dtype}, not numbers.",
                         fix="give a numeric count matrix.", source=str(path))
    return sp.csr_matrix(dense)


@contextmanager
def atomic_path(
    target: str | os.PathLike,
    *,
    force: bool = False,
    inputs: Iterable[str | os.PathLike | None] = (),
) -> Iterator[str]:
    """Give a temporary path next to ``target``; move it onto ``target`` only on success.

    The path is checked first (:func:`scfill.paths.check_output`; an existing ``target``
    needs ``force``, ``inputs`` are refused as targets). Whatever ends the block early (an
    error, Ctrl-C, or SIGTERM under the command line, which raises
    :class:`~scfill.errors.Interrupted`) leaves ``target`` as it was, removes the temporary
    file and the folders created for it. The result gets the permissions a new file gets
    under the user's umask (or keeps those of the file it replaces).
    """
    target = check_output(target, force=force, inputs=inputs)
    created = [p for p in target.absolute().parents if not p.exists()]
    # the name is fixed before the file exists, so an interrupt at any point is cleaned up
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        yield str(tmp)
        os.chmod(tmp, _new_file_mode(target))
        os.replace(tmp, target)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)
        if not target.exists():
            for folder in created:  # innermost first
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()


def _new_file_mode(target: Path) -> int:
    """Permissions for ``target``: those of the file it replaces, else 0o666 minus umask."""
    if target.exists():
        return stat.S_IMODE(target.stat().st_mode)
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


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
        ``cells_axis=0``). Never the file ``adata`` was read from.
    layer
        For text output: which matrix (default ``"imputed"`` when present, else ``X``).
    force
        Overwrite an existing file.
    """
    source = adata.uns.get("scfill_input", {}).get("path")
    path = check_output(path, force=force, suffixes=OUTPUT_SUFFIXES, inputs=[source])
    if layer is not None and layer not in adata.layers:
        raise InputError(f"layer {layer!r} not found (layers: "
                         f"{', '.join(adata.layers) or 'none'}).",
                         fix="name an existing layer.", source=str(path))
    with atomic_path(path, force=force, inputs=[source]) as tmp:
        if suffix(path) == ".h5ad":
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
    copy_layers_from: tuple[str | os.PathLike, Iterable[str]] | None = None,
    x_from: str | None = None,
) -> Path:
    """Write ``adata`` to ``.h5ad`` with extra layers that arrive in row blocks.

    ``adata`` is written first (without the new layers), then each block's layers are
    appended in row order (``blocks`` yields ``(rows, {layer name: dense block})``), so no
    layer is ever held whole. A layer is stored dense when its first block has more than
    :data:`DENSE_ABOVE` non-zero entries, else as CSR. Then ``finish(storage)`` (``storage``:
    per layer, the format and the first block's fill) returns entries written into ``uns``.
    ``copy_layers_from`` (an .h5ad path and layer names, as
    :func:`read_h5ad_without_layers` returns them) copies those layers from that file into
    the output file to file, never through memory; a name the blocks also write is not
    copied (the new layer replaces it, as :func:`scfill.impute` does in memory). ``x_from``
    (with ``copy_layers_from``) copies that key of the file (``"X"``, ``"layers/NAME"``) to
    the output's ``X``, for an ``adata`` whose ``X`` was released.
    The file appears only when everything was written (:func:`atomic_path`).
    """
    import h5py

    path = Path(path)
    if suffix(path) != ".h5ad":
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
            if copy_layers_from is not None:
                source, names = copy_layers_from
                with h5py.File(source, "r") as src:
                    if x_from is not None:
                        src.copy(src[x_from], store, "X")
                    for name in names:
                        if name not in store["layers"]:
                            src.copy(src["layers"][name], store["layers"], name)
            for key, value in finish(storage).items():
                if key in store["uns"]:
                    del store["uns"][key]
                _write_elem()(store["uns"], key, value)
    logger.info("wrote %s (layers in row blocks: %s)", path,
                ", ".join(f"{k} {v['format']}" for k, v in storage.items()))
    return path


def _read_elem():
    try:
        from anndata.io import read_elem
    except ImportError:  # anndata < 0.11
        from anndata.experimental import read_elem
    return read_elem


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
