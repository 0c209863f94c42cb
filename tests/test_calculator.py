"""GlassJaxCalculator under ASE: forces and stress against ASE's own finite differences,
energy against DeePMD-kit's reference, molecules, and errors instead of silent truncation."""

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

from glassjax.calculator import GlassJaxCalculator
from glassjax.errors import ModelError

TEST_DATA = Path(__file__).resolve().parent / "data"

REF = TEST_DATA / "deepmd_models"
needs_ref = pytest.mark.skipif(not (REF / "index.json").is_file(), reason="no DeePMD-kit reference data")


def _atoms(case):
    z = np.load(REF / case)
    return Atoms([str(s) for s in z["species"]], positions=z["positions"], cell=z["cell"], pbc=True), z


@pytest.fixture(scope="module")
def calc():
    return GlassJaxCalculator(REF / "lbs_tos_fitrdt.dp")


@needs_ref
def test_energy_forces_stress_match_deepmd_kit_and_ase_finite_differences(calc):
    atoms, z = _atoms("lbs_tos_fitrdt__lbs_triclinic.npz")
    atoms.calc = calc
    assert abs(atoms.get_potential_energy() - float(z["energy"])) < 1e-10 * len(atoms)
    assert np.max(np.abs(atoms.get_forces() - z["forces"])) < 1e-8
    stress = atoms.get_stress()  # Voigt xx yy zz yz xz xy, eV/Å^3, ASE sign
    s = -z["virial"] / atoms.get_volume()
    assert np.allclose(stress, [s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]], atol=1e-12)
    assert np.allclose(atoms.get_potential_energies(), z["atom_energy"], atol=1e-10)
    # ASE's finite differences of the energy
    some = [0, 7, 31, 57]
    num_f = calculate_numerical_forces(atoms, eps=1e-5, iatoms=some)
    assert np.max(np.abs(num_f - atoms.get_forces()[some])) < 1e-6
    num_s = calculate_numerical_stress(atoms, eps=1e-5)
    assert np.max(np.abs(num_s - atoms.get_stress())) < 1e-7


@needs_ref
def test_moving_atoms_reuses_or_rebuilds_the_list_correctly(calc):
    atoms, _ = _atoms("lbs_tos_fitrdt__lbs_cubic.npz")
    atoms.calc = calc
    atoms.get_potential_energy()
    rng = np.random.default_rng(0)
    for scale in (0.05, 0.8):  # within the skin (list reused), beyond it (rebuilt)
        atoms.positions += rng.normal(scale=scale, size=atoms.positions.shape)
        e = atoms.get_potential_energy()
        calc._nl = None  # force a freshly allocated list for the reference
        calc.reset()
        assert abs(e - atoms.get_potential_energy()) < 1e-10


@needs_ref
def test_molecule_without_cell(calc):
    rng = np.random.default_rng(1)
    pos = np.array([[0, 0, 0], [1.6, 0, 0], [0, 1.7, 0], [0.2, 0.3, 1.5]]) + rng.normal(scale=0.05, size=(4, 3))
    mol = Atoms("SiOOO", positions=pos)
    mol.calc = calc
    f = mol.get_forces()
    assert np.max(np.abs(calculate_numerical_forces(mol, eps=1e-5) - f)) < 1e-6
    assert np.allclose(f.sum(axis=0), 0.0, atol=1e-10)
    with pytest.raises(PropertyNotImplementedError):
        mol.get_stress()


@needs_ref
def test_errors_are_reported_not_ignored():
    atoms, _ = _atoms("lbs_pair_smallsel__lbs_small_cubic.npz")
    atoms.calc = GlassJaxCalculator(REF / "lbs_pair_smallsel.dp")
    with pytest.raises(ModelError, match="sel"):
        atoms.get_potential_energy()
    bad = Atoms("NaO", positions=[[0, 0, 0], [1.8, 0, 0]], cell=np.eye(3) * 9, pbc=True)
    bad.calc = GlassJaxCalculator(REF / "lbs_tos_fitrdt.dp")
    with pytest.raises(ModelError, match="Na"):
        bad.get_potential_energy()


def test_potential_calculator_wraps_the_classical_potential():
    """Any glassjax energy function as an ASE calculator: Teter/Du on a small LB glass,
    forces and stress against ASE's own finite differences, energy against the direct call."""
    import jax.numpy as jnp
    from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

    from glassjax import neighbors
    from glassjax.calculator import PotentialCalculator
    from glassjax.md.builder import build_glass
    from glassjax.md.classical import teter_du_energy_fn, teter_du_table

    atoms = build_glass("LB70", n_atoms=30, seed=5)
    atoms.rattle(0.05, seed=1)
    table = teter_du_table(atoms.get_chemical_symbols(), a_bo=14000.0)
    calc = PotentialCalculator(lambda s: teter_du_energy_fn(s, table), cutoff=table.cutoff, skin=0.5)
    atoms.calc = calc
    e = atoms.get_potential_energy()
    pos, cell = jnp.asarray(atoms.get_positions()), jnp.asarray(np.asarray(atoms.get_cell()[:]))
    nl, _ = neighbors.allocate(pos, cell, cutoff=table.cutoff, skin=0.0)
    assert e == pytest.approx(float(teter_du_energy_fn(atoms.get_chemical_symbols(), table)(pos, cell, nl)),
                              abs=1e-9)
    np.testing.assert_allclose(atoms.get_forces(), calculate_numerical_forces(atoms, eps=1e-4), atol=2e-5)
    np.testing.assert_allclose(atoms.get_stress(), calculate_numerical_stress(atoms, eps=1e-5), atol=2e-6)
