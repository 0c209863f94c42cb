# %% [markdown]
# # Table II in one run: density and 4B of 18 lithium borate / borosilicate glasses
#
# The 2024 paper (Urata et al., Phys. Rev. Materials 8, 033602, Table II and Figs. 3-4) validates
# its potential on 18 glasses of the Li2O-B2O3-SiO2 system: 7 lithium borates (LBxx, xx = mol%
# B2O3) and 11 lithium borosilicates (LBS-a-b-c = mol% SiO2-B2O3-Li2O). For each it compares the
# simulated **density** (g/cm³) and **N4**, the fraction of boron that is four-coordinated (4B,
# BO4⁻ tetrahedra), with experiment.
#
# glassjax runs all glasses as **one jit-compiled, vmapped program**: every glass is built at
# random at its experimental density, padded to a common atom count (padding atoms are masked
# out of every force, temperature and pressure), melt-quenched and equilibrated at 300 K and
# 0 GPa (NPT) side by side (`glassjax.md.sweep.table2_sweep`, `docs/batch.md`). On a GPU the 18
# glasses cost about as much as one.
#
# Potential: the classical **Teter/Du** potential (fast; `glassjax.md.classical`) by default, or
# the **shipped default DeepPot-SE** (`POTENTIAL = "default"`). Sizes (`GLASSJAX_NOTEBOOK_SIZE`):
# `ci` (3 glasses, ~40 atoms, a few hundred steps: seconds), `default` (all 18 at ~100 atoms, a
# very short schedule: ~10 minutes on a laptop CPU), `paper` (~300 atoms, the papers' schedule: a GPU job).

# %%
import os
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

SIZE = os.environ.get("GLASSJAX_NOTEBOOK_SIZE", "default")
assert SIZE in ("ci", "default", "paper"), SIZE
POTENTIAL = "teter"  # or "default": the shipped DeepPot-SE (glassjax.pretrained)

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

OUT = Path(os.environ.get("GLASSJAX_NOTEBOOK_OUT", "notebook_out")).resolve() / "02_batch_compositions"
OUT.mkdir(parents=True, exist_ok=True)

# times ps, temperatures K, rates K/ps
SWEEP = {
    "ci": dict(names=["LB70", "LB40", "LBS-10-50-40"], n_atoms=40, t_melt=2500.0, melt_ps=0.1, rate=20000.0,
               hold_ps=0.0, npt_ps=0.1, average_ps=0.05, chunk=50, every=10),
    "default": dict(names=None, n_atoms=100, t_melt=2500.0, melt_ps=0.5, rate=2500.0, hold_ps=0.0, npt_ps=0.6,
                    average_ps=0.3, chunk=100, every=20),
    # the 2024 paper (Sec. III B; melt of the 2022 paper): 2000 K for 200 ps, 10 K/ps to 1000 K,
    # 200 ps there, 2 K/ps to 300 K, 300 ps NPT at 300 K / 0 GPa (mean over the last 100 ps)
    "paper": dict(names=None, n_atoms=300, t_melt=2000.0, melt_ps=200.0, rate_high=10.0, rate=2.0,
                  t_hold=1000.0, hold_ps=200.0, npt_ps=300.0, average_ps=100.0, quench_ensemble="npt",
                  chunk=1000, every=100),
}[SIZE]
print(f"size {SIZE!r}, potential {POTENTIAL!r}; outputs in {OUT}")

# %% [markdown]
# ## The compositions and their experimental values
#
# `glassjax.md.compositions.TABLE_II` holds the paper's table: composition (mol%), experimental
# density (g/cm³) and 4B (%).

# %%
from glassjax.md.compositions import TABLE_II

names = SWEEP.pop("names") or list(TABLE_II)
print(f"{'glass':14s} {'SiO2':>5s} {'B2O3':>5s} {'Li2O':>5s} {'density':>8s} {'4B %':>6s}")
for nm in names:
    g = TABLE_II[nm]
    print(f"{nm:14s} {g.sio2:5.1f} {g.b2o3:5.1f} {g.li2o:5.1f} {g.density:8.3f} {g.b4:6.1f}")

# %% [markdown]
# ## One batched melt-quench + NPT run
#
# `table2_sweep` builds the glasses, then runs the melt-quench (NVT at the experimental density,
# or NPT) and the NPT equilibration for all of them in the same compiled loop. Density is
# averaged over the last `average_ps` of the NPT run; 4B counts B with four O closer than
# 2.0 Å (the papers' cutoff). Per glass it writes `npt.h5` (H5MD trajectory) and thermo logs
# under the output folder, plus `table2.csv`.

# %%
from glassjax.md import batch
from glassjax.md.sweep import table2_sweep

if POTENTIAL == "teter":
    pot = batch.teter_potential()
else:
    from glassjax.pretrained import default_model_path

    pot = batch.deeppot_potential(default_model_path())
result = table2_sweep(pot, names=names, seed=0, dt=0.001, out_dir=OUT / "sweep", progress=SIZE != "ci", **SWEEP)
rows = result.rows
print(f"{'glass':14s} {'atoms':>5s} {'rho sim':>8s} {'rho exp':>8s} {'N4 sim':>7s} {'N4 exp':>7s}")
for r in rows:
    print(f"{r['glass']:14s} {r['n_atoms']:5d} {r['density_sim']:8.3f} {r['density_exp']:8.3f} "
          f"{r['N4_sim']:7.3f} {r['N4_exp']:7.3f}")

# %% [markdown]
# ## Simulation vs experiment
#
# Parity plots: each point is one glass (LB: lithium borates, LBS: borosilicates), the error
# bars the standard deviation over the averaging window. At the `ci`/`default` sizes the glasses
# are quenched 10⁴-10⁵ times faster than in the paper and are tiny, so expect large scatter; at
# the `paper` size the 2024 paper reports mean density deviations of -0.069 (LBS) and -0.050
# g/cm³ (LB) for its MLP.

# %%
from glassjax.md.sweep import family, sweep_summary

fig, ax = plt.subplots(1, 2, figsize=(9.5, 4))
for fam, marker in (("LB", "o"), ("LBS", "s")):
    sel = [r for r in rows if family(r["glass"]) == fam]
    if not sel:
        continue
    ax[0].errorbar([r["density_exp"] for r in sel], [r["density_sim"] for r in sel],
                   yerr=[r["density_sim_std"] for r in sel], fmt=marker, label=fam, capsize=2)
    ax[1].errorbar([r["N4_exp"] for r in sel], [r["N4_sim"] for r in sel],
                   yerr=[r["N4_sim_std"] for r in sel], fmt=marker, label=fam, capsize=2)
for a, (lo, hi), what in ((ax[0], (1.9, 2.6), "density (g/cm³)"), (ax[1], (0.0, 0.6), "N4 (4B fraction)")):
    a.plot([lo, hi], [lo, hi], "k-", lw=0.7)
    a.set_xlabel(f"experiment: {what}")
    a.set_ylabel(f"simulation: {what}")
    a.legend()
fig.suptitle(f"Table II glasses, {POTENTIAL} potential, {SIZE} size", fontsize=10)
fig.tight_layout()
display(fig)
plt.close(fig)

for s in sweep_summary(rows):
    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items()})

# %% [markdown]
# ## Composition trends
#
# N4 of the lithium borates rises with Li2O (each Li⁺ converts a BO3 into a BO4⁻) up to about
# 30-40 mol% Li2O, then falls as non-bridging oxygens form instead: the classic borate anomaly.

# %%
lb = sorted((r for r in rows if family(r["glass"]) == "LB"), key=lambda r: r["Li2O_mol"])
if lb:
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot([r["Li2O_mol"] for r in lb], [r["N4_exp"] for r in lb], "k^-", label="experiment")
    ax.errorbar([r["Li2O_mol"] for r in lb], [r["N4_sim"] for r in lb], yerr=[r["N4_sim_std"] for r in lb],
                fmt="o-", label=f"simulation ({POTENTIAL})", capsize=2)
    ax.set_xlabel("Li2O (mol%)")
    ax.set_ylabel("N4")
    ax.legend()
    display(fig)
    plt.close(fig)
assert all(np.isfinite(r["density_sim"]) and 0 <= r["N4_sim"] <= 1 for r in rows)
