"""Neutron S(q) / F(Q) of a model against a measured total-scattering file.

Computes the Faber-Ziman S(q) (Lorch window) and F(Q) = <b>^2 (S(q) - 1) of a structure or
trajectory and overlays a measured F(Q) in GUDRUN's barn/sr/atom (1 barn = 100 fm^2, so
F[barn/sr/atom] = F[fm^2] / 100), e.g. the vitreous SiO2 NIMROD data shipped with Dissolve
(GPL-3.0; ../shared/fixtures/experimental/dissolve_sio2/SiO2_NIMROD.mint01)::

    python analysis/structure/neutron_sq.py silica.extxyz \
        --experiment ../shared/fixtures/experimental/dissolve_sio2/SiO2_NIMROD.mint01 -o out/sio2_fq

For borate glasses measured with 11B (and 7Li) pass ``--isotope B=11B --isotope Li=7Li``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("traj")
    ap.add_argument("--experiment", default=None, help="columns Q (1/Å), F(Q) (barn/sr/atom)")
    ap.add_argument("--isotope", action="append", default=[], metavar="EL=ISO")
    ap.add_argument("--r-max", type=float, default=10.0)
    ap.add_argument("--q-max", type=float, default=20.0)
    ap.add_argument("-o", "--output", default="neutron_fq")
    args = ap.parse_args(argv)

    from glassjax.analysis import rdf as rdfmod
    from glassjax.analysis import structure_factor as sqmod
    from glassjax.analysis.io import read_trajectory
    from glassjax.atomic_write import atomic_path, write_text_atomic

    fr = read_trajectory(args.traj)
    types, elements = rdfmod.species_types(fr.species)
    g = rdfmod.rdf(fr.positions, fr.cells, types, len(elements), r_max=args.r_max, n_bins=1000, progress=True)
    q = np.linspace(0.3, args.q_max, 600)
    iso = dict(item.split("=", 1) for item in args.isotope)
    res = sqmod.neutron_sq(g, elements, q, isotopes=iso)
    F_barn = res["F"] / 100.0
    out = Path(args.output)
    write_text_atomic(out.parent / (out.name + ".csv"),
                      "q_inv_A,S,F_barn_sr_atom\n" + "".join(f"{a:.5g},{b:.6g},{c:.6g}\n"
                                                             for a, b, c in zip(q, res["S"], F_barn)))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axp = plt.subplots(figsize=(6, 4))
    axp.plot(q, F_barn, "k", label="model (Lorch)")
    if args.experiment:
        exp = np.loadtxt(args.experiment, comments="#", usecols=(0, 1))
        keep = (exp[:, 0] > 0.1) & (exp[:, 0] <= args.q_max)
        axp.plot(exp[keep, 0], exp[keep, 1], "o", ms=2, mfc="none", label=Path(args.experiment).name)
    axp.set_xlabel("Q (1/Å)")
    axp.set_ylabel("F(Q) (barn/sr/atom)")
    axp.legend(fontsize=8)
    with atomic_path(out.parent / (out.name + ".png"), suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    print(f"wrote {out}.csv and {out}.png")


if __name__ == "__main__":
    main()
