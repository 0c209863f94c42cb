"""``glassjax model``: inspect and convert DeepPot-SE models.

    glassjax model info [MODEL] [--structure FILE] hyper-parameters, parameter count, biases;
                                                   with a structure: neighbour counts vs sel
    glassjax model convert IN OUT                  .dp <-> glassjax checkpoint (.h5), by suffix
    glassjax --x64 model eval [MODEL] STRUCTURE    energy (eV), max force (eV/Å), stress (GPa)

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
