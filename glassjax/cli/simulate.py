"""``glassjax simulate RECIPE.toml``: run (or resume) a simulation recipe."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate", help="run an MD recipe (melt-quench, NPT, minimisation) from a TOML file; resumes automatically",
        description="Run the stages of a simulation recipe (see simulate/*.toml and glassjax.md.recipe): "
                    "build or read the structure, then MD stages with temperature schedules and "
                    "minimisations, writing H5MD trajectories, CSV thermo logs, checkpoints and extxyz "
                    "structures per stage.  Running it again skips finished stages and resumes an "
                    "interrupted one from its last checkpoint.  Use --x64 for float64.")
    p.add_argument("recipe", help="recipe TOML; relative paths in it are relative to its folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_simulate)


def _simulate(args) -> int:
    from glassjax.md.recipe import run_recipe

    out = run_recipe(args.recipe, progress=not args.quiet)
    print(f"output in {out}")
    return 0
