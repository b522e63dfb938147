"""The virtualenv the TensorFlow peers (DCA, DeepImpute) run in: where it is, and building it.

DCA 0.3.4 pins TensorFlow < 2.5 and DeepImpute 1.2 the defunct ``sklearn`` package; neither
installs next to scfill's stack (numpy 2, Python 3.11). Measured on this project's machine
(``/work/shared/specs/peers.md``): both run when installed with ``--no-deps`` into their own
env beside tensorflow-cpu 2.15.1 and keras 2.15 (numpy < 2, protobuf < 5), with run-time
shims for what Keras 2.15 removed (:mod:`scfill.external._tf_runner`). This module builds
that env from PyPI::

    make peers-tf                 # or: scfill peers setup [--path DIR] [--python python3.11]

The env lives at ``$SCFILL_PEERS_TF`` or, when that is unset, ``~/.cache/scfill/peers-tf``.
It counts as installed once the setup has imported both peers through the runner and left
:data:`READY_FILE` in it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

#: Environment variable naming the env's folder.
ENV_VARIABLE = "SCFILL_PEERS_TF"
#: Default folder when the variable is unset.
DEFAULT_PATH = Path("~/.cache/scfill/peers-tf")
#: Written by a finished setup: the versions the runner imported.
READY_FILE = ".scfill-peers-tf.json"
#: The command that builds the env (quoted in "not installed" messages).
SETUP_COMMAND = "`scfill peers setup` (or `make peers-tf`)"
#: TensorFlow's stack, installed with dependencies (TF 2.15 needs numpy < 2, protobuf < 5).
TF_STACK = ("tensorflow-cpu==2.15.1", "keras==2.15.0", "numpy==1.26.4", "protobuf==4.25.9")
#: What the peers import, with versions that support numpy 1.26 (installed with deps).
PEER_DEPENDENCIES = ("scanpy==1.10.4", "anndata==0.10.9", "pandas==2.2.3", "scikit-learn",
                     "scipy", "h5py")
#: The peers themselves, without their stale pins (``--no-deps``).
PEERS = ("dca==0.3.4", "deepimpute==1.2")
#: Python versions TensorFlow 2.15 has wheels for.
SUPPORTED_PYTHONS = ((3, 9), (3, 10), (3, 11))
RUNNER = Path(__file__).with_name("_tf_runner.py")


def env_path() -> Path:
    """The env's folder: ``$SCFILL_PEERS_TF`` or ``~/.cache/scfill/peers-tf``."""
    return Path(os.environ.get(ENV_VARIABLE) or DEFAULT_PATH).expanduser()


def env_python(path: Path | None = None) -> Path:
    """The env's interpreter."""
    return (path or env_path()) / "bin" / "python"


def missing_env(path: Path | None = None) -> str | None:
    """Why the env cannot be used (with the command that fixes it), or None when ready."""
    path = path or env_path()
    if not env_python(path).exists() or not (path / READY_FILE).exists():
        return (f"not installed: run {SETUP_COMMAND} to build the TensorFlow peers' env at "
                f"{path} (set {ENV_VARIABLE} to use another folder).")
    return None


def _find_python(requested: str | None) -> str:
    """An interpreter TensorFlow 2.15 supports: ``requested``, this one, or python3.11..3.9."""
    candidates = [requested] if requested else [sys.executable, "python3.11", "python3.10",
                                                "python3.9"]
    for candidate in candidates:
        found = shutil.which(candidate) or (candidate if Path(candidate).exists() else None)
        if found is None:
            continue
        version = subprocess.run([found, "-c", "import sys; print(*sys.version_info[:2])"],
                                 capture_output=True, text=True, check=True).stdout.split()
        if tuple(int(v) for v in version) in SUPPORTED_PYTHONS:
            return found
    supported = ", ".join(f"{a}.{b}" for a, b in SUPPORTED_PYTHONS)
    raise SystemExit(f"no Python {supported} found for TensorFlow 2.15; pass --python PATH.")


def setup(path: Path | None = None, *, python: str | None = None) -> dict[str, str]:
    """Build (or complete) the env at ``path`` and check that both peers import.

    Returns the versions the runner reports; writes them to :data:`READY_FILE`.
    """
    path = (path or env_path()).expanduser()
    if not env_python(path).exists():
        subprocess.run([_find_python(python), "-m", "venv", str(path)], check=True)
    pip = [str(env_python(path)), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, *TF_STACK, *PEER_DEPENDENCIES], check=True)
    subprocess.run([*pip, "--no-deps", *PEERS], check=True)
    check = subprocess.run([str(env_python(path)), str(RUNNER), "--check"], check=True,
                           capture_output=True, text=True)
    versions = json.loads(check.stdout.strip().splitlines()[-1])
    (path / READY_FILE).write_text(json.dumps(versions, indent=1))
    return versions


def add_parser(sub) -> None:
    """``scfill peers setup [--path DIR] [--python EXE]``: the CLI's ``peers`` subcommand."""
    p = sub.add_parser("peers", help="set up the peers that need their own env (DCA, "
                       "DeepImpute)", description="Build the virtualenv DCA 0.3.4 and "
                       "DeepImpute 1.2 run in (TensorFlow 2.15 from PyPI, about 500 MB), "
                       "or show whether it is ready.")
    p.add_argument("action", choices=("setup", "status"), help="setup: build the env; "
                   "status: say whether it is ready")
    p.add_argument("--path", type=Path, default=None,
                   help=f"env folder (default: ${ENV_VARIABLE} or {DEFAULT_PATH})")
    p.add_argument("--python", default=None,
                   help="interpreter for the env (Python 3.9-3.11; default: found)")


def run(args) -> int:
    """Run ``scfill peers``; exit code 0 when the env is ready."""
    path = (args.path or env_path()).expanduser()
    if args.action == "setup":
        versions = setup(path, python=args.python)
        print(f"TensorFlow peers ready at {path}: "
              + ", ".join(f"{k} {v}" for k, v in versions.items()))
        return 0
    problem = missing_env(path)
    print(problem or f"TensorFlow peers ready at {path}: {(path / READY_FILE).read_text()}")
    return 1 if problem else 0
