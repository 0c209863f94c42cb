"""Trajectory gradients (glassjax.sensitivity.trajectory) against finite differences and a closed form.

References: central finite differences of the trajectory value (glassjax.sensitivity.fd,
which never differentiates), and the exact velocity-Verlet solution of harmonic oscillators
(an Einstein crystal) for the mean potential energy and its derivatives in T and the spring
constant.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ase.io import read

from glassjax import neighbors, units
from glassjax.errors import ConfigError, SimulationError
from glassjax.md import integrators as I
from glassjax.model import load_model
from glassjax.sensitivity import fd
from glassjax.sensitivity import trajectory as tr

MODELS = Path(__file__).resolve().parent / "data" / "md_models"
T0 = 600.0  # K
N_STEPS = 30
DT = 0.001  # ps


# ----------------------------------------------------------------------------- DeepPot glass

@pytest.fixture(scope="module")
def glass():
    model, variables = load_model(MODELS / "teter_distilled_lb.dp", dtype="float64")
    atoms = read(MODELS / "lb_glass_start.extxyz")
    types = model.types_from_species(atoms.get_chemical_symbols())
    pos = jnp.asarray(atoms.positions, jnp.float64)
    cell = jnp.asarray(atoms.cell.array, jnp.float64)
    _, spec = model.neighbor_list(pos, cell, skin=0.5, types=types)
    energy_of = tr.deeppot_energy_of(model, variables, types)
    masses = jnp.asarray(atoms.get_masses())
    return dict(model=model, variables=variables, types=types, pos=pos, cell=cell, masses=masses, spec=spec,
                energy_of=energy_of, key=jax.random.PRNGKey(11))


def _case(glass, ensemble, observable):
    kw = dict(ensemble=ensemble, n_steps=N_STEPS, spec=glass["spec"], observable=observable, fast_compile=True)
    args = (glass["pos"], glass["cell"], glass["masses"], glass["key"])
    value, g_theta, g_t = tr.trajectory_gradients(glass["energy_of"], glass["variables"]["params"], T0, *args, **kw)

    def f(theta, t=T0):
        # the value of the same compiled function (a second compile for the value alone costs
        # more CPU than the few extra backward passes); trajectory_value is checked below
        return tr.trajectory_gradients(glass["energy_of"], theta, t, *args, **kw)[0]

    return dict(value=float(value), g_theta=g_theta, g_t=float(g_t), f=f)


@pytest.fixture(scope="module")
def nve_pe(glass):
    return _case(glass, I.nve(DT), "potential_energy")


@pytest.fixture(scope="module")
def nvt_n4(glass):
    n4 = tr.smooth_n4_observable(glass["types"], glass["model"].type_map)
    return _case(glass, I.nvt(DT, tau_t=0.02), n4)


@pytest.mark.parametrize("case", ["nve_pe", "nvt_n4"])
def test_deeppot_parameter_gradient_matches_fd(case, request, glass):
    c = request.getfixturevalue(case)
    theta = glass["variables"]["params"]
    assert np.isfinite(c["value"])
    d = fd.random_direction(theta, jax.random.PRNGKey(1))
    ad = float(fd.tree_vdot(c["g_theta"], d))
    num = float(fd.directional_derivative(c["f"], theta, d, h=1e-4))
    assert abs(ad) > 0
    assert ad == pytest.approx(num, rel=1e-5)


@pytest.mark.parametrize("case", ["nve_pe", "nvt_n4"])
def test_deeppot_temperature_gradient_matches_fd(case, request, glass):
    c = request.getfixturevalue(case)
    theta = glass["variables"]["params"]
    num = float(fd.central_difference(lambda t: c["f"](theta, t), T0, h=0.5))
    assert abs(c["g_t"]) > 0
    assert c["g_t"] == pytest.approx(num, rel=1e-5)


def test_smooth_n4_observable_is_a_boron_fraction(glass, nvt_n4):
    # the 49-atom LB70 glass has 16 B; a smooth N4 lies strictly in (0, 1)
    assert 0.0 < nvt_n4["value"] < 1.0


# ----------------------------------------------------------------------------- Einstein crystal

def _einstein(n_atoms=8, mass=10.0):
    rng = np.random.default_rng(0)
    x0 = jnp.asarray(rng.uniform(0.0, 20.0, (n_atoms, 3)))
    cell = jnp.eye(3) * 20.0
    masses = jnp.full((n_atoms,), mass)

    def energy_of(theta, x, c, nl):
        return 0.5 * theta["k"] * jnp.sum((x - x0) ** 2)

    spec = tr.make_spec(x0, cell, cutoff=1.0, skin=1.0)
    return x0, cell, masses, energy_of, spec


def _verlet_mean_pe(k, temperature, n_steps, dt_ps, mass, n_atoms):
    """Exact velocity-Verlet mean potential energy of independent oscillators started at rest
    position with kinetic temperature T (N_f = 3N - 3), and its derivatives in T and k.

    x_n = dt v0 sin(n th) / sin(th), cos(th) = 1 - a / 2, a = k dt^2 / m, so
    PE_n = N_f k_B T sin^2(n th) / (2 (1 - a / 4)).
    """
    dt = dt_ps * units.PS
    nf = 3 * n_atoms - 3
    a = k * dt * dt / mass
    th = np.arccos(1.0 - a / 2.0)
    n = np.arange(1, n_steps + 1)
    c = 0.5 * nf * units.KB * temperature
    pe = c * np.sin(n * th) ** 2 / (1.0 - a / 4.0)
    dth_da = 1.0 / (2.0 * np.sin(th))
    dpe_da = c * (n * np.sin(2 * n * th) * dth_da / (1 - a / 4) + np.sin(n * th) ** 2 / (4 * (1 - a / 4) ** 2))
    return pe.mean(), pe.mean() / temperature, dpe_da.mean() * dt * dt / mass


def test_einstein_crystal_mean_pe_and_gradients_match_closed_form():
    x0, cell, masses, energy_of, spec = _einstein()
    k, t, n_steps, dt = 1.3, 450.0, 120, 0.005
    value, g, g_t = tr.trajectory_gradients(energy_of, {"k": jnp.asarray(k)}, t, x0, cell, masses,
                                            jax.random.PRNGKey(4), ensemble=I.nve(dt), n_steps=n_steps, spec=spec)
    ref, ref_t, ref_k = _verlet_mean_pe(k, t, n_steps, dt, 10.0, 8)
    assert float(value) == pytest.approx(ref, rel=1e-10)
    assert float(g_t) == pytest.approx(ref_t, rel=1e-10)
    assert float(g["k"]) == pytest.approx(ref_k, rel=1e-8)
    # a horizon of 2.5 oscillation periods: the mean is near half the equipartition value
    assert ref == pytest.approx(0.25 * (3 * 8 - 3) * units.KB * t, rel=0.1)


# ----------------------------------------------------------------------------- Lennard-Jones liquid

EPS, SIGMA, RC = 0.0104, 3.40, 8.5  # argon-like: eV, Å, Å


def _lj_energy(theta, x, c, nl):
    """Shifted-force Lennard-Jones (smooth at the cutoff RC), eV."""
    rij, mask = neighbors.pair_vectors(x, c, nl)
    r2 = jnp.sum(rij * rij, axis=-1)
    inside = mask & (r2 < RC * RC)
    r = jnp.sqrt(jnp.where(inside, r2, 1.0))
    eps, sig = theta["epsilon"], theta["sigma"]

    def v(rr):
        s6 = (sig / rr) ** 6
        return 4 * eps * (s6 * s6 - s6)

    def dv(rr):
        s6 = (sig / rr) ** 6
        return 4 * eps * (-12 * s6 * s6 + 6 * s6) / rr

    e = v(r) - v(RC) - (r - RC) * dv(RC)
    return 0.5 * jnp.sum(jnp.where(inside, e, 0.0))


@pytest.fixture(scope="module")
def lj():
    a = 5.8  # Å: fcc lattice constant, expanded to a liquid density
    base = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    cells = np.array([[i, j, k] for i in range(2) for j in range(2) for k in range(2)])
    pos = ((cells[:, None, :] + base[None, :, :]).reshape(-1, 3) * a)
    pos = pos + np.random.default_rng(1).normal(0, 0.05, pos.shape)
    cell = np.eye(3) * 2 * a
    spec = tr.make_spec(pos, cell, cutoff=RC, skin=1.0, capacity_factor=1.6)
    theta = {"epsilon": jnp.asarray(EPS), "sigma": jnp.asarray(SIGMA)}
    return dict(pos=jnp.asarray(pos), cell=jnp.asarray(cell), masses=jnp.full((32,), 39.948), spec=spec,
                theta=theta, key=jax.random.PRNGKey(5))


def test_checkpointing_gives_identical_values_and_gradients(lj):
    ens = I.nvt(0.005, tau_t=0.1)
    args = (lj["pos"], lj["cell"], lj["masses"], lj["key"])
    kw = dict(ensemble=ens, n_steps=40, spec=lj["spec"], observable="pressure", fast_compile=True)
    plain = tr.trajectory_gradients(_lj_energy, lj["theta"], 250.0, *args, **kw)
    ckpt = tr.trajectory_gradients(_lj_energy, lj["theta"], 250.0, *args, checkpoint_every=8, **kw)
    assert float(ckpt[0]) == pytest.approx(float(plain[0]), rel=1e-12, abs=1e-12)
    for k in ("epsilon", "sigma"):
        assert float(ckpt[1][k]) == pytest.approx(float(plain[1][k]), rel=1e-10)
        assert abs(float(plain[1][k])) > 0
    assert float(ckpt[2]) == pytest.approx(float(plain[2]), rel=1e-10)
    with pytest.raises(ConfigError, match="checkpoint_every"):
        tr.trajectory_gradients(_lj_energy, lj["theta"], 250.0, *args, checkpoint_every=0, **kw)


def test_horizon_study_short_horizons_agree_with_fd(lj):
    horizons = [5, 20, 50, 200, 800]
    out = tr.horizon_study(_lj_energy, lj["theta"], 300.0, lj["pos"], lj["cell"], lj["masses"], lj["key"],
                           ensemble=I.nve(0.005), horizons=horizons, spec=lj["spec"], h_theta=1e-5,
                           h_temperature=1e-2, fast_compile=True)
    # shown, not asserted: the AD/FD disagreement at long horizons (chaos)
    for row in zip(out["time_ps"], out["ad_theta"], out["fd_theta"], out["rel_diff_theta"],
                   out["ad_temperature"], out["fd_temperature"], out["rel_diff_temperature"]):
        print("t=%6.2f ps  AD_theta=% .4e FD_theta=% .4e rel=%.1e | AD_T=% .4e FD_T=% .4e rel=%.1e" % row)
    short = out["horizon"] <= 50
    assert np.all(out["rel_diff_theta"][short] < 1e-5)
    assert np.all(out["rel_diff_temperature"][short] < 1e-5)
    assert np.all(np.isfinite(out["value"]))


def test_overflowing_neighbour_list_raises(lj):
    small = neighbors.NeighborSpec(RC, 1.0, capacity=4, images=lj["spec"].images, block=lj["spec"].block)
    with pytest.raises(SimulationError, match="overflow"):
        tr.trajectory_value(_lj_energy, lj["theta"], 300.0, lj["pos"], lj["cell"], lj["masses"], lj["key"],
                            ensemble=I.nve(0.005), n_steps=4, spec=small, fast_compile=True)


def test_unit_momenta_are_exactly_one_kelvin_without_drift():
    masses = jnp.asarray(np.random.default_rng(3).uniform(6.9, 16.0, 20))
    p = tr.unit_momenta(jax.random.PRNGKey(9), masses)
    np.testing.assert_allclose(np.asarray(jnp.sum(p, axis=0)), 0.0, atol=1e-12)
    ke2 = float(jnp.sum(p * p / masses[:, None]))
    assert ke2 == pytest.approx((3 * 20 - 3) * units.KB * 1.0, rel=1e-12)


def test_nvt_trajectory_matches_the_md_engine_run_chunk():
    # the same NVT trajectory by the project's jitted MD loop, started by init_state
    x0, cell, masses, energy_of, spec = _einstein()
    theta = {"k": jnp.asarray(0.8)}
    t, n_steps, ens, key = 300.0, 25, I.nvt(0.004, tau_t=0.05), jax.random.PRNGKey(8)
    value = tr.trajectory_value(energy_of, theta, t, x0, cell, masses, key, ensemble=ens, n_steps=n_steps, spec=spec,
                                observable="temperature", fast_compile=True)
    efn = lambda x, c, nl: energy_of(theta, x, c, nl)  # noqa: E731
    nl0 = neighbors.build(x0, cell, spec)
    p0 = np.sqrt(t) * tr.unit_momenta(key, masses)
    state = I.init_state(efn, x0, cell, masses, nl0, chain=ens.chain, momenta=p0)
    assert float(I.temperature_of(state)) == pytest.approx(t, rel=1e-12)
    _, rec = I.run_chunk(efn, state, spec, ens, jnp.full((n_steps,), t), jnp.zeros((n_steps,)))
    assert value == pytest.approx(float(jnp.mean(rec["temperature"])), rel=1e-12)


def test_key_averaged_gradients_average_independent_trajectories(lj):
    # the same compiled function as the checkpoint test's plain run (same static arguments)
    ens = I.nvt(0.005, tau_t=0.1)
    args = (lj["pos"], lj["cell"], lj["masses"])
    kw = dict(ensemble=ens, n_steps=40, spec=lj["spec"], observable="pressure", fast_compile=True)
    keys = [jax.random.PRNGKey(s) for s in (21, 22, 23)]
    out = tr.key_averaged_gradients(_lj_energy, lj["theta"], 250.0, *args, keys, **kw)
    runs = [tr.trajectory_gradients(_lj_energy, lj["theta"], 250.0, *args, k, **kw) for k in keys]
    vals = np.array([float(r[0]) for r in runs])
    sig = np.array([float(r[1]["sigma"]) for r in runs])
    assert len(set(vals.tolist())) == 3  # different momenta, different trajectories
    assert out["value"] == pytest.approx(vals.mean(), rel=1e-12)
    assert out["value_stderr"] == pytest.approx(vals.std(ddof=1) / np.sqrt(3), rel=1e-10)
    assert float(out["dtheta"]["sigma"]) == pytest.approx(sig.mean(), rel=1e-12)
    assert float(out["dtheta_stderr"]["sigma"]) == pytest.approx(sig.std(ddof=1) / np.sqrt(3), rel=1e-10)
    assert out["dtemperature"] == pytest.approx(np.mean([float(r[2]) for r in runs]), rel=1e-12)
    with pytest.raises(ConfigError, match="at least 2"):
        tr.key_averaged_gradients(_lj_energy, lj["theta"], 250.0, *args, keys[:1], **kw)


def test_barostat_ensembles_are_refused(lj):
    with pytest.raises(ConfigError, match="NVE or NVT"):
        tr.trajectory_value(_lj_energy, lj["theta"], 300.0, lj["pos"], lj["cell"], lj["masses"], lj["key"],
                            ensemble=I.npt(0.005), n_steps=4, spec=lj["spec"])
