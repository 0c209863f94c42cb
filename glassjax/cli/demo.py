"""``glassjax demo``: the main job (build, melt-quench, NPT, triaxial compression, report).

    glassjax demo                          # ~300-atom Li2O·2B2O3 glass, laptop schedule, default potential
    glassjax demo --quick                  # ~60 atoms, a few hundred steps per stage (CI size)
    glassjax demo --full --atoms 1000      # the papers' schedules (GPU)
    glassjax demo --potential model.dp -o my_demo

See ``docs/demo.md`` and :mod:`glassjax.demo`.
"""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="the main job: build a Li2O-2B2O3 glass, melt-quench it, compress it triaxially and "
                     "report 4B, 3-rings and pressure vs strain (resumes automatically)",
        description="Build a random glass (default Li2O-2B2O3, ~300 atoms), melt-quench it on the default "
                    "DeepPot-SE potential (or --potential FILE), equilibrate it at 300 K and 0 GPa (NPT), "
                    "compress it triaxially at 300 K, and write compression.csv / compression.png (4B "
                    "fraction, 3-ring count and pressure versus strain), glass_vs_experiment.csv (density "
                    "and N4 against experiment), summary.txt and the H5MD trajectories.  The default "
                    "schedule takes minutes on a laptop CPU; --full runs the papers' schedules.  Running "
                    "it again in the same folder skips finished stages.")
    p.add_argument("-o", "--output", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument("--atoms", type=int, default=None,
                   help="atom target (default 300; 60 with --quick, 1000 with --full)")
    p.add_argument("--composition", default="Li2O-2B2O3",
                   help="glass composition, e.g. Li2O-2B2O3 (default), LB70, LBS-10-50-40, (SiO2)10(B2O3)50(Li2O)40")
    p.add_argument("--density", type=float, default=None,
                   help="build density in g/cm^3 (default: Table II's experimental value; 2.22 for Li2O-2B2O3)")
    p.add_argument("--potential", default="default",
                   help="'default' (the shipped DeepPot-SE) or a model file (.dp or glassjax checkpoint)")
    p.add_argument("--strain", type=float, default=None,
                   help="final triaxial strain (negative; default -0.15, -0.25 with --full)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="tiny and fast: ~60 atoms, a few hundred steps per stage")
    mode.add_argument("--full", action="store_true",
                      help="the papers' schedules: Teter pre-melt, 2 K/ps quench, 300 ps NPT, -1e-3/ps to -0.25")
    p.add_argument("--seed", type=int, default=0, help="builder and velocity seed (default 0)")
    p.add_argument("--x64", dest="demo_x64", action="store_true", help="run in float64 (same as glassjax --x64 demo)")
    p.add_argument("--no-strict", dest="strict", action="store_false",
                   help="let atoms have more neighbours than the model's sel (truncated as DeePMD-kit does) "
                        "instead of stopping")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_demo)


def _demo(args) -> int:
    from glassjax.precision import enable_x64, x64_enabled

    if args.demo_x64 and not x64_enabled():
        enable_x64()  # the CLI is the caller, before any array exists
    from glassjax import demo

    schedule = demo.FULL if args.full else demo.QUICK if args.quick else demo.LAPTOP
    res = demo.run_demo(out=args.output, n_atoms=args.atoms, composition=args.composition,
                        potential=args.potential, schedule=schedule, seed=args.seed, density=args.density,
                        strict=args.strict, max_strain=args.strain, progress=not args.quiet)
    print(f"glassjax demo: results in {res.out}/ (summary.txt, compression.csv, compression.png, "
          "glass_vs_experiment.csv)")
    return 0
