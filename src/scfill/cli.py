"""Command line: ``scfill impute | simulate | evaluate | benchmark | methods | demo``.

Each subcommand is a pair of functions: ``_add_<name>_parser`` declares its arguments and
``_run_<name>`` runs it. Bad input ends with a message on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from scfill._logging import logger, set_verbosity
from scfill.errors import InputError, TrainingError

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def _add_common_run_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every subcommand that runs a method."""
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
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
                   help="method name (see `scfill methods`; default: the default method)")
    p.add_argument("--layer", help="h5ad layer holding the counts (default X)")
    p.add_argument("--labels-key", help="obs column of cell groups (default: pre-cluster)")
    p.add_argument("--transpose", action="store_true",
                   help="text input has cells as rows (default: genes x cells)")
    p.add_argument("--n-top-genes", type=int, help="impute only the most variable genes")
    p.add_argument("--counts", action="store_true", help="also write layer 'imputed_counts'")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    _add_common_run_options(p)


def _run_impute(args: argparse.Namespace) -> int:
    import scfill
    from scfill.methods.params import parse_param_strings

    output = Path(args.output)
    if output.exists() and not args.force:
        raise InputError("output already exists.", fix="choose another path or pass --force.",
                         source=str(output))
    from scfill.pipeline import DEFAULT_METHOD

    method = args.method or DEFAULT_METHOD
    params = parse_param_strings(scfill.get_method(method), args.param)
    adata = scfill.read(args.input, layer=args.layer, cells_axis=0 if args.transpose else None)
    scfill.impute(adata, method, labels_key=args.labels_key, seed=args.seed,
                  device=args.device, params=params, n_top_genes=args.n_top_genes,
                  counts_layer=args.counts)
    scfill.write(adata, output, force=args.force)
    print(f"wrote {output} ({adata.n_obs} cells x {adata.n_vars} genes, method "
          f"{method}, {adata.uns['scfill']['runtime_s']:.1f} s)")
    return 0


def _add_methods_parser(sub) -> None:
    p = sub.add_parser("methods", help="list the imputation methods")
    p.add_argument("-v", "--verbose", action="store_true", help="also list parameters")


def _run_methods(args: argparse.Namespace) -> int:
    from scfill.methods.base import registered

    for name, cls in sorted(registered().items()):
        print(f"{name:12s} {cls.description}")
        if args.verbose:
            for pname, param in inspect.signature(cls.__init__).parameters.items():
                if pname != "self":
                    print(f"{'':14s}{pname}={param.default!r}")
    return 0


def _add_demo_parser(sub) -> None:
    p = sub.add_parser("demo", help="simulate, impute, evaluate and report on a small example")
    p.add_argument("--out", default="scfill-demo", help="folder for the results")
    p.add_argument("--method", default=None, help="method (default: the default method)")
    p.add_argument("--cells", type=int, default=1000)
    p.add_argument("--genes", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="overwrite an existing folder")


def _run_demo(args: argparse.Namespace) -> int:
    from scfill.demo import run_demo

    report = run_demo(args.out, method=args.method, n_cells=args.cells, n_genes=args.genes,
                      seed=args.seed, force=args.force)
    print(f"demo finished: {report}")
    return 0


#: name → (parser builder, runner); other modules' subcommands are added here.
SUBCOMMANDS: dict[str, tuple[Callable, Callable[[argparse.Namespace], int]]] = {
    "impute": (_add_impute_parser, _run_impute),
    "methods": (_add_methods_parser, _run_methods),
    "demo": (_add_demo_parser, _run_demo),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``scfill`` argument parser with every subcommand."""
    from scfill import __version__

    parser = argparse.ArgumentParser(prog="scfill", description="Recover dropout events in "
                                     "single-cell RNA-seq data.")
    parser.add_argument("--version", action="version", version=f"scfill {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="only warnings and errors, no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)
    for add_parser, _ in SUBCOMMANDS.values():
        add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 failure, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    set_verbosity(logging.WARNING if args.quiet else logging.INFO)
    try:
        return SUBCOMMANDS[args.command][1](args)
    except InputError as err:
        print(f"scfill {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TrainingError as err:
        print(f"scfill {args.command}: training failed: {err}", file=sys.stderr)
        return EXIT_FAILED
    except MemoryError:
        logger.exception("out of memory")
        print(f"scfill {args.command}: out of memory; try fewer cells, --n-top-genes, or a "
              "smaller batch size.", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
