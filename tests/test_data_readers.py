"""Readers against the real fixture files, checked with numpy and plain-text parsing.

References are independent of glassjax: the DeePMD arrays are loaded with numpy directly,
OUTCAR numbers are parsed from the text with regular expressions below, the extxyz numbers
are read from the file's columns, and the OUTCAR/vasprun.xml pair of one water run is
compared frame by frame.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from glassjax.data import DataNotice, read_any, read_ase, read_deepmd, read_vasp

EV_PER_A3_IN_KBAR = 1602.1766208  # 1 eV/Å^3 = 160.2177 GPa = 1602.177 kbar


# ----------------------------------------------------------------------------- helpers
def _numpy_deepmd(system: Path):
    """Plain numpy reading of a DeePMD npy system (all sets concatenated)."""
    sets = sorted(system.glob("set.*"))
    load = lambda k: [np.load(s / f"{k}.npy") for s in sets if (s / f"{k}.npy").exists()]  # noqa: E731
    out = {k: np.concatenate(load(k)) for k in ("coord", "box", "energy", "force", "virial") if load(k)}
    out["type"] = np.loadtxt(system / "type.raw", dtype=int)
    out["type_map"] = (system / "type_map.raw").read_text().split()
    return out


def _parse_outcar(path: Path):
    """Independent text parse of an OUTCAR: species, and per ionic step TOTEN, E0, forces,
    the 'in kB' stress row and the volume."""
    text = path.read_text()
    titel = re.findall(r"POTCAR:\s+\S+\s+([A-Z][a-z]?)", text)
    counts = [int(x) for x in re.search(r"ions per type =\s*([\d\s]+)\n", text).group(1).split()]
    species = [el for el, n in zip(titel[: len(counts)], counts) for _ in range(n)]
    natoms = len(species)
    steps = []
    for m in re.finditer(r"POSITION\s+TOTAL-FORCE \(eV/Angst\)\n\s*-+\n", text):
        block = text[m.end():].splitlines()[:natoms]
        arr = np.array([[float(x) for x in line.split()] for line in block])
        rest = text[m.end():]
        toten = re.search(r"free  energy   TOTEN\s*=\s*(-?\d+\.\d+)", rest)
        if toten is None:
            break
        e0 = re.search(r"energy\(sigma->0\)\s*=\s*(-?\d+\.\d+)", rest)
        before = text[: m.start()]
        kb = [float(x) for x in re.findall(r"^\s*in kB((?:\s+-?\d+\.\d+){6})", before, re.M)[-1].split()]
        vol = float(re.findall(r"volume of cell :\s*(\d+\.\d+)", before)[-1])
        steps.append({"pos": arr[:, :3], "forces": arr[:, 3:6], "toten": float(toten.group(1)),
                      "e0": float(e0.group(1)), "kb": kb, "volume": vol})
    return species, steps


def _kb_to_virial(kb, volume):
    """VASP prints XX YY ZZ XY YZ ZX in kbar, positive = compressive (= DeePMD virial / V)."""
    xx, yy, zz, xy, yz, zx = kb
    p = np.array([[xx, xy, zx], [xy, yy, yz], [zx, yz, zz]])
    return p / EV_PER_A3_IN_KBAR * volume


# ----------------------------------------------------------------------------- DeePMD
def test_deepmd_two_sets_float32_equal_numpy(test_data):
    sysdir = test_data / "deepmd" / "water_deepmdkit_example" / "data_1"
    ref = _numpy_deepmd(sysdir)
    assert ref["coord"].dtype == np.float32  # the fixture is float32 input
    (fr,) = read_deepmd(sysdir)
    assert fr.nframes == 160 and fr.natoms == 192
    assert fr.positions.dtype == np.float64
    np.testing.assert_array_equal(fr.positions.reshape(160, -1), ref["coord"].astype(np.float64))
    np.testing.assert_array_equal(fr.cells.reshape(160, 9), ref["box"].astype(np.float64))
    np.testing.assert_array_equal(fr.energy, ref["energy"].astype(np.float64))
    np.testing.assert_array_equal(fr.forces.reshape(160, -1), ref["force"].astype(np.float64))
    assert fr.virial is None
    assert list(fr.species) == [ref["type_map"][t] for t in ref["type"]]
    assert sorted(set(fr.species)) == ["H", "O"] and (fr.species == "O").sum() == 64
    # provenance names the set each frame came from
    assert fr.source[0].endswith("set.000@0") and fr.source[80].endswith("set.001@0")


def test_deepmd_virial_and_extra_label_notice(test_data):
    sysdir = test_data / "deepmd" / "water_deepmdkit_dplr_virial"
    ref = _numpy_deepmd(sysdir)
    with pytest.warns(DataNotice, match="atomic_dipole.npy"):
        (fr,) = read_deepmd(sysdir)
    assert fr.nframes == 30 and fr.natoms == 384
    np.testing.assert_array_equal(fr.virial.reshape(30, 9), ref["virial"].astype(np.float64))
    np.testing.assert_array_equal(fr.forces.reshape(30, -1), ref["force"].astype(np.float64))
    np.testing.assert_array_equal(fr.energy, ref["energy"].astype(np.float64))


def test_b2o3_raw_equals_npy_and_numpy(b2o3_dir):
    npy = b2o3_dir / "glass_300K_1GPa_NPT" / "val"
    raw = b2o3_dir.parents[1] / "deepmd_raw" / "b2o3_boroxol_jncasr" / "glass_300K_1GPa_NPT_val"
    if not raw.is_dir():
        pytest.skip("raw B2O3 fixture absent")
    (a,) = read_deepmd(npy)
    (b,) = read_deepmd(raw)
    assert a.meta["reader"] == "deepmd-npy" and b.meta["reader"] == "deepmd-raw"
    assert a.nframes == b.nframes == 4 and a.natoms == 265
    for key in ("positions", "cells", "energy", "forces", "virial"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    np.testing.assert_array_equal(b.forces.reshape(4, -1), np.loadtxt(raw / "force.raw"))
    np.testing.assert_array_equal(b.virial.reshape(4, 9), np.loadtxt(raw / "virial.raw"))
    assert list(a.species) == list(b.species)
    assert (a.species == "B").sum() == 106 and (a.species == "O").sum() == 159


def test_b2o3_type_maps_b_o_and_o_b_give_element_species(b2o3_dir):
    glass = b2o3_dir / "glass_300K_1GPa_NPT" / "val"
    crystal = b2o3_dir / "alpha_crystal_NVT" / "val"
    assert (glass / "type_map.raw").read_text().split() == ["B", "O"]
    assert (crystal / "type_map.raw").read_text().split() == ["O", "B"]
    for sysdir, nb, no in ((glass, 106, 159), (crystal, 192, 288)):
        (fr,) = read_deepmd(sysdir)
        tmap = (sysdir / "type_map.raw").read_text().split()
        types = np.loadtxt(sysdir / "type.raw", dtype=int)
        assert list(fr.species) == [tmap[t] for t in types]
        assert (fr.species == "B").sum() == nb and (fr.species == "O").sum() == no
        # in the glass-forming B2O3 network every B has 3 O neighbours within 1.6 Å
        # (a chemistry check that the species were not swapped)
        from ase.neighborlist import neighbor_list

        i, j = neighbor_list("ij", fr.to_atoms(0), 1.65)
        is_b = fr.species == "B"
        bo = np.bincount(i[is_b[i] & ~is_b[j]], minlength=fr.natoms)[is_b]
        assert np.median(bo) == 3


# ----------------------------------------------------------------------------- VASP
@pytest.mark.parametrize("rel", ["dpdata_h2o_md10/OUTCAR.h2o.md.10", "dpdata_Ti-O-Ti-v6/OUTCAR",
                                 "dpdata_6362_BO_isif3_relax/6362_OUTCAR"])
def test_outcar_matches_text(test_data, rel):
    path = test_data / "vasp" / rel
    species, steps = _parse_outcar(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataNotice)  # 6362_OUTCAR stops inside step 3
        (fr,) = read_vasp(path)
    assert fr.nframes == len(steps)
    assert list(fr.species) == species
    for k, st in enumerate(steps):
        assert fr.energy[k] == pytest.approx(st["toten"], abs=1e-8)  # TOTEN, as dpdata
        np.testing.assert_allclose(fr.forces[k], st["forces"], atol=1e-6)
        np.testing.assert_allclose(fr.positions[k], st["pos"], atol=1e-5)
        assert fr.volumes()[k] == pytest.approx(st["volume"], abs=0.006)  # printed with 2 decimals
        # the 'in kB' row is printed with 5 decimals (1e-5 kbar * 140 Å^3 / 1602 ~ 1e-6 eV)
        np.testing.assert_allclose(fr.virial[k], _kb_to_virial(st["kb"], fr.volumes()[k]), atol=1e-5)
    # sigma->0 energy on request
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataNotice)
        (fr0,) = read_vasp(path, energy="sigma0")
    np.testing.assert_allclose(fr0.energy, [s["e0"] for s in steps], atol=1e-8)


def test_interleaved_species_blocks_6362(test_data):
    path = test_data / "vasp" / "dpdata_6362_BO_isif3_relax" / "6362_OUTCAR"
    with pytest.warns(DataNotice, match="did not finish"):
        (fr,) = read_vasp(path)
    assert "".join(fr.species) == "BOBOBBOBBOBBOO"
    assert fr.nframes == 2
    np.testing.assert_allclose(fr.energy, [-98.45281044, -98.49812024], atol=1e-8)
    # compressed first step (P = +5.5 GPa), stretched second (-5.05 GPa)
    p_gpa = np.trace(fr.virial, axis1=1, axis2=2) / (3 * fr.volumes()) * 160.21766208
    np.testing.assert_allclose(p_gpa, [5.48, -5.05], atol=0.01)


def test_outcar_and_vasprun_same_run_frame_by_frame(test_data):
    d = test_data / "vasp" / "dpdata_h2o_md10"
    (a,) = read_vasp(d / "OUTCAR.h2o.md.10")
    (b,) = read_vasp(d / "vasprun.h2o.md.10.xml")
    assert a.nframes == b.nframes == 10
    assert list(a.species) == list(b.species) == ["O", "O", "H", "H", "H", "H"]
    np.testing.assert_allclose(a.energy, b.energy, atol=1e-7)
    np.testing.assert_allclose(a.positions, b.positions, atol=1e-5)
    np.testing.assert_allclose(a.forces, b.forces, atol=1e-6)
    np.testing.assert_allclose(a.cells, b.cells, atol=1e-8)
    np.testing.assert_allclose(a.virial, b.virial, atol=1e-5)
    d6 = test_data / "vasp" / "dpdata_Ti-O-Ti-v6"
    (c,) = read_vasp(d6 / "OUTCAR")
    (e,) = read_vasp(d6 / "vasprun.xml")
    assert "".join(c.species) == "".join(e.species) == "TiTiTiOOTiTiTi"
    np.testing.assert_allclose(c.energy, e.energy, atol=1e-7)
    np.testing.assert_allclose(c.forces, e.forces, atol=1e-6)
    np.testing.assert_allclose(c.virial, e.virial, atol=1e-4)


# ----------------------------------------------------------------------------- extxyz / ASE
def _parse_extxyz_columns(path: Path):
    lines = path.read_text().splitlines()
    frames, k = [], 0
    while k < len(lines):
        n = int(lines[k])
        header = lines[k + 1]
        body = [ln.split() for ln in lines[k + 2:k + 2 + n]]
        energy = float(re.search(r"\benergy=(\S+)", header).group(1))
        stress = np.array(re.search(r'stress="([^"]+)"', header).group(1).split(), float).reshape(3, 3)
        lat = np.array(re.search(r'Lattice="([^"]+)"', header).group(1).split(), float).reshape(3, 3)
        frames.append({"species": [b[0] for b in body], "pos": np.array([b[1:4] for b in body], float),
                       "forces": np.array([b[4:7] for b in body], float), "energy": energy,
                       "stress": stress, "cell": lat})
        k += n + 2
    return frames


def test_extxyz_matches_columns(test_data):
    path = test_data / "extxyz" / "sevennet_hfo2.extxyz"
    ref = _parse_extxyz_columns(path)
    (fr,) = read_ase(path)
    assert fr.nframes == len(ref) == 2
    for k, r in enumerate(ref):
        assert list(fr.species) == r["species"]
        assert fr.energy[k] == r["energy"]
        np.testing.assert_array_equal(fr.positions[k], r["pos"])
        np.testing.assert_array_equal(fr.forces[k], r["forces"])
        np.testing.assert_allclose(fr.cells[k], r["cell"])
        vol = abs(np.linalg.det(r["cell"]))
        np.testing.assert_allclose(fr.virial[k], -r["stress"] * vol, rtol=1e-12, atol=1e-12)


def test_multi_composition_extxyz_splits_by_species(tmp_path, test_data):
    hfo2 = (test_data / "extxyz" / "sevennet_hfo2.extxyz").read_text()
    water = ('3\nLattice="6 0 0 0 6 0 0 0 6" Properties=species:S:1:pos:R:3:forces:R:3 '
             'energy=-14.2 pbc="T T T"\nO 0 0 0 0.1 0 0\nH 0.96 0 0 -0.05 0 0\nH 0 0.96 0 -0.05 0 0\n')
    f = tmp_path / "mixed.extxyz"
    f.write_text(water + hfo2 + water.replace("-14.2", "-14.3"))
    systems = read_any(f)
    assert [s.formula for s in systems] == ["H2O1", "O8Hf4"]
    w, h = systems
    np.testing.assert_array_equal(w.energy, [-14.2, -14.3])
    assert [s.rsplit("@", 1)[1] for s in w.source] == ["0", "3"]
    assert [s.rsplit("@", 1)[1] for s in h.source] == ["1", "2"]
    assert w.virial is None and h.virial is not None


def test_custom_label_keys_and_gap_virial(tmp_path):
    f = tmp_path / "ref.extxyz"
    f.write_text('2\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3:REF_forces:R:3 '
                 'REF_energy=-3.5 REF_virial="1 0 0 0 2 0 0 0 3" pbc="T T T"\n'
                 'Si 0 0 0 0.1 0.2 0.3\nO 1 1 1 -0.1 -0.2 -0.3\n')
    (fr,) = read_ase(f, energy_key="REF_energy", forces_key="REF_forces", virial_key="REF_virial")
    assert fr.energy[0] == -3.5
    np.testing.assert_array_equal(fr.forces[0], [[0.1, 0.2, 0.3], [-0.1, -0.2, -0.3]])
    np.testing.assert_array_equal(fr.virial[0], np.diag([1.0, 2.0, 3.0]))


def test_folder_scan_finds_all_and_skips_duplicate_outcar(test_data):
    with pytest.warns(DataNotice) as rec:
        systems = read_any(test_data / "vasp")
    msgs = " ".join(str(w.message) for w in rec)
    assert "OUTCAR.h2o.md.10: skipped" in msgs and "Ti-O-Ti-v6/OUTCAR: skipped" in msgs
    assert sorted(s.formula for s in systems) == ["B8O6", "H4O2", "O2Ti6"]
    assert {s.meta["reader"] for s in systems} == {"ase-vasp-out", "ase-vasp-xml"}


def test_gap_style_info_virial_used_when_no_stress(tmp_path):
    f = tmp_path / "gap.extxyz"
    f.write_text('2\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3:forces:R:3 '
                 'energy=-3.5 virial="1 0.5 0 0.5 2 0 0 0 3" pbc="T T T"\n'
                 'Si 0 0 0 0.1 0.2 0.3\nO 1 1 1 -0.1 -0.2 -0.3\n')
    (fr,) = read_ase(f)
    np.testing.assert_array_equal(fr.virial[0], [[1, 0.5, 0], [0.5, 2, 0], [0, 0, 3]])


def test_deepmd_raw_format_equals_npy(tmp_path, test_data):
    src = test_data / "deepmd" / "water_deepmdkit_dplr_virial"
    raw = tmp_path / "raw_system"
    raw.mkdir()
    for name in ("type.raw", "type_map.raw"):
        (raw / name).write_text((src / name).read_text())
    for key in ("box", "coord", "energy", "force", "virial"):
        np.savetxt(raw / f"{key}.raw", np.load(src / "set.000" / f"{key}.npy").astype(np.float64), fmt="%.17g")
    (a,) = read_deepmd(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataNotice)
        (b,) = read_deepmd(src)
    assert a.meta["reader"] == "deepmd-raw"
    for key in ("positions", "cells", "energy", "forces", "virial"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))


def test_ase_trajectory_format(tmp_path, test_data):
    import ase.io

    path = test_data / "extxyz" / "sevennet_hfo2.extxyz"
    ref = _parse_extxyz_columns(path)
    traj = tmp_path / "hfo2.traj"
    ase.io.write(traj, ase.io.read(path, index=":"))
    (fr,) = read_any(traj)
    assert fr.nframes == 2
    for k, r in enumerate(ref):
        assert fr.energy[k] == r["energy"]
        np.testing.assert_array_equal(fr.forces[k], r["forces"])
        np.testing.assert_allclose(fr.virial[k], -r["stress"] * abs(np.linalg.det(r["cell"])), atol=1e-12)
