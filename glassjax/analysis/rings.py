"""Rings in the T-O-T network (T = network former, B and/or Si).

An n-ring ("n-membered ring", nMR) holds n T atoms and n O atoms alternating,
T-O-T-O-...; a 3-ring is T3O3 (a boroxol ring when its three T are all 3B).  Rings are
closed paths of the *periodic* network: every bond carries its integer image vector and
a ring must close with zero net lattice translation (a chain that only closes through a
periodic image, i.e. one that winds around the cell, is not a ring).  The atoms of a ring
are distinct atoms of the cell (cells must be wider than the rings searched, which holds for
glass models).

Two implementations:

* :func:`three_rings` (JAX, one frame, vmappable over frames): exact enumeration of T3O3
  rings.  From each T atom i it forms every two-step path i-O-j; a ring is a pair of paths
  i-O_a-j, i-O_c-k (i < j < k) plus a path j-O_b-k with O_a, O_b, O_c distinct and the
  three bond-vector sums closing to zero.  Each ring is found exactly once.
  :func:`three_ring_statistics` adds the papers' numbers: rings by number of 3B/4B
  (boroxol = three 3B), rings with Si, and the fraction of 3B in 3-rings (2022 Table 2).
* :func:`ring_statistics` (host, numpy/Python BFS on the periodic graph): ring-size
  distributions by the shortest-path criteria as R.I.N.G.S. (S. Le Roux and P. Jund,
  Comput. Mater. Sci. 49, 70 (2010)) defines them:

  - King (S. V. King, Nature 213, 1112 (1967)): for every node i and every pair (a, b) of
    its neighbours, the shortest rings through a-i-b, i.e. the shortest paths from a to b
    that avoid i, closed through i.
  - Guttman (L. Guttman, J. Non-Cryst. Solids 116, 145 (1990)): for every bond i-j, the
    shortest rings containing that bond, i.e. the shortest paths from j back to i that do
    not use the bond.

  As in R.I.N.G.S., all equally short paths are kept, and each distinct ring is counted once.
  Nodes are all T and O atoms of the T-O network (O with one T cannot be in a ring).
"""

from __future__ import annotations

from collections import defaultdict
from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from glassjax import neighbors
from glassjax.analysis.bonds import (BondGraph, SpeciesIndex, bond_graph, bond_mask, build_any, is_former)
from glassjax.errors import ConfigError

# ----------------------------------------------------------------------------- JAX 3-rings


def _compact(sel, idx, rij, width: int, n: int):
    """Keep the first ``width`` selected slots of every row: (N, width) idx (n if empty), vec, ok."""
    k = sel.shape[1]
    if k < width:
        pad = width - k
        sel = jnp.concatenate([sel, jnp.zeros((sel.shape[0], pad), bool)], axis=1)
        idx = jnp.concatenate([idx, jnp.full((idx.shape[0], pad), n, idx.dtype)], axis=1)
        rij = jnp.concatenate([rij, jnp.zeros((rij.shape[0], pad, 3), rij.dtype)], axis=1)
    order = jnp.argsort(~sel, axis=1, stable=True)[:, :width]
    ok = jnp.take_along_axis(sel, order, axis=1)
    out_idx = jnp.where(ok, jnp.take_along_axis(idx, order, axis=1), n)
    out_vec = jnp.where(ok[..., None], jnp.take_along_axis(rij, order[..., None], axis=1), 0.0)
    overflow = jnp.any(jnp.sum(sel, axis=1) > width)
    return out_idx, out_vec, ok, overflow


def three_rings(positions, cell, types, nl: neighbors.NeighborList, cutoffs, species: SpeciesIndex,
                max_t_o: int = 4, max_o_t: int = 3, max_rings: int = 256, n_centres: Optional[int] = None,
                tol: float = 0.1, atom_mask=None, block: int = 64):
    """Exact list of T3O3 rings of one frame.

    Args:
        positions: (N, 3) Å; cell: (3, 3) rows are vectors; types: (N,) int.
        nl: neighbour list for a cutoff >= max(cutoffs); cutoffs: (T, T) Å.
        species: static :class:`SpeciesIndex` (its ``formers`` are the T types).
        max_t_o: static, most O bonded to one T (4 for B, 6 to allow 6Si).
        max_o_t: static, most T bonded to one O (3 allows tricluster O).
        max_rings: static capacity of the returned list.
        n_centres: static, number of T atoms to scan (default N; pass the T count).
        tol: closure tolerance, Å (a lattice translation is far longer).
        atom_mask: optional (N,) bool for padded systems.
        block: T atoms per step of the scan (memory bound).

    Returns:
        dict with ``rings`` (max_rings, 6) int atom indices in ring order
        [T0, O01, T1, O12, T2, O20] (N in unused rows), ``valid`` (max_rings,) bool,
        ``count`` () int (may exceed max_rings), ``overflow`` () bool (count > max_rings,
        or more bonds than max_t_o / max_o_t: then the result is incomplete).
    """
    n = positions.shape[0]
    valid_atom = jnp.ones((n,), bool) if atom_mask is None else atom_mask
    bonded, rij, _, tj = bond_mask(positions, cell, types, nl, cutoffs, atom_mask)
    former = is_former(types, species) & valid_atom
    former_j = is_former(tj, species) & (tj >= 0)
    o_t = species.O
    ox = (types == o_t) & valid_atom
    # T -> O bonds and O -> T bonds, compacted
    to_idx, to_vec, to_ok, ovf1 = _compact(bonded & (tj == o_t) & former[:, None], nl.idx, rij, max_t_o, n)
    ot_idx, ot_vec, ot_ok, ovf2 = _compact(bonded & former_j & ox[:, None], nl.idx, rij, max_o_t, n)
    # sentinel row n
    ot_idx = jnp.concatenate([ot_idx, jnp.full((1, max_o_t), n, ot_idx.dtype)])
    ot_vec = jnp.concatenate([ot_vec, jnp.zeros((1, max_o_t, 3), ot_vec.dtype)])
    # two-step paths i -O- j: (N, P) with P = max_t_o * max_o_t
    p = max_t_o * max_o_t
    pj = ot_idx[to_idx]  # (N, kt, ko)
    pv = to_vec[:, :, None, :] + ot_vec[to_idx]
    po = jnp.broadcast_to(to_idx[:, :, None], pj.shape)
    pok = (pj < n) & (pj != jnp.arange(n)[:, None, None])
    pj, pv, po, pok = (pj.reshape(n, p), pv.reshape(n, p, 3), po.reshape(n, p), pok.reshape(n, p))
    pj = jnp.concatenate([pj, jnp.full((1, p), n, pj.dtype)])
    pv = jnp.concatenate([pv, jnp.zeros((1, p, 3), pv.dtype)])
    po = jnp.concatenate([po, jnp.full((1, p), n, po.dtype)])
    pok = jnp.concatenate([pok, jnp.zeros((1, p), bool)])

    m = n if n_centres is None else int(n_centres)
    centres = jnp.nonzero(former, size=m, fill_value=n)[0]
    blk = max(1, min(block, m))
    nblocks = -(-m // blk)
    centres = jnp.concatenate([centres, jnp.full((nblocks * blk - m,), n, centres.dtype)])
    tol2 = tol * tol

    def scan_block(c):  # c (B,)
        jq, vq, oq, okq = pj[c], pv[c], po[c], pok[c]  # (B, P)
        # first path p to j, second path q to k
        cond = (okq[:, :, None] & okq[:, None, :] & (c[:, None, None] < jq[:, :, None])
                & (jq[:, :, None] < jq[:, None, :]) & (oq[:, :, None] != oq[:, None, :]))  # (B, P, Q)
        jr, vr, or_, okr = pj[jq], pv[jq], po[jq], pok[jq]  # (B, P, R)
        hit = (cond[..., None] & okr[:, :, None, :] & (jr[:, :, None, :] == jq[:, None, :, None])
               & (or_[:, :, None, :] != oq[:, :, None, None]) & (or_[:, :, None, :] != oq[:, None, :, None]))
        close = vq[:, :, None, None, :] + vr[:, :, None, :, :] - vq[:, None, :, None, :]
        hit = hit & (jnp.sum(close * close, axis=-1) < tol2)
        return hit  # (B, P, Q, R)

    hits = jax.lax.map(scan_block, centres.reshape(nblocks, blk))  # (nb, B, P, P, P)
    hits = hits.reshape(-1)
    count = jnp.sum(hits)
    flat = jnp.nonzero(hits, size=max_rings, fill_value=hits.shape[0])[0]
    valid = flat < hits.shape[0]
    flat = jnp.where(valid, flat, 0)
    r_ = flat % p
    q_ = (flat // p) % p
    p_ = (flat // (p * p)) % p
    ci = flat // (p * p * p)
    i = centres[ci]
    j = pj[i, p_]
    k = pj[i, q_]
    o_ij = po[i, p_]
    o_ik = po[i, q_]
    o_jk = po[j, r_]
    rings = jnp.stack([i, o_ij, j, o_jk, k, o_ik], axis=1)
    rings = jnp.where(valid[:, None], rings, n).astype(jnp.int32)
    return {"rings": rings, "valid": valid, "count": count.astype(jnp.int32),
            "overflow": (count > max_rings) | ovf1 | ovf2}


#: Columns of :func:`three_ring_statistics` for the CSV, in order.
RING_STAT_KEYS = (
    "n_3rings", "n_3rings_B_only", "n_3rings_with_Si",
    "n_3rings_B3x3", "n_3rings_B3x2_B4x1", "n_3rings_B3x1_B4x2", "n_3rings_B4x3",
    "n_B3", "n_B3_in_3ring", "frac_B3_in_3ring", "n_B4", "frac_B4_in_3ring",
    "n_Si_in_3ring", "n_O_in_3ring",
)


def three_ring_statistics(rings, valid, types, b_coordination, species: SpeciesIndex, atom_mask=None):
    """The papers' 3-ring numbers from a ring list (one frame, jittable).

    Args:
        rings: (R, 6) from :func:`three_rings`; valid: (R,) bool.
        types: (N,) int; b_coordination: (N,) int number of O bonded to each atom (only B
            entries are used: 3 -> 3B, 4 -> 4B).
        species: static :class:`SpeciesIndex`.

    Returns:
        dict of scalars (keys :data:`RING_STAT_KEYS`) and per-atom ``in_3ring`` (N,) bool.
        ``n_3rings_B3x2_B4x1`` counts B-only rings with two 3B and one 4B, and so on;
        ``frac_B3_in_3ring`` = #3B in at least one 3-ring / #3B (2022 paper, Table 2).
    """
    n = types.shape[0]
    valid_atom = jnp.ones((n,), bool) if atom_mask is None else atom_mask
    t_types = jnp.concatenate([types, jnp.full((1,), -1, types.dtype)])
    cn = jnp.concatenate([b_coordination, jnp.zeros((1,), b_coordination.dtype)])
    t_atoms = rings[:, ::2]  # (R, 3)
    tt = t_atoms.clip(0, n)
    is_b = t_types[tt] == species.B
    n_b3 = jnp.sum(is_b & (cn[tt] == 3), axis=1)
    n_b4 = jnp.sum(is_b & (cn[tt] == 4), axis=1)
    n_si = jnp.sum(t_types[tt] == species.Si, axis=1) if species.Si >= 0 else jnp.zeros_like(n_b3)
    b_only = valid & (jnp.sum(is_b, axis=1) == 3)
    out = {
        "n_3rings": jnp.sum(valid),
        "n_3rings_B_only": jnp.sum(b_only),
        "n_3rings_with_Si": jnp.sum(valid & (n_si > 0)),
        "n_3rings_B3x3": jnp.sum(b_only & (n_b3 == 3)),
        "n_3rings_B3x2_B4x1": jnp.sum(b_only & (n_b3 == 2) & (n_b4 == 1)),
        "n_3rings_B3x1_B4x2": jnp.sum(b_only & (n_b3 == 1) & (n_b4 == 2)),
        "n_3rings_B4x3": jnp.sum(b_only & (n_b4 == 3)),
    }
    member = jnp.zeros((n + 1,), bool).at[jnp.where(valid[:, None], rings, n).reshape(-1)].set(True)[:n]
    member = member & valid_atom
    b3 = (types == species.B) & (b_coordination == 3) & valid_atom
    b4 = (types == species.B) & (b_coordination == 4) & valid_atom
    out["n_B3"] = jnp.sum(b3)
    out["n_B3_in_3ring"] = jnp.sum(b3 & member)
    out["frac_B3_in_3ring"] = jnp.where(out["n_B3"] > 0, out["n_B3_in_3ring"] / jnp.maximum(out["n_B3"], 1), jnp.nan)
    out["n_B4"] = jnp.sum(b4)
    out["frac_B4_in_3ring"] = jnp.where(out["n_B4"] > 0, jnp.sum(b4 & member) / jnp.maximum(out["n_B4"], 1), jnp.nan)
    out["n_Si_in_3ring"] = jnp.sum(member & (types == species.Si)) if species.Si >= 0 else jnp.asarray(0)
    out["n_O_in_3ring"] = jnp.sum(member & (types == species.O))
    out["in_3ring"] = member
    return out


# ----------------------------------------------------------------------------- drivers


def ring_species(type_map: Sequence[str], formers: Sequence[str] = ("B", "Si")) -> SpeciesIndex:
    """:class:`SpeciesIndex` whose network formers are ``formers`` (e.g. ("B",) for B-O rings only)."""
    for f in formers:
        if f not in ("B", "Si", "Al", "P", "Ge"):
            raise ConfigError(f"ring former {f!r} is not a network-forming element (B, Si, Al, P, Ge)")
    return SpeciesIndex.from_type_map(type_map, formers=tuple(formers))


@partial(jax.jit, static_argnames=("spec", "species", "max_t_o", "max_o_t", "max_rings", "n_centres"))
def _rings_chunk(positions, cells, types, cutoffs, spec, species, max_t_o, max_o_t, max_rings, n_centres):
    from glassjax.analysis.coordination import coordination_numbers

    def one(pos, cell):
        nl = build_any(pos, cell, spec)
        res = three_rings(pos, cell, types, nl, cutoffs, species, max_t_o=max_t_o, max_o_t=max_o_t,
                          max_rings=max_rings, n_centres=n_centres)
        cn = coordination_numbers(pos, cell, types, nl, cutoffs, species.ntypes)
        cn_o = cn[:, species.O] if species.O >= 0 else jnp.zeros(types.shape, jnp.int32)
        stats = three_ring_statistics(res["rings"], res["valid"], types, cn_o, species)
        return res, stats, cn_o, nl.overflow | res["overflow"]

    return jax.vmap(one)(positions, cells)


def three_rings_trajectory(frames, cutoffs=None, formers: Sequence[str] = ("B", "Si"), chunk: int = 16,
                           max_rings: Optional[int] = None, progress: bool = False) -> Dict[str, np.ndarray]:
    """3-ring lists and statistics for every frame of a :class:`~glassjax.data.Frames`.

    Returns a dict: the :data:`RING_STAT_KEYS` as (F,) arrays, ``rings`` (F, R, 6),
    ``valid`` (F, R), ``in_3ring`` (F, N) bool and ``cn_O`` (F, N) O-coordination.
    Capacities grow automatically when a frame overflows.
    """
    from glassjax.analysis.bonds import analysis_spec, cutoff_matrix, grow_any, max_cutoff, parse_cutoffs

    type_map = frames.elements
    species = ring_species(type_map, formers)
    if species.O < 0 or not species.formers:
        raise ConfigError(f"3-rings need O and a network former among {list(formers)}; "
                          f"the system holds {type_map}")
    cut = cutoff_matrix(type_map, parse_cutoffs(cutoffs))
    dtype = jnp.asarray(0.0).dtype
    types_np = frames.types(type_map)
    types = jnp.asarray(types_np)
    n_t = int(sum(np.sum(types_np == t) for t in species.formers))
    spec = analysis_spec(frames.positions[0], frames.cells, max_cutoff(cut))
    max_t_o = 6 if species.Si >= 0 else 4
    max_o_t = 3
    cap = int(max_rings) if max_rings else max(32, n_t // 2)
    cut_j = jnp.asarray(cut, dtype)
    parts = defaultdict(list)
    starts = range(0, frames.nframes, chunk)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="3-rings", unit="chunk")
    for s in starts:
        pos = jnp.asarray(frames.positions[s:s + chunk], dtype)
        cells = jnp.asarray(frames.cells[s:s + chunk], dtype)
        while True:
            res, stats, cn_o, ovf = _rings_chunk(pos, cells, types, cut_j, spec, species, max_t_o, max_o_t,
                                                 cap, n_t)
            if not bool(jnp.any(ovf)):
                break
            if bool(jnp.any(jnp.asarray(res["count"]) > cap)):
                cap = int(2 * max(int(jnp.max(res["count"])), cap))
            else:
                # bond-count or neighbour overflow
                spec = grow_any(spec, frames.cells, frames.natoms)
                max_t_o, max_o_t = max_t_o + 1, max_o_t + 1
                if max_t_o > 12:
                    raise ConfigError("3-ring search: atoms with more than 12 bonds; the cutoffs look too large")
        for k in RING_STAT_KEYS:
            parts[k].append(np.asarray(stats[k]))
        parts["in_3ring"].append(np.asarray(stats["in_3ring"]))
        parts["cn_O"].append(np.asarray(cn_o))
        parts["rings"].append(np.asarray(res["rings"]))
        parts["valid"].append(np.asarray(res["valid"]))
    # ring lists may have grown capacity between chunks: pad to the largest
    width = max(r.shape[1] for r in parts["rings"])
    n = frames.natoms
    parts["rings"] = [np.concatenate([r, np.full((r.shape[0], width - r.shape[1], 6), n, r.dtype)], axis=1)
                      for r in parts["rings"]]
    parts["valid"] = [np.concatenate([v, np.zeros((v.shape[0], width - v.shape[1]), bool)], axis=1)
                      for v in parts["valid"]]
    return {k: np.concatenate(v) for k, v in parts.items()}


def ring_atom_sets(rings: np.ndarray, valid: np.ndarray) -> List[frozenset]:
    """Host helper: the atom sets (identity of a ring regardless of order) of one frame."""
    return [frozenset(int(a) for a in r) for r, v in zip(np.asarray(rings), np.asarray(valid)) if v]


# ----------------------------------------------------------------------------- shortest-path rings

Node = Tuple[int, Tuple[int, int, int]]  # (atom, lattice translation)


def _add(a, b):
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def _sub(a, b):
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def canonical_ring(path: Sequence[Node]) -> Tuple[Node, ...]:
    """Canonical form of a ring of lifted nodes: translation-, rotation- and direction-free."""
    m = len(path)
    best = None
    min_atom = min(a for a, _ in path)
    for start in range(m):
        if path[start][0] != min_atom:
            continue
        t0 = path[start][1]
        for direction in (1, -1):
            seq = tuple((path[(start + direction * k) % m][0], _sub(path[(start + direction * k) % m][1], t0))
                        for k in range(m))
            if best is None or seq < best:
                best = seq
    return best


def _network_adjacency(graph: BondGraph, types: np.ndarray, species: SpeciesIndex) -> List[list]:
    """T-O bonds only, as per-atom lists of (neighbour, shift); atoms of degree < 2 pruned."""
    types = np.asarray(types)
    former = np.isin(types, species.formers)
    ox = types == species.O
    adj = [[] for _ in range(graph.natoms)]
    for a, b, s in zip(graph.i.tolist(), graph.j.tolist(), graph.shift.astype(int).tolist()):
        if (former[a] and ox[b]) or (former[b] and ox[a]):
            adj[a].append((b, tuple(s)))
            adj[b].append((a, (-s[0], -s[1], -s[2])))
    # prune dangling nodes repeatedly (they cannot be in a ring)
    degree = np.array([len(x) for x in adj])
    stack = [i for i in range(graph.natoms) if 0 < degree[i] < 2]
    removed = np.zeros(graph.natoms, bool)
    while stack:
        i = stack.pop()
        if removed[i]:
            continue
        removed[i] = True
        for b, _ in adj[i]:
            if not removed[b]:
                degree[b] -= 1
                if degree[b] < 2:
                    stack.append(b)
    return [[(b, s) for b, s in adj[i] if not removed[b]] if not removed[i] else [] for i in range(graph.natoms)]


def _shortest_paths(adj, source: Node, targets: set, forbidden_node: Optional[Node], forbidden_edge,
                    max_len: int, max_paths: int):
    """All shortest paths (lists of lifted nodes) from ``source`` to each of ``targets``.

    BFS level by level in the lifted (infinite periodic) graph, never entering
    ``forbidden_node`` nor crossing ``forbidden_edge`` (a pair of lifted nodes, either
    direction).  Stops when every target is reached or after ``max_len`` edges.
    Returns {target: [paths]} for the targets reached.
    """
    dist = {source: 0}
    preds: Dict[Node, list] = defaultdict(list)
    frontier = [source]
    found = []
    depth = 0
    while frontier and depth < max_len and len(found) < len(targets):
        depth += 1
        nxt = []
        for node in frontier:
            atom, t = node
            for b, s in adj[atom]:
                nb = (b, _add(t, s))
                if nb == forbidden_node:
                    continue
                if forbidden_edge is not None and ((node, nb) == forbidden_edge or (nb, node) == forbidden_edge):
                    continue
                d = dist.get(nb)
                if d is None:
                    dist[nb] = depth
                    preds[nb].append(node)
                    nxt.append(nb)
                    if nb in targets:
                        found.append(nb)
                elif d == depth:
                    preds[nb].append(node)
        frontier = nxt
    out = {}
    for tgt in found:
        paths = []
        stack = [(tgt, [tgt])]
        while stack and len(paths) < max_paths:
            node, acc = stack.pop()
            if node == source:
                paths.append(acc[::-1])
                continue
            for pnode in preds[node]:
                stack.append((pnode, acc + [pnode]))
        out[tgt] = paths
    return out


def shortest_path_rings(graph: BondGraph, types, species: SpeciesIndex, criterion: str = "king",
                        max_size: int = 10, max_paths: int = 200) -> Dict[Tuple[Node, ...], int]:
    """Distinct rings of one frame by King's or Guttman's shortest-path criterion.

    Args:
        graph: bonds with image shifts (:func:`glassjax.analysis.bonds.bond_graph`).
        types: (N,) int; species: :class:`SpeciesIndex` (formers = the T types).
        criterion: ``"king"`` or ``"guttman"``.
        max_size: largest ring searched, in T atoms (the ring has 2 * max_size nodes).
        max_paths: cap on equally short paths kept per search.

    Returns:
        {canonical ring (tuple of (atom, translation)): size in T atoms}.
    """
    crit = criterion.lower()
    if crit not in ("king", "guttman"):
        raise ConfigError(f"ring criterion {criterion!r}: use 'king' or 'guttman'")
    adj = _network_adjacency(graph, np.asarray(types), species)
    former = np.isin(np.asarray(types), species.formers)
    max_nodes = 2 * int(max_size)
    zero = (0, 0, 0)
    rings: Dict[Tuple[Node, ...], int] = {}

    def record(cycle):
        key = canonical_ring(cycle)
        if len(set(key)) != len(key):
            return  # not a simple cycle in the lifted graph
        rings[key] = int(sum(former[a] for a, _ in key))

    for i in range(graph.natoms):
        nbrs = [(b, s) for b, s in adj[i]]
        if len(nbrs) < 2:
            continue
        centre = (i, zero)
        if crit == "guttman":
            if not former[i]:
                continue  # every T-O bond is searched once, from its T end
            for b, s in nbrs:
                nb = (b, s)
                res = _shortest_paths(adj, nb, {centre}, None, (centre, nb), max_nodes - 1, max_paths)
                for paths in res.values():
                    for path in paths:
                        record(path)  # path runs nb ... centre; the bond closes it
        else:
            for x in range(len(nbrs) - 1):
                targets = set(nbrs[x + 1:])
                # paths from neighbour x to every later neighbour, avoiding the centre
                res = _shortest_paths(adj, nbrs[x], targets, centre, None, max_nodes - 2, max_paths)
                for paths in res.values():
                    for path in paths:
                        record(path + [centre])
    return {k: v for k, v in rings.items() if v <= max_size}


def ring_size_histogram(rings: Dict, max_size: int) -> np.ndarray:
    """(max_size + 1,) counts of rings by size in T atoms (index = size)."""
    hist = np.zeros(max_size + 1, dtype=np.int64)
    for size in rings.values():
        if size <= max_size:
            hist[size] += 1
    return hist


def ring_statistics(positions, cell, types, type_map: Sequence[str], cutoffs=None,
                    formers: Sequence[str] = ("B", "Si"), criterion: str = "king", max_size: int = 10,
                    max_paths: int = 200) -> Dict[str, object]:
    """Ring-size distribution of one frame (host; see the module docstring).

    Args:
        positions (N, 3) Å; cell (3, 3); types (N,) int in ``type_map`` order;
        cutoffs: bond cutoffs (defaults fill in); formers: T elements; criterion: "king"
        or "guttman"; max_size: largest ring in T atoms.

    Returns:
        dict: ``histogram`` (max_size + 1,) ring counts by size (in T atoms),
        ``rings`` {canonical ring: size}, ``per_T`` histogram / number of T atoms.
    """
    from glassjax.analysis.bonds import cutoff_matrix, parse_cutoffs

    species = ring_species(type_map, formers)
    cut = cutoff_matrix(type_map, parse_cutoffs(cutoffs))
    graph = bond_graph(positions, cell, np.asarray(types), cut)
    rings = shortest_path_rings(graph, types, species, criterion, max_size, max_paths)
    hist = ring_size_histogram(rings, max_size)
    n_t = int(np.sum(np.isin(np.asarray(types), species.formers)))
    return {"histogram": hist, "rings": rings, "per_T": hist / max(n_t, 1)}
