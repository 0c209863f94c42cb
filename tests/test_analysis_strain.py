"""Local deformation gradient (2024 paper, Eqs. 1-4) against independent references."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.neighborlist import neighbor_list

from glassjax.analysis import strain


def _random_glass(rng, n=48, a=8.0, tilt=True):
    cell = np.diag([a, a * 1.05, a * 0.95])
    if tilt:
        cell[1, 0] = 0.8
        cell[2, 0] = -0.5
        cell[2, 1] = 0.6
    pos = rng.uniform(0, 1, (n, 3)) @ cell
    species = np.array((["B", "O", "O", "Li"] * n)[:n])
    return pos, cell, species


def _weighted_lstsq_reference(ref_pos, ref_cell, cur_pos, cur_cell, cutoff, weight_fn, support):
    """Independent path: ASE neighbour list (i, j, shift) on the reference frame, the same
    (j, shift) pairs in the current frame via fractional coordinates, then a weighted
    least-squares fit of r = F R per atom with numpy's lstsq."""
    atoms = Atoms(positions=ref_pos, cell=ref_cell, pbc=True)
    i, j, S = neighbor_list("ijS", atoms, cutoff)
    s0 = np.linalg.solve(ref_cell.T, ref_pos.T).T
    s1 = np.linalg.solve(cur_cell.T, cur_pos.T).T
    R = (s0[j] + S - s0[i]) @ ref_cell
    # same image in the current frame; atoms may have been re-wrapped by whole cells
    jump = (s1[j] - s1[i]) - (s0[j] - s0[i])
    r = (s0[j] + S - s0[i] + jump - np.round(jump)) @ cur_cell
    F = np.zeros((len(ref_pos), 3, 3))
    for a in range(len(ref_pos)):
        sel = (i == a) & support[j]
        w = np.sqrt(weight_fn(np.linalg.norm(R[sel], axis=1)))
        X, *_ = np.linalg.lstsq(R[sel] * w[:, None], r[sel] * w[:, None], rcond=None)
        F[a] = X.T
    return F


def test_affine_deformation_recovered_exactly_small_triclinic_cell():
    # cell ~8 Å, cutoff 2.5 h = 5 Å > half the cell: several images of a neighbour count;
    # 5 frames in chunks of 2 (the last chunk is padded)
    rng = np.random.default_rng(0)
    pos, cell, species = _random_glass(rng)
    Fs = [np.eye(3) + 0.08 * rng.normal(size=(3, 3))] + [np.diag([1 - e, 1 + e / 2, 1 + e / 2])
                                                         for e in np.linspace(0.01, 0.05, 4)]
    P, C = [], []
    for Fapp in Fs:
        cur_cell = cell @ Fapp.T
        s = np.linalg.solve(cur_cell.T, (pos @ Fapp.T).T).T
        P.append((s - np.floor(s)) @ cur_cell)  # wrapped into the deformed cell, as MD output would be
        C.append(cur_cell)
    F = strain.deformation_gradient_trajectory(pos, cell, np.stack(P), np.stack(C), h=2.0, chunk=2,
                                               support=species != "Li")
    assert F.shape == (5, len(pos), 3, 3)
    for f, Fapp in enumerate(Fs):
        np.testing.assert_allclose(F[f], np.broadcast_to(Fapp, F[f].shape), atol=1e-10)
    eps = np.asarray(strain.local_strain(F))
    np.testing.assert_allclose(eps[0], np.broadcast_to(np.diag(Fs[0]) - 1, eps[0].shape), atol=1e-10)


def test_gaussian_weights_li_excluded_match_weighted_lstsq():
    rng = np.random.default_rng(1)
    pos, cell, species = _random_glass(rng, n=40)
    Fapp = np.array([[0.97, 0.02, 0.0], [0.0, 1.01, 0.01], [0.0, 0.0, 1.02]])
    cur = pos @ Fapp.T + 0.15 * rng.normal(size=pos.shape)  # non-affine part
    cur_cell = cell @ Fapp.T
    h, cutoff = 2.0, 5.0
    support = species != "Li"
    F = strain.deformation_gradient_trajectory(pos, cell, cur[None], cur_cell[None], h=h, cutoff=cutoff,
                                               support=support)[0]
    ref = _weighted_lstsq_reference(pos, cell, cur, cur_cell, cutoff, lambda r: np.exp(-r**2 / h**2), support)
    np.testing.assert_allclose(F, ref, atol=1e-9)
    # and the non-affine noise makes F differ from atom to atom
    assert np.std(F[:, 0, 0]) > 1e-3


def test_hard_cutoff_limit_matches_falk_langer_atomic_strain():
    rng = np.random.default_rng(2)
    n, a, cutoff = 60, 11.0, 3.6
    cell = np.diag([a, a, a])
    pos = rng.uniform(0, a, (n, 3))
    Fapp = np.array([[1.03, 0.01, 0.0], [0.0, 0.99, 0.0], [0.02, 0.0, 1.0]])
    cur = pos @ Fapp.T + 0.1 * rng.normal(size=pos.shape)
    cur_cell = cell @ Fapp.T
    F = strain.deformation_gradient_trajectory(pos, cell, cur[None], cur_cell[None], cutoff=cutoff,
                                               weighting="uniform")[0]
    try:
        from matscipy.atomic_strain import atomic_strain
        from matscipy.neighbours import neighbour_list as msp_nl
    except ImportError:  # independent numpy least squares instead
        ref = _weighted_lstsq_reference(pos, cell, cur, cur_cell, cutoff, np.ones_like, np.ones(n, bool))
    else:
        old = Atoms(positions=pos, cell=cell, pbc=True)
        now = Atoms(positions=cur, cell=cur_cell, pbc=True)
        i, j = msp_nl("ij", old, cutoff)  # OVITO convention: neighbours of the reference
        ref, _d2min = atomic_strain(now, old, neighbours=(i, j))
    np.testing.assert_allclose(F, ref, atol=1e-9)


def test_classes_and_class_average():
    rng = np.random.default_rng(3)
    species = np.array((["B", "O", "O", "Li"] * 32)[:32])
    cn = np.where(np.arange(32) % 8 == 0, 4, 3)
    ring = np.arange(32) % 3 == 0
    cls = strain.strain_classes(species, cn, ring)
    for k in range(32):
        el = species[k]
        if el == "Li":
            assert cls[k] == -1
        else:
            expect = (f"B{cn[k]}" if el == "B" else el) + ("r" if ring[k] else "n")
            assert strain.STRAIN_CLASSES[cls[k]] == expect
    vals = rng.normal(size=(5, 32, 3))
    means, counts = strain.class_average(vals, cls)
    for c in range(len(strain.STRAIN_CLASSES)):
        sel = cls == c
        assert counts[c] == sel.sum()
        if sel.any():
            np.testing.assert_allclose(means[:, c], vals[:, sel].mean(axis=1), atol=1e-12)
        else:
            assert np.all(np.isnan(means[:, c]))


def test_bad_parameters_raise_config_error():
    from glassjax.errors import ConfigError

    with pytest.raises(ConfigError, match="h must be positive"):
        strain.deformation_gradient_trajectory(np.zeros((2, 3)), np.eye(3) * 5, np.zeros((1, 2, 3)),
                                               np.eye(3)[None] * 5, h=-1.0)


def _boroxol_and_bo4():
    """A planar B3O3 ring with exocyclic O (three B3r, three Or, three On), a BO4 unit (B4n and
    four On) and a Li atom, in a 15 Å cubic cell."""
    species, pos = [], []
    c = np.array([5.0, 5.0, 5.0])
    for k in range(6):  # regular hexagon B-O-B-O-B-O, side 1.37 Å
        ang = np.pi / 3 * k
        species.append("B" if k % 2 == 0 else "O")
        pos.append(c + 1.37 * np.array([np.cos(ang), np.sin(ang), 0.0]))
    for k in range(0, 6, 2):  # exocyclic O on each ring B
        ang = np.pi / 3 * k
        species.append("O")
        pos.append(c + 2.74 * np.array([np.cos(ang), np.sin(ang), 0.0]))
    c4 = np.array([5.0, 5.0, 11.0])
    species.append("B")
    pos.append(c4)
    for d in np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3):
        species.append("O")
        pos.append(c4 + 1.47 * d)
    species.append("Li")
    pos.append([11.0, 11.0, 11.0])
    return np.array(species), np.array(pos), np.eye(3) * 15.0


EXPECTED_CLASSES = ["B3r", "Or"] * 3 + ["On"] * 3 + ["B4n"] + ["On"] * 4 + [None]


def test_reference_classes_and_cli_strain_on_affine_compression(tmp_path):
    import csv

    from ase.io import write

    from glassjax.cli import main
    from glassjax.data.frames import Frames

    species, pos, cell = _boroxol_and_bo4()
    cls = strain.reference_classes(Frames(species=species, positions=pos[None], cells=cell[None]))
    assert [strain.STRAIN_CLASSES[k] if k >= 0 else None for k in cls] == EXPECTED_CLASSES
    write(tmp_path / "ref.extxyz", Atoms(symbols=list(species), positions=pos, cell=cell, pbc=True))
    images = []
    strains = [0.0, -0.02, -0.05]
    for e in strains:
        Fapp = np.diag([1.0, 1.0, 1.0 + e])
        images.append(Atoms(symbols=list(species), positions=pos @ Fapp.T, cell=cell @ Fapp.T, pbc=True))
    write(tmp_path / "traj.extxyz", images)
    prefix = tmp_path / "out" / "strain"
    rc = main(["analyze", "strain", str(tmp_path / "ref.extxyz"), str(tmp_path / "traj.extxyz"), "--h", "3",
               "-o", str(prefix), "--no-progress"])
    assert rc == 0
    assert (tmp_path / "out" / "strain.png").stat().st_size > 0
    rows = list(csv.DictReader(line for line in open(tmp_path / "out" / "strain.csv") if not line.startswith("#")))
    assert len(rows) == 3
    for row, e in zip(rows, strains):
        assert float(row["cell_eps_zz"]) == pytest.approx(e, abs=1e-9)
        for nm in ("B3r", "Or", "On", "B4n"):
            assert float(row[f"{nm}_eps_zz"]) == pytest.approx(e, abs=1e-8)
            assert float(row[f"{nm}_eps_xx"]) == pytest.approx(0.0, abs=1e-8)
        assert row["B3n_eps_zz"] == "nan"  # no such atoms


def test_isolated_atom_gives_nan_and_class_average_skips_it():
    # one atom far from all others (no neighbour within the cutoff): F is undefined -> NaN
    pos = np.array([[1.0, 1.0, 1.0], [1.5, 1.0, 1.0], [1.0, 1.6, 1.0], [1.0, 1.0, 1.7], [1.6, 1.6, 1.6],
                    [9.0, 9.0, 9.0]])
    cell = np.eye(3) * 18.0
    F = strain.deformation_gradient_trajectory(pos, cell, pos[None] * 1.01, cell[None] * 1.01, cutoff=2.0,
                                               weighting="uniform")[0]
    assert np.all(np.isnan(F[5]))
    np.testing.assert_allclose(F[:5], np.broadcast_to(np.eye(3) * 1.01, (5, 3, 3)), atol=1e-12)
    means, counts = strain.class_average(np.asarray(strain.local_strain(F))[None], np.zeros(6, int), 1)
    np.testing.assert_allclose(means[0, 0], [0.01, 0.01, 0.01], atol=1e-12)
    assert counts[0] == 6


def test_mismatched_trajectory_is_a_config_error():
    from glassjax.errors import ConfigError

    with pytest.raises(ConfigError, match="matching the reference"):
        strain.deformation_gradient_trajectory(np.zeros((4, 3)), np.eye(3) * 5, np.zeros((2, 5, 3)),
                                               np.eye(3)[None].repeat(2, 0) * 5)


def test_local_strain_is_differentiable_in_the_current_positions():
    import jax
    import jax.numpy as jnp

    from glassjax import neighbors

    rng = np.random.default_rng(7)
    pos, cell, species = _random_glass(rng, n=24, a=7.0, tilt=False)
    cur = pos + 0.1 * rng.normal(size=pos.shape)
    nl, _ = neighbors.allocate(jnp.asarray(pos), cell, cutoff=4.0, skin=0.0)
    support = jnp.asarray(species != "Li")

    def loss(x):
        F = strain.local_deformation_gradient(jnp.asarray(pos), jnp.asarray(cell), x, jnp.asarray(cell), nl,
                                              h=1.6, cutoff=4.0, support=support)
        return jnp.sum(strain.local_strain(F) ** 2)

    value_and_grad = jax.jit(jax.value_and_grad(loss))
    g = np.asarray(value_and_grad(jnp.asarray(cur))[1])
    k, eps = (3, 2), 1e-6
    xp, xm = cur.copy(), cur.copy()
    xp[k] += eps
    xm[k] -= eps
    fd = (float(value_and_grad(jnp.asarray(xp))[0]) - float(value_and_grad(jnp.asarray(xm))[0])) / (2 * eps)
    assert g[k] == pytest.approx(fd, rel=1e-6, abs=1e-9)
    assert abs(fd) > 1e-4
