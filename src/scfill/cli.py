"""Command line: ``scfill impute | simulate | evaluate | benchmark | methods | demo``.

Each subcommand is a pair of functions: ``_add_<name>_parser`` declares its arguments and
``_run_<name>`` runs it. Bad input ends with a message on stderr and exit code 2; paths are
checked before torch, scanpy or anndata are imported, so ``--help`` and a wrong path answer
at once. Ctrl-C and SIGTERM end a run with one line and exit code 128 + the signal number,
leaving no partial output (:func:`scfill.io.atomic_path`).
"""

from __future__ import annotations

import argparse
import inspect
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from scfill._logging import logger, set_verbosity
from scfill.errors import InputError, Interrupted, TrainingError
from scfill.external import tensorflow_env
from scfill.paths import OUTPUT_SUFFIXES, check_input, check_output, suffix

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
#: Largest seed numpy's legacy seeding accepts (as :data:`scfill.validate.MAX_SEED`; that
#: module imports anndata, which the parser must not).
MAX_SEED = 2**32 - 1
#: Signals that stop a run cleanly.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _seed(text: str) -> int:
    """argparse type of ``--seed``: a whole number in 0 .. 2**32 − 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (use e.g. 0 or "
                                         "42)") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{value} is out of range (use 0 to {MAX_SEED})")
    return value


def _add_verbosity_options(parser: argparse.ArgumentParser, *, default) -> None:
    """``-q``/``-v``; a subcommand's copy defaults to SUPPRESS so it never resets the flags
    given before the subcommand."""
    parser.add_argument("-q", "--quiet", action="store_true", default=default,
                        help="only warnings and errors, no progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", default=default,
                        help="debug log lines and tracebacks (methods: also list parameters)")


def _add_common_run_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every subcommand that runs a method."""
    parser.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="torch device (default auto: CUDA when present)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="method parameter, repeatable (see `scfill methods -v`)")


def _add_impute_parser(sub) -> None:
    p = sub.add_parser("impute", help="impute dropouts in a count matrix",
                       description="Impute dropouts; writes layers 'imputed' and "
                       "'dropout_probability' and uns['scfill'] (h5ad), or the imputed matrix "
                       "in the input's orientation (csv/tsv).")
    p.add_argument("input", help="h5ad, 10x .h5, 10x mtx folder, csv/tsv")
    p.add_argument("-o", "--output", required=True, help="output .h5ad, .csv or .tsv")
    p.add_argument("--method", default=None,
                   help="method name (see `scfill methods`; default: the default method), or "
                   "auto: choose on held-out data and refit the best")
    p.add_argument("--candidates", help="with --method auto: comma-separated methods to try "
                   "(default: scfill's own, fast ones first)")
    p.add_argument("--time-budget", type=float, help="with --method auto: seconds for "
                   "trying the candidates (default 900)")
    p.add_argument("--layer", help="h5ad layer holding the counts (default X)")
    p.add_argument("--labels-key", help="obs column of cell groups (default: pre-cluster)")
    p.add_argument("--transpose", action=argparse.BooleanOptionalAction, default=None,
                   help="text input has cells as rows (--no-transpose: genes as rows; "
                   "default: genes x cells unless the names say the rows are cells)")
    p.add_argument("--n-top-genes", type=int, help="impute only the most variable genes")
    p.add_argument("--counts", action="store_true", help="also write layer 'imputed_counts'")
    p.add_argument("--plots", metavar="DIR", help="also write figures of the result to DIR "
                   "(dropout probabilities, genes before/after, embedding; scfill.pl)")
    p.add_argument("--no-dropout-layer", action="store_true",
                   help="do not write layer 'dropout_probability'")
    p.add_argument("--save-model", metavar="DIR",
                   help="save the fitted model to DIR (use it later with --model DIR)")
    p.add_argument("--model", metavar="DIR",
                   help="impute with the model saved in DIR, without refitting")
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing output (and --save-model, --plots folders)")
    _add_common_run_options(p)


def _run_impute(args: argparse.Namespace) -> int:
    check_input(args.input)
    output = check_output(args.output, force=args.force, suffixes=OUTPUT_SUFFIXES,
                          inputs=[args.input])
    import scfill
    from scfill.io import h5ad_shape, read_h5ad_without_layers
    from scfill.pipeline import DEFAULT_METHOD, STREAM_CELLS, impute_to_file
    from scfill.utils import parse_param_strings

    if args.plots:
        scfill.pl.check_plot_folder(args.plots, force=args.force)
    _check_model_folder(args.save_model, force=args.force)
    if args.model is not None:
        if args.method is not None or args.param:
            raise InputError("--model uses a saved model; --method and --param do not apply.",
                             fix="drop --method/--param, or drop --model to fit a new one.")
        method, params = scfill.load_model(args.model), None
    elif (args.method or DEFAULT_METHOD).lower() == "auto":
        from scfill.select import auto_params

        if args.save_model is not None:
            raise InputError("--save-model cannot be used with --method auto.",
                             fix="run the chosen method by name with --save-model.")
        method, params = "auto", auto_params(args.candidates, args.time_budget, args.param)
    else:
        cls = scfill.get_method(args.method or DEFAULT_METHOD)
        method, params = cls(**parse_param_strings(cls, args.param)), None
    if args.save_model is not None and not method.can_save():
        raise InputError(f"method {method.name!r} cannot be saved.",
                         fix="drop --save-model (refit it on each dataset).")
    # the figures need the layers in memory: with --plots the output is not streamed
    streamable = output.suffix.lower() == ".h5ad" and not args.plots
    on_disk: list[str] = []  # input layers copied file to file into a streamed output
    lean = streamable and suffix(args.input) == ".h5ad" and \
        h5ad_shape(args.input)[0] >= STREAM_CELLS
    if lean:
        adata, on_disk = read_h5ad_without_layers(args.input, layer=args.layer)
    else:
        cells_axis = None if args.transpose is None else (0 if args.transpose else 1)
        adata = scfill.read(args.input, layer=args.layer, cells_axis=cells_axis)
    options = {"labels_key": args.labels_key, "seed": args.seed, "device": args.device,
               "n_top_genes": args.n_top_genes, "counts_layer": args.counts,
               "dropout_layer": not args.no_dropout_layer}
    from scfill.nn import distributed

    main = distributed.is_main_process()  # under torchrun, rank 0 alone writes
    if main and streamable and adata.n_obs >= STREAM_CELLS:
        impute_to_file(adata, output, method, force=args.force, params=params,
                       copy_layers_from=(args.input, on_disk) if lean else None,
                       x_from=("X" if args.layer is None else f"layers/{args.layer}")
                       if lean else None, **options)
    else:
        scfill.impute(adata, method, params=params, **options)
        if main:
            scfill.write(adata, output, force=args.force)
    if main:
        if args.save_model is not None:
            method.save(args.save_model, overwrite=args.force)
        if "auto" in adata.uns["scfill"]:
            from scfill.select import format_uns_table

            print(format_uns_table(adata.uns["scfill"]["auto"]))
        saved = f", model saved to {args.save_model}" if args.save_model else ""
        print(f"wrote {output} ({adata.n_obs} cells x {adata.n_vars} genes, method "
              f"{adata.uns['scfill']['method']}, {adata.uns['scfill']['runtime_s']:.1f} s"
              f"{saved})")
        if args.plots:
            files = scfill.pl.save_impute_plots(adata, args.plots, color=args.labels_key,
                                                seed=args.seed)
            print(f"wrote {', '.join(str(f) for f in files)}")
    distributed.teardown()
    return 0


def _check_model_folder(folder: str | None, *, force: bool) -> None:
    """Refuse a non-empty --save-model folder before any work (unless --force)."""
    if folder is None:
        return
    path = Path(folder)
    if path.exists() and (not path.is_dir() or any(path.iterdir())) and not force:
        raise InputError("the --save-model folder already exists and is not empty.",
                         fix="choose another folder or pass --force.", source=str(path))


def _add_methods_parser(sub) -> None:
    sub.add_parser("methods", help="list the imputation methods (-v: with their parameters)")


def _run_methods(args: argparse.Namespace) -> int:
    from scfill.methods.base import registered

    for name, cls in sorted(registered().items()):
        print(f"{name:12s} {cls.description}")
        if getattr(args, "verbose", False):
            for pname, param in inspect.signature(cls.__init__).parameters.items():
                if pname != "self":
                    print(f"{'':14s}{pname}={param.default!r}")
    return 0


def _add_evaluate_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="score a method under one of the seeds' protocols",
                       description="Degrade a dataset by a protocol, impute, and score: one "
                       "CSV row per repeat x metric, and a mean ± sd table on stdout.")
    p.add_argument("--method", required=True, help="method name (see `scfill methods`)")
    p.add_argument("--dataset", required=True,
                   help="a count file (h5ad, mtx, csv...) or preset:NAME (simulated)")
    p.add_argument("--protocol", default="mask-nonzero:0.3",
                   help="truth | downstream | mask-nonzero:F | mask-expressed:F | mcv[:P] "
                   "(default mask-nonzero:0.3)")
    p.add_argument("--repeats", type=int, default=5, help="repeats (default 5)")
    p.add_argument("--labels-key", help="obs column given to the method as its groups "
                   "(default: it pre-clusters; never pass true labels when scoring clusters)")
    p.add_argument("--truth-key", help="obs column of true labels for clustering scores "
                   "(default: label, group or cell_type)")
    p.add_argument("--time-key", help="numeric obs column of true times (trajectory scores)")
    p.add_argument("--clustering", default="kmeans", choices=("kmeans", "leiden", "louvain"))
    p.add_argument("--resolution", default="1.0", type=_resolution,
                   help="Leiden/Louvain resolution: a number (default 1.0) or n_labels (the "
                   "resolution that gives as many clusters as true labels)")
    p.add_argument("--cells", type=int, help="cells of a preset:NAME simulation")
    p.add_argument("--genes", type=int, help="genes of a preset:NAME simulation")
    p.add_argument("--n-top-genes", type=int, help="impute only the most variable genes "
                   "(the others are scored as observed; default: the method's)")
    p.add_argument("-o", "--output", required=True, help="results CSV (tidy rows)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    _add_common_run_options(p)


def _resolution(value: str) -> float | str:
    if value == "n_labels":
        return value
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not number > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number or n_labels, got "
                                         f"{value!r}")
    return number


def _run_evaluate(args: argparse.Namespace) -> int:
    if not args.dataset.startswith("preset:"):
        check_input(args.dataset)
    output = check_output(args.output, force=args.force, suffixes=(".csv",),
                          inputs=[args.dataset])
    import scfill
    from scfill.evaluate.run import (
        evaluate_repeats,
        format_summary,
        load_dataset,
        summarize,
    )
    from scfill.io import atomic_path
    from scfill.utils import parse_param_strings

    params = parse_param_strings(scfill.get_method(args.method), args.param)
    adata, name = load_dataset(args.dataset, seed=args.seed, n_cells=args.cells,
                               n_genes=args.genes)
    results = evaluate_repeats(adata, args.method, protocol=args.protocol,
                               repeats=args.repeats, seed=args.seed, params=params,
                               labels_key=args.labels_key, truth_key=args.truth_key,
                               time_key=args.time_key, clustering=args.clustering,
                               resolution=args.resolution, dataset=name, device=args.device,
                               n_top_genes=args.n_top_genes)
    with atomic_path(output, force=args.force) as tmp:
        results.to_csv(tmp, index=False)
    print(format_summary(summarize(results)))
    print(f"wrote {output} ({len(results)} rows)")
    return 0


def _add_demo_parser(sub) -> None:
    p = sub.add_parser("demo", help="simulate, impute, evaluate and report on a small example")
    p.add_argument("--out", default="scfill-demo", help="folder for the results")
    p.add_argument("--method", default=None, help="method (default: the default method)")
    p.add_argument("--cells", type=int, default=1000)
    p.add_argument("--genes", type=int, default=500)
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--force", action="store_true", help="overwrite an existing folder")


def _run_demo(args: argparse.Namespace) -> int:
    out = check_output(args.out, folder=True)
    if out.exists() and not args.force:
        raise InputError("demo folder already exists.", fix="pass --force or --out DIR.",
                         source=str(out))
    from scfill.demo import run_demo

    report = run_demo(args.out, method=args.method, n_cells=args.cells, n_genes=args.genes,
                      seed=args.seed, force=args.force)
    print(f"demo finished: {report}")
    return 0


def _add_simulate_parser(sub) -> None:
    p = sub.add_parser("simulate", help="simulate counts with ground truth (Splatter model)",
                       description="Simulate a count matrix with Splatter's model: X holds the "
                       "observed counts, layers 'true_counts' and 'dropout' the ground truth.")
    p.add_argument("-o", "--output", required=True, help="output .h5ad")
    p.add_argument("--preset", help="a seed paper's simulation (maskclass-equal, cnnimpute, "
                   "scgacl-1, ...; see scfill.simulate.PRESETS)")
    p.add_argument("--cells", type=int, help="number of cells")
    p.add_argument("--genes", type=int, help="number of genes")
    p.add_argument("--groups", type=_floats, help="group probabilities, e.g. 0.5,0.3,0.2")
    p.add_argument("--batches", type=_floats, help="cells per batch, e.g. 100,100")
    p.add_argument("--dropout-type", choices=("none", "experiment", "batch", "group", "cell"))
    p.add_argument("--dropout-mid", type=_floats, help="dropout midpoint(s), comma-separated")
    p.add_argument("--dropout-shape", type=_floats, help="dropout shape(s), comma-separated")
    p.add_argument("--de-prob", type=_floats, help="DE probability (one, or one per group)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of "
                                         "numbers") from err


def _run_simulate(args: argparse.Namespace) -> int:
    output = check_output(args.output, force=args.force, suffixes=OUTPUT_SUFFIXES)
    import scfill

    params = {name: value for name, value in (
        ("group_prob", args.groups), ("dropout_type", args.dropout_type),
        ("dropout_mid", args.dropout_mid), ("dropout_shape", args.dropout_shape),
        ("de_prob", args.de_prob)) if value is not None}
    if args.batches is not None:
        if any(b != int(b) for b in args.batches):
            raise InputError(f"--batches {args.batches} are not whole numbers of cells.",
                             fix="give cells per batch, e.g. --batches 100,100.")
        params["batch_cells"] = tuple(int(b) for b in args.batches)
    adata = scfill.simulate(preset=args.preset, n_cells=args.cells, n_genes=args.genes,
                            seed=args.seed, **params)
    scfill.write(adata, output, force=args.force)
    info = adata.uns["simulation"]
    print(f"wrote {output} ({adata.n_obs} cells x {adata.n_vars} genes; zeros "
          f"{100 * info['zero_fraction_true']:.1f} % true, "
          f"{100 * info['zero_fraction_observed']:.1f} % observed)")
    return 0


def _add_benchmark_parser(sub) -> None:
    p = sub.add_parser("benchmark", help="compare methods on datasets and protocols",
                       description="Run every method x dataset x protocol x repeat, each in "
                       "its own process with a time limit; write results.csv, runs.csv, "
                       "report.md and figures/ to --out. A re-run skips finished runs.")
    p.add_argument("--methods", default="all", help="comma-separated method names, or all")
    p.add_argument("--datasets", required=True, help="comma-separated h5ad files, folders of "
                   "h5ad files and preset:NAME simulations")
    p.add_argument("--protocols", default="mask-nonzero:0.1",
                   help="comma-separated protocols (truth, mask-nonzero:F, mask-expressed:F, "
                   "downstream, mcv[:P])")
    p.add_argument("--repeats", type=int, default=3, help="repeats per cell (default 3)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--max-cells", type=int, default=2000, help="subsample datasets to this "
                   "many cells (random; presets are simulated at this size; 0: all)")
    p.add_argument("--max-genes", type=int, default=2000, help="keep this many most variable "
                   "genes (0: all)")
    p.add_argument("--n-top-genes", type=int, help="methods impute only the most variable "
                   "genes of each dataset (the others are scored as observed; default: "
                   "each method's)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per run "
                   "(default 3600)")
    p.add_argument("--threads", type=int, help="threads per run (default: inherit)")
    p.add_argument("--umap-dataset", help="dataset shown as UMAPs (default: the first; "
                   "'none' for no UMAPs)")
    p.add_argument("--seed", type=_seed, default=0, help="base seed (default 0)")
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"),
                   help="torch device of the methods (default cpu)")
    p.add_argument("--param", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="method parameter, repeatable (e.g. scvi.epochs=50)")
    p.add_argument("--force", action="store_true", help="redo every run")
    p.add_argument("--retry-failed", action="store_true",
                   help="redo failed, crashed and timed-out runs")
    p.add_argument("--report-only", action="store_true",
                   help="run nothing; report the runs finished so far")


def _run_benchmark(args: argparse.Namespace) -> int:
    check_output(args.out, folder=True)
    import shlex

    import scfill
    from scfill.bench.runner import BenchmarkConfig, run_benchmark
    from scfill.utils import parse_param_strings

    def split(text: str) -> list[str]:
        return [item.strip() for item in text.split(",") if item.strip()]

    by_method: dict[str, list[str]] = {}
    for pair in args.param:
        method, dot, rest = pair.partition(".")
        if not dot or "=" not in rest:
            raise InputError(f"parameter {pair!r} is not of the form METHOD.KEY=VALUE.",
                             fix="write e.g. --param scvi.epochs=50.")
        by_method.setdefault(method.lower(), []).append(rest)
    params = {m: parse_param_strings(scfill.get_method(m), pairs)
              for m, pairs in by_method.items()}
    umap = args.umap_dataset
    config = BenchmarkConfig(
        methods=split(args.methods), datasets=split(args.datasets),
        protocols=split(args.protocols), out=Path(args.out), repeats=args.repeats,
        seed=args.seed, max_cells=args.max_cells or None, max_genes=args.max_genes or None,
        n_top_genes=args.n_top_genes,
        timeout_s=args.timeout, threads=args.threads, params=params, device=args.device,
        force=args.force, retry_failed=args.retry_failed, report_only=args.report_only,
        umap_dataset="" if umap and umap.lower() == "none" else umap)
    report = run_benchmark(config, command=shlex.join(["scfill", *sys.argv[1:]]))
    print(f"wrote {report}")
    return 0


#: name → (parser builder, runner); other modules' subcommands are added here.
SUBCOMMANDS: dict[str, tuple[Callable, Callable[[argparse.Namespace], int]]] = {
    "impute": (_add_impute_parser, _run_impute),
    "simulate": (_add_simulate_parser, _run_simulate),
    "methods": (_add_methods_parser, _run_methods),
    "evaluate": (_add_evaluate_parser, _run_evaluate),
    "demo": (_add_demo_parser, _run_demo),
    "benchmark": (_add_benchmark_parser, _run_benchmark),
    "peers": (tensorflow_env.add_parser, tensorflow_env.run),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``scfill`` argument parser with every subcommand."""
    from scfill import __version__

    parser = argparse.ArgumentParser(prog="scfill", description="Recover dropout events in "
                                     "single-cell RNA-seq data.")
    _add_verbosity_options(parser, default=False)
    parser.add_argument("--version", action="version", version=f"scfill {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add_parser, _ in SUBCOMMANDS.values():
        add_parser(sub)
    for subparser in sub.choices.values():  # -q/-v after any subcommand too
        _add_verbosity_options(subparser, default=argparse.SUPPRESS)
    return parser


@contextmanager
def _stop_signals_raise() -> Iterator[None]:
    """While running, SIGINT and SIGTERM raise :class:`Interrupted` (once), so every
    ``finally`` runs and the temporary output is removed; later signals are ignored while
    that cleanup runs. The previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; signals go to it anyway
        return
    raised = []

    def handler(signum: int, frame) -> None:
        if not raised:
            raised.append(signum)
            raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _is_out_of_memory(err: BaseException) -> bool:
    """A CUDA (or other torch device) out-of-memory error, without importing torch."""
    return type(err).__name__ == "OutOfMemoryError" or "out of memory" in str(err).lower()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 failure, 2 bad input,
    128 + signal number when interrupted)."""
    with _stop_signals_raise():
        command, output, before = "scfill", None, None
        try:
            try:
                args = build_parser().parse_args(argv)
            except SystemExit as done:  # --help, --version, or a usage error (code 2)
                return int(done.code or 0)
            command, output = f"scfill {args.command}", getattr(args, "output", None)
            before = _identity(output)
            verbose = args.verbose and not args.quiet
            set_verbosity(logging.DEBUG if verbose else
                          logging.WARNING if args.quiet else logging.INFO)
            return _run(args, command, verbose)
        except KeyboardInterrupt as err:
            signum = err.signum if isinstance(err, Interrupted) else int(signal.SIGINT)
            name = signal.Signals(signum).name
            if output is not None and _identity(output) not in (None, before):
                # the signal came in the last instant, after the output was put in place
                print(f"{command}: interrupted ({name}) after {output} was complete.",
                      file=sys.stderr)
            else:
                print(f"{command}: interrupted ({name}); stopped.", file=sys.stderr)
            return 128 + signum


def _identity(path: str | None) -> tuple[int, int] | None:
    """(inode, mtime) of the file at ``path``, or None when there is none."""
    try:
        info = Path(path).stat() if path is not None else None
    except OSError:
        return None
    return None if info is None or not Path(path).is_file() else (info.st_ino,
                                                                   info.st_mtime_ns)


def _run(args: argparse.Namespace, command: str, verbose: bool) -> int:
    """The subcommand, with every expected failure turned into one line and an exit code."""
    try:
        return SUBCOMMANDS[args.command][1](args)
    except InputError as err:
        print(f"{command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TrainingError as err:
        print(f"{command}: training failed: {err}", file=sys.stderr)
        return EXIT_FAILED
    except (MemoryError, RuntimeError) as err:
        if isinstance(err, RuntimeError) and not _is_out_of_memory(err):
            raise
        if verbose:
            logger.exception("out of memory")
        if isinstance(err, MemoryError):
            print(f"{command}: out of memory. Try fewer cells, fewer genes (--n-top-genes) or "
                  "a smaller batch (--param batch_size=...).", file=sys.stderr)
        else:
            print(f"{command}: out of device memory ({str(err).splitlines()[0]}). Try a "
                  "smaller batch (--param batch_size=...), fewer genes (--n-top-genes), or "
                  "--device cpu.", file=sys.stderr)
        return EXIT_FAILED
    except OSError as err:
        if verbose:
            logger.exception("system error")
        print(f"{command}: error: {err}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
