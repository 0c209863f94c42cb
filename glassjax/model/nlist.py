"""DeePMD-kit's per-type neighbour sections, built from any list of candidate neighbours.

se_e2_a does not see a plain neighbour list: for each centre atom it sees ``sum(sel)``
slots split into one section per neighbour type, section t holding the nearest ``sel[t]``
neighbours of type t within ``rcut`` (empty slots padded).  DeePMD-kit builds it in two
steps (``deepmd/dpmodel/utils/nlist.py``): keep the nearest ``sum(sel)`` neighbours of any
type within ``rcut``, then take the first ``sel[t]`` of each type, in distance order.

:func:`select_sections` reproduces exactly that from any candidate set (a
:class:`glassjax.neighbors.NeighborList` built with ``cutoff = rcut`` plus any skin, or the
dense all-pairs candidates of :func:`dense_candidates`).  Unlike DeePMD-kit it also
*reports* when a type had more neighbours than ``sel[t]`` (``Sections.overflow``): the
truncation is then the one DeePMD-kit would make, but the model no longer sees its whole
environment, so callers (the MD engine, the ASE calculator) must treat it as an error and
raise ``sel`` (``glassjax model info`` prints the counts).

Representation (N atoms, S = sum(sel) slots)::

    idx    (N, S) int32   neighbour index j, or N for an empty slot
    image  (N, S, 3) f    integer image vector n: r_ji = (s_j + n - s_i) @ cell
    valid  (N, S) bool    filled slot
    counts (N, T) int32   neighbours of each type within rcut (before truncation)
    overflow () bool      some counts[i, t] > sel[t], or the candidate list itself overflowed
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from glassjax import neighbors as nbl


class Sections(NamedTuple):
    """Per-type neighbour sections of width ``sel`` (a JAX pytree; see module docstring)."""

    idx: jax.Array
    image: jax.Array
    valid: jax.Array
    counts: jax.Array
    overflow: jax.Array


def _fractional(positions, cell):
    return positions @ jnp.linalg.inv(cell)


def candidate_distances(positions, cell, idx, image):
    """(N, K) distances to candidate neighbours (``idx`` == N marks an empty slot: inf)."""
    n = positions.shape[0]
    mask = idx < n
    j = jnp.where(mask, idx, 0)
    s = _fractional(positions, cell)
    frac = s[j] + image - s[:, None, :]
    rij = frac @ cell
    r2 = jnp.sum(rij * rij, axis=-1)
    return jnp.where(mask, jnp.sqrt(jnp.where(mask, r2, 1.0)), jnp.inf)


def select_sections(positions, cell, types, idx, image, rcut: float, sel: Sequence[int],
                    candidate_overflow=False) -> Sections:
    """Pick DeePMD-kit's per-type sections out of candidate neighbours (jittable).

    Args:
        positions: (N, 3) Å.  cell: (3, 3) rows are vectors.
        types: (N,) int atom types in the model's type map; negative = padding atom.
        idx: (N, K) int candidate neighbour indices (N = empty slot).
        image: (N, K, 3) image vectors of the candidates.
        rcut: model cutoff, Å (candidates with r > rcut are dropped, as in DeePMD-kit).
        sel: per-type section widths (static).
        candidate_overflow: () bool, the candidate list's own overflow flag.

    Returns:
        :class:`Sections`.  The selection is made on the current distances, without
        gradient (it is piecewise constant); gradients flow through the pair vectors.
    """
    sel = tuple(int(s) for s in sel)
    return _select_sections(positions, cell, types, idx, image, float(rcut), sel, candidate_overflow)


@partial(jax.jit, static_argnames=("rcut", "sel"))
def _select_sections(positions, cell, types, idx, image, rcut, sel, candidate_overflow) -> Sections:
    # the selection (see select_sections)
    ntypes = len(sel)
    nnei = sum(sel)
    n, k = idx.shape
    types = jnp.asarray(types)
    r = jax.lax.stop_gradient(candidate_distances(positions, cell, idx, image))
    jsafe = jnp.where(idx < n, idx, 0)
    tj = types[jsafe]
    valid = (idx < n) & (r <= rcut) & (tj >= 0) & (types[:, None] >= 0)
    tj = jnp.where(valid, tj, ntypes)
    counts = jnp.stack([jnp.sum(valid & (tj == t), axis=1) for t in range(ntypes)], axis=1)
    overflow = jnp.any(counts > jnp.asarray(sel)[None, :]) | jnp.asarray(candidate_overflow)

    # step 1 (DeePMD-kit): keep only the nearest sum(sel) neighbours of any type
    rkey = jnp.where(valid, r, jnp.inf)
    if k > nnei:
        order = jnp.argsort(rkey, axis=1)
        rank = jnp.argsort(order, axis=1)
        valid = valid & (rank < nnei)
        tj = jnp.where(valid, tj, ntypes)
    # step 2: sort by (type, distance); section t starts after all kept neighbours of type < t
    slot = jnp.broadcast_to(jnp.arange(k, dtype=jnp.int32), (n, k))
    _, _, sorted_slot = jax.lax.sort((tj, jnp.where(valid, r, jnp.inf), slot), dimension=1,
                                     num_keys=2)
    kept = jnp.stack([jnp.sum(valid & (tj == t), axis=1) for t in range(ntypes)], axis=1)
    start = jnp.cumsum(kept, axis=1) - kept  # (N, T)
    pos_list, ok_list = [], []
    for t, st in enumerate(sel):
        if st == 0:
            continue
        a = jnp.arange(st)
        pos_list.append(start[:, t:t + 1] + a[None, :])
        ok_list.append(a[None, :] < kept[:, t:t + 1])
    pos = jnp.clip(jnp.concatenate(pos_list, axis=1), 0, k - 1)
    ok = jnp.concatenate(ok_list, axis=1)
    chosen = jnp.take_along_axis(sorted_slot, pos, axis=1)  # (N, S) slot in candidates
    out_idx = jnp.where(ok, jnp.take_along_axis(idx, chosen, axis=1), n).astype(jnp.int32)
    out_img = jnp.where(ok[..., None], jnp.take_along_axis(image, chosen[..., None], axis=1), 0.0)
    return Sections(idx=out_idx, image=out_img, valid=ok, counts=counts.astype(jnp.int32),
                    overflow=overflow)


def sections_from_neighbor_list(positions, cell, types, nl: nbl.NeighborList, rcut: float,
                                sel: Sequence[int]) -> Sections:
    """Sections from a :class:`glassjax.neighbors.NeighborList` (jittable).

    The list must have been built with ``cutoff >= rcut`` (any skin) for positions
    continuous with ``positions``; its ``overflow`` flag is carried into the result.
    """
    return select_sections(positions, cell, types, nl.idx, nl.image, rcut, sel,
                           candidate_overflow=nl.overflow)


def dense_candidates(n: int, images: Tuple[int, int, int], dtype=jnp.float64):
    """All (j, image) pairs for every centre (static arrays; the self pair is left empty).

    Returns idx (N, N*M) int32 and image (N, N*M, 3) for the M image vectors with
    components in ``[-images[a], images[a]]``.  Cost is O(N^2 M): meant for small cells.
    """
    grid = nbl._image_grid(tuple(int(c) for c in images))
    m = grid.shape[0]
    idx = np.tile(np.repeat(np.arange(n), m)[None, :], (n, 1))
    img = np.tile(np.tile(grid, (n, 1))[None, :, :], (n, 1, 1))
    # remove the self pair in the zero image by marking it empty
    zero = np.all(grid == 0, axis=1)
    self_slot = np.arange(n) * m + np.nonzero(zero)[0][0]
    idx[np.arange(n), self_slot] = n
    return jnp.asarray(idx, jnp.int32), jnp.asarray(img, dtype)


def dense_sections(positions, cell, types, rcut: float, sel: Sequence[int],
                   images: Tuple[int, int, int]) -> Sections:
    """Sections from all pairs over a fixed image range (jittable; small cells only).

    ``images`` must cover ``rcut`` for every cell passed in: use
    ``dense_images(cell, rcut)`` outside jit.  Positions need not be wrapped.
    """
    positions = jnp.asarray(positions)
    n = positions.shape[0]
    # wrap fractional coordinates so the fixed image range is enough
    s = _fractional(positions, cell)
    shift = jax.lax.stop_gradient(jnp.floor(s))
    idx, img = dense_candidates(n, images, positions.dtype)
    # candidate image relative to unwrapped coordinates: n + floor(s_i) - floor(s_j)
    jsafe = jnp.where(idx < n, idx, 0)
    img = img + shift[:, None, :] - shift[jsafe]
    return select_sections(positions, cell, types, idx, img, rcut, sel)


def dense_images(cell, rcut: float) -> Tuple[int, int, int]:
    """Image range for :func:`dense_sections`: wrapped atoms are up to one cell apart."""
    return tuple(int(c) + 1 for c in nbl.images_needed(cell, rcut))


def build_sections(positions, cell, types, rcut: float, sel: Sequence[int]) -> Sections:
    """Sections for one configuration, outside jit (allocates a list of the right size)."""
    positions = jnp.asarray(positions)
    cell = jnp.asarray(cell, positions.dtype)
    mask = jnp.asarray(np.asarray(types) >= 0)
    nl, _ = nbl.allocate(positions, np.asarray(cell), cutoff=rcut, skin=0.0, capacity_factor=1.0,
                         atom_mask=mask)
    return sections_from_neighbor_list(positions, cell, jnp.asarray(types), nl, rcut, sel)


def section_pair_vectors(positions, cell, sections: Sections):
    """(N, S, 3) displacements r_j + n @ cell - r_i for every slot (zero when empty)."""
    j = jnp.where(sections.valid, sections.idx, 0)
    s = _fractional(positions, cell)
    frac = s[j] + sections.image - s[:, None, :]
    rij = frac @ cell
    return jnp.where(sections.valid[..., None], rij, 0.0)
