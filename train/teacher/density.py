"""Does the distilled potential put a glass at the teacher's density?  One glass, both models.

    python train/teacher/density.py GLASS.extxyz [--potential default] [--scan 0.94,0.97,1,1.03,1.06]
        [--steps 300] [--fmax 0.05] [--out density.json]

For one glass structure (e.g. the 300 K glass of ``glassjax demo``: OUT/3_npt_300K/final.extxyz):

1. **Pressure at fixed topology**: the structure scaled affinely (cell and atoms) by each
   ``--scan`` factor of the cell edge, pressure -tr(stress)/3 from each model (GPa, no
   thermal part).  The density at which P(rho), interpolated between the bracketing scan
   points, crosses 0 is each model's zero-pressure density of that frozen structure.
2. **Relaxed**: atoms and cell relaxed with each model from the same start (FIRE on ASE's
   ``FrechetCellFilter`` with hydrostatic strain, target 0 GPa, ``--steps`` at most):
   each model's 0 K density of the glass's local minimum.

If the two models agree, a glass density far from experiment comes from the teacher (PBE
without dispersion binds oxides too weakly) or from the quench, not from the distillation.
Run in the teacher's environment (``.[teacher]``, with glassjax installed).  Prints a table;
``--out`` writes every number as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import make_teacher  # noqa: E402

EV_A3_TO_GPA = 160.21766208
AMU_A3_TO_G_CM3 = 1.66053906660


def density(atoms) -> float:
    """g/cm^3."""
    return float(atoms.get_masses().sum() / atoms.get_volume() * AMU_A3_TO_G_CM3)


def pressure(atoms, calc) -> float:
    """Static pressure, GPa."""
    a = atoms.copy()
    a.calc = calc
    return float(-np.trace(a.get_stress(voigt=False)) / 3.0 * EV_A3_TO_GPA)


def zero_crossing(rho, p) -> float:
    """Density where P(rho) crosses zero: linear interpolation between the two scan points
    that bracket it (NaN when the scan does not bracket P = 0)."""
    order = np.argsort(rho)
    rho, p = np.asarray(rho)[order], np.asarray(p)[order]
    for k in range(len(rho) - 1):
        if p[k] <= 0.0 <= p[k + 1]:
            return float(rho[k] + (rho[k + 1] - rho[k]) * (0.0 - p[k]) / (p[k + 1] - p[k]))
    return float("nan")


def relax(atoms, calc, steps: int, fmax: float):
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    a = atoms.copy()
    a.calc = calc
    # exp_cell_factor 1: the cell "force" is the virial itself (eV), so fmax bounds |P| V too
    opt = FIRE(FrechetCellFilter(a, hydrostatic_strain=True, exp_cell_factor=1.0), logfile=None)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    return a, converged, int(opt.nsteps)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("glass", help="glass structure readable by ASE (extxyz, POSCAR, ...)")
    ap.add_argument("--potential", default="default", help="glassjax model: 'default', a .dp file or a checkpoint")
    ap.add_argument("--teacher", default="sevennet-0")
    ap.add_argument("--scan", default="0.94,0.97,1.0,1.03,1.06", help="cell-edge scale factors")
    ap.add_argument("--steps", type=int, default=300, help="relaxation steps at most (0: skip)")
    ap.add_argument("--fmax", type=float, default=0.05, help="relaxation force target, eV/Å")
    ap.add_argument("--out", help="JSON file for the numbers")
    args = ap.parse_args(argv)

    from ase.io import read

    from glassjax.calculator import GlassJaxCalculator

    path = Path(args.glass)
    if not path.is_file():
        print(f"{path}: no such file", file=sys.stderr)
        return 1
    glass = read(path)
    try:
        factors = [float(x) for x in args.scan.split(",")]
    except ValueError:
        print(f"--scan {args.scan!r}: give comma-separated numbers, e.g. 0.97,1,1.03", file=sys.stderr)
        return 1
    calcs = {"teacher": make_teacher(args.teacher, "cpu"), "glassjax": GlassJaxCalculator(args.potential)}
    out = {"glass": str(path), "natoms": len(glass), "formula": glass.get_chemical_formula(),
           "start_density": density(glass), "teacher": args.teacher, "potential": args.potential,
           "threads": int(os.environ.get("GLASSJAX_TEACHER_THREADS", "1")), "scan": [], "relaxed": {}}
    print(f"{path}: {glass.get_chemical_formula()}, {len(glass)} atoms, {density(glass):.3f} g/cm3")
    print(f"{'factor':>7} {'rho g/cm3':>10} {'P teacher GPa':>14} {'P glassjax GPa':>15}")
    for f in factors:
        a = glass.copy()
        a.set_cell(glass.cell.array * f, scale_atoms=True)
        row = {"factor": f, "density": density(a)}
        for name, calc in calcs.items():
            row[f"P_{name}"] = pressure(a, calc)
        out["scan"].append(row)
        print(f"{f:7.3f} {row['density']:10.3f} {row['P_teacher']:14.2f} {row['P_glassjax']:15.2f}")
    rho = [r["density"] for r in out["scan"]]
    for name in calcs:
        out[f"zero_pressure_density_{name}"] = zero_crossing(rho, [r[f"P_{name}"] for r in out["scan"]])
        print(f"{name}: P = 0 at {out[f'zero_pressure_density_{name}']:.3f} g/cm3 (fixed topology, interpolated)")
    if args.steps > 0:
        for name, calc in calcs.items():
            t0 = time.perf_counter()
            a, conv, n = relax(glass, calc, args.steps, args.fmax)
            out["relaxed"][name] = {"density": density(a), "converged": conv, "steps": n,
                                    "pressure_GPa": pressure(a, calc), "seconds": time.perf_counter() - t0}
            print(f"{name}: relaxed {density(a):.3f} g/cm3 after {n} steps (converged: {conv}, "
                  f"P {out['relaxed'][name]['pressure_GPa']:.2f} GPa, {out['relaxed'][name]['seconds']:.0f} s)")
    if args.out:
        tmp = Path(args.out).with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=1))
        tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
