"""``glassjax model``: inspect and convert DeepPot-SE models.

    glassjax model info [MODEL] [--structure FILE] hyper-parameters, parameter count, biases;
                                                   with a structure: neighbour counts vs sel
    glassjax model convert IN OUT                  .dp <-> glassjax checkpoint (.h5), by suffix
    glassjax --x64 model eval [MODEL] STRUCTURE    energy (eV), max force (eV/Å), stress (GPa)
    glassjax model add-zbl IN OUT [--sw-rmin 0.7 --sw-rmax 1.0] [--table FILE]
                                                   DP + ZBL model (DeePMD-kit's "zbl" type): a
                                                   repulsive wall at close contact, unchanged above sw_rmax
    glassjax model check-melt [MODEL] [--composition C --atoms N --temperature K --ps T]
    glassjax model check-relax [MODEL] [--glasses ID ... --atoms N --floor A]
                                                   is it safe to melt on? random glass, relax, NVT
                                                   at 3000 K; exit status 1 if the MD blew up

MODEL left out, or the word ``default``: the shipped default potential (glassjax.pretrained).
"""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("model", help="inspect and convert DeepPot-SE models (.dp, checkpoints)",
                                   description=__doc__)
    sub = parser.add_subparsers(dest="model_command", metavar="ACTION")

    p = sub.add_parser("info", help="print a model's hyper-parameters and statistics")
    p.add_argument("model", nargs="?", default="default",
                   help="DeePMD-kit .dp file or glassjax checkpoint (default: the shipped default potential)")
    p.add_argument("--structure", help="a structure file readable by ASE: report neighbour counts against sel")
    p.set_defaults(func=_info)

    p = sub.add_parser("convert", help="convert between DeePMD-kit .dp and glassjax checkpoints (.h5)")
    p.add_argument("input", help="model to read (.dp or checkpoint)")
    p.add_argument("output", help="file to write: *.dp for DeePMD-kit, anything else for a glassjax checkpoint")
    p.set_defaults(func=_convert)

    p = sub.add_parser("eval", help="energy, forces and stress of a structure (ASE-readable file)")
    p.add_argument("model", nargs="?", default="default",
                   help="DeePMD-kit .dp file or glassjax checkpoint (default: the shipped default potential)")
    p.add_argument("structure")
    p.add_argument("--index", default="-1", help="frame of a multi-frame file (ASE index syntax, default last)")
    p.set_defaults(func=_eval)

    p = sub.add_parser("add-zbl", help="combine a trained model with a ZBL (or any tabulated) pair repulsion",
                       description="Write the DeePMD-kit 'zbl' model made of MODEL and a pair table: "
                       "E_i = (1 - w_i) E_i^DP + w_i E_i^pair, with w_i = 1 when atom i's soft-minimum "
                       "neighbour distance is below --sw-rmin, 0 above --sw-rmax (the model is then "
                       "unchanged), quintic between. Without --table the ZBL universal repulsion is "
                       "tabulated (glassjax.model.zbl). Check that --sw-rmax is below the closest "
                       "distance in the training data (printed as a reminder).")
    p.add_argument("model", help="DeePMD-kit .dp file or glassjax checkpoint (a plain DeepPot-SE)")
    p.add_argument("output", help="file to write: *.dp for DeePMD-kit, anything else for a glassjax checkpoint")
    p.add_argument("--sw-rmin", type=float, default=0.7, help="Å, pair table alone below (default 0.7)")
    p.add_argument("--sw-rmax", type=float, default=1.0, help="Å, model alone above (default 1.0)")
    p.add_argument("--smin-alpha", type=float, default=0.1, help="Å, softness of the soft minimum (default 0.1)")
    p.add_argument("--table", help="DeePMD-kit pair-table text file (r, then one column per type pair) "
                   "instead of the built-in ZBL table")
    p.set_defaults(func=_add_zbl)

    p = sub.add_parser("check-melt", help="hot-melt stability check: build, relax, NVT at 3000 K; fails on a blow-up",
                       description="Build a random glass, FIRE-relax it and run NVT at --temperature for --ps "
                       "ps on MODEL; exit status 0 if the MD stayed intact, 1 if it blew up (two atoms "
                       "closer than 0.5 Å, non-finite forces, a neighbour section beyond sel).")
    p.add_argument("model", nargs="?", default="default",
                   help="DeePMD-kit .dp file or glassjax checkpoint (default: the shipped default potential)")
    p.add_argument("--composition", default="Li2O-2B2O3", help="glass composition (default Li2O-2B2O3)")
    p.add_argument("--atoms", type=int, default=300, help="atom target (default 300)")
    p.add_argument("--temperature", type=float, default=3000.0, help="K (default 3000)")
    p.add_argument("--ps", type=float, default=2.0, help="length of the hot run, ps (default 2)")
    p.add_argument("--seed", type=int, default=0, help="builder and velocity seed (default 0)")
    p.add_argument("-o", "--output", help="keep the run (recipe, relaxed structure, H5MD trajectory, thermo "
                   "log) in this folder instead of a temporary one")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_check_melt)

    p = sub.add_parser("check-relax", help="relaxation check: FIRE-relax random starts of the Table II glasses; "
                       "fails if atoms collapse together",
                       description="Build random starts of the Table II glasses (all 18, or --glasses), FIRE-relax "
                       "them in one batch on MODEL and fail (exit status 1) if any two atoms end closer than "
                       "--floor Å: a spurious short-range well that a melt started there falls into.")
    p.add_argument("model", nargs="?", default="default",
                   help="DeePMD-kit .dp file or glassjax checkpoint (default: the shipped default potential)")
    p.add_argument("--glasses", nargs="+", metavar="ID", help="Table II glass IDs (default: all 18)")
    p.add_argument("--atoms", type=int, default=150, help="atom target per glass (default 150)")
    p.add_argument("--seed", type=int, default=0, help="builder seed of the first glass (default 0)")
    p.add_argument("--steps", type=int, default=200, help="FIRE iterations at most (default 200)")
    p.add_argument("--floor", type=float, default=1.0, help="closest allowed distance, Å (default 1.0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-glass table")
    p.set_defaults(func=_check_relax)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _resolve(model):
    """A model argument: ``default`` (or nothing) -> the default potential's file."""
    from glassjax.pretrained import resolve_model

    return resolve_model(model)


def _read_structure(path, index="-1"):
    from ase.io import read

    from glassjax.errors import DataError

    try:
        return read(path, index=index)
    except Exception as exc:  # ASE raises many kinds
        raise DataError(path, f"cannot read structure ({exc})", hint="give a file ASE can read, e.g. extxyz or POSCAR")


def _info(args):
    import numpy as np

    from glassjax.model import load_model

    model, v = load_model(_resolve(args.model))
    dc, fc = model.config.descriptor, model.config.fitting
    consts = {k: np.asarray(x) for k, x in v["constants"].items()}
    print(f"model: {_resolve(args.model)}")
    print(f"  descriptor: se_e2_a, type_map {list(dc.type_map)}, rcut {dc.rcut} Å, rcut_smth {dc.rcut_smth} Å, "
          f"switch {dc.switch}")
    print(f"  sel {list(dc.sel)} (sum {dc.nnei}), embedding {list(dc.neuron)}, axis_neuron {dc.axis_neuron}, "
          f"type_one_side {dc.type_one_side}, resnet_dt {dc.resnet_dt}, activation {dc.activation}")
    print(f"  fitting {list(fc.neuron)}, resnet_dt {fc.resnet_dt}, "
          f"{'one shared net' if fc.mixed_types else 'one net per type'}")
    print(f"  parameters: {model.n_params(v)} trainable, stored precision {dc.precision}, computing in "
          f"{np.dtype(model.dtype).name}")
    for t, name in enumerate(dc.type_map):
        print(f"  {name:>3}: out_bias {consts['out_bias'][t]: .6f} eV, bias_atom_e {consts['bias_atom_e'][t]: .6f} eV, "
              f"davg_r {consts['davg'][t, 0, 0]: .4f}, dstd_r {consts['dstd'][t, 0, 0]:.4f}, "
              f"dstd_a {consts['dstd'][t, 0, 1]:.4f}")
    if model.config.zbl is not None:
        zc = model.config.zbl
        print(f"  + pair table (DeePMD-kit zbl model): sw_rmin {zc.sw_rmin} Å, sw_rmax {zc.sw_rmax} Å, "
              f"smin_alpha {zc.smin_alpha} Å; table r {zc.rmin:g}-{zc.rmax:g} Å step {zc.hh:.4g} Å, "
              f"cutoff {zc.rcut} Å")
    if args.structure:
        import jax.numpy as jnp

        atoms = _read_structure(args.structure)
        types = model.types_from_species(atoms.get_chemical_symbols())
        sec = model.sections(jnp.asarray(atoms.positions, model.dtype), jnp.asarray(atoms.cell[:], model.dtype),
                             jnp.asarray(types))
        counts = np.asarray(sec.counts).max(axis=0)
        print(f"  {args.structure}: {len(atoms)} atoms; largest neighbour counts within rcut per type "
              f"{counts.tolist()} vs sel {list(dc.sel)}: {'TOO SMALL' if bool(sec.overflow) else 'ok'}")
        return 1 if bool(sec.overflow) else 0
    return 0


def _convert(args):
    from glassjax.model import load_model, save_checkpoint, save_dp

    model, v = load_model(args.input)
    out = Path(args.output)
    if out.suffix == ".dp":
        save_dp(out, model, v)
        print(f"wrote DeePMD-kit model {out}")
    else:
        save_checkpoint(out, model, v, metadata={"converted_from": str(args.input)})
        print(f"wrote glassjax checkpoint {out}")
    return 0


def _eval(args):
    import numpy as np

    from glassjax.calculator import GlassJaxCalculator
    from glassjax.units import EV_PER_A3_TO_GPA

    atoms = _read_structure(args.structure, args.index)
    atoms.calc = GlassJaxCalculator(_resolve(args.model))
    e = atoms.get_potential_energy()
    f = atoms.get_forces()
    print(f"energy {e:.10f} eV ({e / len(atoms):.10f} eV/atom), max |F| {np.max(np.linalg.norm(f, axis=1)):.6f} eV/Å")
    if atoms.pbc.all():
        s = atoms.get_stress() * EV_PER_A3_TO_GPA
        print("stress (GPa, ASE sign, xx yy zz yz xz xy): " + " ".join(f"{x:.6f}" for x in s))
    return 0


def _add_zbl(args):
    from glassjax.model import DeepPot, load_model, save_checkpoint, save_dp
    from glassjax.model.pairtab import add_pair_table, read_table
    from glassjax.model.zbl import zbl_table

    model, v = load_model(_resolve(args.model))
    if args.table:
        rows, where = read_table(args.table, model.rcut), args.table
    else:
        rows, where = zbl_table(model.type_map), "ZBL table"
    cfg, v2 = add_pair_table(model.config, v, rows, args.sw_rmin, args.sw_rmax, args.smin_alpha, where)
    new = DeepPot(cfg, model.dtype)
    out = Path(args.output)
    if out.suffix == ".dp":
        save_dp(out, new, v2)
    else:
        save_checkpoint(out, new, v2, metadata={"made_from": str(args.model), "pair_table": where})
    print(f"wrote {out}: {args.model} + {where}, switched between {args.sw_rmin} and {args.sw_rmax} Å "
          f"(identical to the model wherever every atom's nearest neighbours are farther than ~{args.sw_rmax} Å; "
          "keep sw_rmax below the closest distance in the training data)")
    return 0


def _check_relax(args):
    from glassjax.errors import ConfigError

    from glassjax.md.compositions import TABLE_II
    from glassjax.md.stability import relax_check

    bad = [g for g in (args.glasses or []) if g not in TABLE_II]
    if bad:
        raise ConfigError(f"--glasses: {bad} are not Table II glasses; choose from {list(TABLE_II)}")
    precision = "float64" if getattr(args, "x64", False) else "float32"
    res = relax_check(_resolve(args.model), args.glasses, n_atoms=args.atoms, seed=args.seed, steps=args.steps,
                      floor=args.floor, precision=precision, progress=not args.quiet)
    print(("PASS: " if res.ok else "FAIL: ") + res.message)
    return 0 if res.ok else 1


def _check_melt(args):
    from glassjax.md.stability import hot_melt_check

    res = hot_melt_check(_resolve(args.model), args.composition, args.atoms, args.temperature, args.ps,
                         seed=args.seed, workdir=args.output, progress=not args.quiet, log=print)
    print(("PASS: " if res.ok else "FAIL: ") + res.message)
    return 0 if res.ok else 1
