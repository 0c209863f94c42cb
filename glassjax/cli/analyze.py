"""``glassjax analyze``: the analysis kernels on trajectories and structures.

Analyses are grouped in modules that each define ``register_analyses(subparsers)`` and add
one sub-command per analysis (``glassjax analyze coordination ...``).
"""

from __future__ import annotations

ANALYSIS_CLI_MODULES = (
    "glassjax.cli.analyze_network",  # coordination, rings, ring/unit tracking
    "glassjax.cli.analyze_structure",  # local strain, g(r), S(q), MSD/diffusion, Tg, force histograms
    "glassjax.cli.analyze_deformation",  # stress-strain, 4B and 3-rings vs strain of deformation runs
)


def register(subparsers) -> None:
    parser = subparsers.add_parser("analyze", help="structure and dynamics analyses (CSV + PNG)",
                                   description=__doc__)
    from glassjax.cli import register_modules

    sub = parser.add_subparsers(dest="analysis", metavar="ANALYSIS")
    register_modules(sub, ANALYSIS_CLI_MODULES, "register_analyses")
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
