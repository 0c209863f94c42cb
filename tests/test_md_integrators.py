"""MD integrators on a 32-atom Lennard-Jones (argon) fcc crystal (the 10.6 Å cell is thinner than
twice the cutoff + skin: the multi-image neighbour list is exercised throughout).

References: energy conservation and the dt^2 scaling of velocity-Verlet's energy error;
canonical kinetic-energy fluctuations var(KE) = 2 <KE>^2 / N_f; the target pressure; volume
fluctuations kT V / B with B from a numpy lattice sum; the anisotropic barostat under
uniaxial stress against the strain that the elastic constants (numpy lattice sums under
strain) predict; the mean volume of ASE's own MTK NPT on the same potential; FIRE
against an independent numpy lattice sum.  Compiled chunks are shared through module fixtures.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ase.build import bulk
from scipy.optimize import brentq

from glassjax import neighbors, units
from glassjax.errors import ConfigError
from glassjax.md import integrators as I
from glassjax.md.classical import lennard_jones_energy_fn
from glassjax.md.minimize import fire
from glassjax.md.runner import simulate
from glassjax.md.schedule import melt_quench, temperature_schedule
from glassjax.potential import energy_forces_virial

from lj_fcc_reference import A0, EPS, RC, SIG, lj_numpy  # shared numpy LJ reference (argon)

CHUNK = 1000
N_ATOMS = 32


def fcc_energy_per_atom(a):
    """Lattice sum over fcc lattice vectors (numpy), eV/atom."""
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    m = int(np.ceil(RC / a)) + 1
    cells = np.array([(i, j, k) for i in range(-m, m + 1) for j in range(-m, m + 1) for k in range(-m, m + 1)])
    pts = (cells[:, None, :] + basis[None, :, :]).reshape(-1, 3) * a
    r = np.linalg.norm(pts, axis=1)
    r = r[r > 1e-9]
    return 0.5 * np.sum(lj_numpy(r))


def fcc_pressure_gpa(a):
    """P = -dE/dV of the static lattice (4 atoms per a^3), GPa, by central differences."""
    h = 1e-5
    de_da = (fcc_energy_per_atom(a + h) - fcc_energy_per_atom(a - h)) / (2 * h)
    dv_da = 3 * a * a / 4
    return -de_da / dv_da * units.EV_PER_A3_TO_GPA


@pytest.fixture(scope="module")
def lj():
    atoms = bulk("Ar", "fcc", a=A0, cubic=True).repeat(2)
    efn = lennard_jones_energy_fn(EPS, SIG, RC, shift="force")
    pos = jnp.asarray(atoms.positions)
    cell = jnp.asarray(atoms.cell.array)
    nl, spec = neighbors.allocate(pos, cell, RC, skin=1.0, capacity_factor=1.5, image_margin=1.0)
    return atoms, efn, pos, cell, nl, spec


def fcc_energy_strained(a, strain):
    """Energy per atom (numpy lattice sum) of the fcc lattice deformed by (1 + strain)."""
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    m = int(np.ceil(RC / a)) + 2
    cells = np.array([(i, j, k) for i in range(-m, m + 1) for j in range(-m, m + 1) for k in range(-m, m + 1)])
    pts = (cells[:, None, :] + basis[None, :, :]).reshape(-1, 3) * a @ (np.eye(3) + strain)
    r = np.linalg.norm(pts, axis=1)
    return 0.5 * np.sum(lj_numpy(r[r > 1e-9]))


@pytest.fixture(scope="module")
def elastic():
    """0 K elastic constants C11, C12 (GPa) at A0 by central differences of the lattice energy."""
    h = 1e-4
    vol = A0 ** 3 / 4

    def e(exx, eyy):
        return fcc_energy_strained(A0, np.diag([exx, eyy, 0.0]))

    c11 = (e(h, 0) - 2 * e(0, 0) + e(-h, 0)) / h ** 2 / vol
    c12 = (e(h, h) - e(h, -h) - e(-h, h) + e(-h, -h)) / (4 * h * h) / vol
    return c11 * units.EV_PER_A3_TO_GPA, c12 * units.EV_PER_A3_TO_GPA


def start(lj, temperature, seed=0):
    atoms, efn, pos, cell, nl, spec = lj
    return I.init_state(efn, pos, cell, atoms.get_masses(), nl, key=jax.random.PRNGKey(seed),
                        temperature=temperature)


def run(lj, state, ens, temperature, pressure, chunks, every=10):
    atoms, efn, pos, cell, nl, spec = lj
    records = []
    for _ in range(chunks):
        state, th = I.run_chunk(efn, state, spec, ens, jnp.full(CHUNK, float(temperature)),
                                jnp.broadcast_to(jnp.asarray(pressure, float), (CHUNK,) + np.shape(pressure)),
                                every=every)
        assert not bool(state.overflow)
        records.append({k: np.asarray(v) for k, v in th.items()})
    return state, {k: np.concatenate([r[k] for r in records]) for k in records[0]}


def test_nve_conserves_energy_with_dt_squared_error(lj):
    st = start(lj, 40.0)
    e0 = float(I.kinetic_energy(st) + st.energy)
    out = {}
    for dt, chunks in ((0.005, 1), (0.0025, 2)):  # same 5 ps
        end, th = run(lj, st, I.nve(dt), 0.0, 0.0, chunks)
        etot = th["kinetic_energy"] + th["potential_energy"]
        assert np.allclose(th["conserved"], etot)
        drift = abs(etot[-1] - e0) / N_ATOMS / 5.0
        assert drift < 1e-6  # eV/atom/ps
        out[dt] = np.std(etot)
        assert np.allclose(np.asarray(jnp.sum(end.momenta, axis=0)), 0.0, atol=1e-10)
        assert np.std(th["kinetic_energy"]) > 50 * np.std(etot)  # energy flows, total stays
    ratio = out[0.005] / out[0.0025]
    assert 3.0 < ratio < 5.3  # velocity Verlet: energy error ~ dt^2


def test_nvt_canonical_temperature_and_fluctuations(lj):
    t_target = 40.0
    st = start(lj, t_target, seed=1)
    ens = I.nvt(0.005, tau_t=0.1)
    _, th = run(lj, st, ens, t_target, 0.0, 6)
    ke = th["kinetic_energy"][100:]
    nf = I.n_dof(N_ATOMS)
    assert np.mean(th["temperature"][100:]) == pytest.approx(t_target, rel=0.03)
    ratio = np.var(ke) / (2 * np.mean(ke) ** 2 / nf)
    assert 0.7 < ratio < 1.3
    cons = th["conserved"]
    assert abs(cons[-1] - cons[0]) / N_ATOMS / 30.0 < 2e-6  # extended energy conserved (eV/atom/ps)


def test_npt_iso_pressure_and_volume_fluctuations(lj):
    t, p = 40.0, 0.2
    st = start(lj, t, seed=2)
    ens = I.npt(0.005, tau_t=0.1, tau_p=0.5, couple="iso")
    _, th = run(lj, st, ens, t, p, 6)
    pr = th["pressure"][200:]
    vol = th["volume"][200:]
    assert np.mean(pr) == pytest.approx(p, abs=0.01)
    # bulk modulus B = -V dP/dV of the static lattice at the mean volume (numpy lattice sum)
    a = (np.mean(vol) / N_ATOMS * 4) ** (1 / 3)
    h = 1e-4
    bulk_mod = -a / 3 * (fcc_pressure_gpa(a + h) - fcc_pressure_gpa(a - h)) / (2 * h)
    expected = units.KB * t * np.mean(vol) / (bulk_mod / units.EV_PER_A3_TO_GPA)
    assert 0.7 < np.var(vol) / expected < 1.5  # thermal softening makes it a little larger
    cell = th["cell"][-1]
    assert np.allclose(cell, np.eye(3) * cell[0, 0])  # iso keeps the cell cubic


@pytest.fixture(scope="module")
def aniso():
    return I.npt(0.005, tau_t=0.1, tau_p=0.5, couple="aniso")


def test_aniso_barostat_uniaxial_stress_matches_elastic_constants(lj, elastic, aniso):
    t = 5.0
    s = 0.03  # GPa of uniaxial tension along x
    lengths = {}
    stress = {}
    for target in (0.0, s):
        st = start(lj, t, seed=3)
        _, th = run(lj, st, aniso, t, np.array([-target, 0.0, 0.0]), 5)
        lengths[target] = np.mean(np.diagonal(th["cell"], axis1=1, axis2=2)[200:], axis=0)
        stress[target] = np.mean(np.diagonal(th["stress"], axis1=1, axis2=2)[200:], axis=0)
    strain = lengths[s] / lengths[0.0] - 1.0
    c11, c12 = elastic
    cmat = np.array([[c11, c12, c12], [c12, c11, c12], [c12, c12, c11]])
    predicted = np.linalg.solve(cmat, np.array([s, 0.0, 0.0]))
    assert strain[0] == pytest.approx(predicted[0], rel=0.12)
    assert strain[1] == pytest.approx(predicted[1], rel=0.3)
    assert strain[2] == pytest.approx(predicted[1], rel=0.3)
    assert predicted[1] < 0 < predicted[0]
    # the mean stress equals the target: tension along x, free lateral faces
    assert stress[s][0] == pytest.approx(s, abs=0.004)
    assert np.all(np.abs(stress[s][1:]) < 0.004)


def test_aniso_npt_agrees_with_ase_mtk(lj, aniso):
    from ase.calculators.calculator import Calculator, all_changes
    from ase.md.nose_hoover_chain import MTKNPT
    from ase.md.velocitydistribution import Stationary, thermalize_momenta

    atoms0, efn, pos, cell, nl, spec = lj
    t, p = 20.0, 0.1

    @jax.jit
    def efv(x, c):
        full = neighbors.NeighborSpec(RC, 0.0, spec.capacity, spec.images, spec.block)
        lst = neighbors.build(x, c, full)
        return energy_forces_virial(efn, x, c, lst)

    class JaxLJ(Calculator):
        implemented_properties = ["energy", "forces", "stress"]

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            e, f, w = efv(jnp.asarray(self.atoms.positions), jnp.asarray(self.atoms.cell.array))
            vol = self.atoms.get_volume()
            s = -np.asarray(w) / vol
            self.results = {"energy": float(e), "forces": np.asarray(f),
                            "stress": s[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]}

    atoms = atoms0.copy()
    atoms.calc = JaxLJ()
    thermalize_momenta(atoms, temperature_K=t, rng=np.random.default_rng(4))
    Stationary(atoms)
    dyn = MTKNPT(atoms, timestep=5.0 * ase_fs(), temperature_K=t, pressure_au=p * ase_gpa(),
                 tdamp=100 * ase_fs(), pdamp=500 * ase_fs())
    vols = []
    dyn.attach(lambda: vols.append(atoms.get_volume()), interval=10)
    dyn.run(3000)
    v_ase = np.mean(vols[60:])

    st = start(lj, t, seed=4)
    _, th = run(lj, st, aniso, t, p, 3)
    v_ours = np.mean(th["volume"][60:])
    assert v_ours == pytest.approx(v_ase, rel=0.003)
    assert abs(np.mean(th["pressure"][60:]) - p) < 0.015


def ase_fs():
    import ase.units
    return ase.units.fs


def ase_gpa():
    import ase.units
    return ase.units.GPa


def test_nph_full_cell_conserves_enthalpy(lj):
    st = start(lj, 30.0, seed=5)
    p = 0.05
    ens = I.npt(0.004, tau_t=None, tau_p=0.5, couple="tri")
    end, th = run(lj, st, ens, 30.0, p, 1)
    h = th["conserved"]
    assert abs(h[-1] - h[0]) / N_ATOMS < 2e-6
    assert np.std(h) < 0.02 * np.std(th["potential_energy"] + p / units.EV_PER_A3_TO_GPA * th["volume"])
    c = np.asarray(end.cell)
    assert np.abs(c - np.diag(np.diag(c))).max() > 1e-4  # the shear components do move


def test_runner_redoes_chunk_after_overflow(lj):
    atoms, efn, pos, cell, nl, spec = lj
    st = start(lj, 250.0, seed=6)  # a hot fluid: neighbour counts change
    tight_nl, tight = neighbors.allocate(pos, cell, RC, skin=1.0, capacity_factor=1.0)
    assert tight.capacity < spec.capacity
    st_tight = st._replace(nl=tight_nl)
    ens = I.nve(0.005)
    temps = np.zeros(CHUNK)
    ref, _ = I.run_chunk(efn, st, spec, ens, jnp.asarray(temps), jnp.zeros(CHUNK), every=10)
    probe, _ = I.run_chunk(efn, st_tight, tight, ens, jnp.asarray(temps), jnp.zeros(CHUNK), every=10)
    assert bool(probe.overflow)  # the tight list does overflow within the chunk
    out, new_spec, th = simulate(efn, st_tight, tight, ens, temps, chunk=CHUNK, every=10, progress=False)
    assert new_spec.capacity > tight.capacity and not bool(out.overflow)
    np.testing.assert_allclose(np.asarray(out.positions), np.asarray(ref.positions), atol=1e-8)
    assert th["step"][-1] == CHUNK and len(th["temperature"]) == CHUNK // 10


def test_fire_relaxes_positions_and_cell(lj):
    atoms, efn, pos, cell, nl, spec = lj
    rng = np.random.default_rng(7)
    a = 5.5
    lat = jnp.asarray(bulk("Ar", "fcc", a=a, cubic=True).repeat(2).positions)
    big = jnp.eye(3) * 2 * a
    rattled = lat + rng.normal(0, 0.08, lat.shape)
    nl2, spec2 = neighbors.allocate(rattled, big, RC, skin=1.0)
    res = fire(efn, rattled, big, nl2, spec2, fmax=1e-5)
    assert res.converged
    assert float(res.energy) / N_ATOMS == pytest.approx(fcc_energy_per_atom(a), abs=1e-8)
    # cell relaxation at 0.5 GPa: cubic lattice constant where the static pressure is 0.5 GPa
    p = 0.5
    res = fire(efn, rattled, big, nl2, spec2, fmax=1e-5, relax_cell=True, couple="tri", pressure=p)
    assert res.converged
    a_ref = brentq(lambda x: fcc_pressure_gpa(x) - p, 4.8, 5.5, xtol=1e-10)
    c = np.asarray(res.cell) / 2
    assert np.allclose(np.diag(c), a_ref, atol=2e-4)
    assert np.abs(c - np.diag(np.diag(c))).max() < 1e-4
    assert fcc_pressure_gpa(A0) == pytest.approx(0.0, abs=0.01)  # A0 is the 0 K lattice constant


def test_schedules():
    temps = melt_quench(0.001, t_melt=2000, melt_ps=1.0, rate=10.0, t_hold=1000, hold_ps=2.0, t_final=300,
                        final_ps=1.0)
    # 1 ps melt + 100 ps cooling + 2 ps hold + 70 ps cooling + 1 ps final = 174 ps
    assert len(temps) == 174000
    assert temps[999] == 2000 and temps[-1] == 300
    cooling = temps[1000:101000]
    assert np.allclose(np.diff(cooling), -10.0 * 0.001)
    assert np.all(temps[101000:103000] == 1000)
    ramp = temperature_schedule([("ramp", 300, 400, 0.01)], 0.001)
    assert np.allclose(ramp, 300 + 10 * np.arange(1, 11))
    with pytest.raises(ConfigError):
        temperature_schedule([("cool", 1, 2)], 0.001)
    with pytest.raises(ConfigError):
        I.Ensemble(dt=0.001, couple="xyz")
    with pytest.raises(ConfigError):
        I.Ensemble(dt=-1.0)


def test_runner_stops_on_blow_up(lj):
    from glassjax.errors import SimulationError

    atoms, efn, pos, cell, nl, spec = lj
    st = start(lj, 20.0, seed=8)
    squeezed = st.positions.at[1].set(st.positions[0] + jnp.array([0.45, 0.0, 0.0]))
    nl2 = neighbors.build(squeezed, st.cell, spec)
    bad = I.init_state(efn, squeezed, st.cell, st.masses, nl2, momenta=st.momenta)
    with pytest.raises(SimulationError, match="blew up") as info:
        simulate(efn, bad, spec, I.nve(0.005), np.zeros(CHUNK), chunk=CHUNK, every=10, progress=False,
                 max_force=100.0)
    # the error hands back the last good state: here the start, before the failed chunk
    assert info.value.last_good_step == 0
    np.testing.assert_array_equal(np.asarray(info.value.last_good_state.positions), np.asarray(squeezed))


def test_compressed_cell_keeps_a_correct_list(lj):
    """NPT at 3 GPa shrinks the cell by >10 % in volume; the list inside the loop stays exact."""
    atoms, efn, pos, cell, nl, spec = lj
    st = start(lj, 40.0, seed=9)
    ens = I.npt(0.005, tau_t=0.1, tau_p=0.5, couple="iso")
    end, end_spec, th = simulate(efn, st, spec, ens, np.full(2 * CHUNK, 40.0), np.full(2 * CHUNK, 3.0),
                                 chunk=CHUNK, every=10, progress=False)
    assert th["volume"][-1] < 0.9 * float(jnp.linalg.det(cell))
    fresh, _ = neighbors.allocate(end.positions, np.asarray(end.cell), RC, skin=1.0)
    e, f, w = energy_forces_virial(efn, end.positions, end.cell, fresh)
    assert float(end.energy) == pytest.approx(float(e), rel=1e-12)
    np.testing.assert_allclose(np.asarray(end.forces), np.asarray(f), atol=1e-12)
    np.testing.assert_allclose(np.asarray(end.virial), np.asarray(w), atol=1e-10)
