"""Parity with DeePMD-kit 3.2.0's own DP + ZBL model (tests/data/deepmd_models, lbs_zbl*):
energies, per-atom energies, forces, virials and ZBL weights on structures with atoms
0.55-1.25 Å apart (every weight regime), and the pair-table spline and ZBL formula.

The reference follows DeePMD-kit's numpy ("dpmodel") backend, the one that defines the
.dp format (see the README there: 3.2.0 guards DP+ZBL to mixed-type descriptors, the
generator lifts that guard in its own process; the PyTorch backend would add the
sub-models' own out_bias, which the file sets non-zero on purpose).
"""

import json
from pathlib import Path

import numpy as np
import pytest

from glassjax.model import load_model, pairtab, zbl
from glassjax.model.dpfile import read_dp_dict

REF = Path(__file__).resolve().parent / "data" / "deepmd_models"
INDEX = json.loads((REF / "index_zbl.json").read_text())
CASES = INDEX["cases"]


@pytest.fixture(scope="module")
def model():
    return load_model(REF / "lbs_zbl.dp", dtype="float64")


@pytest.mark.parametrize("case", CASES, ids=[c["structure"] for c in CASES])
def test_matches_deepmd_kit_dp_zbl(model, case):
    m, v = model
    z = np.load(REF / case["file"])
    types = m.types_from_species([str(s) for s in z["species"]])
    np.testing.assert_array_equal(types, z["atype"])
    e, f, w, aux = m.energy_forces_virial(v, z["positions"], z["cell"], types, with_aux=True)
    n = len(types)
    assert not bool(aux["overflow"])
    assert abs(float(e) - float(z["energy"])) / n <= 1e-10
    assert np.max(np.abs(np.asarray(aux["atom_energy"]) - z["atom_energy"])) <= 1e-10
    assert np.max(np.abs(np.asarray(f) - z["forces"])) <= 1e-8
    assert np.max(np.abs(np.asarray(w) - z["virial"])) <= 1e-8
    # the weights themselves (DeePMD-kit's zbl_weight), from the same sections
    import jax.numpy as jnp

    sec = m.sections(jnp.asarray(z["positions"]), jnp.asarray(z["cell"]), jnp.asarray(types))
    from glassjax.model import nlist as dpnl

    rij = dpnl.section_pair_vectors(jnp.asarray(z["positions"]), jnp.asarray(z["cell"]), sec)
    r = jnp.sqrt(jnp.sum(jnp.where(sec.valid[..., None], rij, 1.0) ** 2, axis=-1))
    zc = m.config.zbl
    wts = pairtab.zbl_weight(pairtab.softmin_distance(r, sec.valid, zc.smin_alpha), zc.sw_rmin, zc.sw_rmax)
    np.testing.assert_allclose(np.asarray(wts), z["zbl_weight"], atol=1e-12)


def test_all_weight_regimes_are_covered():
    w = np.concatenate([np.load(REF / c["file"])["zbl_weight"] for c in CASES])
    assert np.any(w == 1.0) and np.any((w > 0) & (w < 1)) and np.any(w == 0.0)


def test_spline_and_zbl_table_match_deepmd_kit():
    m = read_dp_dict(REF / "lbs_zbl.dp")["model"]
    tab = m["models"][1]["tab"]
    rcut = float(m["models"][1]["rcut"])
    # glassjax's spline from the text table == the coefficients DeePMD-kit stored in the .dp
    cfg, consts = pairtab.make_table(pairtab.read_table(REF / "zbl_table.txt", rcut), rcut, 0.8, 1.3)
    ref = np.asarray(tab["@variables"]["tab_data"]).reshape(consts["pairtab_data"].shape)
    np.testing.assert_allclose(consts["pairtab_data"], ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    np.testing.assert_allclose([cfg.rmin, cfg.hh, cfg.nspline, 4], np.asarray(tab["@variables"]["tab_info"]),
                               rtol=1e-15)
    # glassjax's ZBL formula == the reference generator's, written independently
    rows = np.loadtxt(REF / "zbl_table.txt")
    ours = zbl.zbl_table(["Li", "B", "Si", "O"], rmin=rows[0, 0], rmax=rows[-1, 0], hh=0.01, r_on=1.5, r_off=2.5)
    np.testing.assert_allclose(ours, rows, rtol=1e-9, atol=1e-12)
