# %% [markdown]
# # Where can the potential be trusted? Ensemble deviation along a melt-quench and a compression
#
# A machine-learned potential is only as good as its training data. The standard check
# (DeePMD-kit's `dp model-devi`, DP-GEN's concurrent learning, the 2024 paper's Fig. 2) trains
# several models on the same data from different random initialisations and watches where they
# **disagree**. Per frame, with M models predicting forces F^k_i on atom i:
#
# - σ_f,i = | std_k F^k_i | (eV/Å), the spread of the force on atom i,
# - **max_devi_f** = max_i σ_f,i, the worst atom of the frame (DP-GEN's selection criterion),
# - devi_e = std_k(E^k/N) (eV/atom), the spread of the energy per atom.
#
# With two trust levels (eV/Å) a frame is **accurate** (max_devi_f < trust_lo: the models agree),
# a **candidate** (trust_lo ≤ max_devi_f < trust_hi: new physics, worth a DFT label) or **failed**
# (≥ trust_hi: so far off that the configuration is probably unphysical).
#
# Here the shipped default potential (a 4-member DeepPot-SE ensemble distilled from SevenNet-0,
# `glassjax.pretrained`) runs a short melt-quench of a Li2O·2B2O3 glass with member 0, and a short
# triaxial compression of the result; the other members then re-evaluate every frame
# (`glassjax.uncertainty`). Candidates are exported as extended XYZ, ready for labelling.
#
# Sizes (`GLASSJAX_NOTEBOOK_SIZE`): `ci` (seconds), `default` (minutes on a CPU), `paper` (the
# 2024 paper's protocol and 1000 atoms: a GPU job).

# %%
import os
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

SIZE = os.environ.get("GLASSJAX_NOTEBOOK_SIZE", "default")
assert SIZE in ("ci", "default", "paper"), SIZE

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

OUT = Path(os.environ.get("GLASSJAX_NOTEBOOK_OUT", "notebook_out")).resolve() / "04_uncertainty"
OUT.mkdir(parents=True, exist_ok=True)

# times ps, temperatures K, strain rates 1/ps (negative: compression)
S = {
    "ci": dict(n_atoms=60, relax_steps=0, temperature=[["hold", 2000.0, 0.04], ["ramp", 2000.0, 300.0, 0.06]],
               chunk=50, every=10, rate=-0.5, max_strain=-0.05, snapshot=0.01),
    "default": dict(n_atoms=150, relax_steps=200,
                    temperature=[["hold", 2500.0, 1.0], ["ramp", 2500.0, 300.0, 3.0], ["hold", 300.0, 1.0]],
                    chunk=250, every=50, rate=-0.05, max_strain=-0.2, snapshot=0.01),
    # 2024 paper: 2000 K melt (200 ps), 10 K/ps to 1000 K, 200 ps hold, 2 K/ps to 300 K, then
    # triaxial compression at -1e-3 /ps to -0.25 (Fig. 10); 1000 atoms
    "paper": dict(n_atoms=1000, relax_steps=2000,
                  temperature=[["hold", 2000.0, 200.0], ["rate", 2000.0, 1000.0, 10.0], ["hold", 1000.0, 200.0],
                               ["rate", 1000.0, 300.0, 2.0], ["hold", 300.0, 100.0]],
                  chunk=1000, every=1000, rate=-1e-3, max_strain=-0.25, snapshot=0.005),
}[SIZE]
# DP-GEN trust levels for the maximum force deviation, eV/Å.  Set them relative to the
# ensemble's own scatter on the configurations it was trained for: the default potential is a
# small distilled model (held-out force RMSE ~0.4-0.8 eV/Å, glassjax.pretrained.default_info())
# whose members differ by max_devi_f ~0.6-0.9 eV/Å on a 300 K glass.  A production potential
# fitted to DFT typically uses ~0.1-0.15 and ~0.3-0.35 eV/Å.
TRUST_LO, TRUST_HI = 0.8, 1.5
print(f"size {SIZE!r}; outputs in {OUT}")

# %% [markdown]
# ## 1. A melt-quench with ensemble member 0
#
# The recipe builds a random Li2O·2B2O3 cell at 2.22 g/cm³ and cools it from the melt to 300 K at
# constant volume (NVT). The H5MD trajectory stores a frame every `every` steps.

# %%
from glassjax.demo import to_toml
from glassjax.md.recipe import load_recipe, run_stages

stages = []
if S["relax_steps"]:
    stages.append({"name": "relax", "type": "minimize", "fmax": 0.2, "max_steps": S["relax_steps"]})
stages.append({"name": "melt_quench", "ensemble": "nvt", "dt": 0.001, "tau_t": 0.1,
               "temperature": S["temperature"], "initial_temperature": S["temperature"][0][1]})
recipe = {"potential": {"type": "default"},
          "system": {"composition": "Li2O-2B2O3", "n_atoms": S["n_atoms"], "density": 2.22, "seed": 1},
          "run": {"output": "md", "chunk": S["chunk"], "every": S["every"], "precision": "float64"},
          "stage": stages}
(OUT / "recipe.toml").write_text(to_toml(recipe, header="uncertainty notebook: melt-quench"))
md_dir, glass = run_stages(load_recipe(OUT / "recipe.toml"), progress=SIZE != "ci")
mq_dir = md_dir / f"{len(stages)}_melt_quench"

# %% [markdown]
# ## 2. Ensemble deviation along the melt-quench
#
# `deviation_along` loads the four members and evaluates each on every frame (one compiled,
# vmapped evaluator shared by the members); `flag_frames` applies the trust levels.

# %%
from glassjax.pretrained import default_ensemble_paths
from glassjax.uncertainty import deviation_along, flag_frames, write_flagged

members = default_ensemble_paths()
devi_mq = deviation_along(members, mq_dir / "trajectory.h5")
flags_mq = flag_frames(devi_mq, TRUST_LO, TRUST_HI)
print(f"{len(devi_mq['frame'])} frames: " + ", ".join(f"{len(flags_mq[k])} {k}" for k in
                                                       ("accurate", "candidate", "failed")))


def trust_bands(ax):
    ax.axhspan(0, TRUST_LO, color="tab:green", alpha=0.12, label="accurate")
    ax.axhspan(TRUST_LO, TRUST_HI, color="tab:orange", alpha=0.15, label="candidate")
    ax.axhline(TRUST_HI, color="tab:red", lw=1, label="failed above")


fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
ax[0].plot(devi_mq["time_ps"], devi_mq["max_devi_f"], "o-", ms=3, label="max_devi_f")
ax[0].plot(devi_mq["time_ps"], devi_mq["avg_devi_f"], ".-", ms=3, label="avg_devi_f")
trust_bands(ax[0])
ax[0].set_xlabel("time (ps)")
ax[0].set_ylabel("force deviation (eV/Å)")
ax[0].legend(fontsize=7)
t2 = ax[0].twinx()
t2.plot(devi_mq["time_ps"], devi_mq["temperature"], "k:", lw=1)
t2.set_ylabel("temperature (K), dotted")
ax[1].scatter(devi_mq["temperature"], devi_mq["max_devi_f"], c=devi_mq["time_ps"], s=12)
trust_bands(ax[1])
ax[1].set_xlabel("temperature (K)")
ax[1].set_ylabel("max_devi_f (eV/Å)")
fig.tight_layout()
display(fig)
plt.close(fig)

# %% [markdown]
# The hot liquid explores configurations (short contacts, odd coordinations) that the training
# data cover more thinly, so the members disagree more there; after the quench the deviation
# drops back. (At the `ci` size the unrelaxed random start heats the cell to thousands of K in a
# hundred steps: expect nearly everything to be flagged.)

# %% [markdown]
# ## 3. Ensemble deviation along a triaxial compression
#
# The quenched glass is compressed along all three axes at a constant engineering strain rate
# (`glassjax.md.deform`, NVT at 300 K; the 2024 paper's Fig. 10 experiment at a far higher
# rate). Compression pushes the network into densities the training data cover sparsely: at
# the `default` size the deviation stays near its glass value up to ~10 % strain and climbs past
# `trust_hi` beyond ~15 % (pressures far above 50 GPa at this fast, thermostatted rate), where no
# prediction of this potential should be trusted without new labels.

# %%
from glassjax.md import deform as D
from glassjax.md import integrators as I
from glassjax.md.recipe import make_potential
from glassjax.md.trajectory import load_checkpoint

rec = load_recipe(OUT / "recipe.toml")
state, spec, _ = load_checkpoint(mq_dir / "checkpoint.npz")
energy_fn, _, _ = make_potential(rec["potential"], glass, "Li2O-2B2O3", state.positions.dtype)
comp_dir = OUT / "compression"
D.run_deformation(energy_fn, state, spec, I.nvt(0.001, 0.1), D.Deformation("triaxial"),
                  D.deform_params(rate=S["rate"], temperature=300.0, dtype=state.positions.dtype),
                  target_strain=S["max_strain"], record_strain_interval=S["snapshot"] / 2,
                  snapshot_strain_interval=S["snapshot"], out_dir=comp_dir,
                  symbols=glass.get_chemical_symbols(), progress=SIZE != "ci")

devi_c = deviation_along(members, comp_dir / "trajectory.h5")
flags_c = flag_frames(devi_c, TRUST_LO, TRUST_HI)
print(f"{len(devi_c['frame'])} frames: " + ", ".join(f"{len(flags_c[k])} {k}" for k in
                                                      ("accurate", "candidate", "failed")))
fig, ax = plt.subplots(figsize=(5.5, 3.6))
colors = {"accurate": "tab:green", "candidate": "tab:orange", "failed": "tab:red"}
ax.plot(-devi_c["strain"], devi_c["max_devi_f"], "-", color="0.5")
for lab, c in colors.items():
    i = flags_c[lab]
    ax.plot(-devi_c["strain"][i], devi_c["max_devi_f"][i], "o", color=c, ms=4, label=lab)
ax.axhline(TRUST_LO, color="tab:orange", lw=0.8)
ax.axhline(TRUST_HI, color="tab:red", lw=0.8)
ax.set_xlabel("triaxial compressive strain")
ax.set_ylabel("max_devi_f (eV/Å)")
ax2 = ax.twinx()
ax2.plot(-devi_c["strain"], devi_c["pressure"], "k:", lw=1)
ax2.set_ylabel("pressure (GPa), dotted")
ax.legend(fontsize=7)
fig.tight_layout()
display(fig)
plt.close(fig)

# %% [markdown]
# ## 4. Export the candidates for labelling
#
# DP-GEN labels the candidates (never the failed frames) with DFT and retrains. `write_flagged`
# writes them as extended XYZ (atomically) with each frame's deviation, step and source in its
# `info`; `glassjax data convert` reads the labelled file back into the training set.

# %%
n_mq = write_flagged(OUT / "candidates_melt_quench.extxyz", mq_dir / "trajectory.h5", flags_mq, devi=devi_mq)
n_c = write_flagged(OUT / "candidates_compression.extxyz", comp_dir / "trajectory.h5", flags_c, devi=devi_c)
print(f"wrote {n_mq} melt-quench and {n_c} compression candidates to {OUT}")
assert np.all(np.isfinite(devi_mq["max_devi_f"])) and np.all(np.isfinite(devi_c["max_devi_f"]))
