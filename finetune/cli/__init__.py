"""The ``causalmixft`` command line.

Each subcommand is one module of this package (`finetune.cli.fit_scm`, ...) whose
heavy imports happen only when that subcommand runs, so ``causalmixft sample`` never
pays for importing torch or tabpfn. A subcommand module supplies two functions::

    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int: ...

and one row in ``SUBCOMMANDS`` below. The modules map flags onto library calls and
hold no logic of their own. Bad input (a file, a column, a flag value) raises one of
the errors in ``_USER_ERRORS`` with a message naming it and the fix; `main` prints
that message on one line and exits with status 2.

Only `demo` and `bench` import `benchmarks` (the vendored datasets and the benchmark
scripts), lazily, inside `run`/`add_arguments`: that is the one declared exception
to "finetune never imports benchmarks", and a test checks it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("finetune.cli.demo", "run the main job offline on the embedded defaults"),
    "bench": ("finetune.cli.bench", "run a benchmark: throughput [--quick]"),
    "fit-scm": (
        "finetune.cli.fit_scm",
        "fit an SCM ensemble to a table (CSV/Parquet)",
    ),
    "sample": (
        "finetune.cli.sample",
        "draw rows from a fitted model directory to CSV/Parquet",
    ),
    "pretrain": (
        "finetune.cli.pretrain",
        "pre-train the default checkpoint on the SCM prior",
    ),
    "finetune": (
        "finetune.cli.finetune",
        "fine-tune the TFM on a CSV with CausalMixFT",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """Builds the argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="causalmixft",
        description="Causal data augmentation for tabular foundation models.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        # argparse needs the arguments now; the module import is cheap for all but the
        # heavy work, which each module defers to `run`.
        module = importlib.import_module(module_name)
        module.add_arguments(sp)
        sp.set_defaults(_module=module_name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``causalmixft`` console script."""
    args = build_parser().parse_args(argv)
    importlib.import_module("jaxscm").enable_compilation_cache()  # see README
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except _USER_ERRORS as e:
        # Bad input (a file, a column, a flag value): the message names it and the fix,
        # so print that alone; anything else is a bug and keeps its traceback.
        print(f"causalmixft {args.command}: error: {e}", file=sys.stderr)
        return 2


_USER_ERRORS = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    NotImplementedError,
)
