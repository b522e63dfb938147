"""Data-parallel training under torchrun (gloo, CPU): two processes with half the batch
each follow one process's loss curve, and the CLI writes one output from rank 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pytest

from conftest import make_counts
from nn_toys import train_both

TESTS = Path(__file__).parent
#: One process vs two: the same steps on the same rows, the mean gradient computed as two
#: half-batch means averaged by DDP's all-reduce instead of one mean, so the curves differ
#: only by float32 rounding (measured: at most ~1e-7 relative after 4 epochs).
RTOL = 1e-5
SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
from nn_toys import train_both
from scfill.nn import is_main_process
result = train_both(int(sys.argv[1]))
if is_main_process():
    with open(sys.argv[2], "w") as f:
        json.dump(result, f)
"""


def _torchrun(args: list[str], tmp_path: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(TESTS.parent / "src"),
                                          os.environ.get("PYTHONPATH", "")])}
    if sys.platform == "linux":  # gloo on the loopback: no dependence on the host's network
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", *args]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_two_processes_follow_the_one_process_loss_curve(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.format(tests=str(TESTS)))
    _torchrun([str(script), "8", str(tmp_path / "two.json")], tmp_path)
    two = json.loads((tmp_path / "two.json").read_text())
    one = train_both(16)  # the same global batch in one process
    for name in ("regression", "gan"):
        assert one[name]["history"].keys() == two[name]["history"].keys()
        for loss, curve in one[name]["history"].items():
            assert len(curve) == 4
            np.testing.assert_allclose(two[name]["history"][loss], curve, rtol=RTOL,
                                       err_msg=f"{name} {loss}")
        for a, b in zip(one[name]["weights"], two[name]["weights"], strict=True):
            np.testing.assert_allclose(b, a, rtol=RTOL, atol=1e-6)
    # and the curve is not flat: the processes really trained
    assert two["regression"]["history"]["loss"][-1] < two["regression"]["history"]["loss"][0]


def test_cli_under_torchrun_writes_one_output_from_rank_zero(tmp_path):
    make_counts(96, 30, seed=2).write_h5ad(tmp_path / "in.h5ad")
    scfill = Path(sys.executable).parent / "scfill"
    if not scfill.exists():
        pytest.skip("the scfill console script is not installed next to this Python")
    result = _torchrun([str(scfill), "impute", "in.h5ad", "-o", "out.h5ad", "--method",
                        "maskclass", "--param", "epochs=2", "--device", "cpu"], tmp_path)
    assert result.stdout.count("wrote out.h5ad") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.h5ad", "out.h5ad"]
    out = ad.read_h5ad(tmp_path / "out.h5ad")
    assert out.uns["scfill"]["info"]["processes"] == 2
    assert np.isfinite(out.layers["imputed"].data).all()
