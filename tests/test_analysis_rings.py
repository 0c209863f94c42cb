"""Ring kernels against networkx (cycle enumeration, shortest paths) and hand-built rings."""

from __future__ import annotations

import itertools
import os
from collections import Counter
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from glassjax.analysis import bonds
from glassjax.analysis.io import read_trajectory
from glassjax.analysis.rings import (ring_statistics, shortest_path_rings, three_rings_trajectory)
from glassjax.data.frames import Frames

REPO = Path(__file__).resolve().parents[1]
FIX = Path(os.environ.get("GLASSJAX_FIXTURES", REPO.parent / "shared" / "fixtures"))
GLASS_561 = FIX / "structures" / "b2o3_glass_lammps" / "561.data"
QUARTZ = FIX / "structures" / "pymatgen" / "SiO2.json"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"fixture {path} not found")
    return path


def planar_ring(n_t: int, centre, former="B", bond=1.40, axis=2):
    """Symbols and positions of a planar T_n O_n ring (regular 2n-gon, T-O = ``bond`` Å)."""
    m = 2 * n_t
    radius = bond / (2 * np.sin(np.pi / m))
    ang = 2 * np.pi * np.arange(m) / m
    xy = np.stack([radius * np.cos(ang), radius * np.sin(ang), np.zeros(m)], axis=1)
    xy = np.roll(xy, axis - 2, axis=1)
    return [former if k % 2 == 0 else "O" for k in range(m)], xy + np.asarray(centre, float)


def frames_of(symbols, positions, cell):
    cell = np.asarray(cell, float)
    if cell.ndim == 1:
        cell = np.diag(cell)
    pos = np.asarray(positions, float)
    pos = pos - np.floor(pos @ np.linalg.inv(cell)) @ cell  # wrap into the cell
    return Frames(species=symbols, positions=pos[None], cells=cell[None])


def nx_graph(frames, k=0, formers=("B", "Si")):
    """T-O bond graph from ASE's neighbour list, without image information.

    Valid as a reference when no ring can wrap around the cell (large cells).
    """
    atoms = frames.to_atoms(k)
    cut = {}
    for (a, b), rc in bonds.DEFAULT_CUTOFFS.items():
        if "O" in (a, b) and ({a, b} - {"O"}) <= set(formers):
            cut[(a, b)] = cut[(b, a)] = rc
    i, j = neighbor_list("ij", atoms, cut)
    G = nx.Graph()
    G.add_edges_from((int(a), int(b)) for a, b in zip(i, j) if a != b)
    return G


def nx_three_rings(G):
    return [frozenset(c) for c in nx.simple_cycles(G, length_bound=6) if len(c) == 6]


@pytest.fixture(scope="module")
def hand_built():
    """2-, 3- and 4-rings in a big box, a 3-ring through the periodic boundary, a dangling NBO."""
    sym, pos = [], []
    for n_t, centre in ((2, (4, 4, 4)), (3, (12, 4, 4)), (4, (4, 12, 12)), (3, (0.3, 19.8, 0.2))):
        s, p = planar_ring(n_t, centre)
        sym += s
        pos.append(p)
    # an extra non-bridging O on the first B of the 3-ring: that B becomes 3B (the others are 2-fold)
    sym.append("O")
    pos.append(np.array([[12 + 1.40 + 1.37, 4, 4]]))
    return frames_of(sym, np.concatenate(pos), [20.0, 20.0, 20.0])


def test_hand_built_three_rings(hand_built):
    res = three_rings_trajectory(hand_built)
    assert res["n_3rings"][0] == 2  # the 3-ring and the one through the boundary
    assert res["n_3rings_B_only"][0] == 2 and res["n_3rings_with_Si"][0] == 0
    # the NBO-carrying B is 3-coordinated, the others 2-coordinated: no ring is "boroxol"
    assert res["n_3rings_B3x3"][0] == 0
    assert res["n_B3"][0] == 1 and res["frac_B3_in_3ring"][0] == 1.0
    rings = {frozenset(r) for r, v in zip(res["rings"][0], res["valid"][0]) if v}
    # same ring atoms as networkx's cycle enumeration on ASE's (periodic) bond list
    assert rings == set(nx_three_rings(nx_graph(hand_built)))


@pytest.mark.parametrize("criterion", ["king", "guttman"])
def test_hand_built_ring_sizes(hand_built, criterion):
    tm = hand_built.elements
    res = ring_statistics(hand_built.positions[0], hand_built.cells[0], hand_built.types(tm), tm,
                          criterion=criterion, max_size=8)
    expected = np.zeros(9, int)
    expected[[2, 3, 4]] = [1, 2, 1]
    np.testing.assert_array_equal(res["histogram"], expected)


def test_chain_closing_only_through_the_boundary_is_not_a_ring():
    # B-O chain along x with 3 B per period: a naive graph sees a 6-cycle, the lattice does not
    sym = ["B", "O"] * 3
    pos = np.array([[1.40 * k + 0.2, 3.0, 3.0] for k in range(6)])
    f = frames_of(sym, pos, [8.40, 6.0, 6.0])
    assert len(nx_three_rings(nx_graph(f))) == 1  # the naive reference is fooled
    assert three_rings_trajectory(f)["n_3rings"][0] == 0
    tm = f.elements
    for crit in ("king", "guttman"):
        assert ring_statistics(f.positions[0], f.cells[0], f.types(tm), tm, criterion=crit)["histogram"].sum() == 0
    # one B per period: the atom is bonded to two images of the same O
    g = frames_of(["B", "O"], [[0.1, 1, 1], [1.5, 1, 1]], [2.8, 6.0, 6.0])
    assert three_rings_trajectory(g)["n_3rings"][0] == 0


def test_glass_561_three_rings_match_networkx_vmapped():
    """Frame 0 is the glass as read; frame 1 carries thermal-like noise (one vmapped call)."""
    frames = read_trajectory(_need(GLASS_561))
    rng = np.random.default_rng(7)
    pos = frames.positions[0] + np.concatenate([np.zeros((1, frames.natoms, 3)),
                                                rng.normal(0, 0.06, (1, frames.natoms, 3))])
    traj = Frames(species=frames.species, positions=pos, cells=np.repeat(frames.cells, 2, axis=0))
    res = three_rings_trajectory(traj)
    for k in range(2):
        ref = set(nx_three_rings(nx_graph(traj, k)))
        got = {frozenset(r) for r, v in zip(res["rings"][k], res["valid"][k]) if v}
        assert len(ref) > 20 and got == ref and res["n_3rings"][k] == len(ref)
        if k == 0:  # all B are 3B (N4 = 0 in this glass), so every ring is a boroxol ring
            assert res["n_3rings_B3x3"][k] == len(ref) and res["n_B3"][k] == 680
        in_ring_b = {a for r in ref for a in r if frames.species[a] == "B"}
        if k == 0:
            assert res["frac_B3_in_3ring"][k] == pytest.approx(len(in_ring_b) / 680)
        np.testing.assert_array_equal(np.nonzero(res["in_3ring"][k])[0], sorted({a for r in ref for a in r}))


def _king_reference(G, max_nodes):
    """King's rings by networkx: shortest a..b paths avoiding node i, for neighbours a, b of i.

    A ring of at most ``max_nodes`` nodes through i lies within max_nodes // 2 edges of i,
    so the search runs on that ego graph (same shortest paths up to that length).
    """
    rings = set()
    for i in list(G.nodes):
        nbrs = list(G.neighbors(i))
        if len(nbrs) < 2:
            continue
        E = nx.ego_graph(G, i, radius=max_nodes // 2 + 1)
        H = nx.restricted_view(E, [i], [])
        for a, b in itertools.combinations(nbrs, 2):
            try:
                for p in nx.all_shortest_paths(H, a, b):
                    if len(p) + 1 > max_nodes:
                        break
                    rings.add(frozenset(p + [i]))
            except nx.NetworkXNoPath:
                pass
    return rings


def _guttman_reference(G, max_nodes):
    """Guttman's rings by networkx: shortest u..v paths without the bond u-v, closed by it."""
    rings = set()
    for u, v in list(G.edges):
        E = nx.ego_graph(G, u, radius=max_nodes // 2 + 1)
        H = nx.restricted_view(E, [], [(u, v)])
        try:
            for p in nx.all_shortest_paths(H, u, v):
                if len(p) > max_nodes:
                    break
                rings.add(frozenset(p))
        except nx.NetworkXNoPath:
            pass
    return rings


def test_quartz_rings_periodic_vs_supercell_networkx():
    """Primitive alpha-quartz cell (periodic search) against networkx on a 4x4x4 supercell.

    alpha-quartz has no 3- or 4-rings; its shortest rings are 6-rings (Guttman), and King's
    criterion adds 8-rings (e.g. the R.I.N.G.S. paper, Le Roux & Jund 2010).
    """
    prim = read_trajectory(_need(QUARTZ))
    tm = prim.elements
    atoms = prim.to_atoms(0).repeat((4, 4, 4))  # 3x3x3 still has rings wrapping the supercell
    sup = Frames(species=atoms.get_chemical_symbols(), positions=atoms.positions[None], cells=atoms.cell[:][None])
    G = nx_graph(sup)
    for crit, ref_fn in (("king", _king_reference), ("guttman", _guttman_reference)):
        res = ring_statistics(prim.positions[0], prim.cells[0], prim.types(tm), tm, criterion=crit, max_size=8)
        ref = Counter(len(r) // 2 for r in ref_fn(G, 16))
        hist = np.zeros(9, int)
        for size, count in ref.items():
            assert count % 64 == 0
            hist[size] = count // 64
        np.testing.assert_array_equal(res["histogram"], hist)
        assert res["histogram"][:6].sum() == 0 and res["histogram"][6] > 0
    assert three_rings_trajectory(prim)["n_3rings"][0] == 0


@pytest.mark.parametrize("criterion", ["guttman", "king"])
def test_glass_561_shortest_path_rings_match_networkx(criterion):
    frames = read_trajectory(_need(GLASS_561))
    tm = frames.elements
    species = bonds.SpeciesIndex.from_type_map(tm)
    g = bonds.bond_graph(frames.positions[0], frames.cells[0], frames.types(tm), bonds.cutoff_matrix(tm))
    rings = shortest_path_rings(g, frames.types(tm), species, criterion, max_size=6)
    got = Counter(rings.values())
    ref_fn = _guttman_reference if criterion == "guttman" else _king_reference
    ref_rings = ref_fn(nx_graph(frames), 12)
    assert got == Counter(len(r) // 2 for r in ref_rings) and got[3] > 20
    assert {frozenset(a for a, _ in key) for key in rings} == ref_rings


def test_cli_rings(hand_built, tmp_path):
    import csv

    import ase.io

    from glassjax.cli import main

    path = tmp_path / "rings.extxyz"
    ase.io.write(path, hand_built.to_atoms(0), format="extxyz")
    out = tmp_path / "rings.csv"
    assert main(["analyze", "rings", str(path), "--max-size", "6", "--criterion", "guttman", "-o", str(out)]) == 0
    row = next(csv.DictReader(open(out)))
    assert int(row["n_3rings"]) == 2
    assert [int(row[f"guttman_{n}"]) for n in range(2, 7)] == [1, 2, 1, 0, 0]
    assert (tmp_path / "rings.png").stat().st_size > 0
    assert main(["analyze", "rings", str(path), "--formers", "Xx", "-o", str(out)]) == 2


def test_three_rings_padded_batch_vmap():
    """Two padded systems in one vmapped call: a B3O3 ring (plus padding) and a winding chain."""
    import jax
    import jax.numpy as jnp

    from glassjax import neighbors
    from glassjax.analysis.rings import three_rings

    s_ring, p_ring = planar_ring(3, (5.0, 5.0, 5.0))
    chain = np.array([[1.40 * k + 0.2, 3.0, 3.0] for k in range(6)])
    n = 8
    pos = np.zeros((2, n, 3))
    pos[0, :6] = p_ring
    pos[1, :6] = chain
    pos[:, 6:] = [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]  # padding atoms sit on top of nothing real
    cells = np.stack([np.eye(3) * 10.0, np.diag([8.40, 10.0, 10.0])])
    types = np.tile(np.array([0, 1] * 3 + [0, 1]), (2, 1))
    mask = np.tile(np.array([True] * 6 + [False] * 2), (2, 1))
    tm = ["B", "O"]
    cut = jnp.asarray(bonds.cutoff_matrix(tm))
    sp = bonds.SpeciesIndex.from_type_map(tm)
    spec = neighbors.NeighborSpec(2.0, 0.0, 8, (1, 1, 1))

    def one(p, c, t, m):
        nl = neighbors.build(p, c, spec, m)
        r = three_rings(p, c, t, nl, cut, sp, max_rings=4, atom_mask=m)
        return r["count"], r["rings"], r["overflow"]

    count, rings, overflow = jax.jit(jax.vmap(one))(jnp.asarray(pos), jnp.asarray(cells), jnp.asarray(types),
                                                    jnp.asarray(mask))
    np.testing.assert_array_equal(count, [1, 0])
    assert not np.any(overflow)
    assert set(np.asarray(rings[0, 0]).tolist()) == set(range(6))
    assert s_ring == ["B", "O"] * 3
