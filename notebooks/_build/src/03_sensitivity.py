# %% [markdown]
# # Gradient-based sensitivity of a lithium borate glass
#
# Every stage of glassjax is JAX, so the derivative of a glass property with respect to strain,
# temperature or the potential's parameters is one `jax.grad` away. This notebook computes four
# such derivatives and checks **each against finite differences** (the same checks run as tests
# in `tests/test_sensitivity_*.py`):
#
# - **(a)** the 0 K elastic tensor of the glass by automatic differentiation of the stress,
#   clamped-ion and relaxed-ion (implicit differentiation of the minimum), against finite strain;
# - **(b)** the derivative of a smooth (differentiable) 4B fraction and of the pressure with
#   respect to strain along a quasi-static triaxial compression path;
# - **(c)** gradients of a short-trajectory observable (mean potential energy, mean smooth 4B over
#   N MD steps) with respect to the potential's parameters and to temperature, and where such
#   trajectory gradients stop being meaningful;
# - **(d)** which fitting-net parameters of the DeepPot-SE model most change the 4B fraction of
#   the relaxed glass, as a ranked plot.
#
# The machinery lives in `glassjax.sensitivity` (`elastic`, `implicit`, `path`, `trajectory`,
# `params`, `fd`); the notebook only calls it. Units: Å, eV, eV/Å, ps, K, GPa.
#
# **Size switch**: `GLASSJAX_NOTEBOOK_SIZE` = `ci` (seconds: a 49-atom Li borate glass and a tiny
# distilled model shipped with the tests), `default` (minutes on a laptop CPU: a ~100-atom
# Li2O·2B2O3 glass melt-quenched on the shipped default potential) or `paper` (300 atoms, longer
# quench: a GPU job).

# %%
import os
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)  # float64: derivative checks need it

SIZE = os.environ.get("GLASSJAX_NOTEBOOK_SIZE", "default")
assert SIZE in ("ci", "default", "paper"), SIZE

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from ase.io import read
from IPython.display import display

import glassjax
from glassjax import neighbors
from glassjax.analysis import bonds
from glassjax.analysis.coordination import smooth_boron_n4
from glassjax.md import integrators as I
from glassjax.model import load_model
from glassjax.sensitivity import elastic, fd, implicit, params as P, path, trajectory as tr

REPO = Path(os.environ.get("GLASSJAX_REPO", Path(glassjax.__file__).resolve().parents[1]))
OUT = Path(os.environ.get("GLASSJAX_NOTEBOOK_OUT", "notebook_out")).resolve() / "03_sensitivity"
OUT.mkdir(parents=True, exist_ok=True)

SETTINGS = {
    # glass: a shipped 49-atom Li borate glass (ci) or a melt-quench on the default potential
    "ci": dict(glass="shipped", path_strains=[0.0, -0.02, -0.04], traj_steps=20, horizons=[5, 10, 20],
               temperature=600.0, horizon_temperature=600.0),
    "default": dict(glass="melt_quench", n_atoms=100, melt_ps=2.0, quench_ps=3.0,
                    path_strains=[0.0, -0.02, -0.04, -0.06, -0.08, -0.10], traj_steps=100,
                    horizons=[10, 25, 50, 100, 200, 400, 800], temperature=600.0, horizon_temperature=2500.0),
    "paper": dict(glass="melt_quench", n_atoms=300, melt_ps=20.0, quench_ps=100.0,
                  path_strains=list(np.linspace(0.0, -0.15, 16)), traj_steps=200,
                  horizons=[10, 25, 50, 100, 200, 400, 800, 1600], temperature=600.0, horizon_temperature=2500.0),
}[SIZE]
S = SETTINGS
print(f"size {SIZE!r}; outputs in {OUT}")

# %% [markdown]
# ## The glass and its inherent structure
#
# At the `ci` size the glass is the shipped 49-atom Li borate snapshot with the tiny DeepPot-SE
# distilled from the Teter potential for the tests; otherwise a Li2O·2B2O3 glass is melt-quenched
# on the shipped default potential (member 0 of the ensemble, in float64). Implicit
# differentiation needs an energy **minimum**: FIRE, then a few Newton steps, brings the largest
# residual force to round-off (`implicit.relax_structure`).

# %%
if S["glass"] == "shipped":
    model, variables = load_model(REPO / "tests" / "data" / "md_models" / "teter_distilled_lb.dp", dtype="float64")
    atoms = read(REPO / "tests" / "data" / "md_models" / "lb_glass_start.extxyz")
else:
    from glassjax.demo import to_toml
    from glassjax.md.recipe import load_recipe, run_stages
    from glassjax.pretrained import default_model_path

    recipe = {
        "potential": {"type": "default"},
        "system": {"composition": "Li2O-2B2O3", "n_atoms": S["n_atoms"], "density": 2.22, "seed": 0},
        "run": {"output": "md", "chunk": 500, "every": 500, "precision": "float64"},
        "stage": [{"name": "relax", "type": "minimize", "fmax": 0.2, "max_steps": 300},
                  {"name": "melt_quench", "ensemble": "nvt", "dt": 0.001, "tau_t": 0.1,
                   "initial_temperature": 2500.0,
                   "temperature": [["hold", 2500.0, S["melt_ps"]], ["ramp", 2500.0, 300.0, S["quench_ps"]]]}],
    }
    (OUT / "recipe.toml").write_text(to_toml(recipe, header="sensitivity notebook glass"))
    _, atoms = run_stages(load_recipe(OUT / "recipe.toml"), progress=True)
    model, variables = load_model(default_model_path(), dtype="float64")

types = model.types_from_species(atoms.get_chemical_symbols())
pos0 = jnp.asarray(atoms.positions, jnp.float64)
cell = jnp.asarray(atoms.cell.array, jnp.float64)
nl, spec = model.neighbor_list(pos0, cell, skin=1.0, types=types)
efn = model.energy_fn(variables, types)
# the cell relaxes too (to 0 GPa), so the elastic constants below are those of a stress-free glass
x, cell, nl, spec, fmax = implicit.relax_structure(efn, pos0, cell, nl, spec, fmax=1e-2, relax_cell=True)
print(f"{len(atoms)} atoms ({atoms.get_chemical_formula()}), type map {list(model.type_map)}")
print(f"inherent structure: E = {float(efn(x, cell, nl)):.4f} eV, largest residual force {fmax:.1e} eV/Å")
print(f"stress at the minimum (GPa, xx yy zz yz xz xy): "
      f"{np.round(np.asarray(elastic.stress_of_strain(efn, x, cell, nl, jnp.zeros(6))), 3)}")

# %% [markdown]
# ## (a) The elastic tensor by automatic differentiation
#
# `C_ij = dσ_i/dε_j` (Voigt order xx, yy, zz, yz, xz, xy; engineering shear strains; GPa) of the
# glass at 0 K. **Clamped-ion**: every atom follows the affine strain; `jax.jacfwd` of the stress
# (itself `jax.grad` of the energy). **Relaxed-ion**: the atoms also relax at the strained cell;
# implicit differentiation of the minimum adds `∂σ/∂R · dR*/dε` with `H dR*/dε = −∂²E/∂R∂ε`
# (one Hessian solve per strain component, translations projected out). The references are
# finite strains of ±1e-5, the relaxed one re-minimised (Newton) at every strained cell.
# (The glass was relaxed to zero stress above, so `C` is symmetric and equals the energy-density
# Hessian `(1/V) ∂²E/∂ε_i∂ε_j`.)

# %%
C_clamped = np.asarray(elastic.elastic_tensor(efn, x, cell, nl))
C_relaxed = np.asarray(elastic.elastic_tensor(efn, x, cell, nl, relaxed=True))
C_clamped_fd = np.asarray(elastic.elastic_tensor_fd(efn, x, cell, nl, h=1e-5))


def reminimise(y, c, nl_):
    return implicit.newton_polish(efn, y, c, nl_, steps=8, force_tol=1e-11)[0]


C_relaxed_fd = np.asarray(elastic.elastic_tensor_fd(efn, x, cell, nl, h=1e-5, relax=reminimise))
scale = np.abs(C_clamped).max()
print(f"clamped-ion: max |AD - FD| = {np.abs(C_clamped - C_clamped_fd).max():.2e} GPa (of {scale:.0f} GPa)")
print(f"relaxed-ion: max |AD - FD| = {np.abs(C_relaxed - C_relaxed_fd).max():.2e} GPa")
assert np.abs(C_clamped - C_clamped_fd).max() < 1e-4 * scale
assert np.abs(C_relaxed - C_relaxed_fd).max() < 1e-3 * scale

fig, ax = plt.subplots(1, 2, figsize=(9, 3.8))
lab = ["xx", "yy", "zz", "yz", "xz", "xy"]
for a, c, t in ((ax[0], C_clamped, "clamped-ion (affine)"), (ax[1], C_relaxed, "relaxed-ion")):
    im = a.imshow(c, cmap="RdBu_r", vmin=-scale, vmax=scale)
    a.set_xticks(range(6), lab)
    a.set_yticks(range(6), lab)
    a.set_title(f"C (GPa), {t}")
    for i in range(6):
        for j in range(6):
            a.text(j, i, f"{c[i, j]:.0f}", ha="center", va="center", fontsize=7)
fig.colorbar(im, ax=ax, shrink=0.8)
display(fig)
plt.close(fig)
for name, c in (("clamped-ion", C_clamped), ("relaxed-ion", C_relaxed)):
    m = elastic.isotropic_moduli(c)
    print(f"{name:12s} K_Hill {m['K_H']:6.1f} GPa, G_Hill {m['G_H']:6.1f} GPa, E {m['E']:6.1f} GPa, nu {m['nu']:.3f}")
print("(experiment for Li2O-2B2O3 glass at room temperature: E ~ 80-90 GPa, nu ~ 0.27; "
      "relaxed-ion moduli are the 0 K, infinitely slow-loading limit of this small model glass)")

# %% [markdown]
# ## (b) Smooth 4B and pressure along a compression path
#
# The 4B fraction counts borons with four oxygens within 2.0 Å: a step function of the
# positions, with zero derivative almost everywhere. The **smooth 4B** replaces both steps by
# sigmoids (a Fermi switch of width 0.05 Å on the B-O distance, then a switch of width 0.1 on
# the coordination around 3.5), so it is differentiable and tends to the count as the widths
# go to zero. Here the glass is compressed quasi-statically (triaxially, re-minimised at every
# strain: a 0 K compression path), and at every point of the path the derivatives
# `d(smooth 4B)/dε` and `dP/dε` are computed affinely (clamped-ion, by `jax.jvp`, vmapped
# over the path), relaxed-ion (implicit), and by central finite strain.

# %%
strains = np.asarray(S["path_strains"])
frames_x, frames_c = [], []
y, e_prev = x, 0.0
for e in strains:  # each point starts from the previous one, rescaled, and is re-minimised
    c_e = cell * (1.0 + e)
    y0 = y * (1.0 + e) / (1.0 + e_prev)
    nl_e = neighbors.build(y0, c_e, spec)  # the same static list shape: FIRE compiles once
    y, c_e, _, spec, _ = implicit.relax_structure(efn, y0, c_e, nl_e, spec, fmax=1e-2)
    e_prev = e
    frames_x.append(np.asarray(y))
    frames_c.append(np.asarray(c_e))
frames_x, frames_c = np.stack(frames_x), np.stack(frames_c)
tm = list(model.type_map)
kw = dict(cutoff=model.rcut, skin=1.0)
ad = path.path_strain_derivatives(efn, frames_x, frames_c, types, tm, **kw)
num = path.path_strain_derivatives_fd(efn, frames_x, frames_c, types, tm, h=1e-5, **kw)
rel = path.path_strain_derivatives_relaxed(efn, frames_x, frames_c, types, tm, **kw)
for k in ("dn4_deps", "dpressure_deps"):
    err = np.abs(np.asarray(ad[k]) - np.asarray(num[k])).max()
    print(f"{k}: max |AD - FD| over the path = {err:.2e}")
    assert err < 1e-5 * max(1.0, np.abs(np.asarray(num[k])).max())
print(" strain   smooth 4B   P (GPa)   d4B/deps affine / relaxed   dP/deps affine / relaxed (GPa)")
for i, e in enumerate(strains):
    print(f"{e:7.3f}   {float(ad['n4'][i]):.4f}   {float(ad['pressure'][i]):8.3f}   "
          f"{float(ad['dn4_deps'][i]):9.3f} / {float(rel['dn4_deps'][i]):9.3f}   "
          f"{float(ad['dpressure_deps'][i]):9.1f} / {float(rel['dpressure_deps'][i]):9.1f}")

fig, ax = plt.subplots(1, 2, figsize=(9.5, 3.6))
for a, key, dkey, ylabel in ((ax[0], "n4", "dn4_deps", "smooth 4B fraction"),
                              (ax[1], "pressure", "dpressure_deps", "virial pressure (GPa)")):
    v = np.asarray(ad[key])
    a.plot(strains, v, "ko-", label="quasi-static path (re-minimised)")
    half = 0.35 * (abs(strains[1] - strains[0]) if len(strains) > 1 else 0.01)
    for i, e in enumerate(strains):
        for d, style, lab in ((ad, "b-", "affine tangent"), (rel, "r-", "relaxed tangent")):
            s = float(d[dkey][i])
            a.plot([e - half, e + half], [v[i] - s * half, v[i] + s * half], style, lw=1.5,
                   label=lab if i == 0 else None)
    a.set_xlabel("triaxial strain ε")
    a.set_ylabel(ylabel)
    a.legend(fontsize=7)
fig.tight_layout()
display(fig)
plt.close(fig)

# %% [markdown]
# The relaxed tangent follows the quasi-static path (whose points are re-minimised), the
# affine one does not: under compression the network relaxes by changing its bonding, which
# an affine strain cannot capture. The relaxed `dP/dε` is the 0 K bulk response `-3K`.

# %% [markdown]
# ## (c) Trajectory gradients: potential parameters and temperature
#
# An MD observable averaged over `N` steps, `O(θ, T) = (1/N) Σ a(x_n)`, is differentiated
# through every step of the integrator (`jax.grad` through a `lax.scan`, with
# `jax.checkpoint` blocks to bound memory). T enters twice: the initial momenta are `√T` times
# fixed unit momenta, and T is the Nosé-Hoover target. Checks: `∇_θ O · d` against the
# central difference along a random direction `d` in parameter space, and `dO/dT` against a
# central difference in T.

# %%
theta = variables["params"]
energy_of = tr.deeppot_energy_of(model, variables, types)
masses = jnp.asarray(atoms.get_masses())
key = jax.random.PRNGKey(0)
n4_obs = tr.smooth_n4_observable(types, tm)
T0 = S["temperature"]
results = {}
for name, obs in (("mean potential energy (eV)", "potential_energy"), ("mean smooth 4B", n4_obs)):
    kw_t = dict(ensemble=I.nvt(0.001, tau_t=0.05), n_steps=S["traj_steps"], spec=spec, observable=obs,
                checkpoint_every=10, fast_compile=True)
    args = (x, cell, masses, key)
    val, g_theta, g_t = tr.trajectory_gradients(energy_of, theta, T0, *args, **kw_t)

    def value(th, t=T0):
        return tr.trajectory_value(energy_of, th, t, *args, **kw_t)

    d = fd.random_direction(theta, jax.random.PRNGKey(1))
    ad_dir, fd_dir = float(fd.tree_vdot(g_theta, d)), float(fd.directional_derivative(value, theta, d, h=1e-4))
    fd_t = float(fd.central_difference(lambda t: value(theta, t), T0, h=0.5))
    results[name] = (float(val), ad_dir, fd_dir, float(g_t), fd_t, g_theta)
    print(f"{name}: O = {float(val):.5g} over {S['traj_steps']} steps at {T0:.0f} K")
    print(f"   along a random parameter direction: AD {ad_dir:.6e}   FD {fd_dir:.6e}")
    print(f"   d/dT (per K):                       AD {float(g_t):.6e}   FD {fd_t:.6e}")
    assert abs(ad_dir - fd_dir) <= 1e-4 * abs(fd_dir) + 1e-10
    assert abs(float(g_t) - fd_t) <= 1e-3 * abs(fd_t) + 1e-10

# %% [markdown]
# ### Where are trajectory gradients meaningful?
#
# MD of a glass or melt is chaotic: a perturbation grows like `exp(λt)`. The AD derivative is
# the exact derivative of *one* trajectory, so beyond a few Lyapunov times it grows
# exponentially and says little about the ensemble average (whose derivative stays bounded),
# while a finite difference with a finite step measures a smoothed quantity. `horizon_study`
# computes both for a range of horizons: they agree at short horizons and part ways later.
# For long-time properties use short horizons averaged over several initial keys
# (`trajectory.key_averaged_gradients`), or the inherent-structure derivative of (d), which
# has no horizon at all. The study runs in the melt (`horizon_temperature`, 2500 K at the
# default size), where chaos is fastest; in the 600 K glass above the two still agree after
# 0.4 ps.

# %%
hz = tr.horizon_study(energy_of, theta, S["horizon_temperature"], x, cell, masses, key,
                      ensemble=I.nvt(0.001, tau_t=0.05),
                      horizons=S["horizons"], spec=spec, observable="potential_energy", h_temperature=0.5,
                      fast_compile=True)
print(" steps   t (ps)   dO/d(direction) AD / FD         dO/dT AD / FD (eV/K)       rel. diff θ, T")
for i in range(len(hz["horizon"])):
    print(f"{hz['horizon'][i]:6d}  {hz['time_ps'][i]:6.3f}   {hz['ad_theta'][i]: .4e} / {hz['fd_theta'][i]: .4e}   "
          f"{hz['ad_temperature'][i]: .4e} / {hz['fd_temperature'][i]: .4e}   "
          f"{hz['rel_diff_theta'][i]:.1e}, {hz['rel_diff_temperature'][i]:.1e}")
fig, ax = plt.subplots(1, 2, figsize=(9.5, 3.4))
for a, k, lab in ((ax[0], "theta", "dO/d(random parameter direction)"), (ax[1], "temperature", "dO/dT (eV/K)")):
    a.plot(hz["time_ps"], np.abs(hz[f"ad_{k}"]), "o-", label="AD (one trajectory)")
    a.plot(hz["time_ps"], np.abs(hz[f"fd_{k}"]), "s--", label="finite difference")
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("horizon (ps)")
    a.set_ylabel(f"|{lab}|")
    a.legend(fontsize=8)
fig.suptitle(f"mean potential energy over the horizon at {S['horizon_temperature']:.0f} K: AD and FD derivatives")
fig.tight_layout()
display(fig)
plt.close(fig)
assert hz["rel_diff_theta"][0] < 1e-3  # the shortest horizon: AD = FD

# %% [markdown]
# ## (d) Which fitting-net parameters change the 4B fraction most?
#
# The smooth 4B fraction of the **relaxed** glass, `4B(R*(θ))`, is differentiated with respect
# to all DeepPot-SE parameters by the adjoint method: one Hessian solve `H λ = ∂4B/∂R` and one
# vector-Jacobian product of the forces, whatever the number of parameters. The ranking uses
# the relative sensitivity `|θ · ∂4B/∂θ|` (the change of 4B for a 100 % change of a parameter).
# The top-ranked parameter is then checked by perturbing that single number and re-minimising.

# %%
n4_val, grad = implicit.deeppot_n4_param_gradient(model, variables, x, cell, types, nl)
print(f"smooth 4B of the inherent structure: {float(n4_val):.4f}")
table = P.rank_parameters(grad, theta, top=15, by="relative", select="fitting/", model=model)
fig, ax = plt.subplots(figsize=(7, 4.5))
P.plot_ranking(table, ax=ax, title="fitting-net parameters ranked by |θ ∂(4B)/∂θ|")
fig.tight_layout()
display(fig)
plt.close(fig)
groups = P.rank_groups(grad, theta, top=8, by="relative", model=model)
print("whole layers ranked by ||θ ∂(4B)/∂θ||:")
for name, value, g, score in groups.rows():
    print(f"  {name:34s} ||θ|| {value:8.3f}   ||∂4B/∂θ|| {g:.3e}   score {score:.3e}")

# %%
leaf, index = int(table.leaf[0]), int(table.index[0])
h = 1e-4 * max(1.0, abs(float(table.values[0])))


def relaxed_n4(delta):
    th = P.perturb_scalar(theta, leaf, index, delta)
    e_fn = model.energy_fn({**variables, "params": th}, types)
    y = implicit.newton_polish(e_fn, x, cell, nl, steps=8, force_tol=1e-11)[0]
    return smooth_boron_n4(y, cell, jnp.asarray(types), nl, jnp.asarray(bonds.cutoff_matrix(tm)),
                           bonds.SpeciesIndex.from_type_map(tm))


fd_top = float(fd.central_difference(relaxed_n4, 0.0, h))
print(f"top parameter {table.names[0]}: adjoint d4B/dθ = {float(table.grads[0]):.6e}, "
      f"re-minimised FD = {fd_top:.6e}")
assert abs(float(table.grads[0]) - fd_top) <= 1e-3 * abs(fd_top) + 1e-9
