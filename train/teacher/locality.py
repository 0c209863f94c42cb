"""How local is the teacher?  The part of an atom's force that a model of cutoff rcut cannot know.

    python train/teacher/locality.py default_potential.heldout.h5 [--rcut 6.0] [--sigma 0.1]
        [--systems 4] [--centres 6] [--repeats 3] [--seed 0]

SevenNet-0 passes messages over 5 layers of 5 Å, so an atom's force depends on atoms up to
25 Å away; a DeepPot-SE of cutoff rcut sees only atoms within rcut.  For a centre atom i of a
labelled frame, this script displaces every atom whose minimum-image distance from i exceeds
rcut (so none of their images is within rcut either) by Gaussian noise of width ``--sigma`` Å
and records the change of the teacher's force on i.  The RMS of that change (per Cartesian
component, eV/Å) is a floor under the force error of any model with that cutoff: it varies
with atoms the model cannot see.  Run with the teacher's environment (``.[teacher]``).

Prints one line per centre atom and the overall RMS; nothing is written.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="glassjax HDF5 dataset (e.g. default_potential.heldout.h5)")
    ap.add_argument("--rcut", type=float, default=6.0, help="model cutoff, Å")
    ap.add_argument("--sigma", type=float, default=0.1, help="displacement of the far atoms, Å")
    ap.add_argument("--systems", type=int, default=4, help="systems used (glass, melt, hot, warm kinds)")
    ap.add_argument("--centres", type=int, default=6, help="centre atoms per system (first frame)")
    ap.add_argument("--repeats", type=int, default=3, help="random displacements per centre")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch
    from sevenn.calculator import SevenNetCalculator

    from glassjax.data.dataset import Dataset

    torch.set_num_threads(1)
    calc = SevenNetCalculator("7net-0", device="cpu")
    ds = Dataset(args.data)
    names = [n for n in ds.systems if n.rsplit("_", 1)[-1] in ("glass", "melt", "hot", "warm")][:args.systems]
    if not names:
        print(f"{args.data}: no glass/melt/hot/warm systems found", file=sys.stderr)
        return 1
    rng = np.random.default_rng(args.seed)
    changes = []
    for name in names:
        atoms = ds.frames(name).to_atoms(0)
        atoms.calc = calc
        f0 = atoms.get_forces().copy()
        for i in rng.choice(len(atoms), min(args.centres, len(atoms)), replace=False):
            far = atoms.get_distances(i, range(len(atoms)), mic=True) > args.rcut
            df = []
            for _ in range(args.repeats):
                moved = atoms.copy()
                moved.calc = calc
                moved.positions[far] += rng.normal(0.0, args.sigma, (int(far.sum()), 3))
                df.append(moved.get_forces()[i] - f0[i])
            rms = float(np.sqrt(np.mean(np.square(df))))
            changes.append(rms)
            print(f"{name:28s} {atoms.get_chemical_symbols()[i]:2s} far atoms {int(far.sum()):4d}  "
                  f"RMS dF_i {rms:.3f} eV/Å   RMS F_i {np.sqrt(np.mean(f0[i] ** 2)):.3f} eV/Å", flush=True)
    print(f"locality floor at rcut {args.rcut} Å, far atoms moved by {args.sigma} Å: "
          f"RMS force change {np.sqrt(np.mean(np.square(changes))):.3f} eV/Å per component "
          f"({len(changes)} centre atoms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
