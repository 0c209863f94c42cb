"""Elastic tensor by automatic differentiation (glassjax.sensitivity.elastic).

References:

* LJ fcc crystal (argon): C11, C12, C44 from an independent numpy lattice sum (second
  differences of the energy density); cubic symmetry; one atom per primitive cell, so the
  relaxed-ion tensor equals the clamped one (the internal-relaxation term vanishes).
* Teter/Du alpha-quartz (9 atoms, cell and positions relaxed; no inversion centre on the
  atoms, so a large internal relaxation): matscipy's ``fit_elastic_constants`` through
  glassjax's ASE calculator (an independent implementation: finite strains, linear
  regression, ASE BFGS for the relaxed-ion tensor), trigonal symmetry, and our own central
  finite strain with re-minimisation (relaxed) and dense vs CG solves.
* Teter/Du lithium-borate glass snapshot (49 atoms): clamped-ion tensor vs central finite
  strain; relaxed=True on a non-minimum raises the clear error.
* Voigt/Reuss/Hill averages: closed forms for isotropic and cubic tensors.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from ase.build import bulk
from ase.spacegroup import crystal
from ase.io import read

from glassjax import neighbors, units
from glassjax.calculator import PotentialCalculator
from glassjax.errors import SimulationError
from glassjax.md.classical import lennard_jones_energy_fn, teter_du_energy_fn, teter_du_table
from glassjax.md.minimize import fire
from glassjax.sensitivity import elastic as el
from glassjax.sensitivity import implicit as im

from lj_fcc_reference import A0, EPS, RC, SIG, numpy_elastic_constants  # shared numpy reference


@pytest.fixture(scope="module")
def fcc():
    atoms = bulk("Ar", "fcc", a=A0, cubic=True).repeat(2)
    efn = lennard_jones_energy_fn(EPS, SIG, RC, shift="force")
    pos, cell = jnp.asarray(atoms.positions), jnp.asarray(atoms.cell.array)
    nl, _ = neighbors.allocate(pos, cell, RC, skin=0.5)
    return efn, pos, cell, nl


def test_fcc_lj_clamped_tensor_matches_numpy_lattice_sum(fcc):
    efn, pos, cell, nl = fcc
    c = np.asarray(el.elastic_tensor(efn, pos, cell, nl))
    c11, c12, c44 = numpy_elastic_constants()
    ref = np.zeros((6, 6))
    ref[:3, :3] = c12
    ref[np.arange(3), np.arange(3)] = c11
    ref[np.arange(3, 6), np.arange(3, 6)] = c44
    np.testing.assert_allclose(c, ref, atol=1e-5 * c11)  # cubic symmetry and the values
    # relaxed-ion == clamped-ion: every atom is an inversion centre (one atom per primitive cell)
    cr = np.asarray(el.elastic_tensor(efn, pos, cell, nl, relaxed=True))
    np.testing.assert_allclose(cr, c, atol=1e-9 * c11)
    np.testing.assert_allclose(np.asarray(el.elastic_tensor_fd(efn, pos, cell, nl, h=1e-5)), c, atol=1e-5 * c11)
    # cubic Voigt/Reuss closed forms
    m = el.isotropic_moduli(c)
    np.testing.assert_allclose([m["K_V"], m["K_R"]], (c11 + 2 * c12) / 3, rtol=1e-5)
    np.testing.assert_allclose(m["G_V"], (c11 - c12 + 3 * c44) / 5, rtol=1e-5)
    np.testing.assert_allclose(m["G_R"], 5 * (c11 - c12) * c44 / (4 * c44 + 3 * (c11 - c12)), rtol=1e-5)


def test_isotropic_moduli_closed_forms():
    lam, mu = 30.0, 20.0
    c = np.zeros((6, 6))
    c[:3, :3] = lam
    c[np.arange(3), np.arange(3)] = lam + 2 * mu
    c[np.arange(3, 6), np.arange(3, 6)] = mu
    m = el.isotropic_moduli(c)
    for k in ("K_V", "K_R", "K_H"):
        assert m[k] == pytest.approx(lam + 2 * mu / 3, rel=1e-12)
    for k in ("G_V", "G_R", "G_H"):
        assert m[k] == pytest.approx(mu, rel=1e-12)
    assert m["E"] == pytest.approx(mu * (3 * lam + 2 * mu) / (lam + mu), rel=1e-12)
    assert m["nu"] == pytest.approx(lam / (2 * (lam + mu)), rel=1e-12)


def test_voigt_conventions_round_trip():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3))
    e = 0.5 * (a + a.T)
    v = np.asarray(el.strain_to_voigt(e))
    np.testing.assert_allclose(v[3:], 2 * e[[1, 0, 0], [2, 2, 1]])  # engineering shears
    np.testing.assert_allclose(np.asarray(el.voigt_to_strain(v)), e)
    np.testing.assert_allclose(np.asarray(el.voigt_to_stress(el.stress_to_voigt(e))), e)


# ----------------------------------------------------------------------------- Teter glass

@pytest.fixture(scope="module")
def glass(test_data):
    """The 49-atom LB glass snapshot with Teter/Du (not a minimum: clamped-ion only)."""
    atoms = read(test_data / "md_models" / "lb_glass_start.extxyz")
    sym = atoms.get_chemical_symbols()
    table = teter_du_table(sym, composition={"Li2O": 3 / 11, "B2O3": 8 / 11}, rc_sr=6.0, rc_coul=6.0)
    efn = teter_du_energy_fn(sym, table)
    pos, cell = jnp.asarray(atoms.positions), jnp.asarray(atoms.cell.array)
    nl, _ = neighbors.allocate(pos, cell, 6.0, skin=0.5)
    return efn, pos, cell, nl


def test_glass_clamped_tensor_matches_finite_strain(glass):
    efn, pos, cell, nl = glass
    c = np.asarray(el.elastic_tensor(efn, pos, cell, nl))
    scale = np.max(np.abs(c))
    assert 50.0 < scale < 500.0  # GPa: an oxide glass
    # h small: the shifted-force cutoff leaves a curvature kink that a pair may cross
    fd = np.asarray(el.elastic_tensor_fd(efn, pos, cell, nl, h=1e-6))
    np.testing.assert_allclose(c, fd, atol=1e-6 * scale)
    with pytest.raises(SimulationError, match=r"not an energy minimum.*residual force.*fire"):
        el.elastic_tensor(efn, pos, cell, nl, relaxed=True)


@pytest.fixture(scope="module")
def quartz():
    """alpha-quartz with Teter/Du, cell and positions relaxed (non-centrosymmetric: internal relaxation)."""
    # P3_121: Si on 3a (x, 0, 1/3), O on 6c; four Si-O bonds of 1.605 and 1.614 Å
    q = crystal(["Si", "O"], basis=[(0.4697, 0.0, 1 / 3), (0.4135, 0.2669, 0.2142)], spacegroup=152,
                cellpar=[4.916, 4.916, 5.405, 90, 90, 120])
    sym = q.get_chemical_symbols()
    table = teter_du_table(sym, rc_sr=6.0, rc_coul=6.0)
    efn = teter_du_energy_fn(sym, table)
    pos, cell = jnp.asarray(q.positions), jnp.asarray(q.cell.array)
    nl, spec = neighbors.allocate(pos, cell, 6.0, skin=0.5)
    r = fire(efn, pos, cell, nl, spec, relax_cell=True, fmax=1e-6, max_steps=20000)
    assert r.converged
    nl, _ = neighbors.allocate(r.positions, r.cell, 6.0, skin=0.5)
    q.set_cell(np.asarray(r.cell), scale_atoms=False)
    q.positions = np.asarray(r.positions)
    q.calc = PotentialCalculator(lambda s: teter_du_energy_fn(s, table), cutoff=6.0, skin=0.5)
    return q, efn, r.positions, r.cell, nl


def test_quartz_clamped_and_relaxed_tensors_match_matscipy(quartz):
    from ase.optimize import BFGS
    from matscipy.elasticity import fit_elastic_constants

    q, efn, x, cell, nl = quartz
    assert q.get_chemical_formula() == "O6Si3"
    clamped = np.asarray(el.elastic_tensor(efn, x, cell, nl))
    relaxed = np.asarray(el.elastic_tensor(efn, x, cell, nl, relaxed=True))
    scale = np.max(np.abs(clamped))
    ms_c, _ = fit_elastic_constants(q, symmetry="triclinic", N_steps=3, delta=1e-4, verbose=False)
    np.testing.assert_allclose(clamped, ms_c * units.EV_PER_A3_TO_GPA, atol=1e-4 * scale)
    ms_r, _ = fit_elastic_constants(q, symmetry="triclinic", N_steps=3, delta=1e-3, verbose=False,
                                    optimizer=BFGS, fmax=1e-6, steps=1000)
    np.testing.assert_allclose(relaxed, ms_r * units.EV_PER_A3_TO_GPA, atol=1e-4 * scale)
    # the internal relaxation of quartz is large (no inversion centre on the atoms)
    assert np.max(np.abs(relaxed - clamped)) > 0.1 * scale
    # trigonal symmetry: C66 = (C11 - C12) / 2, C14 = -C24 = C56
    for c in (clamped, relaxed):
        assert c[5, 5] == pytest.approx((c[0, 0] - c[0, 1]) / 2, rel=1e-6)
        assert c[0, 3] == pytest.approx(-c[1, 3], rel=1e-6) and abs(c[0, 3]) == pytest.approx(abs(c[4, 5]), rel=1e-6)


def test_quartz_relaxed_tensor_matches_reminimised_finite_strain_and_cg(quartz):
    q, efn, x, cell, nl = quartz
    relaxed = np.asarray(el.elastic_tensor(efn, x, cell, nl, relaxed=True))
    scale = np.max(np.abs(relaxed))

    def relax(y, c, nl_):
        z, fmax = im.newton_polish(efn, y, c, nl_, steps=8, force_tol=1e-11)
        assert fmax < 1e-9
        return z

    x0 = relax(x, cell, nl)  # polish the FIRE minimum so the finite differences see no residual force
    fd = np.asarray(el.elastic_tensor_fd(efn, x0, cell, nl, h=1e-5, relax=relax))
    np.testing.assert_allclose(np.asarray(el.elastic_tensor(efn, x0, cell, nl, relaxed=True)), fd, atol=1e-6 * scale)
    np.testing.assert_allclose(relaxed, fd, atol=1e-4 * scale)  # FIRE's fmax 1e-6 eV/Å is close enough
    cg = np.asarray(el.elastic_tensor(efn, x, cell, nl, relaxed=True, method="cg"))
    np.testing.assert_allclose(cg, relaxed, atol=1e-8 * scale)
