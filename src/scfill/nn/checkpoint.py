"""Save and load fitted models as weights plus a JSON config (never pickles)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from scfill.errors import InputError
from scfill.io import atomic_path

WEIGHTS_FILE = "model.pt"
CONFIG_FILE = "config.json"


def save_checkpoint(
    directory: str | Path,
    *,
    state: dict[str, torch.Tensor],
    config: dict[str, Any],
    var_names: Sequence[str],
    overwrite: bool = False,
) -> Path:
    """Write ``model.pt`` (tensors only) and ``config.json`` into ``directory``.

    ``config`` must be plain JSON (method name, constructor arguments, shapes); the gene
    names are stored with it so that :func:`load_checkpoint` can refuse other genes.
    """
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()) and not overwrite:
        raise InputError(f"{directory} already exists and is not empty.",
                         fix="choose another directory or pass overwrite=True.")
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu() for k, v in state.items()}
    with atomic_path(directory / WEIGHTS_FILE, force=True) as tmp:
        torch.save(tensors, tmp)
    with atomic_path(directory / CONFIG_FILE, force=True) as tmp:
        Path(tmp).write_text(json.dumps({**config, "var_names": list(map(str, var_names))},
                                        indent=1))
    return directory


def load_checkpoint(
    directory: str | Path, *, var_names: Sequence[str] | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    directory
        The checkpoint folder.
    var_names
        Genes of the data the model will be used on; must equal the saved genes, in order.

    Returns
    -------
    The weights (loaded with ``weights_only=True``) and the config.
    """
    directory = Path(directory)
    weights, config_file = directory / WEIGHTS_FILE, directory / CONFIG_FILE
    if not weights.is_file() or not config_file.is_file():
        raise InputError(f"{directory} is not a scfill model folder (needs {WEIGHTS_FILE} "
                         f"and {CONFIG_FILE}).", fix="pass the folder written by model.save().")
    config = json.loads(config_file.read_text())
    if var_names is not None:
        saved = config["var_names"]
        given = list(map(str, var_names))
        if saved != given:
            missing = len(set(saved) - set(given))
            raise InputError(
                f"the model was trained on {len(saved)} genes but the data has {len(given)} "
                f"({missing} of the model's genes are missing, or the order differs).",
                fix="subset and order the data's genes as the model's: adata[:, model_genes].",
                source=str(directory))
    state = torch.load(weights, map_location="cpu", weights_only=True)
    return state, config
