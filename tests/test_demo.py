"""The main job, ``glassjax demo``, end to end at CI size, and the default-potential wiring.

The demo runs once (module fixture) through the CLI at ``--quick`` size with the small
Teter-distilled DeepPot-SE of ``tests/data/md_models`` (``--no-strict``: its sel is too small
for a compressed glass).  Its outputs are checked against independent recomputations:

* 4B fraction: B atoms with exactly four O closer than 2.0 Å, recounted with ASE's neighbour
  list on the saved H5MD snapshots;
* 3-ring count: a brute-force enumeration of T3O3 rings (three B, three distinct O, bond
  image shifts summing to zero) over ASE's bond list;
* pressure: the virial from central finite differences of the model's energy under an
  isotropic strain of the snapshot (a fresh model load, its own neighbour search), plus the
  kinetic term of the stored velocities;
* strain: ``rate * t`` and the snapshot cells' ``L / L0 - 1``;
* density and N4 of the glass: the thermo log and an ASE recount on the NPT trajectory, and
  the experimental values interpolated by hand from Table II (LB70, LB60).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from itertools import combinations
from pathlib import Path

import h5py
import numpy as np
import pytest
from ase import Atoms
from ase import units as ase_units
from ase.io import read
from ase.neighborlist import neighbor_list

from glassjax.cli import main

MODEL = Path(__file__).resolve().parent / "data" / "md_models" / "teter_distilled_lb.dp"
STRUCTURE = Path(__file__).resolve().parent / "data" / "md_models" / "lb_glass_start.extxyz"
BO = 2.0
GPA = 1.0 / ase_units.GPa  # eV/Å^3 -> GPa
# amu (Å/ps)^2 -> eV
AMU_A2_PS2 = ase_units._amu * (1e-10 / 1e-12) ** 2 / ase_units._e


def _demo_args(out, *extra):
    return ["--x64", "demo", "--quick", "--potential", str(MODEL), "--no-strict", "-q", "-o", str(out), *extra]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    rc = main(_demo_args(out))
    assert rc == 0
    return out


def _csv(path):
    from glassjax.demo import read_csv

    return read_csv(path)


def _comp_dir(out):
    dirs = sorted(out.glob("*_compression"))
    assert len(dirs) == 1
    return dirs[0]


def _snapshots(out):
    with h5py.File(_comp_dir(out) / "trajectory.h5", "r") as f:
        part = f["particles/all"]
        return {"numbers": part["species"][:], "masses": part["mass"][:], "pos": part["position/value"][:],
                "vel": part["velocity/value"][:], "cells": part["box/edges/value"][:],
                "steps": part["position/step"][:], "time": part["position/time"][:]}


def _atoms(snap, i):
    return Atoms(numbers=snap["numbers"], positions=snap["pos"][i], cell=snap["cells"][i], pbc=True)


def _bo_bonds(atoms):
    """B-O bonds shorter than BO: (i_B, j_O, shift) from ASE's neighbour list."""
    i, j, s = neighbor_list("ijS", atoms, {("B", "O"): BO})
    sym = np.array(atoms.get_chemical_symbols())
    keep = (sym[i] == "B") & (sym[j] == "O")
    return i[keep], j[keep], s[keep]


def _n4_recount(atoms):
    i, _, _ = _bo_bonds(atoms)
    sym = np.array(atoms.get_chemical_symbols())
    cn = np.bincount(i, minlength=len(atoms))[sym == "B"]
    return np.mean(cn == 4)


def _three_rings_brute_force(atoms):
    """T3O3 rings: B a<b<c with distinct bridging O and zero net image shift around the ring."""
    ib, jo, sh = _bo_bonds(atoms)
    by_o = {}
    for b, o, s in zip(ib, jo, sh):
        by_o.setdefault(o, []).append((b, s))  # vector B->O is x_O - x_B + s.cell
    paths = {}  # (b1, b2) -> [(o, shift of b2's image seen from b1)]
    for o, lst in by_o.items():
        for (b1, s1), (b2, s2) in combinations(lst, 2):
            if b1 == b2:
                continue
            paths.setdefault((b1, b2), []).append((o, tuple(s1 - s2)))
            paths.setdefault((b2, b1), []).append((o, tuple(s2 - s1)))
    formers = sorted({b for b, _ in paths})
    count = 0
    for a, b, c in combinations(formers, 3):
        for o1, s1 in paths.get((a, b), []):
            for o2, s2 in paths.get((b, c), []):
                for o3, s3 in paths.get((c, a), []):
                    if len({o1, o2, o3}) == 3 and not np.any(np.add(np.add(s1, s2), s3)):
                        count += 1
    return count


def test_outputs_written(demo_run):
    for name in ("compression.csv", "compression.png", "glass_vs_experiment.csv", "summary.txt", "recipe.toml",
                 "demo.json", "start.extxyz"):
        assert (demo_run / name).is_file(), name
    assert (demo_run / "compression.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image as mpimg

    img = mpimg.imread(demo_run / "compression.png")
    assert img.shape[1] > 2 * img.shape[0]  # three panels side by side
    tab = _csv(demo_run / "compression.csv")
    assert list(tab) == ["step", "time_ps", "strain", "pressure_GPa", "density_g_cm3", "frac_B4", "n_3rings",
                         "temperature_K"]
    assert np.all(np.isfinite(np.column_stack(list(tab.values()))))
    # every stage left its H5MD trajectory; the summary names the glass and the schedule
    assert (_comp_dir(demo_run) / "trajectory.h5").is_file()
    assert len(list(demo_run.glob("*_npt_300K/trajectory.h5"))) == 1
    text = (demo_run / "summary.txt").read_text()
    assert "Li2O-2B2O3" in text and "quick schedule" in text and "N4" in text
    # the recipe written beside the results is a valid recipe of the same system
    from glassjax.md.recipe import load_recipe

    rec = load_recipe(demo_run / "recipe.toml")
    assert rec["system"]["composition"] == "Li2O-2B2O3" and rec["stage"][-1]["name"] == "npt_300K"
    assert rec["potential"]["model"] == str(MODEL)


def test_4b_and_rings_columns_equal_recount_on_snapshots(demo_run):
    tab = _csv(demo_run / "compression.csv")
    snap = _snapshots(demo_run)
    assert len(snap["steps"]) >= 3  # strain 0 and at least two more snapshots
    n_checked = 0
    for i, step in enumerate(snap["steps"]):
        row = np.flatnonzero(tab["step"] == step)
        assert len(row) == 1, f"snapshot step {step} has no CSV row"
        atoms = _atoms(snap, i)
        assert tab["frac_B4"][row[0]] == pytest.approx(_n4_recount(atoms), abs=1e-12)
        assert tab["n_3rings"][row[0]] == _three_rings_brute_force(atoms)
        n_checked += 1
    assert n_checked == len(snap["steps"])
    # compression converts 3B to 4B in this glass (the papers' effect, here at CI size)
    assert tab["frac_B4"][-1] > tab["frac_B4"][0]


def test_pressure_column_equals_virial_and_kinetic_of_snapshots(demo_run):
    from glassjax.model import load_model

    model, variables = load_model(MODEL, dtype="float64")
    tab = _csv(demo_run / "compression.csv")
    snap = _snapshots(demo_run)
    sym = [a for a in _atoms(snap, 0).get_chemical_symbols()]
    types = model.types_from_species(sym)
    h = 1e-5

    def energy(x, c):
        # one list capacity for every snapshot: one compile (the list is the model's own search)
        nl, _ = model.neighbor_list(x, c, skin=0.0, types=types, capacity=192)
        assert not bool(nl.overflow)
        return float(model.energy(variables, x, c, types, nl))

    for i, step in enumerate(snap["steps"]):
        pos, cell = snap["pos"][i], snap["cells"][i]
        e_plus = energy(pos * (1 + h), cell * (1 + h))
        e_minus = energy(pos * (1 - h), cell * (1 - h))
        trace_w = -(e_plus - e_minus) / (2 * h)  # virial trace = -dE/d(isotropic strain)
        kin2 = np.sum(snap["masses"][:, None] * snap["vel"][i] ** 2) * AMU_A2_PS2  # 2 KE, eV
        vol = abs(np.linalg.det(cell))
        p_ref = (kin2 + trace_w) / (3 * vol) * GPA
        row = np.flatnonzero(tab["step"] == step)[0]
        assert tab["pressure_GPa"][row] == pytest.approx(p_ref, rel=1e-6, abs=1e-5)
        # the density column is the snapshot's mass over its volume
        rho = np.sum(snap["masses"]) / vol * ase_units._amu * 1e3 / 1e-24
        assert tab["density_g_cm3"][row] == pytest.approx(rho, rel=1e-6)  # CODATA amu: ASE vs glassjax.units
    # compression raises the pressure
    assert tab["pressure_GPa"][-1] > tab["pressure_GPa"][0] + 1.0


def test_strain_follows_prescribed_rate(demo_run):
    settings = json.loads((demo_run / "demo.json").read_text())["settings"]["schedule"]
    rate, dt, target = settings["strain_rate"], settings["dt"], settings["max_strain"]
    tab = _csv(demo_run / "compression.csv")
    assert tab["strain"][0] == 0.0 and tab["time_ps"][0] == 0.0
    np.testing.assert_allclose(tab["time_ps"], tab["step"] * dt, atol=1e-6)
    np.testing.assert_allclose(tab["strain"], rate * tab["step"] * dt, rtol=1e-9, atol=1e-12)
    assert tab["strain"][-1] == pytest.approx(target, abs=abs(rate) * dt)
    assert np.all(np.diff(tab["strain"]) < 0)
    # the cells of the snapshots: every edge L0 (1 + strain), cubic shape kept
    snap = _snapshots(demo_run)
    ref = snap["cells"][0]
    for i, step in enumerate(snap["steps"]):
        np.testing.assert_allclose(snap["cells"][i], ref * (1 + rate * step * dt), rtol=1e-10, atol=1e-10)
    # volume ratio (1 + strain)^3: the density column scales with it
    np.testing.assert_allclose(tab["density_g_cm3"] * (1 + tab["strain"]) ** 3, tab["density_g_cm3"][0], rtol=1e-9)


def test_glass_vs_experiment(demo_run):
    gv = _csv(demo_run / "glass_vs_experiment.csv")
    assert list(gv["property"]) == ["density_g_cm3", "N4"]
    # experiment: Li2O.2B2O3 (33.3 mol% Li2O) between Table II's LB70 (30 %: 2.22, 39.9 %) and LB60 (40 %: 2.26,
    # 45.7 %): linear interpolation by hand
    w = (100 / 3 - 30) / 10
    assert gv["experiment"][0] == pytest.approx(2.22 + w * (2.26 - 2.22), abs=1e-9)
    assert gv["experiment"][1] == pytest.approx((39.9 + w * (45.7 - 39.9)) / 100, abs=1e-9)
    # simulation: density from the NPT thermo log (second half), N4 recounted on the NPT frames (second half)
    npt = next(demo_run.glob("*_npt_300K"))
    dens = _csv(npt / "thermo.csv")["density_g_cm3"]
    assert gv["simulation"][0] == pytest.approx(np.mean(dens[len(dens) // 2:]), rel=1e-9)
    frames = []
    with h5py.File(npt / "trajectory.h5", "r") as f:
        part = f["particles/all"]
        for p, c in zip(part["position/value"][:], part["box/edges/value"][:]):
            frames.append(Atoms(numbers=part["species"][:], positions=p, cell=c, pbc=True))
    n4 = [_n4_recount(a) for a in frames]
    assert gv["simulation"][1] == pytest.approx(np.mean(n4[len(n4) // 2:]), abs=1e-12)
    np.testing.assert_allclose(gv["difference"], gv["simulation"] - gv["experiment"], atol=1e-12)


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_rerun_skips_finished_stages(demo_run, capsys):
    comp = _comp_dir(demo_run)
    before = {p: _digest(p) for p in (comp / "trajectory.h5", comp / "deform.csv", demo_run / "compression.csv",
                                      *demo_run.glob("*_npt_300K/trajectory.h5"))}
    capsys.readouterr()
    assert main(_demo_args(demo_run)) == 0
    out = capsys.readouterr().out
    stages = json.loads((demo_run / "demo.json").read_text())
    n_stages = len(list(demo_run.glob("[0-9]*_*/done.json")))
    assert out.count("already done") == n_stages >= 3, out
    assert "compression: already done" in out
    assert {p: _digest(p) for p in before} == before
    assert stages["timings"]  # wall times of the first run are kept
    # another setting in the same folder is refused with one clear message
    capsys.readouterr()
    assert main(_demo_args(demo_run, "--seed", "1")) == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "seed" in err


# ----------------------------------------------------------------------------- default potential

def jax_leaves(tree):
    import jax

    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def _default_members():
    from glassjax.pretrained import DEFAULT_DIR

    return sorted(Path(DEFAULT_DIR).glob("member_*.dp"))


def test_calculator_without_argument_loads_the_shipped_default():
    if not _default_members():
        pytest.skip("the default potential (glassjax/potentials/default/member_*.dp) is not in the tree yet")
    from glassjax.calculator import GlassJaxCalculator
    from glassjax.model import load_model
    from glassjax.pretrained import default_model_path

    calc = GlassJaxCalculator()
    model, variables = load_model(default_model_path())
    assert calc.model.config == model.config
    atoms = read(STRUCTURE)
    if not set(atoms.get_chemical_symbols()) <= set(model.type_map):
        pytest.skip(f"default potential type_map {model.type_map} lacks the test structure's elements")
    atoms.calc = calc
    e = atoms.get_potential_energy()
    ref = float(model.energy(variables, atoms.positions, atoms.cell.array,
                             model.types_from_species(atoms.get_chemical_symbols())))
    assert e == pytest.approx(ref, rel=1e-6)


@pytest.fixture()
def stand_in_default(tmp_path, monkeypatch):
    """A default-potential folder holding two copies of the test model (the wiring, not the model)."""
    import glassjax.pretrained as P

    d = tmp_path / "default"
    d.mkdir()
    for k in range(2):
        shutil.copy(MODEL, d / f"member_{k}.dp")
    monkeypatch.setattr(P, "DEFAULT_DIR", d)
    return d


def test_default_wiring_calculator_and_cli(stand_in_default, tmp_path, capsys):
    from glassjax.calculator import GlassJaxCalculator

    atoms = read(STRUCTURE)
    ref = atoms.copy()
    ref.calc = GlassJaxCalculator(str(MODEL), dtype="float64")
    e_ref = ref.get_potential_energy()
    a = atoms.copy()
    a.calc = GlassJaxCalculator(dtype="float64")
    assert a.get_potential_energy() == pytest.approx(e_ref, rel=1e-12)
    np.testing.assert_allclose(a.get_forces(), ref.get_forces(), rtol=1e-12, atol=1e-12)
    by_word = GlassJaxCalculator("default", dtype="float64")
    assert by_word.model.config == ref.calc.model.config
    for x, y in zip(*(jax_leaves(c.variables) for c in (by_word, ref.calc))):
        np.testing.assert_array_equal(x, y)
    # CLI: model eval without a model gives the explicit file's energy; info names the default's file
    capsys.readouterr()
    assert main(["--x64", "model", "eval", str(STRUCTURE)]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert float(line.split()[1]) == pytest.approx(e_ref, rel=1e-10, abs=1e-8)
    for argv in (["model", "info"], ["model", "info", "default"]):
        assert main(argv) == 0
        assert f"model: {stand_in_default / 'member_0.dp'}" in capsys.readouterr().out
    # model-devi without models uses the default ensemble: two identical members deviate by 0
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    frame = atoms.copy()  # the readers want labels; model-devi does not use them
    frame.calc = SinglePointCalculator(frame, energy=0.0, forces=np.zeros((len(frame), 3)))
    write(tmp_path / "frames.extxyz", [frame, frame], format="extxyz")
    out = tmp_path / "devi"
    assert main(["--x64", "model-devi", str(tmp_path / "frames.extxyz"), "-o", str(out)]) == 0
    files = list(out.glob("model_devi_*.out"))
    assert len(files) == 1
    vals = np.atleast_2d(np.loadtxt(files[0]))[:, 1:]
    finite = np.isfinite(vals)
    assert finite.sum() >= 4  # force and energy deviations at least
    assert np.all(vals[finite] == 0.0)


def test_default_missing_is_one_clear_error(tmp_path, monkeypatch, capsys):
    import glassjax.pretrained as P
    from glassjax.calculator import GlassJaxCalculator
    from glassjax.errors import ModelError

    monkeypatch.setattr(P, "DEFAULT_DIR", tmp_path / "nothing")
    with pytest.raises(ModelError, match="default potential is missing"):
        GlassJaxCalculator()
    capsys.readouterr()
    assert main(["model", "info"]) == 2
    assert "default potential is missing" in capsys.readouterr().err
