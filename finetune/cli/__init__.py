"""The ``causalmixft`` command line.

Each subcommand is one module of this package (`finetune.cli.fit_scm`, ...) whose
heavy imports happen only when that subcommand runs, so ``causalmixft sample`` never
pays for importing torch or tabpfn. A subcommand module supplies two functions::

    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int: ...

and one row in ``SUBCOMMANDS`` below. The modules map flags onto library calls and
hold no logic of their own. Bad input (a file, a column, a flag value) raises one of
the errors in ``_USER_ERRORS`` with a message naming it and the fix; `main` prints
that message on one line and exits with status 2. SIGTERM unwinds like Ctrl-C
(every temporary file is removed, exit status 143); the shared flag types below
(`seed`, `probability`, ...) name the flag in their errors.

Only `demo` and `bench` import `benchmarks` (the vendored datasets and the benchmark
scripts), lazily, inside `run`/`add_arguments`: that is the one declared exception
to "finetune never imports benchmarks", and a test checks it.
"""

from __future__ import annotations

import argparse
import importlib
import math
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

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
    "report": (
        "finetune.cli.report",
        "quality report of a synthetic table against the real one",
    ),
    "augment": (
        "finetune.cli.augment",
        "fit a generator (smote, ctgan, ...) to a table and write new rows",
    ),
}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, as every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Builds the argument parser with every subcommand registered."""
    parser = _Parser(
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


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM, so the run unwinds as on Ctrl-C."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``causalmixft`` console script."""
    args = build_parser().parse_args(argv)
    importlib.import_module("jaxscm").enable_compilation_cache()  # see README
    module = importlib.import_module(args._module)
    try:
        with _sigterm_unwinds():
            return int(module.run(args) or 0)
    except Terminated:
        print("terminated (SIGTERM); no partial output was left", file=sys.stderr)
        return 128 + signal.SIGTERM
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


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While the block runs, SIGTERM raises `Terminated` (in the main thread only)."""

    def handler(signum: int, frame: object) -> None:
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: signals stay as they are
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _typed(
    flag: str, convert: Callable[[str], float], ok: Callable[[float], bool], need: str
) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"must be {need}, got {text!r}")
        return value

    parse.__name__ = flag  # argparse names the type in some messages
    return parse


def seed_type(flag: str = "--seed") -> Callable[[str], float]:
    """An argparse type: an integer >= 0 (a seed), naming `flag` when it is not."""
    return _typed(flag, int, lambda v: v >= 0, "an integer >= 0")


def count_type(flag: str, minimum: int = 1) -> Callable[[str], float]:
    """An argparse type: an integer >= `minimum`, naming `flag` when it is not."""
    return _typed(flag, int, lambda v: v >= minimum, f"an integer >= {minimum}")


def probability_type(flag: str) -> Callable[[str], float]:
    """An argparse type: a number strictly between 0 and 1, naming `flag`."""
    return _typed(flag, float, lambda v: 0 < v < 1, "a number in (0, 1)")


def positive_type(flag: str, *, zero: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number > 0 (>= 0 with `zero`), naming `flag`."""
    return _typed(
        flag,
        float,
        lambda v: math.isfinite(v) and (v >= 0 if zero else v > 0),
        "a finite number >= 0" if zero else "a finite number > 0",
    )


def check_device(device: str) -> None:
    """Refuses a torch device this build cannot use, naming ``--device`` and the fix.

    Raises:
      ValueError: an unknown device name, or a CUDA/MPS device that is not available.
    """
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as err:
        raise ValueError(
            f"--device {device!r} is not a torch device; use cpu, cuda or cuda:N"
        ) from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"--device {device!r}: this torch build has no usable CUDA device; use "
            "--device cpu, or install a CUDA build of torch (see README)"
        )
    if dev.type == "cuda" and dev.index is not None:
        if dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"--device {device!r}: only {torch.cuda.device_count()} CUDA "
                "device(s); pick one of them"
            )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device!r}: MPS is not available; use --device cpu")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {device!r}: use cpu, cuda or cuda:N")


def parse_classes(text: str | None, flag: str = "--classes") -> Any:
    """The ``--classes`` value as a class request: None, "balanced" or a mapping.

    Args:
      text: the flag's value (None: not given).
      flag: the flag, for the error (``--synthetic-classes`` for finetune).

    Raises:
      ValueError: naming the flag and the form it takes.

    Examples:
      >>> parse_classes("yes=0.7,no=0.3")
      {'yes': 0.7, 'no': 0.3}
    """
    if text is None or text == "balanced":
        return text
    shares: dict[str, float] = {}
    for part in text.split(","):
        label, sep, share = part.partition("=")
        try:
            value = float(share)
        except ValueError:
            value = float("nan")
        if not sep or not label.strip() or not value >= 0 or value == float("inf"):
            raise ValueError(
                f"{flag} {text!r}: give 'balanced' or label=share pairs with "
                f"shares >= 0, e.g. yes=0.7,no=0.3 (bad part {part!r})"
            )
        shares[label.strip()] = value
    return shares


def parse_do(items: Sequence[str] | None) -> dict[str, str]:
    """Repeated ``--do col=value`` flags as {column: value text} (None: none).

    The values stay text: `jaxscm.do` reads a categorical column's label and the
    other kinds' numbers (and names the column when a value does not fit).

    Raises:
      ValueError: naming ``--do`` and the form it takes, or a column given twice.

    Examples:
      >>> parse_do(["age=40", "job=admin"])
      {'age': '40', 'job': 'admin'}
    """
    out: dict[str, str] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(
                f"--do {item!r}: give column=value, e.g. --do age=40 (repeat the flag "
                "for more columns)"
            )
        if name.strip() in out:
            raise ValueError(f"--do names column {name.strip()!r} twice")
        out[name.strip()] = value.strip()
    return out
