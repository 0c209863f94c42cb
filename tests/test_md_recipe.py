"""``glassjax simulate recipe.toml`` end to end on a tiny Teter glass: stages, outputs, resume."""

from __future__ import annotations

import ase.io
import h5py
import numpy as np

from glassjax.cli import main

RECIPE = """
[system]
composition = "LB70"
n_atoms = 40
seed = 2

[potential]
type = "teter"
skin = 0.8

[run]
output = "out"
chunk = 30
every = 10

[[stage]]
name = "relax"
type = "minimize"
fmax = 0.5
max_steps = 60

[[stage]]
name = "hot"
ensemble = "nvt"
dt = 0.0005
tau_t = 0.05
temperature = [["hold", 1500, 0.015], ["ramp", 1500, 1200, 0.015]]
initial_temperature = 1500
"""


def test_recipe_runs_writes_outputs_and_skips_finished_stages(tmp_path, capsys):
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE)
    assert main(["simulate", str(recipe), "-q"]) == 0
    hot = tmp_path / "out" / "2_hot"
    with h5py.File(hot / "trajectory.h5", "r") as f:
        assert f["particles/all/position/value"].shape[0] == 6  # 60 steps, a frame every 10
        temps = f["observables/temperature/value"][:]
    rows = np.genfromtxt(hot / "thermo.csv", delimiter=",", names=True)
    assert len(rows) == 6 and np.allclose(rows["T_K"], temps, rtol=1e-6)
    final = ase.io.read(hot / "final.extxyz")
    relaxed = ase.io.read(tmp_path / "out" / "1_relax" / "final.extxyz")
    assert len(final) == len(relaxed) and abs(len(final) - 40) <= 2
    assert final.get_momenta().std() > 0
    # stored velocities and the log agree on the final temperature
    ke = 0.5 * np.sum(final.get_momenta() ** 2 / final.get_masses()[:, None])
    assert abs(2 * ke / ((3 * len(final) - 3) * 8.617333262e-5) - rows["T_K"][-1]) < 1e-3
    assert relaxed.get_volume() == final.get_volume()  # NVT keeps the cell
    before = (hot / "thermo.csv").read_text()
    capsys.readouterr()
    assert main(["simulate", str(recipe), "-q"]) == 0
    assert "already done" in capsys.readouterr().out
    assert (hot / "thermo.csv").read_text() == before


def test_recipe_errors_are_reported(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(RECIPE.replace('ensemble = "nvt"', 'ensemble = "nvx"'))
    assert main(["simulate", str(bad), "-q"]) == 2
    assert "ensemble must be nve, nvt or npt" in capsys.readouterr().err
    bad.write_text(RECIPE.replace("tau_t = 0.05", "tau_t = 0.05\nfoo = 1"))
    assert main(["simulate", str(bad), "-q"]) == 2
    assert "unknown key" in capsys.readouterr().err
    assert main(["simulate", str(tmp_path / "missing.toml")]) == 2


def test_shipped_recipes_are_valid():
    from pathlib import Path

    from glassjax.md.recipe import load_recipe, stage_temperatures

    folder = Path(__file__).resolve().parents[1] / "simulate"
    recipes = sorted(folder.glob("*.toml"))
    assert len(recipes) >= 3
    for path in recipes:
        r = load_recipe(path)
        for st in r.get("stage", []):  # a [sweep] recipe has no stages
            if st["type"] == "md":
                temps = stage_temperatures(st, float(st.get("dt", 0.001)))
                assert len(temps) > 0 and temps.min() >= 0
    fast = load_recipe(folder / "melt_quench_10Kps.toml")["stage"][2]
    slow = load_recipe(folder / "melt_quench_2Kps.toml")["stage"][2]
    # 3500 -> 1000 K at 10 K/ps, 200 ps hold, then 1000 -> 300 K at 10 or 2 K/ps (dt 1 fs)
    assert len(stage_temperatures(fast, 0.001)) == (250 + 200 + 70) * 1000
    assert len(stage_temperatures(slow, 0.001)) == (250 + 200 + 350) * 1000


def test_replicas_are_independent_glasses_in_their_own_folders(tmp_path):
    """replicas = 2: glass r is built with seed + r and runs the stages in <output>/glass_<r>/."""
    from glassjax.md.builder import build_glass

    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.split("[[stage]]\nname = \"hot\"")[0].replace("seed = 2", "seed = 2\nreplicas = 2"))
    assert main(["simulate", str(recipe), "-q", "--set", "stage.relax.max_steps=5"]) == 0
    finals = [ase.io.read(tmp_path / "out" / f"glass_{r}" / "1_relax" / "final.extxyz") for r in (0, 1)]
    for r, final in enumerate(finals):
        start = build_glass("LB70", n_atoms=40, seed=2 + r)
        assert final.get_chemical_symbols() == start.get_chemical_symbols()
        assert np.allclose(final.cell.array, start.cell.array)
        moved = np.linalg.norm(final.positions - start.positions, axis=1)
        assert 0 < moved.max() < 5 * 0.2 + 1e-9  # 5 FIRE steps of at most 0.2 Å
    assert not np.allclose(finals[0].positions[:5], finals[1].positions[:5])
    assert not (tmp_path / "out" / "1_relax").exists()
