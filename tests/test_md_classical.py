"""Teter/Du potential: parameters against the literature, energy against an independent numpy
implementation (explicit loops over pairs and periodic images), forces and virial against
finite differences, Coulomb against the NaCl Madelung constant."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.constants as _sc
from scipy.special import erfc as np_erfc

from glassjax import neighbors
from glassjax.errors import ConfigError
from glassjax.md.builder import build_glass, parse_composition
from glassjax.md.classical import (COULOMB_K, deng_du_a_bo, dell_bray_n4, pair_energy, repulsive_wall,
                                   teter_du_energy_fn, teter_du_table)
from glassjax.potential import energy_forces_virial

# e^2/(4 pi eps0) in eV Å from scipy's CODATA constants (ASE's table differs in the 8th digit)
K_COUL = _sc.e / (4 * math.pi * _sc.epsilon_0 * 1e-10)


def test_coulomb_constant():
    assert COULOMB_K == pytest.approx(K_COUL, rel=1e-7)


@pytest.mark.parametrize("pair, lit", [
    # Du's tabulated short-range walls (B, n, D, r0): Deng & Du, J. Am. Ceram. Soc. 102, 2482 (2019)
    ((13702.905, 0.193817, 54.681), (28.950, 3.932, -3.059, 1.168)),   # Si-O
    ((2029.2204, 0.343645, 192.58), (46.462, 3.430, -0.32605, 1.906)),  # O-O
    ((4383.7555, 0.243838, 30.70), (48.264, 2.893, -4.730, 1.172)),     # Na-O (shows the recipe is general)
])
def test_repulsive_wall_reproduces_literature(pair, lit):
    b, n, d, r0 = repulsive_wall(*pair)
    assert r0 == pytest.approx(lit[3], abs=2e-3)
    assert n == pytest.approx(lit[1], rel=3e-3)
    assert b == pytest.approx(lit[0], rel=5e-3)
    assert d == pytest.approx(lit[2], rel=1e-2)


def test_a_bo_binary_formula_and_continuity():
    for R in np.linspace(0.0, 0.5, 11):
        assert deng_du_a_bo(R) == pytest.approx(11900 + 8700 * R * (1 - R), rel=1e-12)
    for K in (0.0, 0.5, 2.0):
        r_max = 0.5 + K / 16
        assert deng_du_a_bo(r_max - 1e-9, K) == pytest.approx(deng_du_a_bo(r_max + 1e-9, K), rel=1e-6)
    # Dell-Bray N4: continuous at its break points and N4 = R at low R
    for K in (0.0, 0.5, 4.0):
        for r_break in (0.5 + K / 16, 0.5 + K / 4):
            assert dell_bray_n4(r_break - 1e-9, K) == pytest.approx(dell_bray_n4(r_break + 1e-9, K), abs=1e-6)
        assert dell_bray_n4(2.0 + K + 0.1, K) == 0.0
    assert dell_bray_n4(0.3, 1.0) == pytest.approx(0.3)
    with pytest.raises(ConfigError):
        deng_du_a_bo(0.3, n4=1.5)
    with pytest.raises(ConfigError, match="composition"):
        teter_du_table(["B", "O"])
    with pytest.raises(ConfigError, match="Na"):
        teter_du_table(["Na", "O"])


def test_pair_energy_smooth_at_wall_and_cutoff():
    table = teter_du_table(["Si", "B", "Li", "O"], composition=parse_composition("LBS-20-40-40"))
    sp = table.species
    du = jax.grad(lambda r, i, j: pair_energy(r, i, j, table))
    for a, b in (("Si", "O"), ("O", "O"), ("B", "O")):
        i, j = sp.index(a), sp.index(b)
        r0 = float(table.r0[i, j])
        assert r0 > 0.9
        lo, hi = r0 - 1e-7, r0 + 1e-7
        assert float(pair_energy(jnp.array(lo), i, j, table)) == pytest.approx(float(pair_energy(jnp.array(hi), i, j, table)), abs=1e-5)
        assert float(du(lo, i, j)) == pytest.approx(float(du(hi, i, j)), rel=1e-4, abs=1e-4)
        # the short-range part (charges off) keeps rising towards r -> 0 below r0, where the
        # plain Buckingham term would turn over and dive (the "Buckingham catastrophe")
        neutral = dataclasses.replace(table, charges=np.zeros(len(sp)))
        rs = jnp.linspace(0.3, r0, 50)
        assert np.all(np.diff(np.asarray(pair_energy(rs, i, j, neutral))) < 0)
        A, rho, C = (float(getattr(table, k)[i, j]) for k in ("A", "rho", "C"))
        assert A * math.exp(-0.3 / rho) - C / 0.3 ** 6 < 0 < float(pair_energy(jnp.array(0.3), i, j, neutral))
    for a, b in (("Li", "O"), ("Si", "Si"), ("O", "O")):
        i, j = sp.index(a), sp.index(b)
        rc = 8.0
        assert abs(float(pair_energy(jnp.array(rc - 1e-6), i, j, table))) < 1e-5
        assert abs(float(du(rc - 1e-6, i, j))) < 1e-5
        assert float(pair_energy(jnp.array(rc + 1e-3), i, j, table)) == 0.0


# ----------------------------------------------------------------- independent numpy reference
LIT_CHARGES = {"O": -1.2, "Si": 2.4, "B": 1.8, "Li": 0.6}


def numpy_teter_energy(symbols, positions, cell, a_bo, rc=8.0, alpha=0.25, k_coul=K_COUL):
    """Plain loops over i < j and image vectors; Buckingham (shifted force) + DSF + self term."""
    buck = {frozenset(("O",)): (2029.2204, 0.343645, 192.58), frozenset(("Si", "O")): (13702.905, 0.193817, 54.681),
            frozenset(("Li", "O")): (41051.938, 0.151160, 0.0), frozenset(("B", "O")): (a_bo, 0.171271, 28.5)}
    s = positions @ np.linalg.inv(cell)
    erfc_c = np_erfc(alpha * rc)
    slope = erfc_c / rc ** 2 + 2 * alpha / math.sqrt(math.pi) * math.exp(-(alpha * rc) ** 2) / rc
    q = np.array([LIT_CHARGES[x] for x in symbols])
    energy = -k_coul * np.sum(q * q) * (erfc_c / (2 * rc) + alpha / math.sqrt(math.pi))
    imgs = np.array([(a, b, c) for a in range(-2, 3) for b in range(-2, 3) for c in range(-2, 3)], float)
    n = len(symbols)
    for i in range(n):
        for j in range(i, n):
            vec = (s[j] - s[i] + imgs) @ cell
            r = np.linalg.norm(vec, axis=1)
            keep = (r < rc) & (r > 1e-9)
            if i == j:  # an atom and its own images: each pair of images counted once -> 1/2
                weight = 0.5
            else:
                weight = 1.0
            r = r[keep]
            e = k_coul * q[i] * q[j] * (np_erfc(alpha * r) / r - erfc_c / rc + slope * (r - rc))
            key = frozenset((symbols[i], symbols[j]))
            if key in buck:
                A, rho, C = buck[key]
                u = A * np.exp(-r / rho) - C / r ** 6
                u_c = A * math.exp(-rc / rho) - C / rc ** 6
                du_c = -A / rho * math.exp(-rc / rho) + 6 * C / rc ** 7
                e = e + u - u_c - (r - rc) * du_c
            energy += weight * np.sum(e)
    return energy


@pytest.fixture(scope="module")
def small_glass():
    atoms = build_glass("LBS-20-40-40", n_atoms=60, seed=3)  # ~9 Å box: the 8 Å cutoff spans images
    table = teter_du_table(atoms.get_chemical_symbols(), a_bo=12345.0)
    efn = teter_du_energy_fn(atoms.get_chemical_symbols(), table)
    pos = jnp.asarray(atoms.positions)
    cell = jnp.asarray(atoms.cell.array)
    nl, spec = neighbors.allocate(pos, cell, table.cutoff, skin=0.5)
    assert not bool(nl.overflow)
    return atoms, efn, pos, cell, nl


def test_energy_matches_numpy(small_glass):
    atoms, efn, pos, cell, nl = small_glass
    assert atoms.cell.array[0, 0] < 16.0
    ref = numpy_teter_energy(atoms.get_chemical_symbols(), atoms.positions, atoms.cell.array, a_bo=12345.0,
                             k_coul=COULOMB_K)  # same constant (checked separately to 1e-7)
    got = float(efn(pos, cell, nl))
    assert got == pytest.approx(ref, rel=1e-11)
    # random start is far from any wall: the comparison covers the Buckingham branch fully
    d = atoms.get_all_distances(mic=True)
    assert d[d > 0].min() > 1.5


def test_forces_and_virial_finite_difference(small_glass):
    atoms, efn, pos, cell, nl = small_glass
    e, f, w = jax.jit(lambda x, c: energy_forces_virial(efn, x, c, nl))(pos, cell)
    h = 1e-5
    rng = np.random.default_rng(0)
    for _ in range(6):
        i, k = int(rng.integers(len(atoms))), int(rng.integers(3))
        dp = jnp.zeros_like(pos).at[i, k].set(h)
        fd = -(float(efn(pos + dp, cell, nl)) - float(efn(pos - dp, cell, nl))) / (2 * h)
        assert float(f[i, k]) == pytest.approx(fd, rel=1e-5, abs=1e-5)
    # virial = -dE/d(strain), by central differences of homogeneous deformations
    for a in range(3):
        for b in range(3):
            eps = np.zeros((3, 3))
            eps[a, b] = h
            ep = float(efn(pos @ (np.eye(3) + eps), cell @ (np.eye(3) + eps), nl))
            em = float(efn(pos @ (np.eye(3) - eps), cell @ (np.eye(3) - eps), nl))
            assert float(w[a, b]) == pytest.approx(-(ep - em) / (2 * h), rel=1e-5, abs=1e-4)
    assert np.allclose(np.sum(np.asarray(f), axis=0), 0.0, atol=1e-8)  # Newton's third law


def test_dsf_coulomb_madelung():
    # Rock salt of +1/-1 charges, nearest-neighbour distance a: E per ion pair = -M k / a with
    # the Madelung constant M = 1.747565.  DSF (alpha 0.25, rc 8) approximates Ewald to ~1 %.
    a = 2.5
    fcc = np.array([[0, 0, 0], [1, 1, 0], [1, 0, 1], [0, 1, 1]], float) * a
    cations = [fcc + np.array([i, j, k]) * 2 * a for i in range(2) for j in range(2) for k in range(2)]
    cations = np.concatenate(cations)
    anions = cations + np.array([a, 0, 0])
    pos = np.concatenate([cations, anions])
    symbols = ["Li"] * len(cations) + ["O"] * len(anions)
    table = teter_du_table(["Li", "O"])
    z = np.zeros((2, 2))
    table = dataclasses.replace(table, charges=np.array([1.0, -1.0]), A=z, C=z, B=z, D=z, r0=z)
    efn = teter_du_energy_fn(symbols, table)
    cell = np.eye(3) * 4 * a
    nl, _ = neighbors.allocate(jnp.asarray(pos), cell, 8.0, 0.5)
    per_pair = float(efn(jnp.asarray(pos), jnp.asarray(cell), nl)) / len(cations)
    assert per_pair == pytest.approx(-1.747565 * K_COUL / a, rel=0.01)


def test_teter_glass_minimise_then_nve(small_glass):
    """The pre-melt path: FIRE-minimise a random glass, then hot NVE conserves energy."""
    import jax.random

    from glassjax.md import integrators as I
    from glassjax.md.minimize import fire
    from glassjax.md.runner import simulate

    atoms, efn, pos, cell, nl = small_glass
    spec = neighbors.allocate(pos, cell, 8.0, skin=0.5)[1]
    res = fire(efn, pos, cell, nl, spec, fmax=0.1, max_steps=400)
    assert float(res.energy) < float(efn(pos, cell, nl)) - 0.1 * len(atoms)  # a real descent
    state = I.init_state(efn, res.positions, res.cell, atoms.get_masses(), res.nl,
                         key=jax.random.PRNGKey(0), temperature=1500.0)
    state, _, th = simulate(efn, state, res.spec, I.nve(0.0005), np.zeros(1000), chunk=500, every=10,
                            progress=False, min_distance=0.8)
    e = th["conserved"]
    assert np.std(e) < 0.01 * np.std(th["kinetic_energy"])
    assert abs(e[-1] - e[0]) / len(atoms) / 0.5 < 1e-4  # eV/atom/ps over 0.5 ps at 1500 K
