"""Bonds from per-species-pair cutoffs, on top of :mod:`glassjax.neighbors`.

A bond between atoms i and j (of types a and b) exists when ``|r_ij| < r_c[a, b]``; a pair
with ``r_c[a, b] = 0`` never bonds.  Default cutoffs (Å):

* B-O 2.0: first minimum of g_BO in borate glasses (the project's design notes); B-O bonds
  are about 1.37 Å (3B) and 1.47 Å (4B).
* Si-O 2.3: beyond the Si-O bond (1.61 Å) and the first minimum of g_SiO, which lies near
  2.0-2.3 Å in silicate and borosilicate glass models; the upper end of that range also
  counts the long bonds of 5-fold Si, which the 2022 paper tracks as 5Si.  The papers do
  not state their Si-O cutoff: check this one against g_SiO of your glass (``--cutoff``).
* Li-O 2.7: first minimum of g_LiO in lithium borate/silicate glass models (about 2.6-2.8 Å;
  Li-O bonds are 1.9-2.1 Å).  Only used for Li coordination.

The kernels are pure functions of one frame (positions (N, 3), cell (3, 3) rows = vectors,
types (N,) int) and a neighbour list built for at least the largest cutoff; they vmap over
frames.  :func:`bond_graph` gives the host-side bond list (with periodic image shifts) the
ring searches use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from glassjax import neighbors
from glassjax.errors import ConfigError

#: Default bond cutoffs in Å, by unordered element pair (see the module docstring).
DEFAULT_CUTOFFS: Dict[Tuple[str, str], float] = {
    ("B", "O"): 2.0,
    ("Si", "O"): 2.3,
    ("Li", "O"): 2.7,
}

#: Network-forming cations (T in T-O-T).
NETWORK_FORMERS = ("B", "Si")


def _pair_key(a: str, b: str) -> Tuple[str, str]:
    return tuple(sorted((a, b)))  # type: ignore[return-value]


def parse_cutoffs(items: Optional[Iterable] = None, defaults: bool = True) -> Dict[Tuple[str, str], float]:
    """Cutoff dict from ``["B-O=2.0", "Si-O=2.3"]``, a mapping ``{"B-O": 2.0}`` or ``{("B","O"): 2.0}``.

    With ``defaults`` the :data:`DEFAULT_CUTOFFS` fill in the pairs not given.  Raises
    ConfigError for malformed entries or non-positive values.
    """
    from glassjax.data.frames import check_element

    out: Dict[Tuple[str, str], float] = {}
    if defaults:
        out.update({_pair_key(*k): v for k, v in DEFAULT_CUTOFFS.items()})
    if items is None:
        return out
    if isinstance(items, Mapping):
        pairs = list(items.items())
    else:
        pairs = []
        for item in items:
            text = str(item)
            if "=" not in text:
                raise ConfigError(f"cutoff {text!r}: write PAIR=VALUE, e.g. B-O=2.0")
            key, val = text.split("=", 1)
            pairs.append((key, val))
    for key, val in pairs:
        if isinstance(key, str):
            parts = [p for p in key.replace(" ", "").split("-") if p]
        else:
            parts = list(key)
        if len(parts) != 2:
            raise ConfigError(f"cutoff pair {key!r}: write two elements joined by '-', e.g. B-O")
        try:
            a, b = (check_element(p) for p in parts)
        except Exception as exc:  # DataError from check_element -> config error here
            raise ConfigError(f"cutoff pair {key!r}: {exc}") from None
        try:
            value = float(val)
        except (TypeError, ValueError):
            raise ConfigError(f"cutoff {key!r}: value {val!r} is not a number (Å)") from None
        if not (value >= 0.0 and math.isfinite(value)):
            raise ConfigError(f"cutoff {key!r}: {value} Å must be >= 0 (0 switches the pair off)")
        out[_pair_key(a, b)] = value
    return out


def cutoff_matrix(type_map: Sequence[str], cutoffs: Optional[Mapping] = None) -> np.ndarray:
    """(T, T) symmetric matrix of bond cutoffs (Å) for the element order ``type_map``.

    Pairs absent from ``cutoffs`` (after :func:`parse_cutoffs` with defaults) get 0 (no bond).
    """
    table = cutoffs if cutoffs is not None else parse_cutoffs()
    table = {_pair_key(*k) if not isinstance(k, str) else _pair_key(*k.split("-")): float(v)
             for k, v in table.items()}
    t = len(type_map)
    mat = np.zeros((t, t), dtype=np.float64)
    for a in range(t):
        for b in range(t):
            mat[a, b] = table.get(_pair_key(type_map[a], type_map[b]), 0.0)
    return mat


@dataclass(frozen=True)
class SpeciesIndex:
    """Static type indices of the elements the network analyses need (-1 when absent).

    Build it with :meth:`from_type_map`; it is hashable, so it can be a static jit argument.
    """

    type_map: Tuple[str, ...]
    B: int
    Si: int
    O: int
    Li: int
    formers: Tuple[int, ...]

    @classmethod
    def from_type_map(cls, type_map: Sequence[str], formers: Sequence[str] = NETWORK_FORMERS) -> "SpeciesIndex":
        tm = tuple(str(s) for s in type_map)
        idx = lambda e: tm.index(e) if e in tm else -1  # noqa: E731
        fm = tuple(tm.index(e) for e in formers if e in tm)
        return cls(type_map=tm, B=idx("B"), Si=idx("Si"), O=idx("O"), Li=idx("Li"), formers=fm)

    @property
    def ntypes(self) -> int:
        return len(self.type_map)


def is_former(types, species: SpeciesIndex):
    """(N,) bool: atom type is a network former (B or Si unless chosen otherwise)."""
    out = jnp.zeros(jnp.shape(types), dtype=bool)
    for t in species.formers:
        out = out | (types == t)
    return out


def bond_mask(positions, cell, types, nl: neighbors.NeighborList, cutoffs, atom_mask=None):
    """Which neighbour-list slots are bonds.

    Args:
        positions: (N, 3) Å, continuous with the positions the list was built from.
        cell: (3, 3) rows are cell vectors, Å.
        types: (N,) int types.
        nl: neighbour list built with ``cutoff + skin >= max(cutoffs)``.
        cutoffs: (T, T) bond cutoff matrix, Å (:func:`cutoff_matrix`).
        atom_mask: optional (N,) bool, False for padding atoms.

    Returns:
        ``(bonded, rij, dist, jtype)``: (N, K) bool, (N, K, 3) bond vectors r_j + n·cell - r_i,
        (N, K) distances, (N, K) neighbour types (-1 in empty slots).
    """
    rij, filled = neighbors.pair_vectors(positions, cell, nl)
    j = jnp.where(filled, nl.idx, 0)
    dist = jnp.sqrt(jnp.sum(rij * rij, axis=-1) + jnp.where(filled, 0.0, 1.0))
    tj = jnp.where(filled, types[j], -1)
    cutoffs = jnp.asarray(cutoffs, dtype=positions.dtype)
    rc = cutoffs[types[:, None], jnp.maximum(tj, 0)]
    bonded = filled & (dist < rc) & (rc > 0)
    if atom_mask is not None:
        bonded = bonded & atom_mask[:, None] & atom_mask[j]
    return bonded, rij, dist, tj


def neighbor_spec(positions, cell, cutoff: float, capacity_factor: float = 2.0, min_capacity: int = 12,
                  image_margin: float = 0.5, atom_mask=None) -> neighbors.NeighborSpec:
    """A static neighbour spec (skin 0) for bond analysis of frames like this one.

    Runs on the host without compiling anything: the capacity is ``capacity_factor`` times
    the mean number of atoms in a sphere of radius ``cutoff`` (at least ``min_capacity``),
    and ``image_margin`` Å of extra periodic images covers cells that shrink.  Drivers
    check ``overflow`` and enlarge the spec with :func:`grow_spec`.
    """
    cell = np.asarray(cell, dtype=np.float64)
    n = int(np.shape(positions)[0]) if atom_mask is None else int(np.sum(np.asarray(atom_mask)))
    vol = abs(np.linalg.det(cell))
    expected = n / vol * 4.0 / 3.0 * math.pi * cutoff ** 3
    capacity = max(int(min_capacity), int(math.ceil(capacity_factor * expected)) + 4)
    images = neighbors.images_needed(cell, cutoff + image_margin)
    return neighbors.NeighborSpec(float(cutoff), 0.0, capacity, images, block=min(256, max(1, n)))


def grow_spec(spec: neighbors.NeighborSpec, cells) -> neighbors.NeighborSpec:
    """A larger spec after an overflow: double the capacity and cover every cell given."""
    cells = np.asarray(cells).reshape(-1, 3, 3)
    images = tuple(int(v) for v in np.max([neighbors.images_needed(c, spec.list_cutoff) for c in cells], axis=0))
    images = tuple(max(a, b) for a, b in zip(images, spec.images))
    return neighbors.NeighborSpec(spec.cutoff, spec.skin, int(spec.capacity) * 2, images, spec.block)


# ----------------------------------------------------------------------------- cell lists


@dataclass(frozen=True)
class CellListSpec:
    """Static settings of the cell-list bond search (:func:`build_cell_list`).

    Attributes:
        cutoff: search radius, Å.
        capacity: K, neighbour slots per atom.
        grid: bins along each cell vector (each at least 3 and at least ``cutoff`` wide).
        bin_capacity: atoms a bin can hold.
    """

    cutoff: float
    capacity: int
    grid: Tuple[int, int, int]
    bin_capacity: int

    @property
    def list_cutoff(self) -> float:
        return float(self.cutoff)


_OFFSETS = np.array([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)], dtype=np.int32)


def cell_list_spec(cells, natoms: int, cutoff: float, capacity_factor: float = 2.0, min_capacity: int = 12,
                   bin_factor: float = 2.0, margin: float = 0.02) -> Optional[CellListSpec]:
    """A cell-list spec valid for every cell given, or None when a cell is too thin (< 3 bins).

    Bins are at least ``cutoff * (1 + margin)`` wide along each cell height, so every pair
    within the cutoff lies in adjacent bins and the minimum image is unique (>= 3 bins).
    """
    cells = np.asarray(cells, dtype=np.float64).reshape(-1, 3, 3)
    heights = np.min([neighbors.cell_heights(c) for c in cells], axis=0)
    grid = tuple(int(v) for v in np.floor(heights / (cutoff * (1.0 + margin))))
    if min(grid) < 3:
        return None
    vol = float(np.min(np.abs(np.linalg.det(cells))))
    mean_bin = natoms / float(np.prod(grid))
    bin_cap = int(math.ceil(bin_factor * mean_bin + 3.0 * math.sqrt(mean_bin) + 2))
    expected = natoms / vol * 4.0 / 3.0 * math.pi * cutoff ** 3
    capacity = max(int(min_capacity), int(math.ceil(capacity_factor * expected)) + 4)
    return CellListSpec(float(cutoff), capacity, grid, bin_cap)


@partial(jax.jit, static_argnames=("spec",))
def build_cell_list(positions, cell, spec: CellListSpec, atom_mask=None) -> neighbors.NeighborList:
    """Neighbour list within ``spec.cutoff`` by binning (same result type as ``neighbors.build``).

    O(N) work: each atom is compared with the atoms of its 27 surrounding bins only.  Image
    vectors refer to the unwrapped fractional coordinates of ``positions``, as in
    :mod:`glassjax.neighbors`, so :func:`glassjax.neighbors.pair_vectors` and
    :func:`bond_mask` apply unchanged.  ``overflow`` is set when a bin or an atom has more
    entries than allowed or the cell became too thin for the grid; then rebuild with a
    larger spec.

    Args:
        positions: (N, 3) Å; cell: (3, 3) rows are vectors; atom_mask: optional (N,) bool.
    """
    n = positions.shape[0]
    grid = jnp.asarray(spec.grid, dtype=jnp.int32)
    nbins = int(np.prod(spec.grid))
    cap_b, k = spec.bin_capacity, spec.capacity
    s = positions @ jnp.linalg.inv(cell)
    sw = s - jnp.floor(s)
    b3 = jnp.clip(jnp.floor(sw * grid).astype(jnp.int32), 0, grid - 1)
    bid = (b3[:, 0] * spec.grid[1] + b3[:, 1]) * spec.grid[2] + b3[:, 2]
    if atom_mask is not None:
        bid = jnp.where(atom_mask, bid, nbins)
    order = jnp.argsort(bid, stable=True)
    sorted_bid = bid[order]
    first = jnp.searchsorted(sorted_bid, jnp.arange(nbins + 2), side="left")
    rank = jnp.arange(n) - first[sorted_bid]
    table = jnp.full((nbins + 1, cap_b), n, jnp.int32).at[sorted_bid, rank].set(order.astype(jnp.int32),
                                                                                  mode="drop")
    occupancy = first[1:nbins + 1] - first[:nbins]
    nb3 = (b3[:, None, :] + jnp.asarray(_OFFSETS)[None]) % grid  # (N, 27, 3)
    nbid = (nb3[..., 0] * spec.grid[1] + nb3[..., 1]) * spec.grid[2] + nb3[..., 2]
    cand = table[nbid].reshape(n, 27 * cap_b)
    valid = cand < n
    jj = jnp.where(valid, cand, 0)
    d = s[jj] - s[:, None, :]
    shift = jnp.round(d)
    vec = (d - shift) @ cell
    r2 = jnp.sum(vec * vec, axis=-1)
    ok = valid & (r2 < spec.cutoff ** 2) & (jj != jnp.arange(n)[:, None])
    if atom_mask is not None:
        ok = ok & atom_mask[:, None] & atom_mask[jj]
    count = jnp.sum(ok, axis=1)
    kk = min(k, 27 * cap_b)
    top, arg = jax.lax.top_k(jnp.where(ok, -r2, -jnp.inf), kk)
    found = jnp.isfinite(top)
    idx = jnp.where(found, jnp.take_along_axis(cand, arg, axis=1), n).astype(jnp.int32)
    img = jnp.where(found[..., None], -jnp.take_along_axis(shift, arg[..., None], axis=1), 0.0)
    if kk < k:
        idx = jnp.concatenate([idx, jnp.full((n, k - kk), n, jnp.int32)], axis=1)
        img = jnp.concatenate([img, jnp.zeros((n, k - kk, 3), img.dtype)], axis=1)
    max_count = jnp.max(count).astype(jnp.int32)
    too_thin = jnp.any(neighbors._cell_heights_jnp(cell) / grid < spec.cutoff)
    overflow = (max_count > k) | jnp.any(occupancy > cap_b) | too_thin
    return neighbors.NeighborList(idx=idx, image=img, ref_positions=positions, ref_cell=cell,
                                  max_count=max_count, overflow=overflow)


def build_any(positions, cell, spec, atom_mask=None) -> neighbors.NeighborList:
    """:func:`build_cell_list` for a :class:`CellListSpec`, else :func:`glassjax.neighbors.build`."""
    if isinstance(spec, CellListSpec):
        return build_cell_list(positions, cell, spec, atom_mask)
    return neighbors.build(positions, cell, spec, atom_mask)


def analysis_spec(positions, cells, cutoff: float, atom_mask=None):
    """The fastest valid spec for bond analysis of frames with these cells.

    A :class:`CellListSpec` when every cell holds at least 3 bins of width ``cutoff`` along
    each vector, else a dense multi-image :class:`glassjax.neighbors.NeighborSpec` covering
    every cell.
    """
    cells = np.asarray(cells, dtype=np.float64).reshape(-1, 3, 3)
    n = int(np.shape(positions)[0]) if atom_mask is None else int(np.sum(np.asarray(atom_mask)))
    spec = cell_list_spec(cells, n, cutoff)
    if spec is not None:
        return spec
    dense = neighbor_spec(positions, cells[0], cutoff, atom_mask=atom_mask)
    need = np.max([neighbors.images_needed(c, dense.list_cutoff) for c in cells], axis=0)
    images = tuple(int(max(a, b)) for a, b in zip(need, dense.images))
    return neighbors.NeighborSpec(dense.cutoff, dense.skin, dense.capacity, images, dense.block)


def grow_any(spec, cells, natoms: int):
    """A larger spec after an overflow (either kind)."""
    if isinstance(spec, CellListSpec):
        fresh = cell_list_spec(cells, natoms, spec.cutoff)
        if fresh is None:  # cells became too thin for a grid: dense search
            dense = neighbors.NeighborSpec(spec.cutoff, 0.0, 2 * spec.capacity, (0, 0, 0), min(256, natoms))
            return grow_spec(dense, cells)
        grid = tuple(min(a, b) for a, b in zip(spec.grid, fresh.grid))
        return CellListSpec(spec.cutoff, 2 * spec.capacity, grid, 2 * spec.bin_capacity)
    return grow_spec(spec, cells)


def max_cutoff(cutoffs) -> float:
    c = float(np.max(np.asarray(cutoffs)))
    if c <= 0:
        raise ConfigError("no bond cutoff is positive for the elements present; set e.g. --cutoff B-O=2.0")
    return c


# ----------------------------------------------------------------------------- host graph

@dataclass
class BondGraph:
    """Host-side bond list of one frame (each bond once, i < j or i == j with n > 0).

    Attributes:
        i, j: (P,) atom indices.
        shift: (P, 3) int image vector n with r_ij = (s_j + n - s_i) · cell.
        dist: (P,) bond lengths, Å.
        natoms: N.
    """

    i: np.ndarray
    j: np.ndarray
    shift: np.ndarray
    dist: np.ndarray
    natoms: int

    def adjacency(self):
        """Per-atom list of (neighbour, shift) with both directions."""
        adj = [[] for _ in range(self.natoms)]
        for a, b, s in zip(self.i.tolist(), self.j.tolist(), self.shift.astype(int).tolist()):
            adj[a].append((b, tuple(s)))
            adj[b].append((a, (-s[0], -s[1], -s[2])))
        return adj


@partial(jax.jit, static_argnames=("spec",))
def _bonds_of_frame(positions, cell, types, cutoffs, spec, atom_mask=None):
    nl = build_any(positions, cell, spec, atom_mask)
    bonded, _, dist, _ = bond_mask(positions, cell, types, nl, cutoffs, atom_mask)
    return nl, bonded, dist


def bond_graph(positions, cell, types, cutoffs, atom_mask=None) -> BondGraph:
    """All bonds of one frame as a :class:`BondGraph` (computed with the JAX neighbour list).

    Args:
        positions: (N, 3) Å. cell: (3, 3). types: (N,) int. cutoffs: (T, T) Å.
    """
    positions = jnp.asarray(positions)
    cell_np = np.asarray(cell, dtype=np.float64)
    rc = max_cutoff(cutoffs)
    spec = analysis_spec(positions, cell_np, rc, atom_mask=atom_mask)
    cell_j = jnp.asarray(cell_np, dtype=positions.dtype)
    cut_j = jnp.asarray(cutoffs, dtype=positions.dtype)
    while True:
        nl, bonded, dist = _bonds_of_frame(positions, cell_j, jnp.asarray(types), cut_j, spec, atom_mask)
        if not bool(nl.overflow):
            break
        spec = grow_any(spec, cell_np, int(positions.shape[0]))
    bonded = np.asarray(bonded)
    idx = np.asarray(nl.idx)
    img = np.rint(np.asarray(nl.image)).astype(np.int64)
    dist = np.asarray(dist)
    ii, kk = np.nonzero(bonded)
    jj = idx[ii, kk]
    sh = img[ii, kk]
    # keep each undirected bond once
    keep = (ii < jj) | ((ii == jj) & _positive_shift(sh))
    return BondGraph(i=ii[keep], j=jj[keep], shift=sh[keep], dist=dist[ii[keep], kk[keep]],
                     natoms=int(positions.shape[0]))


def _positive_shift(sh: np.ndarray) -> np.ndarray:
    """True when the first non-zero component of each shift is positive."""
    out = np.zeros(len(sh), dtype=bool)
    decided = np.zeros(len(sh), dtype=bool)
    for c in range(3):
        nz = (sh[:, c] != 0) & ~decided
        out[nz] = sh[nz, c] > 0
        decided |= nz
    return out
