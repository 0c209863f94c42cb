"""The stability checks of glassjax.md.stability: the hot melt (`glassjax model check-melt`)
and the relaxation of random starts (`glassjax model check-relax`)."""

from pathlib import Path

import numpy as np
import pytest

from glassjax.md.stability import hot_melt_check

REF = Path(__file__).resolve().parent / "data" / "deepmd_models"


def test_default_potential_survives_a_short_hot_melt(tmp_path):
    res = hot_melt_check("default", "Li2O-2B2O3", n_atoms=60, temperature=3000.0, ps=0.1, workdir=tmp_path)
    assert res.ok, res.message
    assert res.steps == 100 and "stayed intact" in res.message


def test_a_model_that_cannot_see_its_neighbours_fails_the_check(tmp_path, capsys):
    # DeePMD-kit's model with sel [3, 4, 2, 9]: a glass has more neighbours, so the strict
    # energy is NaN and the MD engine stops; the check reports it instead of raising
    from glassjax.cli import main

    model = REF / "lbs_pair_smallsel.dp"
    assert main(["model", "check-melt", str(model), "--atoms", "60", "--ps", "0.1", "-q", "-o", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "blew up" in out and "sel" in out
    assert (tmp_path / "recipe.toml").is_file()


def test_temperature_verdict():
    from glassjax.md.stability import temperature_verdict

    heating = [2100, 2400, 6100, 8100, 5900, 10700, 10600, 18600, 25100, 19000]   # a runaway (K)
    ok, what = temperature_verdict(heating, 3000.0)
    assert not ok and "second-half mean 16800 K" in what
    ok, _ = temperature_verdict([3000, 1500, 1800, 2000, 2900, 3100], 3000.0)  # still equilibrating
    assert ok
    assert temperature_verdict([3000, 3700, 3800, 3800], 3000.0)[0] is False          # 3800 > 1.25 x 3000
    assert temperature_verdict([], 3000.0)[0] is False


def test_default_potential_relaxes_random_starts_without_collapse(capsys):
    """Three random starts relaxed together on the shipped model: no pair below the floor;
    the reported closest pairs against ASE's all-pairs distances of the returned structures;
    B-O bonds (the shortest real bonds, 1.3-1.5 Å) make a floor of 1.5 Å fail, naming them."""
    from glassjax.cli import main
    from glassjax.md.builder import build_glass
    from glassjax.md.stability import relax_check, relax_verdict

    names = ["LB50", "LBS-20-40-40", "LB90"]
    res = relax_check("default", names, n_atoms=60, seed=15, steps=60, precision="float64")
    assert res.ok, res.message
    assert [r["glass"] for r in res.rows] == names
    for i, (row, atoms) in enumerate(zip(res.rows, res.structures)):
        start = build_glass(row["glass"], n_atoms=60, seed=15 + i)
        assert len(atoms) == row["atoms"] == len(start)
        assert np.abs(atoms.positions - start.positions).max() > 0.05  # FIRE moved the atoms
        d = atoms.get_all_distances(mic=True)
        np.fill_diagonal(d, np.inf)
        assert row["closest_A"] == pytest.approx(d.min(), abs=1e-9)
        assert 1.0 < row["closest_A"] < 1.5 and row["pair"] == "B-O"
    ok, msg = relax_verdict(res.rows, floor=1.5)
    assert not ok and "B-O" in msg and "spurious" in msg
    assert main(["model", "check-relax", "--glasses", "LB90", "LB1", "-q"]) == 2
    assert "LB1" in capsys.readouterr().err
