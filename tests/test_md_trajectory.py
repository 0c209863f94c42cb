"""H5MD trajectory, CSV thermo log and checkpoint/restart: a run killed in the middle of writing
a chunk and resumed from its checkpoint gives exactly the files of the uninterrupted run."""

from __future__ import annotations

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ase.build import bulk

from glassjax import neighbors, units
from glassjax.errors import DataError
from glassjax.md import integrators as I
from glassjax.md.classical import lennard_jones_energy_fn
from glassjax.md.runner import resume, simulate
from glassjax.md.schedule import temperature_schedule
from glassjax.md.trajectory import H5MDWriter, ThermoLog, load_checkpoint

CHUNK, EVERY = 200, 20


@pytest.fixture(scope="module")
def system():
    atoms = bulk("Ar", "fcc", a=5.30, cubic=True).repeat(2)
    efn = lennard_jones_energy_fn(0.0104, 3.40, 8.5, shift="force")
    pos = jnp.asarray(atoms.positions)
    cell = jnp.asarray(atoms.cell.array)
    nl, spec = neighbors.allocate(pos, cell, 8.5, skin=1.0, capacity_factor=1.5, image_margin=1.0)
    state = I.init_state(efn, pos, cell, atoms.get_masses(), nl, key=jax.random.PRNGKey(0), temperature=60.0)
    ens = I.npt(0.005, tau_t=0.1, tau_p=0.5, couple="aniso")
    temps = temperature_schedule([("ramp", 60.0, 30.0, 2.0), ("hold", 30.0, 1.0)], 0.005)  # 600 steps
    return atoms, efn, state, spec, ens, temps


def run_full(system, tmp_path, name):
    atoms, efn, state, spec, ens, temps = system
    traj = H5MDWriter(tmp_path / f"{name}.h5", atoms.get_chemical_symbols(), atoms.get_masses())
    log = ThermoLog(tmp_path / f"{name}.csv")
    end, _, th = simulate(efn, state, spec, ens, temps, np.full(len(temps), 0.1), chunk=CHUNK, every=EVERY,
                          progress=False, trajectory=traj, log=log, checkpoint=tmp_path / f"{name}.ckpt.npz")
    traj.close()
    log.close()
    return end, th


class KilledLog(ThermoLog):
    """A log whose third append dies, after the trajectory already took that chunk's frames."""

    calls = 0

    def append(self, step, time_ps, records):
        KilledLog.calls += 1
        if KilledLog.calls == 3:
            raise KeyboardInterrupt("killed while writing")
        super().append(step, time_ps, records)


def test_h5md_layout_and_values(system, tmp_path):
    atoms = system[0]
    end, th = run_full(system, tmp_path, "a")
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert list(f["h5md"].attrs["version"]) == [1, 1]
        assert list(f["particles/all/species"][:]) == [18] * len(atoms)
        pos = f["particles/all/position/value"]
        assert pos.shape == (600 // EVERY, len(atoms), 3) and pos.attrs["unit"] == "Angstrom"
        assert np.array_equal(f["particles/all/position/step"][:], np.arange(EVERY, 601, EVERY))
        assert np.allclose(f["particles/all/position/time"][:], np.arange(EVERY, 601, EVERY) * 0.005)
        np.testing.assert_array_equal(pos[-1], np.asarray(end.positions))
        np.testing.assert_array_equal(f["particles/all/box/edges/value"][-1], np.asarray(end.cell))
        vel = f["particles/all/velocity/value"][-1]
        np.testing.assert_allclose(vel, np.asarray(end.momenta / end.masses[:, None]) * units.PS)
        # kinetic temperature from the stored velocities (Å/ps, amu) matches the stored observable
        ke = 0.5 * np.sum(atoms.get_masses()[:, None] * vel ** 2) / units.PS ** 2
        t_obs = f["observables/temperature/value"][-1]
        assert ke * 2 / ((3 * len(atoms) - 3) * units.KB) == pytest.approx(t_obs, rel=1e-10)
        assert f["observables/stress/value"].shape == (600 // EVERY, 3, 3)
    rows = np.genfromtxt(tmp_path / "a.csv", delimiter=",", names=True)
    assert len(rows) == 600 // EVERY
    np.testing.assert_allclose(rows["T_K"], th["temperature"], rtol=1e-6)
    np.testing.assert_allclose(rows["P_GPa"], th["pressure"], atol=1e-7)


def test_restart_after_kill_reproduces_uninterrupted_run(system, tmp_path):
    atoms, efn, state, spec, ens, temps = system
    run_full(system, tmp_path, "ref")
    ckpt = tmp_path / "run.ckpt.npz"
    traj = H5MDWriter(tmp_path / "run.h5", atoms.get_chemical_symbols(), atoms.get_masses())
    KilledLog.calls = 0
    log = KilledLog(tmp_path / "run.csv")
    with pytest.raises(KeyboardInterrupt):
        simulate(efn, state, spec, ens, temps, np.full(len(temps), 0.1), chunk=CHUNK, every=EVERY,
                 progress=False, trajectory=traj, log=log, checkpoint=ckpt)
    traj.close()
    log.close()
    with h5py.File(tmp_path / "run.h5", "r") as f:  # the killed run left an extra, uncheckpointed chunk
        assert f["particles/all/position/value"].shape[0] == 3 * CHUNK // EVERY
    _, _, meta = load_checkpoint(ckpt)
    assert meta["steps_done"] == 2 * CHUNK and meta["frames"] == 2 * CHUNK // EVERY

    st, sp, done, traj, log = resume(ckpt, tmp_path / "run.h5", tmp_path / "run.csv",
                                     symbols=atoms.get_chemical_symbols())
    assert done == 2 * CHUNK and traj.n_frames == 2 * CHUNK // EVERY
    simulate(efn, st, sp, ens, temps, np.full(len(temps), 0.1), chunk=CHUNK, every=EVERY, progress=False,
             start_step=done, trajectory=traj, log=log, checkpoint=ckpt)
    traj.close()
    log.close()
    with h5py.File(tmp_path / "ref.h5", "r") as a, h5py.File(tmp_path / "run.h5", "r") as b:
        for key in ("particles/all/position/value", "particles/all/position/step", "particles/all/velocity/value",
                    "particles/all/box/edges/value", "observables/conserved/value"):
            np.testing.assert_array_equal(a[key][:], b[key][:])
    assert (tmp_path / "ref.csv").read_text() == (tmp_path / "run.csv").read_text()


def test_bad_resume_inputs(system, tmp_path):
    with pytest.raises(DataError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a glassjax checkpoint"):
        load_checkpoint(tmp_path / "junk.npz")
    atoms = system[0]
    w = H5MDWriter(tmp_path / "t.h5", atoms.get_chemical_symbols(), atoms.get_masses())
    w.close()
    with pytest.raises(DataError, match="checkpoint expects"):
        H5MDWriter(tmp_path / "t.h5", atoms.get_chemical_symbols(), atoms.get_masses(), truncate_to=5)


def test_extxyz_export_round_trip(system, tmp_path):
    import ase.io

    from glassjax.md.trajectory import export_extxyz, read_h5md

    end, th = run_full(system, tmp_path, "x")
    n = export_extxyz(tmp_path / "x.h5", tmp_path / "x.extxyz")
    assert n == 600 // EVERY
    frames = ase.io.read(tmp_path / "x.extxyz", index=":")
    last = frames[-1]
    np.testing.assert_allclose(last.positions, np.asarray(end.positions), atol=1e-7)
    np.testing.assert_allclose(last.cell.array, np.asarray(end.cell), atol=1e-7)
    np.testing.assert_allclose(last.get_momenta(), np.asarray(end.momenta), atol=1e-7)  # extxyz: 8 digits
    # ASE's kinetic temperature of the exported frame equals the logged one (N_f = 3N - 3)
    t_ase = 2 * last.get_kinetic_energy() / ((3 * len(last) - 3) * units.KB)
    assert t_ase == pytest.approx(th["temperature"][-1], rel=1e-5)
    assert read_h5md(tmp_path / "x.h5", 3)[0].info["step"] == 4 * EVERY
    with pytest.raises(DataError, match="not a glassjax H5MD"):
        with h5py.File(tmp_path / "empty.h5", "w"):
            pass
        read_h5md(tmp_path / "empty.h5")
