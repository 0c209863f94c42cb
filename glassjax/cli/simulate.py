"""``glassjax simulate RECIPE.toml``: run (or resume) a simulation recipe."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate", help="run an MD recipe (melt-quench, NPT, minimisation, deformation study, Table II sweep) "
                         "from a TOML file; resumes automatically",
        description="Run the stages of a simulation recipe (see simulate/*.toml, docs/recipes.md and "
                    "glassjax.md.recipe): build or read the structure, then MD stages with temperature "
                    "schedules and minimisations, writing H5MD trajectories, CSV thermo logs, checkpoints "
                    "and extxyz structures per stage; then the recipe's deformation study (stress-strain, 4B "
                    "and 3-ring tables and figures) or its Table II sweep.  Running it again skips finished "
                    "stages and resumes an interrupted one from its last checkpoint.  Use --x64 for float64 "
                    "(a recipe with precision = \"float64\" turns it on by itself).")
    p.add_argument("recipe", help="recipe TOML; relative paths in it are relative to its folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe key (repeatable), e.g. --set system.n_atoms=100 "
                        "--set stage.melt.temperature=2000 --set deformation.max_strain=0.05 "
                        "(stages by name or number from 1; values are TOML: 1e-3, \"x\", [1, 2])")
    p.add_argument("--quick", action="store_true",
                   help="apply the recipe's [quick] overrides (its small, fast variant) before any --set")
    p.add_argument("--check", action="store_true", help="only read and validate the recipe, print a summary")
    p.set_defaults(func=_simulate)


def _summary(recipe) -> str:
    from glassjax.md.recipe import n_replicas, output_folder

    lines = [f"recipe {recipe['_path']}: valid", f"  output: {output_folder(recipe)}"]
    pot = recipe["potential"]
    lines.append(f"  potential: {pot.get('model', pot['type'])}")
    if "sweep" in recipe:
        s = recipe["sweep"]
        lines.append(f"  Table II sweep: {s['compositions'] if s['compositions'] != 'all' else 'all 18'} "
                     f"compositions, n_atoms {s.get('n_atoms', 300)}")
        return "\n".join(lines)
    sysd = recipe["system"]
    lines.append(f"  system: {sysd.get('composition', sysd.get('structure'))}, n_atoms {sysd.get('n_atoms', 300)}, "
                 f"replicas {n_replicas(recipe)}")
    for k, st in enumerate(recipe["stage"]):
        lines.append(f"  stage {k + 1}: {st['name']} ({st['type']}{', ' + st.get('ensemble', 'nvt') if st['type'] == 'md' else ''})")
    if "deformation" in recipe:
        d = recipe["deformation"]
        lines.append(f"  deformation: {d['mode']}, directions {d['directions']}, rates {d['rates']} 1/ps, "
                     f"max |strain| {d['max_strain']}")
    return "\n".join(lines)


def _simulate(args) -> int:
    from glassjax.md.recipe import load_recipe, run_recipe
    from glassjax.precision import enable_x64, x64_enabled

    recipe = load_recipe(args.recipe, overrides=args.overrides, quick=args.quick)
    if args.check:
        print(_summary(recipe))
        return 0
    if str(recipe.get("run", {}).get("precision", "")).lower() in ("float64", "fp64") and not x64_enabled():
        enable_x64()  # the recipe asks for float64: the CLI is the caller, before any array exists
    out = run_recipe(args.recipe, progress=not args.quiet, overrides=args.overrides, quick=args.quick)
    print(f"output in {out}")
    return 0
