"""Glass builder and the papers' composition table."""

from __future__ import annotations

import numpy as np
import pytest
from ase.data import atomic_masses, atomic_numbers

from glassjax.errors import ConfigError, SimulationError
from glassjax.md.builder import build_glass, formula_units, parse_composition
from glassjax.md.compositions import TABLE_II, find_glass


@pytest.fixture(scope="module")
def lbs_300():
    return build_glass("(SiO2)10(B2O3)50(Li2O)40", n_atoms=300, seed=7)


def test_composition_forms_agree():
    ref = {"SiO2": 0.1, "B2O3": 0.5, "Li2O": 0.4}
    for form in ["(SiO2)10(B2O3)50(Li2O)40", "LBS-10-50-40", {"SiO2": 1, "B2O3": 5, "Li2O": 4}, "SiO2-5B2O3-4Li2O"]:
        got = parse_composition(form)
        assert set(got) == set(ref)
        for k in ref:
            assert got[k] == pytest.approx(ref[k])
    lb = parse_composition("Li2O-2B2O3")
    assert lb["Li2O"] == pytest.approx(1 / 3) and lb["B2O3"] == pytest.approx(2 / 3)
    assert parse_composition("LB70") == pytest.approx({"B2O3": 0.7, "Li2O": 0.3})
    assert parse_composition("LB67") == pytest.approx({"B2O3": 0.67, "Li2O": 0.33})


@pytest.mark.parametrize("bad", ["(SiO2)10(B2O3", "Xx2O", "", "LB0", "2Li2O--B2O3", {"Li2O": -1}])
def test_bad_composition_raises(bad):
    with pytest.raises(ConfigError):
        parse_composition(bad)


def test_table_ii_matches_paper_ratios():
    # K = SiO2/B2O3 and R = Li2O/B2O3 as printed in the paper's Table II, and 3B + 4B = 100 %.
    printed = {"LBS-20-60-20": (0.33, 0.33), "LBS-50-10-40": (5.00, 4.00), "LBS-5-35-60": (0.14, 1.71),
               "LBS-10-20-70": (0.50, 3.50), "LB90": (0.0, 0.11), "LB70": (0.0, 0.43), "LB30": (0.0, 2.33)}
    assert len(TABLE_II) == 18
    for name, (k, r) in printed.items():
        assert TABLE_II[name].K == pytest.approx(k, abs=0.006)
        assert TABLE_II[name].R == pytest.approx(r, abs=0.006)
    for row in TABLE_II.values():
        assert row.b3 + row.b4 == pytest.approx(100.0, abs=0.05)
        assert row.sio2 + row.b2o3 + row.li2o == pytest.approx(100.0)
    assert find_glass({"B2O3": 0.5, "Li2O": 0.5}).name == "LB50"
    assert find_glass({"B2O3": 0.55, "Li2O": 0.45}) is None


def test_stoichiometry_and_atom_count(lbs_300):
    sym = np.array(lbs_300.get_chemical_symbols())
    n = {el: int(np.sum(sym == el)) for el in ("Si", "B", "Li", "O")}
    # whole formula units: B and Li come in pairs, O balances the cations
    assert n["B"] % 2 == 0 and n["Li"] % 2 == 0
    n_sio2, n_b2o3, n_li2o = n["Si"], n["B"] // 2, n["Li"] // 2
    assert n["O"] == 2 * n_sio2 + 3 * n_b2o3 + n_li2o
    # charge neutral with the Teter formal charges
    assert 2.4 * n["Si"] + 1.8 * n["B"] + 0.6 * n["Li"] - 1.2 * n["O"] == pytest.approx(0.0, abs=1e-9)
    assert abs(len(lbs_300) - 300) <= 15
    tot = n_sio2 + n_b2o3 + n_li2o
    for got, want in [(n_sio2 / tot, 0.1), (n_b2o3 / tot, 0.5), (n_li2o / tot, 0.4)]:
        assert abs(got - want) < 0.01


def test_formula_units_exact_when_possible():
    # 2:1 B2O3:Li2O has 13 atoms per (2 B2O3 + Li2O); 1001 atoms = 77 such groups
    units = formula_units({"B2O3": 2 / 3, "Li2O": 1 / 3}, 1001)
    assert units == {"B2O3": 154, "Li2O": 77}


def test_density_is_table_value(lbs_300):
    masses = np.array([atomic_masses[atomic_numbers[s]] for s in lbs_300.get_chemical_symbols()])
    grams = masses.sum() * 1.66053906660e-24
    cm3 = lbs_300.get_volume() * 1e-24
    assert grams / cm3 == pytest.approx(2.30, rel=1e-9)  # Table II, LBS-10-50-40
    cell = lbs_300.cell.array
    assert np.allclose(cell, np.eye(3) * cell[0, 0])
    explicit = build_glass("LB67", n_atoms=200, density=2.0, seed=1)
    m = np.array([atomic_masses[atomic_numbers[s]] for s in explicit.get_chemical_symbols()]).sum()
    assert m * 1.66053906660 / explicit.get_volume() == pytest.approx(2.0, rel=1e-9)


def test_min_distances(lbs_300):
    d = lbs_300.get_all_distances(mic=True)
    sym = np.array(lbs_300.get_chemical_symbols())
    np.fill_diagonal(d, np.inf)
    assert d.min() >= 1.6
    is_o = sym == "O"
    assert d[np.ix_(is_o, is_o)].min() >= 2.0
    assert d[np.ix_(sym == "Li", is_o)].min() >= 1.8
    cat = ~is_o
    assert d[np.ix_(cat, cat)].min() >= 2.0
    # every atom lies in the box
    frac = lbs_300.get_scaled_positions(wrap=False)
    assert np.all((frac >= 0) & (frac < 1))


def test_reproducible_with_seed(lbs_300):
    again = build_glass("LBS-10-50-40", n_atoms=300, seed=7)
    assert again.get_chemical_symbols() == lbs_300.get_chemical_symbols()
    np.testing.assert_array_equal(again.positions, lbs_300.positions)
    other = build_glass("LBS-10-50-40", n_atoms=300, seed=8)
    assert not np.allclose(other.positions, lbs_300.positions)


def test_missing_density_and_impossible_packing():
    with pytest.raises(ConfigError, match="density"):
        build_glass("(B2O3)55(Li2O)45", n_atoms=100)
    with pytest.raises(SimulationError, match="lower the density"):
        build_glass("LB70", n_atoms=100, density=8.0, max_trials=50, max_sweeps=50)
