"""Recipe studies: a batch of deformation runs through ``glassjax simulate`` (tables and figures
checked against numpy recomputations from the runs' own files), recipe potentials (Teter/Du,
a DeepPot-SE model file, the shipped default), ``--set`` / ``[quick]`` overrides, and the
shipped recipes of ``simulate/``.

References: the batch mean/std are recomputed with numpy from every run's ``deform.csv``;
the 4B fraction by a brute-force numpy count of O within 2.0 Å of each B in the saved H5MD
snapshots; the 3-rings by networkx cycle enumeration on the B-O bond graph (closed rings only:
bond vectors summing to zero); model energies by ``DeepPot.energy`` with its own neighbour
search.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import h5py
import networkx as nx
import numpy as np
import pytest

from glassjax.cli import main
from glassjax.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "tests" / "data" / "md_models"
MODEL = MODELS / "teter_distilled_lb.dp"
START = MODELS / "lb_glass_start.extxyz"

STUDY = f"""
[system]
structure = "{START}"
composition = "LB70"
replicas = 2

[potential]
type = "teter"
skin = 0.8

[run]
output = "out"
chunk = 20
every = 10
precision = "float64"

[[stage]]
name = "nvt"
ensemble = "nvt"
dt = 0.001
tau_t = 0.05
temperature = 300
steps = 20
initial_temperature = 300

[deformation]
mode = "uniaxial"
directions = ["x", "z"]
rates = [0.05]
max_strain = 0.02
record_every = 0.001
snapshot_every = 0.01
"""


def test_uniaxial_batch_through_the_cli(tmp_path):
    """2 glasses x 2 directions, tension, ~50 atoms, 400 MD steps each, the 4 runs in one
    vmapped batch: one test (one run of the study, whichever pytest-xdist worker gets it),
    checked by the helpers below, then one run alone through run_deformation."""
    recipe = tmp_path / "study.toml"
    recipe.write_text(STUDY)
    study = (main(["simulate", str(recipe), "-q"]), tmp_path / "out" / "deform")
    check_tables_and_figures_written(study)
    check_batch_mean_equals_mean_of_the_runs_csvs(study)
    check_4b_and_3rings_match_independent_counts(study)
    check_analyze_deformation_cli_reproduces_the_summary(study, tmp_path / "cli")
    # the runs above went as one vmapped batch; one of them alone, through
    # glassjax.md.deform.run_deformation, is the same run (to round-off)
    assert main(["simulate", str(recipe), "-q", "--set", "system.replicas=1", "--set", "run.output=one",
                 "--set", 'deformation.directions=["x"]', "--set", "deformation.batch=false"]) == 0
    alone = _csv(tmp_path / "one" / "deform" / "glass0_x_tension" / "deform.csv")
    batched = _csv(study[1] / "glass0_x_tension" / "deform.csv")
    assert alone.dtype.names == batched.dtype.names and len(alone) == len(batched) == 20
    for k in alone.dtype.names:
        assert np.allclose(alone[k], batched[k], rtol=1e-9, atol=1e-9), k


def _csv(path):
    return np.genfromtxt(path, delimiter=",", names=True, deletechars="")


def check_tables_and_figures_written(study):
    rc, deform = study
    assert rc == 0
    runs = sorted(p.name for p in deform.iterdir() if p.name != "summary")
    assert runs == ["glass0_x_tension", "glass0_z_tension", "glass1_x_tension", "glass1_z_tension"]
    summary = deform / "summary"
    for name in ("tension_stress_strain.csv", "tension_structure.csv", "runs.csv"):
        assert (summary / name).stat().st_size > 0
    for name in ("stress_strain.png", "structure.png"):
        assert (summary / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def check_batch_mean_equals_mean_of_the_runs_csvs(study):
    _, deform = study
    table = _csv(deform / "summary" / "tension_stress_strain.csv")
    per_run = {}
    for run in ("glass0_x_tension", "glass0_z_tension", "glass1_x_tension", "glass1_z_tension"):
        rec = _csv(deform / run / "deform.csv")
        a = run.split("_")[1]
        per_run[run] = (rec["strain"], rec[f"s{a}{a}_GPa"])
        # the loading axis follows the prescribed engineering strain rate exactly
        assert np.allclose(rec["strain"], 0.05 * rec["time_ps"], atol=1e-12)
        assert np.allclose(rec[f"eps_{a}{a}"], rec["strain"], atol=1e-12)
    strains = np.array([s for s, _ in per_run.values()])
    stress = np.array([v for _, v in per_run.values()])
    assert np.allclose(strains, strains[0], atol=1e-12) and len(strains[0]) == 20
    # row 0 is the undeformed snapshot (from the trajectories); rows 1.. are the records
    assert abs(table["strain"][0]) < 1e-12
    assert np.allclose(table["strain"][1:], strains[0], atol=1e-12)
    assert np.allclose(table["stress_mean_GPa"][1:], stress.mean(axis=0), rtol=1e-12, atol=1e-12)
    assert np.allclose(table["stress_std_GPa"][1:], stress.std(axis=0), rtol=1e-10, atol=1e-12)
    for run, (_, v) in per_run.items():
        assert np.allclose(table[f"stress_GPa[{run}]"][1:], v, rtol=1e-12, atol=1e-12)
    first = []
    for run in per_run:
        a = "xyz".index(run.split("_")[1])
        with h5py.File(deform / run / "trajectory.h5", "r") as f:
            first.append(f["observables/stress/value"][0][a, a])
    assert np.isclose(table["stress_mean_GPa"][0], np.mean(first), rtol=1e-12)


def _bonds(pos, cell, b_idx, o_idx, rc=2.0):
    """(i, j, vector) for every B-O pair within rc, minimum image (the cells are > 2 rc wide)."""
    inv = np.linalg.inv(cell)
    out = []
    for i in b_idx:
        d = pos[o_idx] - pos[i]
        s = d @ inv
        d = (s - np.round(s)) @ cell
        r = np.linalg.norm(d, axis=1)
        for k in np.nonzero(r < rc)[0]:
            out.append((int(i), int(o_idx[k]), d[k]))
    return out


def _three_rings(bonds):
    g = nx.Graph()
    vec = {}
    for i, j, d in bonds:
        g.add_edge(i, j)
        vec[(i, j)], vec[(j, i)] = d, -d
    n = 0
    for cyc in nx.simple_cycles(g, length_bound=6):
        if len(cyc) == 6:
            total = sum(vec[(cyc[k], cyc[(k + 1) % 6])] for k in range(6))
            n += bool(np.linalg.norm(total) < 1e-6)
    return n


def check_4b_and_3rings_match_independent_counts(study):
    _, deform = study
    table = _csv(deform / "summary" / "runs.csv")
    structure = _csv(deform / "summary" / "tension_structure.csv")
    names = np.genfromtxt(deform / "summary" / "runs.csv", delimiter=",", skip_header=1, usecols=0, dtype=str)
    per_snapshot = {}
    for run in ("glass0_x_tension", "glass0_z_tension", "glass1_x_tension", "glass1_z_tension"):
        with h5py.File(deform / run / "trajectory.h5", "r") as f:
            z = f["particles/all/species"][:]
            pos = f["particles/all/position/value"][:]
            cells = f["particles/all/box/edges/value"][:]
        b_idx, o_idx = np.nonzero(z == 5)[0], np.nonzero(z == 8)[0]
        rows = names == run
        assert rows.sum() == len(pos) == 3  # strain 0, 0.01, 0.02
        n4, rings = [], []
        for p, c in zip(pos, cells):
            bonds = _bonds(p, c, b_idx, o_idx)
            cn = np.bincount([i for i, _, _ in bonds], minlength=len(z))[b_idx]
            n4.append(np.mean(cn == 4))
            rings.append(_three_rings(bonds))
        assert np.allclose(table["frac_B4"][rows], n4, atol=1e-12)
        assert np.array_equal(table["n_3rings"][rows], rings)
        per_snapshot[run] = (np.array(n4), np.array(rings))
    n4 = np.array([v[0] for v in per_snapshot.values()])
    rings = np.array([v[1] for v in per_snapshot.values()])
    assert np.allclose(structure["frac_B4_mean"], n4.mean(axis=0), atol=1e-12)
    assert np.allclose(structure["frac_B4_std"], n4.std(axis=0), atol=1e-12)
    assert np.allclose(structure["n_3rings_mean"], rings.mean(axis=0), atol=1e-12)
    assert 0 < n4.mean() < 1  # a real borate network: some, not all, B four-fold


def check_analyze_deformation_cli_reproduces_the_summary(study, tmp_path):
    _, deform = study
    assert main(["analyze", "deformation", str(deform), "-o", str(tmp_path / "rep"), "--no-structure"]) == 0
    a = _csv(tmp_path / "rep" / "tension_stress_strain.csv")
    b = _csv(deform / "summary" / "tension_stress_strain.csv")
    assert np.array_equal(a["stress_mean_GPa"], b["stress_mean_GPa"])
    assert main(["analyze", "deformation", str(tmp_path / "nothing"), "-o", str(tmp_path / "x")]) == 2


# ----------------------------------------------------------------------------- potentials

MODEL_RECIPE = """
potential = "{model}"

[system]
structure = "{start}"

[run]
output = "out"
chunk = 20
every = 10

[[stage]]
name = "nve"
ensemble = "nve"
dt = 0.0005
temperature = 500
steps = 20
initial_temperature = 500
"""

# the deformation study's stage (same potential, ensemble and chunking: one shared compile)
TETER_STAGE = """[[stage]]
name = "teter"
potential = {type = "teter", skin = 0.8}
ensemble = "nvt"
dt = 0.001
tau_t = 0.05
temperature = 300
steps = 20
initial_temperature = 300

"""


def _frames(path):
    with h5py.File(path, "r") as f:
        return (f["particles/all/position/value"][:], f["particles/all/box/edges/value"][:],
                f["observables/potential_energy/value"][:], f["particles/all/species"][:])


def test_model_file_potential_runs_a_stage_with_the_models_energies(tmp_path):
    """Stage 1 with Teter/Du (a per-stage potential), stage 2 with the model file named
    relative to the recipe: each stage's logged energies are its own potential's."""
    from glassjax import neighbors
    from glassjax.md.builder import parse_composition
    from glassjax.md.classical import teter_du_energy_fn, teter_du_table
    from glassjax.model import load_model

    recipe = tmp_path / "sub" / "r.toml"
    recipe.parent.mkdir()
    text = MODEL_RECIPE.format(model=os.path.relpath(MODEL, recipe.parent), start=START)
    text = text.replace(f'structure = "{START}"', f'structure = "{START}"\ncomposition = "LB70"')
    recipe.write_text(text.replace("[[stage]]", TETER_STAGE + "[[stage]]", 1))
    assert main(["simulate", str(recipe), "-q"]) == 0
    model, variables = load_model(MODEL, dtype="float64")
    pos, cells, pe, z = _frames(tmp_path / "sub" / "out" / "2_nve" / "trajectory.h5")
    assert len(pe) == 2
    symbols = [{3: "Li", 5: "B", 8: "O"}[int(k)] for k in z]
    t = model.types_from_species(symbols)
    direct = [float(model.energy(variables, p, c, t)) for p, c in zip(pos, cells)]
    assert np.allclose(pe, direct, rtol=0, atol=1e-8)
    assert np.ptp(pe) > 1e-4  # the atoms moved
    # stage 1 ran with Teter/Du (composition-dependent B-O term of LB70) ...
    pos, cells, pe, _ = _frames(tmp_path / "sub" / "out" / "1_teter" / "trajectory.h5")
    table = teter_du_table(symbols, composition=parse_composition("LB70"))
    efn = teter_du_energy_fn(symbols, table)
    for p, c, e in zip(pos, cells, pe):
        nl, _ = neighbors.allocate(p, c, table.cutoff, 0.0)
        assert abs(float(efn(p, c, nl)) - e) < 1e-8
    # ... and not with the model (the two differ by far more than the tolerance above)
    assert abs(float(model.energy(variables, pos[0], cells[0], t)) - pe[0]) > 1e-3


def test_default_potential_resolves_lazily_to_the_shipped_model(monkeypatch, tmp_path, capsys):
    import jax

    from glassjax.md.recipe import load_potential_model, load_recipe, model_path, recipe_dtype

    fake = types.ModuleType("glassjax.pretrained")
    fake.default_model_path = lambda: MODEL
    monkeypatch.setitem(sys.modules, "glassjax.pretrained", fake)
    recipe = tmp_path / "r.toml"
    recipe.write_text(MODEL_RECIPE.format(model="default", start=START))
    r = load_recipe(recipe)
    assert r["potential"]["type"] == "default" and model_path(r["potential"]) == MODEL
    # the recipe's precision picks the model's dtype
    for precision, dtype in (("float32", np.float32), ("float64", np.float64)):
        r = load_recipe(recipe, overrides=[f'run.precision="{precision}"'])
        model, variables, path = load_potential_model(r["potential"], recipe_dtype(r))
        assert path == MODEL and model.dtype == dtype
        assert {x.dtype for x in jax.tree_util.tree_leaves(variables["params"])} == {np.dtype(dtype)}
    # relative model paths resolve against the recipe's folder
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.dp").write_bytes(MODEL.read_bytes())
    recipe.write_text(MODEL_RECIPE.format(model="m/model.dp", start=START))
    assert model_path(load_recipe(recipe)["potential"]) == tmp_path / "m" / "model.dp"
    # without the shipped module: one clear error
    monkeypatch.setitem(sys.modules, "glassjax.pretrained", None)
    recipe.write_text(MODEL_RECIPE.format(model="default", start=START))
    assert main(["simulate", str(recipe), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert 'potential "default"' in err and len(err.splitlines()) == 1


def test_bad_potentials_give_one_config_error_naming_them(tmp_path, capsys):
    recipe = tmp_path / "r.toml"
    recipe.write_text(MODEL_RECIPE.format(model="nowhere/missing.dp", start=START))
    assert main(["simulate", str(recipe), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing.dp" in err and "not found" in err and len(err.splitlines()) == 1
    recipe.write_text(MODEL_RECIPE.format(model="tetter", start=START))
    assert main(["simulate", str(recipe), "-q"]) == 2
    assert "tetter" in capsys.readouterr().err
    # a glass with Si, and a model that knows only Li, B, O
    text = MODEL_RECIPE.format(model=MODEL, start=START).replace(
        f'structure = "{START}"', 'composition = "LBS-10-50-40"\nn_atoms = 40')
    recipe.write_text(text)
    assert main(["simulate", str(recipe), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert "'Si'" in err and MODEL.name in err and len(err.splitlines()) == 1


# ----------------------------------------------------------------------------- overrides, shipped recipes

def test_set_and_quick_overrides(tmp_path):
    from glassjax.md.recipe import load_recipe

    path = REPO / "simulate" / "lb67_uniaxial.toml"
    r = load_recipe(path, overrides=["system.n_atoms=100", "stage.cmd_melt.dt=0.002", "stage.3.tau_t=0.2",
                                     "deformation.rates=[2e-3]", "potential=teter", "run.output=\"elsewhere\""])
    assert r["system"]["n_atoms"] == 100
    assert r["stage"][1]["dt"] == 0.002 and r["stage"][2]["tau_t"] == 0.2
    assert r["deformation"]["rates"] == [0.002] and r["potential"]["type"] == "teter"
    assert r["run"]["output"] == "elsewhere"
    q = load_recipe(path, quick=True, overrides=["system.n_atoms=50"])
    assert q["system"]["n_atoms"] == 50 and q["system"]["replicas"] == 2 and q["potential"]["type"] == "teter"
    assert q["deformation"]["max_strain"] == 0.03
    with pytest.raises(ConfigError, match="no stage named 'nosuch'"):
        load_recipe(path, overrides=["stage.nosuch.dt=1"])
    with pytest.raises(ConfigError, match="unknown key"):
        load_recipe(path, overrides=["system.n_atom=3"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_recipe(path, overrides=["system.n_atoms"])
    with pytest.raises(ConfigError, match="max_strain"):
        load_recipe(path, overrides=["deformation.max_strain=2"])
    with pytest.raises(ConfigError, match=r"\[quick\]"):
        load_recipe(REPO / "simulate" / "npt_equilibrate.toml", quick=True)


def test_shipped_recipes_parse_and_follow_the_paper():
    from glassjax.md.builder import parse_composition
    from glassjax.md.compositions import TABLE_II
    from glassjax.md.recipe import deformation_runs, load_recipe, stage_temperatures

    folder = REPO / "simulate"
    paths = sorted(folder.glob("*.toml"))
    names = {p.name for p in paths}
    assert {"lb67_uniaxial.toml", "lb67_triaxial.toml", "lbs_10_50_40_uniaxial.toml",
            "lbs_10_50_40_triaxial.toml", "table2_sweep.toml"} <= names
    for p in paths:
        r = load_recipe(p)
        for st in r.get("stage", []):
            if st["type"] == "md":
                assert stage_temperatures(st, float(st.get("dt", 0.001))).min() >= 0
        if "[quick]" in p.read_text():
            load_recipe(p, quick=True)
    for stem, comp in (("lb67", {"B2O3": 2 / 3, "Li2O": 1 / 3}),
                       ("lbs_10_50_40", {"SiO2": 0.1, "B2O3": 0.5, "Li2O": 0.4})):
        uni = load_recipe(folder / f"{stem}_uniaxial.toml")
        tri = load_recipe(folder / f"{stem}_triaxial.toml")
        for r in (uni, tri):
            assert parse_composition(r["system"]["composition"]) == pytest.approx(comp)
            assert r["system"]["n_atoms"] == 1000 and r["system"]["replicas"] == 3
            # the MLP quench: 10 K/ps from 2000 to 1000 K, 200 ps hold, 2 K/ps to 300 K
            q = next(st for st in r["stage"] if st["name"] == "mlp_quench")
            assert len(stage_temperatures(q, 0.001)) == (100 + 200 + 350) * 1000
        d = uni["deformation"]
        assert d["mode"] == "uniaxial" and sorted(d["rates"]) == [-1e-3, 1e-3] and d["lateral"] == "barostat"
        assert len(deformation_runs(uni)) == 18  # 3 glasses x 3 directions x (tension, compression)
        t = tri["deformation"]
        assert t["mode"] == "triaxial" and t["rates"] == [-1e-3] and 0.15 <= t["max_strain"] <= 0.25
        assert len(deformation_runs(tri)) == 3
    sweep = load_recipe(folder / "table2_sweep.toml")
    assert sweep["sweep"]["compositions"] == "all" and len(TABLE_II) == 18


SWEEP = """
potential = "teter"

[run]
output = "out"

[sweep]
compositions = ["LB70", "LBS-10-50-40"]
n_atoms = 40
t_melt = 2500
melt_ps = 0.01
rate = 100000
hold_ps = 0.0
npt_ps = 0.01
quench_ensemble = "npt"
chunk = 10
every = 5
relax_steps = 30
"""


def test_sweep_recipe_drives_table2_sweep(tmp_path, monkeypatch, capsys):
    """The [sweep] keys reach glassjax.md.sweep.table2_sweep (replaced here by a recorder: the
    sweep itself is proven in tests/test_md_batch.py); its CSV gets a figure; reruns skip."""
    import glassjax.md.sweep as S
    from glassjax.md.batch import BatchPotential
    from glassjax.md.compositions import TABLE_II

    calls = []

    def recorder(potential, names, out_dir, **kw):
        calls.append((potential, names, kw))
        rows = [{"glass": n, "n_atoms": kw["n_atoms"], "SiO2_mol": TABLE_II[n].sio2, "B2O3_mol": TABLE_II[n].b2o3,
                 "Li2O_mol": TABLE_II[n].li2o, "density_sim": 2.0, "density_sim_std": 0.01,
                 "density_exp": TABLE_II[n].density, "N4_sim": 0.3, "N4_sim_std": 0.02,
                 "N4_exp": TABLE_II[n].b4 / 100} for n in names]
        S.write_csv(Path(out_dir) / "table2.csv", rows)

    monkeypatch.setattr(S, "table2_sweep", recorder)
    recipe = tmp_path / "sweep.toml"
    recipe.write_text(SWEEP)
    assert main(["simulate", str(recipe), "-q"]) == 0
    (potential, names, kw), = calls
    assert isinstance(potential, BatchPotential) and potential.cutoff == 8.0
    assert names == ["LB70", "LBS-10-50-40"]
    assert kw["n_atoms"] == 40 and kw["rate"] == 100000 and kw["quench_ensemble"] == "npt" and kw["skin"] == 1.0
    assert kw["relax_steps"] == 30 and "relax_fmax" not in kw  # the sweep's own default
    assert (tmp_path / "out" / "table2.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["simulate", str(recipe), "-q"]) == 0 and len(calls) == 1  # finished: skipped
    # a model without Si for a sweep with an LBS glass: one error naming Si and the model
    recipe.write_text(SWEEP.replace('potential = "teter"', f'potential = "{MODEL}"').replace('"out"', '"out2"'))
    assert main(["simulate", str(recipe), "-q"]) == 2
    err = capsys.readouterr().err
    assert "'Si'" in err and MODEL.name in err and len(calls) == 1
    recipe.write_text(SWEEP.replace('"LB70"', '"LB71"'))
    assert main(["simulate", str(recipe), "-q"]) == 2
    assert "LB71" in capsys.readouterr().err
    recipe.write_text(SWEEP.replace("relax_steps = 30", "relax_steps = 2.5"))
    assert main(["simulate", str(recipe), "-q"]) == 2
    assert "relax_steps" in capsys.readouterr().err and len(calls) == 1


def test_report_from_on_the_fly_records_on_different_strain_grids(tmp_path):
    """Runs without snapshots use the records' on-the-fly 4B / 3-ring columns; runs recorded on
    different strain grids are interpolated onto the first run's grid inside the common range
    (exact for curves linear in strain)."""
    import json

    from glassjax.analysis.deformation import deformation_report

    def write(name, strains, slope, axis):
        folder = tmp_path / name
        folder.mkdir()
        cols = ["step", "strain", "sxx_GPa", "syy_GPa", "szz_GPa", "syz_GPa", "sxz_GPa", "sxy_GPa", "frac_B4",
                "n_3rings"]
        rows = []
        for k, e in enumerate(strains):
            s = [0.0] * 6
            s[axis] = slope * e
            rows.append([k + 1, e] + s + [0.3 + slope * e / 100, 2 * slope * e])
        (folder / "deform.csv").write_text(
            ",".join(cols) + "\n" + "\n".join(",".join(repr(float(v)) for v in r) for r in rows) + "\n")
        (folder / "run.json").write_text(json.dumps({"name": name, "mode": "uniaxial", "axis": axis}))
        return folder

    a = write("a", np.arange(1, 11) * 0.001, 10.0, 0)        # 0.001 ... 0.010
    b = write("b", np.arange(1, 7) * 0.002, 20.0, 2)         # 0.002 ... 0.012
    c = write("c", -np.arange(1, 5) * 0.003, 10.0, 1)        # compression
    written = deformation_report([a, b, c], tmp_path / "rep")
    t = _csv(written["tension_stress_strain"])
    assert np.allclose(t["strain"], np.arange(2, 11) * 0.001)
    assert np.allclose(t["stress_mean_GPa"], 15.0 * t["strain"], atol=1e-12)
    assert np.allclose(t["stress_std_GPa"], 5.0 * t["strain"], atol=1e-12)
    s = _csv(written["tension_structure"])
    assert np.allclose(s["frac_B4_mean"], 0.3 + 0.15 * s["strain"], atol=1e-12)
    assert np.allclose(s["n_3rings_mean"], 30.0 * s["strain"], atol=1e-12)
    comp = _csv(written["compression_stress_strain"])
    assert np.allclose(comp["strain"], -np.arange(1, 5) * 0.003) and np.allclose(comp["stress_std_GPa"], 0.0)
    assert written["structure_png"].read_bytes()[:4] == b"\x89PNG"


def test_sweep_schedule_two_cooling_rates():
    """The papers' protocol: 10 K/ps from the melt to the 1000 K plateau, 2 K/ps below it."""
    from glassjax.md.sweep import quench_schedule

    dt = 0.01
    t = quench_schedule(dt, t_melt=2000.0, melt_ps=1.0, rate=2.0, t_hold=1000.0, hold_ps=0.5, t_final=300.0,
                        rate_high=10.0)
    n_melt, n_hi, n_hold, n_lo = 100, round(1000 / 10 / dt), 50, round(700 / 2 / dt)
    assert t.shape == (n_melt + n_hi + n_hold + n_lo,)
    np.testing.assert_allclose(t[:n_melt], 2000.0)
    hi = t[n_melt:n_melt + n_hi]
    np.testing.assert_allclose(np.diff(hi), -10.0 * dt)  # 10 K/ps
    np.testing.assert_allclose(t[n_melt + n_hi:n_melt + n_hi + n_hold], 1000.0)
    lo = t[n_melt + n_hi + n_hold:]
    np.testing.assert_allclose(np.diff(lo), -2.0 * dt)  # 2 K/ps
    assert lo[-1] == pytest.approx(300.0)
    # one rate (no plateau): straight to t_final at `rate`
    one = quench_schedule(dt, 2000.0, 1.0, 2.0, 1000.0, 0.0, 300.0, rate_high=10.0)
    assert one.shape == (n_melt + round(1700 / 2 / dt),)


def test_sweep_summary_against_numpy(tmp_path):
    """Family means of the sweep's deviations from experiment, recomputed by hand."""
    from glassjax.md.compositions import TABLE_II
    from glassjax.md.sweep import sweep_summary, write_summary

    rng = np.random.default_rng(1)
    names = ["LB70", "LB60", "LB90", "LBS-10-50-40", "LBS-10-20-70"]
    rows = [{"glass": n, "density_sim": TABLE_II[n].density + rng.normal(0, 0.05),
             "density_exp": TABLE_II[n].density, "N4_sim": rng.uniform(0, 0.5), "N4_exp": TABLE_II[n].b4 / 100}
            for n in names]
    got = {r["family"]: r for r in sweep_summary(rows)}
    lb = [r for r in rows if not r["glass"].startswith("LBS")]
    assert got["LB"]["n_glasses"] == 3 and got["LBS"]["n_glasses"] == 2
    assert got["LB"]["density_dev_mean"] == pytest.approx(np.mean([r["density_sim"] - r["density_exp"] for r in lb]))
    assert got["LB"]["density_dev_paper_mlp"] == -0.050 and got["LBS"]["density_dev_paper_mlp"] == -0.069
    high = [r for r in lb if r["N4_exp"] > 0.4]  # LB60 only (45.7 %)
    assert [r["glass"] for r in high] == ["LB60"]
    assert got["LB"]["N4_dev_mean_high"] == pytest.approx(high[0]["N4_sim"] - high[0]["N4_exp"])
    lbs_high = rows[3]  # LBS-10-50-40 (41.6 %); LBS-10-20-70 (1.2 %) is not
    assert got["LBS"]["N4_dev_mean_high"] == pytest.approx(lbs_high["N4_sim"] - lbs_high["N4_exp"])
    assert got["LBS"]["N4_rmse"] == pytest.approx(np.sqrt(np.mean([(r["N4_sim"] - r["N4_exp"]) ** 2 for r in rows[3:]])))
    write_summary(tmp_path / "s.csv", sweep_summary(rows))
    import csv

    back = list(csv.DictReader(open(tmp_path / "s.csv")))
    assert [r["family"] for r in back] == ["LBS", "LB"]
    assert float(back[1]["density_dev_mean"]) == pytest.approx(got["LB"]["density_dev_mean"], abs=1e-6)
