"""The multi-image neighbour list against a slow numpy enumeration and ASE's list."""

import numpy as np
import jax.numpy as jnp
import pytest
from ase.neighborlist import neighbor_list as ase_neighbor_list

from glassjax import neighbors as nbl


def _random_cell(rng, n, triclinic, scale):
    cell = np.diag(rng.uniform(0.8, 1.2, 3) * scale)
    if triclinic:
        cell[1, 0] = 0.3 * scale
        cell[2, 0] = -0.2 * scale
        cell[2, 1] = 0.25 * scale
    frac = rng.uniform(-0.3, 1.3, (n, 3))  # deliberately not wrapped
    return frac @ cell, cell


def _pairs_from_list(positions, cell, nl, cutoff):
    rij, mask = nbl.pair_vectors(jnp.asarray(positions), jnp.asarray(cell), nl)
    r = np.linalg.norm(np.asarray(rij), axis=-1)
    idx = np.asarray(nl.idx)
    out = []
    for i in range(len(positions)):
        for k in range(idx.shape[1]):
            if mask[i, k] and r[i, k] < cutoff:
                out.append((i, idx[i, k], round(float(r[i, k]), 8)))
    return sorted(out)


@pytest.mark.parametrize("triclinic", [False, True])
@pytest.mark.parametrize("scale", [5.0, 14.0])  # 5 Å cell: many images within 6 Å
def test_list_matches_ase(triclinic, scale):
    rng = np.random.default_rng(3)
    pos, cell = _random_cell(rng, 40, triclinic, scale)
    cutoff = 6.0
    nl, spec = nbl.allocate(pos, cell, cutoff=cutoff, skin=0.5)
    assert not bool(nl.overflow)
    got = _pairs_from_list(pos, cell, nl, cutoff)
    i, j, d = ase_neighbor_list("ijd", _atoms(pos, cell), cutoff)
    ref = sorted((int(a), int(b), round(float(c), 8)) for a, b, c in zip(i, j, d))
    assert got == ref


def _atoms(pos, cell):
    from ase import Atoms

    return Atoms("H%d" % len(pos), positions=pos, cell=cell, pbc=True)


def test_overflow_reported_when_capacity_too_small():
    rng = np.random.default_rng(0)
    pos, cell = _random_cell(rng, 30, False, 8.0)
    nl, spec = nbl.allocate(pos, cell, cutoff=4.0, skin=0.5)
    small = nbl.NeighborSpec(spec.cutoff, spec.skin, capacity=max(1, int(nl.max_count) - 1),
                             images=spec.images)
    bad = nbl.build(jnp.asarray(pos), jnp.asarray(cell), small)
    assert bool(bad.overflow)


def test_overflow_reported_when_cell_shrinks_past_image_range():
    rng = np.random.default_rng(1)
    pos, cell = _random_cell(rng, 20, False, 20.0)
    nl, spec = nbl.allocate(pos, cell, cutoff=6.0, skin=0.5, capacity=400)
    assert spec.images == (0, 0, 0)
    shrunk = cell * 0.5  # 10 Å wide: 6.5 Å reaches past the nearest image
    rebuilt = nbl.build(jnp.asarray(pos * 0.5), jnp.asarray(shrunk), spec)
    assert bool(rebuilt.overflow)


def test_padding_atoms_are_invisible():
    rng = np.random.default_rng(2)
    pos, cell = _random_cell(rng, 25, True, 9.0)
    mask = np.ones(25, bool)
    mask[20:] = False
    nl, spec = nbl.allocate(pos, cell, cutoff=5.0, skin=0.3, atom_mask=jnp.asarray(mask))
    idx = np.asarray(nl.idx)
    assert np.all((idx[:20] < 20) | (idx[:20] == 25))
    assert np.all(idx[20:] == 25)
    nl_small, _ = nbl.allocate(pos[:20], cell, cutoff=5.0, skin=0.3)
    assert _pairs_from_list(pos[:20], cell, nl_small, 5.0) == \
        [p for p in _pairs_from_list(pos, cell, nl, 5.0) if p[0] < 20]


def test_update_rebuilds_only_when_needed_and_stays_correct():
    rng = np.random.default_rng(4)
    pos, cell = _random_cell(rng, 30, True, 7.0)
    nl, spec = nbl.allocate(pos, cell, cutoff=4.0, skin=0.6, capacity_factor=2.0)
    small_move = pos + 0.05
    assert not bool(nbl.needs_rebuild(nl, jnp.asarray(small_move), jnp.asarray(cell), spec))
    big_move = pos + rng.normal(0, 0.4, pos.shape)
    strained = cell @ np.diag([1.04, 0.97, 1.0])
    moved = big_move @ np.linalg.inv(cell) @ strained
    assert bool(nbl.needs_rebuild(nl, jnp.asarray(moved), jnp.asarray(strained), spec))
    nl2 = nbl.update(nl, jnp.asarray(moved), jnp.asarray(strained), spec)
    assert not bool(nl2.overflow)
    i, j, d = ase_neighbor_list("ijd", _atoms(moved, strained), 4.0)
    ref = sorted((int(a), int(b), round(float(c), 8)) for a, b, c in zip(i, j, d))
    assert _pairs_from_list(moved, strained, nl2, 4.0) == ref


def test_jax_md_adapter_matches_own_list_and_reports_thin_cells():
    from jax_md import partition, space

    rng = np.random.default_rng(5)
    box = 12.0
    pos = rng.uniform(0, box, (40, 3))
    cell = np.eye(3) * box
    disp, _ = space.periodic(box)
    cutoff = 4.0
    make = partition.neighbor_list(disp, box, cutoff, dr_threshold=0.0, format=partition.NeighborListFormat.Dense,
                                   disable_cell_list=True)
    jmd = make.allocate(jnp.asarray(pos))
    nl = nbl.from_jax_md(jmd, jnp.asarray(pos), jnp.asarray(cell), cutoff)
    assert not bool(nl.overflow)
    got = _pairs_from_list(pos, cell, nl, cutoff)
    i, j, d = ase_neighbor_list("ijd", _atoms(pos, cell), cutoff)
    assert got == sorted((int(a), int(b), round(float(c), 8)) for a, b, c in zip(i, j, d))
    # a cell thinner than 2 * cutoff: the minimum image misses neighbours -> reported
    small = 7.0
    disp_s, _ = space.periodic(small)
    jmd_s = partition.neighbor_list(disp_s, small, cutoff, format=partition.NeighborListFormat.Dense,
                                    disable_cell_list=True).allocate(
        jnp.asarray(pos * small / box))
    assert bool(nbl.from_jax_md(jmd_s, jnp.asarray(pos * small / box), jnp.asarray(np.eye(3) * small), cutoff).overflow)
