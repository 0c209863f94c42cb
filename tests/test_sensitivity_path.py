"""Strain derivatives along a compression path (glassjax.sensitivity.path).

Frames: a 49-atom Teter/Du lithium-borate glass compressed by hand (triaxial strains 0, -1 %,
-2 %, with small random displacements).  References: central finite strain
(glassjax.sensitivity.fd) for the smooth 4B fraction and the virial pressure, under triaxial
and uniaxial loading; and the 0 K clamped-ion relation dP/deps = -(1/3) sum_{i,j<=3} C_ij with
C from glassjax.sensitivity.elastic.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from ase.io import read

from glassjax import neighbors, units
from glassjax.potential import energy_forces_virial
from glassjax.sensitivity import fd
from glassjax.errors import ConfigError
from glassjax.md.classical import teter_du_energy_fn, teter_du_table
from glassjax.sensitivity import elastic as el
from glassjax.sensitivity import path as P

W, CNW = 0.1, 0.3  # smooth switch widths (Å, coordination units)


@pytest.fixture(scope="module")
def frames(test_data):
    atoms = read(test_data / "md_models" / "lb_glass_start.extxyz")
    sym = atoms.get_chemical_symbols()
    table = teter_du_table(sym, composition={"Li2O": 3 / 11, "B2O3": 8 / 11}, rc_sr=6.0, rc_coul=6.0)
    efn = teter_du_energy_fn(sym, table)
    tm = list(table.species)
    types = np.array([tm.index(s) for s in sym])
    rng = np.random.default_rng(5)
    pos, cells = [], []
    for e in (0.0, -0.01, -0.02):
        f = np.eye(3) * (1 + e)
        pos.append(atoms.positions @ f + rng.normal(0, 0.01, atoms.positions.shape))
        cells.append(atoms.cell.array @ f)
    pos, cells = np.array(pos), np.array(cells)
    nls, spec = P.path_neighbor_lists(pos, cells, cutoff=6.0, skin=0.5)
    return efn, pos, cells, types, tm, nls


@pytest.mark.parametrize("mode,axis", [("triaxial", 0), ("uniaxial", 2)])
def test_path_derivatives_match_finite_strain(frames, mode, axis):
    efn, pos, cells, types, tm, nls = frames
    kw = dict(mode=mode, axis=axis, width=W, cn_width=CNW, nls=nls)
    ad = P.path_strain_derivatives(efn, pos, cells, types, tm, **kw)
    # h small: the shifted-force Teter potential has a curvature kink at its cutoff that a pair may cross
    ref = P.path_strain_derivatives_fd(efn, pos, cells, types, tm, h=1e-6, **kw)
    for k in ("n4", "pressure"):
        np.testing.assert_allclose(ad[k], ref[k], rtol=1e-12)
    assert np.all(np.abs(ad["dn4_deps"]) > 1e-3)  # bonds near the switch: a real derivative
    np.testing.assert_allclose(ad["dn4_deps"], ref["dn4_deps"], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(ad["dpressure_deps"], ref["dpressure_deps"], rtol=1e-5)
    # compression raises the pressure: dP/deps < 0 on every frame
    assert np.all(np.asarray(ad["dpressure_deps"]) < 0)


def test_pressure_derivative_matches_elastic_tensor(frames):
    efn, pos, cells, types, tm, nls = frames
    ad = P.path_strain_derivatives(efn, pos, cells, types, tm, width=W, cn_width=CNW, nls=nls)
    nl0 = type(nls)(*[a[0] for a in nls])
    c = np.asarray(el.elastic_tensor(efn, jnp.asarray(pos[0]), jnp.asarray(cells[0]), nl0))
    assert float(ad["dpressure_deps"][0]) == pytest.approx(-np.sum(c[:3, :3]) / 3, rel=1e-9)
    # uniaxial along z: dP/deps = -(C13 + C23 + C33)/3
    adz = P.path_strain_derivatives(efn, pos, cells, types, tm, mode="uniaxial", axis=2, width=W, cn_width=CNW,
                                    nls=nls)
    assert float(adz["dpressure_deps"][0]) == pytest.approx(-np.sum(c[:3, 2]) / 3, rel=1e-9)


def test_bad_mode_raises(frames):
    efn, pos, cells, types, tm, nls = frames
    with pytest.raises(ConfigError, match="mode"):
        P.path_strain_derivatives(efn, pos, cells, types, tm, mode="shear", nls=nls)


def test_relaxed_path_derivative_matches_reminimised_fd_and_relaxed_tensor(frames):
    from glassjax.errors import SimulationError
    from glassjax.md.minimize import fire
    from glassjax.sensitivity import implicit as im

    efn, pos, cells, types, tm, nls = frames
    with pytest.raises(SimulationError, match="frame 0 is not an energy minimum"):
        P.path_strain_derivatives_relaxed(efn, pos[:1], cells[:1], types, tm, width=W, cn_width=CNW)
    nl0, spec = neighbors.allocate(jnp.asarray(pos[0]), jnp.asarray(cells[0]), 6.0, skin=0.5)
    r = fire(efn, jnp.asarray(pos[0]), jnp.asarray(cells[0]), nl0, spec, fmax=1e-4, max_steps=20000)
    x, fmax = im.newton_polish(efn, r.positions, r.cell, r.nl)
    assert fmax < 1e-9
    cell = jnp.asarray(cells[0])
    nls1, _ = P.path_neighbor_lists(x[None], cell[None], cutoff=6.0, skin=0.5)
    nl = type(nls1)(*[a[0] for a in nls1])
    rel = P.path_strain_derivatives_relaxed(efn, x, cell, types, tm, width=W, cn_width=CNW, nls=nls1)
    aff = P.path_strain_derivatives(efn, x, cell, types, tm, width=W, cn_width=CNW, nls=nls1)
    assert float(rel["dpressure_deps"][0]) > float(aff["dpressure_deps"][0])  # relaxation softens

    # finite strain, each point re-minimised at the strained cell (Newton, max |F| < 1e-9 eV/Å)
    from glassjax.analysis import bonds
    from glassjax.analysis.coordination import smooth_boron_n4
    sp = bonds.SpeciesIndex.from_type_map(tm)
    cut = jnp.asarray(bonds.cutoff_matrix(tm))

    def relaxed_values(e):
        f = jnp.eye(3) * (1 + e)
        y, fm = im.newton_polish(efn, x @ f, cell @ f, nl, steps=8, force_tol=1e-11)
        assert fm < 1e-9
        n4 = smooth_boron_n4(y, cell @ f, jnp.asarray(types), nl, cut, sp, width=W, cn_width=CNW)
        _, _, w = energy_forces_virial(efn, y, cell @ f, nl)
        return jnp.stack([n4, jnp.trace(w) / (3 * jnp.linalg.det(cell @ f)) * units.EV_PER_A3_TO_GPA])

    ref = np.asarray(fd.central_difference(relaxed_values, 0.0, h=1e-6))
    assert abs(float(rel["dn4_deps"][0])) > 1e-3
    assert float(rel["dn4_deps"][0]) == pytest.approx(ref[0], rel=1e-4)
    assert float(rel["dpressure_deps"][0]) == pytest.approx(ref[1], rel=1e-5)
