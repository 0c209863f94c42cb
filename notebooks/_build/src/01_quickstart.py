# %% [markdown]
# # glassjax quickstart: data → model → glass → structure, in one Python process
#
# This notebook walks through the whole DeePMD workflow for a lithium borate glass without
# leaving Python:
#
# 1. **convert** a labelled data set (DFT-like energies and forces) to glassjax's HDF5 format,
# 2. **train** a small DeepPot-SE model on it,
# 3. **test** it: energy and force parity plots against the reference labels,
# 4. **melt-quench** a small Li2O·2B2O3 glass with molecular dynamics,
# 5. **analyse** the glass: the fraction of four-coordinated boron (4B, N4) and the number of
#    B3O3 / T3O3 three-membered rings.
#
# Units throughout: Å, eV, eV/Å, ps, K, GPa, g/cm³.
#
# The data set is the shipped held-out sample of the default potential
# (`tests/data/default_potential/heldout.extxyz`: 28 frames of four LB/LBS glasses, ~100 atoms
# each, labelled by the potential's teacher). It is far too small to train a production
# potential, so the MD below uses the **shipped default potential** (`glassjax.pretrained`);
# switch `MD_POTENTIAL` to `"trained"` to run it with the model you just trained (at the
# `paper` size, where it is trained long enough).
#
# **Size switch**: `GLASSJAX_NOTEBOOK_SIZE` = `ci` (seconds, used by the test suite),
# `default` (minutes on a laptop CPU) or `paper` (the papers' settings: a GPU job).

# %%
import os
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)  # float64 everywhere (the papers' DeePMD precision)

SIZE = os.environ.get("GLASSJAX_NOTEBOOK_SIZE", "default")
assert SIZE in ("ci", "default", "paper"), SIZE

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

import glassjax

# the repository (for its shipped sample data); outputs go to ./notebook_out/
REPO = Path(os.environ.get("GLASSJAX_REPO", Path(glassjax.__file__).resolve().parents[1]))
OUT = Path(os.environ.get("GLASSJAX_NOTEBOOK_OUT", "notebook_out")).resolve() / "01_quickstart"
OUT.mkdir(parents=True, exist_ok=True)

SETTINGS = {
    # training: descriptor / fitting sizes, steps; MD: atoms and temperature schedule
    "ci": dict(neuron=[4, 8], axis_neuron=4, fitting=[16, 16], rcut=4.0, rcut_smth=3.5, steps=20,
               n_atoms=60, melt=[["hold", 2500.0, 0.05]], quench=[["ramp", 2500.0, 300.0, 0.05]],
               npt_ps=0.0, relax_steps=0, chunk=50, every=25),
    "default": dict(neuron=[8, 16], axis_neuron=4, fitting=[32, 32], rcut=5.0, rcut_smth=4.5, steps=300,
                    n_atoms=150, melt=[["hold", 2500.0, 1.0]], quench=[["ramp", 2500.0, 300.0, 2.0]],
                    npt_ps=1.0, relax_steps=200, chunk=250, every=50),
    # the papers: DeePMD-kit's default network sizes (25-50-100 embedding, 3x240 fitting, 6 Å),
    # 10^7 training steps (2024 paper, Sec. III A); 1000 atoms, 2000 K melt (200 ps), 10 K/ps to
    # 1000 K, 200 ps hold, 2 K/ps to 300 K, 300 ps NPT (2022 paper / 2024 paper, Sec. II)
    "paper": dict(neuron=[25, 50, 100], axis_neuron=16, fitting=[240, 240, 240], rcut=6.0, rcut_smth=0.5,
                  steps=10_000_000, n_atoms=1000,
                  melt=[["hold", 2000.0, 200.0]],
                  quench=[["rate", 2000.0, 1000.0, 10.0], ["hold", 1000.0, 200.0], ["rate", 1000.0, 300.0, 2.0]],
                  npt_ps=300.0, relax_steps=2000, chunk=1000, every=1000),
}[SIZE]
MD_POTENTIAL = "trained" if SIZE == "paper" else "default"  # or "trained"
print(f"size {SIZE!r}; outputs in {OUT}")

# %% [markdown]
# ## 1. Convert the data to HDF5
#
# `glassjax.data.read_any` reads DeePMD-kit `npy`/`raw` systems, VASP `OUTCAR`/`vasprun.xml` and
# anything ASE reads (here extended XYZ). A file with several compositions is split into one
# *system* per composition. `write_dataset` stores them in one HDF5 file with a fixed
# train/validation split (here 2 of every 7 frames go to validation).
#
# Same thing on the command line: `glassjax data convert heldout.extxyz -o data.h5`.

# %%
from glassjax.data import read_any, summarize, write_dataset

SAMPLE = REPO / "tests" / "data" / "default_potential" / "heldout.extxyz"
systems = read_any(SAMPLE)
if SIZE == "ci":  # seconds: only the two LBS systems of 104 atoms (one compiled evaluator)
    systems = [fr for fr in systems if fr.natoms == 104]
for fr in systems:
    print(f"{fr.name:28s} {fr.formula:16s} {fr.nframes} frames x {fr.natoms} atoms, labels {fr.labels}")
DATA = OUT / "data.h5"
write_dataset(DATA, systems, val_fraction=0.3, seed=0)
summarize(DATA)

# %% [markdown]
# ## 2. Train a small DeepPot-SE model
#
# The configuration is the same as a `train.toml` file (see `train/quick_cpu.toml`); here it is
# built in Python. `sel = "auto"` counts the neighbours in the data, as DeePMD-kit does. The
# loss uses DeePMD-kit's moving prefactors (forces first, energy later) and the learning rate
# decays exponentially. The run writes `lcurve.out` (the learning curve), `model.ckpt` and a
# DeePMD-kit compatible `model.dp` into its output folder.

# %%
from glassjax.train.config import (DescriptorSection, FittingSection, LearningRateSection, ModelSection,
                                   TrainConfig, TrainingSection)
from glassjax.train.trainer import Trainer, read_lcurve

S = SETTINGS
config = TrainConfig(
    model=ModelSection(descriptor=DescriptorSection(rcut=S["rcut"], rcut_smth=S["rcut_smth"], sel="auto",
                                                    neuron=S["neuron"], axis_neuron=S["axis_neuron"]),
                       fitting=FittingSection(neuron=S["fitting"])),
    learning_rate=LearningRateSection(start_lr=5e-3, stop_lr=1e-4, decay_steps=max(1, S["steps"] // 20)),
    training=TrainingSection(data=str(DATA), numb_steps=S["steps"], batch_size=2,
                             disp_freq=max(1, S["steps"] // 10), save_freq=S["steps"],
                             output_dir=str(OUT / "train"), stat_frames_per_system=5,
                             bucket=False))  # pad all systems to one size: one compiled step
trainer = Trainer(config, progress=SIZE != "ci")
print("sel (neighbours per type within rcut):", dict(zip(trainer.type_map, trainer.sel)))
state = trainer.run()
model_dp = OUT / "train" / "model.dp"

curve = read_lcurve(OUT / "train" / "lcurve.out")
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.semilogy(curve[:, 0], curve[:, 6], "o-", label="force RMSE, training batch")
ax.semilogy(curve[:, 0], curve[:, 5], "s-", label="force RMSE, validation")
ax.set_xlabel("training step")
ax.set_ylabel("force RMSE (eV/Å)")
ax.legend()
display(fig)
plt.close(fig)

# %% [markdown]
# ## 3. Test the model: parity plots
#
# `predict_frames` evaluates the model on every frame (jitted, vmapped); `system_errors` gives
# the per-system errors of the papers' Table S1 (energy per atom in meV/atom, forces in eV/Å).
# A good potential puts the points on the diagonal. A few hundred steps on 20 frames give only a
# rough model (force errors ~1 eV/Å, energies tens of meV/atom); the shipped default potential was
# trained for thousands of steps on ~1100 frames, the papers' for 10⁷ steps.

# %%
from glassjax.data import read_dataset
from glassjax.model import load_model
from glassjax.train.evaluate import format_table, parity_plot, predict_frames, system_errors

model, variables = load_model(model_dp)
val = [fr for fr in read_dataset(DATA, split="val") if fr.nframes]
pairs = [(fr, predict_frames(model, variables, fr)) for fr in val]
print(format_table([system_errors(fr, p) for fr, p in pairs]))
parity_plot(OUT / "parity.png", pairs, title=f"validation frames, {S['steps']} training steps")
display(Image(filename=str(OUT / "parity.png")))

# %% [markdown]
# ## 4. Melt-quench a Li2O·2B2O3 glass
#
# A *simulation recipe* (the same TOML that `glassjax simulate recipe.toml` runs) describes the
# system (composition, atom count, density), the potential and the MD stages. Each stage writes
# an H5MD trajectory, a thermodynamic log (`thermo.csv`) and a checkpoint into
# `<output>/<k>_<stage>/`; running it again skips finished stages.
#
# The glass is built at random at 2.22 g/cm³, relaxed (FIRE), melted at 2500 K, quenched to
# 300 K at constant volume (NVT, Nosé-Hoover chains) and equilibrated at 300 K and 0 GPa (NPT).
# At the `ci` and
# `default` sizes this is a very fast quench of a small cell: the point is the workflow, not a
# converged glass.

# %%
from glassjax.demo import to_toml
from glassjax.md.recipe import load_recipe, run_stages

potential = {"type": "default"} if MD_POTENTIAL == "default" else {"type": "model", "model": str(model_dp)}
stages = []
if S["relax_steps"]:  # FIRE relaxation of the random start (removes the worst close contacts)
    stages.append({"name": "relax", "type": "minimize", "fmax": 0.2, "max_steps": S["relax_steps"]})
stages.append({"name": "melt_quench", "ensemble": "nvt", "dt": 0.001, "tau_t": 0.1,
               "temperature": S["melt"] + S["quench"], "initial_temperature": S["melt"][0][1]})
if S["npt_ps"]:  # (skipped at the ci size: one compiled MD loop less)
    stages.append({"name": "npt_300K", "ensemble": "npt", "dt": 0.001, "tau_t": 0.1, "tau_p": 0.5,
                   "pressure": 0.0, "temperature": [["hold", 300.0, S["npt_ps"]]]})
recipe = {
    "potential": potential,
    "system": {"composition": "Li2O-2B2O3", "n_atoms": S["n_atoms"], "density": 2.22, "seed": 0},
    "run": {"output": "md", "chunk": S["chunk"], "every": S["every"], "precision": "float64"},
    "stage": stages,
}
(OUT / "recipe.toml").write_text(to_toml(recipe, header="quickstart melt-quench"))
print((OUT / "recipe.toml").read_text())
rec = load_recipe(OUT / "recipe.toml")
md_dir, glass = run_stages(rec, progress=SIZE != "ci")

# %%
from glassjax.demo import read_csv

md_stages = [(k + 1, st["name"]) for k, st in enumerate(stages) if st.get("type", "md") == "md"]
labels = {"melt_quench": "melt-quench (NVT)", "npt_300K": "300 K, 0 GPa (NPT)"}
fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
for k, name in md_stages:
    t, label = read_csv(md_dir / f"{k}_{name}" / "thermo.csv"), labels[name]
    ax[0].plot(t["time_ps"], t["T_K"], label=label)
    ax[1].plot(t["time_ps"], t["density_g_cm3"], label=label)
ax[0].set_ylabel("temperature (K)")
ax[1].set_ylabel("density (g/cm³)")
for a in ax:
    a.set_xlabel("time (ps)")
    a.legend(fontsize=8)
fig.tight_layout()
display(fig)
plt.close(fig)

# %% [markdown]
# ## 5. Structure: 4B fraction and 3-rings
#
# Boron is three-coordinated (3B, trigonal BO3) or four-coordinated (4B, tetrahedral BO4⁻, the
# charge compensated by Li⁺). N4 = n(4B)/n(B) counts B-O bonds shorter than 2.0 Å (the papers'
# cutoff); the experimental N4 of Li2O·2B2O3 glass is about 0.42. Three-membered T3O3 rings
# (boroxol rings when all three T are 3B) are counted on the same bond network
# (`glassjax.analysis.rings`, exact enumeration in JAX).

# %%
from glassjax.analysis.coordination import coordination_trajectory
from glassjax.analysis.io import read_trajectory
from glassjax.analysis.rings import three_rings_trajectory

k, name = md_stages[-1]  # the last MD stage: 300 K
traj = read_trajectory(md_dir / f"{k}_{name}" / "trajectory.h5")
net = coordination_trajectory(traj, {"B-O": 2.0})
rings = three_rings_trajectory(traj, {"B-O": 2.0})
print(f"{traj.nframes} frames of {traj.natoms} atoms ({traj.formula})")
print(f"N4 = {net['frac_B4'].mean():.3f} ± {net['frac_B4'].std():.3f}   (experiment, Li2O·2B2O3: ~0.42)")
print(f"3-rings per frame: {rings['n_3rings'].mean():.1f}, boroxol (3 x 3B): {rings['n_3rings_B3x3'].mean():.1f}; "
      f"fraction of 3B in 3-rings {np.nanmean(rings['frac_B3_in_3ring']):.3f}")
assert np.all((net["frac_B4"] >= 0) & (net["frac_B4"] <= 1))
