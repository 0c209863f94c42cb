"""glassjax.analysis.io.read_trajectory against ASE / plain-json readings of the same files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import ase.io
import h5py
import numpy as np
import pytest
from ase import Atoms

from glassjax.analysis.io import parse_species_map, read_trajectory
from glassjax.errors import DataError

REPO = Path(__file__).resolve().parents[1]
FIX = Path(os.environ.get("GLASSJAX_FIXTURES", REPO.parent / "shared" / "fixtures"))


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"fixture {path} not found")
    return path


def test_extxyz_matches_ase_with_labels():
    path = _need(FIX / "extxyz" / "sevennet_hfo2.extxyz")
    frames = read_trajectory(path)
    ref = ase.io.read(path, index=":")
    assert frames.nframes == len(ref) == 2
    for k, atoms in enumerate(ref):
        np.testing.assert_allclose(frames.positions[k], atoms.positions)
        np.testing.assert_allclose(frames.cells[k], atoms.cell[:])
        assert frames.energy[k] == pytest.approx(atoms.get_potential_energy())
        np.testing.assert_allclose(frames.forces[k], atoms.get_forces())
        # virial = -stress * V (DeePMD sign), from ASE's full 3x3 stress
        np.testing.assert_allclose(frames.virial[k], -atoms.get_stress(voigt=False) * atoms.get_volume(),
                                   atol=1e-10)
    assert list(frames.species) == ref[0].get_chemical_symbols()
    last = read_trajectory(path, index="-1")
    assert last.nframes == 1
    np.testing.assert_allclose(last.positions[0], ref[-1].positions)


def test_pymatgen_json_quartz():
    path = _need(FIX / "structures" / "pymatgen" / "SiO2.json")
    frames = read_trajectory(path)
    doc = json.loads(path.read_text())
    lat = np.array(doc["lattice"]["matrix"])
    abc = np.array([s["abc"] for s in doc["sites"]])
    np.testing.assert_allclose(frames.cells[0], lat)
    np.testing.assert_allclose(frames.positions[0], abc @ lat, atol=1e-6)
    assert sorted(frames.species.tolist()) == ["O"] * 6 + ["Si"] * 3


def test_lammps_data_species_map(tmp_path):
    rng = np.random.default_rng(0)
    atoms = Atoms("B2O3Li", positions=rng.uniform(0, 6, (6, 3)), cell=[6.0, 6.5, 7.0], pbc=True)
    path = tmp_path / "conf.data"
    ase.io.write(path, atoms, format="lammps-data", specorder=["B", "O", "Li"], masses=True)
    # masses in the file identify the elements; an explicit map must give the same
    for smap in (None, {1: "B", 2: "O", 3: "Li"}, "1:B,2:O,3:Li"):
        frames = read_trajectory(path, species_map=smap)
        assert frames.species.tolist() == atoms.get_chemical_symbols()
        np.testing.assert_allclose(frames.positions[0], atoms.positions, atol=1e-8)
        np.testing.assert_allclose(frames.cells[0], atoms.cell[:], atol=1e-8)


def _write_dump(path: Path, frames_xyz, types, box, element_column=False):
    lines = []
    for step, xyz in enumerate(frames_xyz):
        lines += ["ITEM: TIMESTEP", str(step), "ITEM: NUMBER OF ATOMS", str(len(types)),
                  "ITEM: BOX BOUNDS pp pp pp"] + [f"0.0 {b}" for b in box]
        lines.append("ITEM: ATOMS id type x y z" + (" element" if element_column else ""))
        for i, (t, p) in enumerate(zip(types, xyz)):
            extra = f" {['B', 'O'][t - 1]}" if element_column else ""
            lines.append(f"{i + 1} {t} {p[0]} {p[1]} {p[2]}{extra}")
    path.write_text("\n".join(lines) + "\n")


def test_lammps_dump_needs_species_map(tmp_path):
    rng = np.random.default_rng(1)
    xyz = rng.uniform(0, 5, (3, 5, 3))
    types = [1, 2, 2, 1, 2]
    path = tmp_path / "traj.dump"
    _write_dump(path, xyz, types, (5.0, 5.0, 5.0))
    with pytest.raises(DataError, match="species map"):
        read_trajectory(path)
    frames = read_trajectory(path, species_map={1: "B", 2: "O"})
    assert frames.nframes == 3
    assert frames.species.tolist() == ["B", "O", "O", "B", "O"]
    np.testing.assert_allclose(frames.positions, xyz, atol=1e-8)
    np.testing.assert_allclose(frames.cells, np.broadcast_to(np.eye(3) * 5.0, (3, 3, 3)))
    sub = read_trajectory(path, index="1:3", species_map={1: "B", 2: "O"})
    np.testing.assert_allclose(sub.positions, xyz[1:3], atol=1e-8)
    path2 = tmp_path / "traj_el.dump"
    _write_dump(path2, xyz, types, (5.0, 5.0, 5.0), element_column=True)
    assert read_trajectory(path2).species.tolist() == ["B", "O", "O", "B", "O"]


def test_clear_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_trajectory(tmp_path / "missing.xyz")
    bad = tmp_path / "bad.extxyz"
    bad.write_text("this is not\na trajectory\n")
    with pytest.raises(DataError, match="bad.extxyz"):
        read_trajectory(bad, format="extxyz")
    mol = tmp_path / "mol.xyz"
    ase.io.write(mol, Atoms("BO", positions=[[0, 0, 0], [1.4, 0, 0]]), format="xyz")
    with pytest.raises(DataError, match="periodic"):
        read_trajectory(mol)
    h5md = tmp_path / "traj.h5"
    with h5py.File(h5md, "w") as fh:
        fh.create_group("h5md")
    with pytest.raises(DataError, match="H5MD"):
        read_trajectory(h5md)
    with pytest.raises(DataError, match="species_map"):
        read_trajectory(_make_data(tmp_path), species_map={0: "B"})
    with pytest.raises(DataError, match="unknown element"):
        read_trajectory(_make_data(tmp_path), species_map={1: "Xx"})


def _make_data(tmp_path):
    path = tmp_path / "one.data"
    ase.io.write(path, Atoms("BO", positions=[[0, 0, 0], [1.4, 0, 0]], cell=[5, 5, 5], pbc=True),
                 format="lammps-data", masses=True)
    return path


def test_parse_species_map():
    assert parse_species_map("1:B, 2:O") == {1: "B", 2: "O"}
    assert parse_species_map("B,O,Li") == {1: "B", 2: "O", 3: "Li"}


def test_glassjax_hdf5_dataset(tmp_path):
    from glassjax.data.dataset import write_dataset
    from glassjax.data.frames import Frames

    rng = np.random.default_rng(2)
    a = Frames(species=["B", "O", "O"], positions=rng.uniform(0, 5, (4, 3, 3)),
               cells=np.repeat(np.eye(3)[None] * 5.0, 4, axis=0), energy=rng.normal(size=4), name="bo")
    b = Frames(species=["Si", "O"], positions=rng.uniform(0, 5, (2, 2, 3)),
               cells=np.repeat(np.eye(3)[None] * 6.0, 2, axis=0), name="sio")
    path = tmp_path / "data.h5"
    write_dataset(path, [a, b])
    with pytest.raises(DataError, match="2 systems"):
        read_trajectory(path)
    got = read_trajectory(path, system="bo", index="1:3")
    np.testing.assert_allclose(got.positions, a.positions[1:3])
    np.testing.assert_allclose(got.energy, a.energy[1:3])
    assert got.species.tolist() == ["B", "O", "O"]
    last = read_trajectory(path, system="sio", index=-1)
    np.testing.assert_allclose(last.positions[0], b.positions[-1])


def test_reads_glassjax_h5md_trajectory(tmp_path):
    """An H5MD file written by the MD engine reads back with its positions, cells and species."""
    from glassjax.md.trajectory import OBSERVABLES, H5MDWriter

    rng = np.random.default_rng(0)
    symbols = ["B", "O", "O", "Li"]
    pos = rng.uniform(0, 5, (3, 4, 3))
    cells = np.stack([np.eye(3) * (5 + 0.1 * k) for k in range(3)])
    records = {"positions": pos, "cell": cells, "velocities": np.zeros_like(pos)}
    records.update({name: np.zeros((3, 3, 3)) if name == "stress" else np.arange(3.0) for name in OBSERVABLES})
    with H5MDWriter(tmp_path / "run.h5", symbols, [10.8, 16.0, 16.0, 6.9]) as w:
        w.append(np.arange(3) * 10, np.arange(3) * 0.01, records)
    fr = read_trajectory(tmp_path / "run.h5")
    assert list(fr.species) == symbols
    np.testing.assert_allclose(fr.positions, pos)
    np.testing.assert_allclose(fr.cells, cells)
    one = read_trajectory(tmp_path / "run.h5", index=1)
    assert one.nframes == 1
    np.testing.assert_allclose(one.positions[0], pos[1])
