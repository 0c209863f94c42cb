"""Local strain by atom class along the deformation axis, averaged over several runs
(2024 compression paper, Figs. 9 and 13: B3r, B3n, B4r, B4n, Or, On, Sir, Sin).

Each run is a reference structure (zero strain) and a deformation trajectory with the same
atoms, plus the axis it was deformed along.  The paper averaged nine runs (three models x
three directions).  Classes are defined on each run's reference; the local strain along the
run's axis is averaged per class, then over runs at equal cell strain (runs must share the
strain grid, as they do when written at the same strain steps).

    python analysis/structure/local_strain_by_class.py local_strain.toml -o out/local_strain

with a TOML file such as::

    h = 4.0                 # Å, Gaussian width of the support (paper)
    [[run]]
    ref = "lb67_model1_0GPa.extxyz"
    traj = "lb67_model1_tension_x.extxyz"
    axis = "x"
    [[run]]
    ...
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", help="TOML file with [[run]] tables (ref, traj, axis) and optional h")
    ap.add_argument("-o", "--output", default="local_strain", help="output prefix (.csv, .png)")
    args = ap.parse_args(argv)

    from glassjax.analysis import strain
    from glassjax.analysis.io import read_trajectory
    from glassjax.atomic_write import atomic_path, write_text_atomic
    from glassjax.errors import ConfigError

    cfg = tomllib.loads(Path(args.config).read_text())
    base = Path(args.config).parent
    runs = cfg.get("run", [])
    if not runs:
        raise ConfigError(f"{args.config}: no [[run]] tables")
    h = float(cfg.get("h", 4.0))
    names = strain.STRAIN_CLASSES
    per_run_cell, per_run_local = [], []
    for run in runs:
        ref = read_trajectory(base / run["ref"], index="0")
        traj = read_trajectory(base / run["traj"])
        ax = "xyz".index(run.get("axis", "z"))
        F = strain.deformation_gradient_trajectory(ref.positions[0], ref.cells[0], traj.positions, traj.cells,
                                                   h=h, support=ref.species != "Li", progress=True)
        eps = np.asarray(strain.local_strain(F))[..., ax]  # (F, N)
        cls = strain.reference_classes(ref)
        means, _ = strain.class_average(eps[..., None], cls)
        F_cell = np.einsum("ab,fbc->fac", np.linalg.inv(ref.cells[0]), traj.cells).transpose(0, 2, 1)
        per_run_cell.append(F_cell[:, ax, ax] - 1.0)
        per_run_local.append(np.asarray(means)[..., 0])
    nmin = min(len(c) for c in per_run_cell)
    cell = np.mean([c[:nmin] for c in per_run_cell], axis=0)
    local = np.stack([m[:nmin] for m in per_run_local])  # (runs, F, C)
    import warnings

    with warnings.catch_warnings():  # classes absent from every run stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nanmean(local, axis=0), np.nanstd(local, axis=0)
    header = "cell_strain," + ",".join(f"{n},{n}_std" for n in names)
    lines = [f"# local strain along each run's deformation axis, h = {h} A, {len(runs)} runs", header]
    for f in range(nmin):
        lines.append(f"{cell[f]:.6g}," + ",".join(f"{mean[f, c]:.6g},{std[f, c]:.3g}" for c in range(len(names))))
    out = Path(args.output)
    write_text_atomic(out.parent / (out.name + ".csv"), "\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axp = plt.subplots(figsize=(5.5, 4))
    for c, n in enumerate(names):
        if np.any(np.isfinite(mean[:, c])):
            axp.errorbar(cell, mean[:, c], yerr=std[:, c], marker="o", ms=3, capsize=2, label=n)
    axp.plot(cell, cell, "k--", lw=0.8, label="affine")
    axp.set_xlabel("cell strain")
    axp.set_ylabel("local strain")
    axp.legend(fontsize=7)
    with atomic_path(out.parent / (out.name + ".png"), suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    print(f"wrote {out}.csv and {out}.png")


if __name__ == "__main__":
    main()
