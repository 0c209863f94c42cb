"""Li diffusion, Nernst-Einstein conductivity and Arrhenius activation energy
(2022 training paper: D from the MSD between 50 and 150 ps, Eq. 6; Ea from D at 500, 600,
700 and 900 K, Table 3).

    python analysis/structure/li_conductivity.py li_conductivity.toml -o out/li

TOML::

    dt = 0.1            # ps between saved frames
    t_min = 50.0        # ps, fit window (paper: 50-150 ps)
    t_max = 150.0
    species = "Li"
    [[run]]
    temperature = 500
    traj = "lbs_10_50_40_500K.extxyz"
    [[run]]
    temperature = 600
    traj = "lbs_10_50_40_600K.extxyz"
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("-o", "--output", default="li_conductivity")
    args = ap.parse_args(argv)

    import jax.numpy as jnp

    from glassjax.analysis import diffusion
    from glassjax.analysis.io import read_trajectory
    from glassjax.atomic_write import atomic_path, write_text_atomic
    from glassjax.errors import ConfigError

    cfg = tomllib.loads(Path(args.config).read_text())
    base = Path(args.config).parent
    dt = float(cfg["dt"])
    species = cfg.get("species", "Li")
    rows, Ts, Ds = [], [], []
    for run in cfg.get("run", []):
        fr = read_trajectory(base / run["traj"])
        sel = fr.species == species
        if not sel.any():
            raise ConfigError(f"{run['traj']}: no {species} atoms")
        un = diffusion.unwrap(jnp.asarray(fr.positions), jnp.asarray(fr.cells))
        m = np.asarray(diffusion.msd(un, jnp.asarray(sel)))
        t = np.arange(fr.nframes) * dt
        fit = diffusion.diffusion_coefficient(t, m, cfg.get("t_min"), cfg.get("t_max"))
        T = float(run["temperature"])
        sigma = diffusion.nernst_einstein(fit["D"], int(sel.sum()), float(fr.volumes().mean()), T)
        rows.append(f"{T:g},{fit['D_cm2_s']:.6g},{sigma:.6g},{run['traj']}")
        Ts.append(T)
        Ds.append(fit["D"])
    lines = ["T_K,D_cm2_s,sigma_NE_S_cm,trajectory"] + rows
    if len(Ts) >= 2:
        arr = diffusion.arrhenius(Ts, Ds)
        lines.insert(0, f"# Arrhenius: Ea = {arr['Ea']:.4f} +- {arr['Ea_stderr']:.2g} eV")
        print(f"Ea = {arr['Ea']:.4f} eV")
    out = Path(args.output)
    write_text_atomic(out.parent / (out.name + ".csv"), "\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axp = plt.subplots(figsize=(5, 4))
    axp.semilogy(1000.0 / np.array(Ts), np.array(Ds) * 1e-4, "o")
    axp.set_xlabel("1000 / T (1/K)")
    axp.set_ylabel("D (cm²/s)")
    with atomic_path(out.parent / (out.name + ".png"), suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    print(f"wrote {out}.csv and {out}.png")


if __name__ == "__main__":
    main()
