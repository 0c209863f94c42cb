"""The ``glassjax`` command line.

Each stage owns one module in this package that defines ``register(subparsers)``; the
module adds its sub-command(s) with ``set_defaults(func=handler)``.  Handlers receive the
parsed ``argparse.Namespace`` and return an exit code (``None`` means 0).  Modules keep
heavy imports (jax, flax) inside their handlers so ``glassjax --help`` stays fast.

User errors (:class:`glassjax.errors.GlassJaxError`) are printed as one line on stderr and
exit with status 2; set ``GLASSJAX_DEBUG=1`` to see the full traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Optional, Sequence

from glassjax import __version__
from glassjax.errors import GlassJaxError

# Sub-command modules, in the order the data flows.
SUBCOMMAND_MODULES = (
    "glassjax.cli.data",
    "glassjax.cli.model",
    "glassjax.cli.train",
    "glassjax.cli.simulate",
    "glassjax.cli.analyze",
    "glassjax.cli.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glassjax",
        description="Train, simulate and analyse oxide glasses with DeepPot-SE potentials in JAX.",
    )
    parser.add_argument("--version", action="version", version=f"glassjax {__version__}")
    parser.add_argument(
        "--x64",
        action="store_true",
        help="run in float64 (JAX x64 mode); default is float32 unless a command says otherwise",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    register_modules(sub, SUBCOMMAND_MODULES, "register")
    return parser


def register_modules(subparsers, module_names, function: str) -> None:
    """Call ``module.<function>(subparsers)`` for each named module, in order."""
    for name in module_names:
        getattr(importlib.import_module(name), function)(subparsers)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0 if args.command is None else 2
    if args.x64:
        from glassjax.precision import enable_x64

        enable_x64()
    try:
        rc = args.func(args)
    except GlassJaxError as exc:
        if os.environ.get("GLASSJAX_DEBUG"):
            raise
        print(f"glassjax {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"glassjax {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0 if rc is None else int(rc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
