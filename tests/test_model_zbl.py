"""DP + ZBL models (DeePMD-kit's "zbl" model type): the ZBL formula, the pair-table spline,
the switching weight, wrapping a trained model, .dp round trip and the CLI.

Parity with DeePMD-kit 3.2.0 itself (its own DP+ZBL model and outputs on structures with
close contacts) is tested in test_model_zbl_parity.py.
"""

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from ase import units

from glassjax.errors import ModelError
from glassjax.model import DeepPot, load_model, save_checkpoint, save_dp
from glassjax.model import pairtab, zbl

REF = Path(__file__).resolve().parent / "data" / "deepmd_models"
BASE = REF / "lbs_tos_rdt.dp"            # a small DeePMD-kit-written se_e2_a (rcut 5 Å, Li B Si O)
STRUCT = REF / "lbs_tos_rdt__lbs_small_cubic.npz"


@pytest.fixture(scope="module")
def base():
    model, v = load_model(BASE, dtype="float64")
    z = np.load(STRUCT)
    types = model.types_from_species([str(s) for s in z["species"]])
    return model, v, np.array(z["positions"]), np.array(z["cell"]), types


@pytest.fixture(scope="module")
def wrapped(base):
    model, v, pos, cell, types = base
    cfg, v2 = pairtab.add_pair_table(model.config, v, zbl.zbl_table(model.type_map), 0.7, 1.0)
    return DeepPot(cfg, "float64"), v2


def _move_close(pos, cell, i, j, d):
    """Positions with atom j put at distance d from atom i along their minimum-image line."""
    inv = np.linalg.inv(cell)
    vec = pos[j] - pos[i]
    vec -= np.round(vec @ inv) @ cell
    out = pos.copy()
    out[j] = pos[i] + vec / np.linalg.norm(vec) * d
    return out


# -- the ZBL pair energy --------------------------------------------------------------------

def test_zbl_constants_and_bare_coulomb_limit():
    # e^2/(4 pi eps0) = Hartree x Bohr; screening length 0.8854 a_0 (ZBL 1985)
    assert zbl.COULOMB == pytest.approx(units.Ha * units.Bohr, rel=1e-6)
    assert zbl.SCREENING_LENGTH == pytest.approx(0.8854 * units.Bohr, rel=1e-4)
    assert sum(zbl.PHI_C) == pytest.approx(1.0, abs=1e-12)     # phi(0) = 1: bare nuclei at r -> 0
    for z1, z2 in [(3, 8), (5, 8), (14, 8), (3, 3)]:
        r = 1e-6
        assert r * zbl.zbl_energy(r, z1, z2) / (zbl.COULOMB * z1 * z2) == pytest.approx(1.0, abs=1e-4)
    # screened: far below the bare Coulomb energy at 1 Å, and monotonically repulsive
    r = np.linspace(0.2, 2.0, 50)
    v = zbl.zbl_energy(r, 5, 8)
    assert np.all(np.diff(v) < 0) and v[-1] > 0
    assert zbl.zbl_energy(1.0, 5, 8) < 0.1 * zbl.COULOMB * 40


def test_zbl_table_columns_and_cutoff():
    tm = ["Li", "B", "Si", "O"]
    rows = zbl.zbl_table(tm, rmin=0.1, rmax=3.0, hh=0.01, r_on=1.5, r_off=2.5)
    assert rows.shape == (291, 11)
    r = rows[:, 0]
    # column order 00, 01, 02, 03, 11, 12, 13, 22, 23, 33: B-O is (1, 3) -> column 6
    k = np.searchsorted(r, 1.0)
    assert rows[k, 1 + 6] == pytest.approx(zbl.zbl_energy(r[k], 5, 8), rel=1e-12)
    assert rows[k, 1 + 0] == pytest.approx(zbl.zbl_energy(r[k], 3, 3), rel=1e-12)
    assert np.all(rows[r >= 2.5, 1:] == 0.0)
    with pytest.raises(Exception, match="r_off"):
        zbl.zbl_table(tm, r_on=2.0, r_off=1.5)


# -- spline table and weight ---------------------------------------------------------------

def test_spline_reproduces_a_smooth_function_and_zero_beyond():
    r = np.round(0.5 + 0.01 * np.arange(301), 10)                       # 0.5 .. 3.5 Å
    f = lambda x, k: (k + 1.0) * np.exp(-2.0 * x) * (x < 3.0) * (3.0 - np.minimum(x, 3.0)) ** 3
    rows = np.stack([r] + [f(r, k) for k in range(3)], axis=1)          # 2 types: 00, 01, 11
    cfg, consts = pairtab.make_table(rows, rcut=4.0, sw_rmin=0.5, sw_rmax=1.0)
    assert cfg.nspline == consts["pairtab_vdata"].shape[0] - 1 and consts["pairtab_vdata"][-1, 0] >= 4.0 - 1e-9
    x = np.array([[0.733, 1.2345, 2.987, 3.2, 4.5]])
    mask = np.ones_like(x, bool)
    for (ti, tj, col) in [(0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 2)]:
        e = pairtab.pair_energies(jnp.asarray(consts["pairtab_data"]), cfg, jnp.array([ti]), jnp.array([tj]),
                                  jnp.asarray(x), jnp.asarray(mask))
        np.testing.assert_allclose(np.asarray(e)[0, :3], f(x[0, :3], col), rtol=1e-6, atol=1e-9)
        assert abs(float(e[0, 3])) < 1e-12 and float(e[0, 4]) == 0.0    # table zero; beyond rcut
    e = pairtab.pair_energies(jnp.asarray(consts["pairtab_data"]), cfg, jnp.array([0]), jnp.array([0]),
                              jnp.asarray(x), jnp.zeros_like(jnp.asarray(mask)))
    assert np.all(np.asarray(e) == 0.0)                                 # masked slots


def test_table_that_stops_short_is_refused(tmp_path):
    rows = zbl.zbl_table(["B", "O"], rmax=2.0, r_on=1.0, r_off=2.0)
    rows[:, 1:] += 1e-3                                                 # never reaches zero
    p = tmp_path / "tab.txt"
    np.savetxt(p, rows)
    with pytest.raises(ModelError, match="tab.txt.*extend the table"):
        pairtab.read_table(p, rcut=5.0)
    np.savetxt(p, rows[:, :3])                                          # 2 energy columns: not T(T+1)/2
    with pytest.raises(ModelError, match="T\\(T\\+1\\)/2"):
        pairtab.read_table(p, rcut=5.0)


def test_softmin_and_weight_follow_the_formula():
    rng = np.random.default_rng(0)
    r = rng.uniform(0.6, 5.0, size=(7, 30))
    mask = rng.random((7, 30)) < 0.8
    mask[3] = False
    alpha = 0.1
    sig = np.asarray(pairtab.softmin_distance(jnp.asarray(r), jnp.asarray(mask), alpha))
    for i in range(7):
        rr = r[i][mask[i]]
        want = 0.0 if rr.size == 0 else np.sum(rr * np.exp(-rr / alpha)) / np.sum(np.exp(-rr / alpha))
        assert sig[i] == pytest.approx(want, rel=1e-12, abs=1e-14)
    s = jnp.array([0.0, 0.5, 0.7, 0.85, 0.99999, 1.0, 3.0])
    w = np.asarray(pairtab.zbl_weight(s, 0.7, 1.0))
    np.testing.assert_allclose(w, [0.0, 1.0, 1.0, 0.5, 0.0, 0.0, 0.0], atol=1e-9)


# -- wrapping a trained model -------------------------------------------------------------

def test_wrapped_model_is_unchanged_above_sw_rmax(base, wrapped):
    model, v, pos, cell, types = base
    m2, v2 = wrapped
    e1, f1, w1 = model.energy_forces_virial(v, pos, cell, types)
    e2, f2, w2 = m2.energy_forces_virial(v2, pos, cell, types)
    # the same numbers up to round-off: the two programs differ (the wrapped one adds an exact 0),
    # and XLA may order sums differently in each; a ZBL term that leaked in would be >> 1e-10
    assert float(e1) == pytest.approx(float(e2), rel=0, abs=1e-10)
    np.testing.assert_allclose(np.asarray(f1), np.asarray(f2), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(w1), np.asarray(w2), rtol=0, atol=1e-10)


def test_close_contact_wall_and_forces_match_finite_differences(base, wrapped):
    model, v, pos, cell, types = base
    m2, v2 = wrapped
    i = int(np.flatnonzero(types == 1)[0])                              # a B atom
    j = int(np.flatnonzero(types == 3)[0])                              # an O atom
    e_far = float(m2.energy(v2, _move_close(pos, cell, i, j, 1.2), cell, types))
    e_dp = [float(model.energy(v, _move_close(pos, cell, i, j, d), cell, types)) for d in (0.9, 0.6)]
    e_zb = [float(m2.energy(v2, _move_close(pos, cell, i, j, d), cell, types)) for d in (0.9, 0.6)]
    # at 0.6 Å both atoms are on the pair table alone: E_i = E_pair_i + out_bias, far above the DP
    assert e_zb[1] - e_far > 0.5 * zbl.zbl_energy(0.6, 5, 8)
    assert e_zb[1] > e_zb[0] > e_far and e_zb[1] - e_dp[1] > 20.0
    # forces = -dE/dx inside the switching region (0.7 < sigma < 1.0), central differences
    x = _move_close(pos, cell, i, j, 0.85)
    _, f, w = m2.energy_forces_virial(v2, x, cell, types)
    h = 1e-5
    for a in (i, j):
        for c in range(3):
            xp, xm = x.copy(), x.copy()
            xp[a, c] += h
            xm[a, c] -= h
            fd = -(float(m2.energy(v2, xp, cell, types)) - float(m2.energy(v2, xm, cell, types))) / (2 * h)
            assert float(f[a, c]) == pytest.approx(fd, rel=1e-6, abs=1e-6)
    # virial = -dE/d(strain), central differences of a homogeneous deformation
    eps = 1e-6
    for (a, b) in [(0, 0), (1, 2)]:
        d = np.zeros((3, 3))
        d[a, b] = eps
        ep = float(m2.energy(v2, x @ (np.eye(3) + d), cell @ (np.eye(3) + d), types))
        em = float(m2.energy(v2, x @ (np.eye(3) - d), cell @ (np.eye(3) - d), types))
        assert float(w[a, b]) == pytest.approx(-(ep - em) / (2 * eps), rel=1e-6, abs=1e-6)


def test_dp_and_checkpoint_round_trip(base, wrapped, tmp_path):
    model, v, pos, cell, types = base
    m2, v2 = wrapped
    i, j = int(np.flatnonzero(types == 0)[0]), int(np.flatnonzero(types == 3)[1])
    x = _move_close(pos, cell, i, j, 0.8)
    e0, f0, _ = m2.energy_forces_virial(v2, x, cell, types)
    save_dp(tmp_path / "m.dp", m2, v2)
    save_checkpoint(tmp_path / "m.h5", m2, v2)
    for path in ("m.dp", "m.h5"):
        m3, v3 = load_model(tmp_path / path, dtype="float64")
        assert m3.config.zbl == m2.config.zbl
        e, f, _ = m3.energy_forces_virial(v3, x, cell, types)
        assert abs(float(e) - float(e0)) < 1e-10 and np.max(np.abs(np.asarray(f) - np.asarray(f0))) < 1e-10
    with pytest.raises(ModelError, match="already has a pair table"):
        pairtab.add_pair_table(m2.config, v2, zbl.zbl_table(m2.type_map), 0.7, 1.0)


def test_cli_add_zbl(base, tmp_path, capsys):
    from glassjax.cli import main

    model, v, pos, cell, types = base
    out = tmp_path / "zbl.dp"
    assert main(["model", "add-zbl", str(BASE), str(out), "--sw-rmin", "0.6", "--sw-rmax", "0.9"]) == 0
    m2, v2 = load_model(out, dtype="float64")
    assert (m2.config.zbl.sw_rmin, m2.config.zbl.sw_rmax) == (0.6, 0.9)
    assert float(m2.energy(v2, pos, cell, types)) == float(model.energy(v, pos, cell, types))
    assert main(["model", "info", str(out)]) == 0
    assert "pair table" in capsys.readouterr().out
    bad = tmp_path / "bad.txt"
    np.savetxt(bad, zbl.zbl_table(["B", "O"]))                          # 2 types, the model has 4
    assert main(["model", "add-zbl", str(BASE), str(tmp_path / "x.dp"), "--table", str(bad)]) != 0
    assert "bad.txt" in capsys.readouterr().err and not (tmp_path / "x.dp").exists()
