"""Periodic neighbour lists that work inside ``jax.jit``, for any cell size and shape.

Why our own: jax-md's lists use the minimum image, which silently misses neighbours when a
cell is thinner than ``2 * (cutoff + skin)`` in some direction (a 300-atom glass is about
15 Å wide; a Coulomb cutoff of 8 Å, or rcut 6 Å plus skin, reaches past half of it).  Here
every neighbour carries an integer *image vector*, so the same atom can appear several
times in a row, once per periodic image inside the cutoff.

Representation (N atoms, K = capacity per atom)::

    idx    (N, K) int32   neighbour index j, or N for an empty slot
    image  (N, K, 3) f    integer image vector n (stored as float) such that
                          r_ij = (s_j + n - s_i) @ cell,  s = positions @ inv(cell)

``s`` is the *unwrapped* fractional coordinate of the positions that are passed in.  The
image vectors are made for the positions given at build time, so between rebuilds the
caller must move atoms continuously (never re-wrap them into the cell); glassjax's
integrators do so.  Cell changes (NPT, deformation) are fine: ``r_ij`` is recomputed from
the current cell, which also makes the virial by strain differentiation exact.

A list is built for ``cutoff + skin``; :func:`needs_rebuild` says when atoms or the cell
have moved so far that a neighbour inside ``cutoff`` could be missing.  Every build
reports ``overflow`` (more neighbours than the capacity, or the cell shrank so that more
periodic images are needed than were allocated); the caller must then reallocate with
:func:`allocate` outside jit and redo the step: an overflowed list is never correct.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np


class NeighborList(NamedTuple):
    """A built neighbour list (a JAX pytree; see the module docstring for shapes)."""

    idx: jax.Array  # (N, K) int32, N marks an empty slot
    image: jax.Array  # (N, K, 3) float, integer-valued image vectors
    ref_positions: jax.Array  # (N, 3) positions at build time
    ref_cell: jax.Array  # (3, 3) cell at build time (rows are vectors)
    max_count: jax.Array  # () int32: most neighbours any atom had inside cutoff + skin
    overflow: jax.Array  # () bool: capacity or image range exceeded -> list is invalid


@dataclass(frozen=True)
class NeighborSpec:
    """Static (hashable) settings of a neighbour list; fixed between reallocations.

    Attributes:
        cutoff: interaction cutoff, Å.
        skin: extra shell so the list stays valid while atoms move, Å.
        capacity: K, slots per atom.
        images: (cx, cy, cz): image vectors n_a in [-c_a, c_a] are searched along each
            cell vector (after a minimum-image shift of the fractional difference).
        block: atoms handled per block in the dense search (memory bound).
    """

    cutoff: float
    skin: float
    capacity: int
    images: Tuple[int, int, int]
    block: int = 256

    @property
    def list_cutoff(self) -> float:
        return float(self.cutoff + self.skin)


def cell_heights(cell) -> np.ndarray:
    """(3,) perpendicular widths of a cell (rows are vectors): V / |b x c| etc."""
    cell = np.asarray(cell, dtype=np.float64)
    vol = abs(np.linalg.det(cell))
    cross = np.stack([np.cross(cell[1], cell[2]), np.cross(cell[2], cell[0]), np.cross(cell[0], cell[1])])
    return vol / np.linalg.norm(cross, axis=1)


def _cell_heights_jnp(cell):
    vol = jnp.abs(jnp.linalg.det(cell))
    cross = jnp.stack([jnp.cross(cell[1], cell[2]), jnp.cross(cell[2], cell[0]), jnp.cross(cell[0], cell[1])])
    return vol / jnp.linalg.norm(cross, axis=1)


def images_needed(cell, list_cutoff: float) -> Tuple[int, int, int]:
    """Image range per cell vector so that every pair within ``list_cutoff`` is found.

    After the minimum-image shift a fractional difference lies in [-1/2, 1/2], so images
    up to ``ceil(list_cutoff / h_a - 1/2)`` cells away along vector a are needed.
    """
    h = cell_heights(cell)
    return tuple(int(max(0, math.ceil(list_cutoff / ha - 0.5))) for ha in h)


def _image_grid(images: Tuple[int, int, int]) -> np.ndarray:
    cx, cy, cz = images
    g = np.stack(np.meshgrid(np.arange(-cx, cx + 1), np.arange(-cy, cy + 1), np.arange(-cz, cz + 1),
                             indexing="ij"), axis=-1).reshape(-1, 3)
    # put the zero image first (cosmetic; keeps the central image's pairs first)
    order = np.argsort(np.abs(g).sum(axis=1), kind="stable")
    return g[order].astype(np.float64)


@partial(jax.jit, static_argnames=("spec",))
def build(positions, cell, spec: NeighborSpec, atom_mask=None) -> NeighborList:
    """Build a neighbour list inside jit (dense blocked search over periodic images).

    Args:
        positions: (N, 3) Cartesian positions, Å (need not be wrapped into the cell).
        cell: (3, 3) cell vectors as rows, Å.
        spec: static settings; see :class:`NeighborSpec`.
        atom_mask: optional (N,) bool; False marks padding atoms, which are neither
            centres nor neighbours.

    Returns:
        :class:`NeighborList`; ``overflow`` is True when it must not be used.
    """
    positions = jnp.asarray(positions)
    cell = jnp.asarray(cell, dtype=positions.dtype)
    n = positions.shape[0]
    k = spec.capacity
    if atom_mask is None:
        atom_mask = jnp.ones((n,), dtype=bool)
    inv = jnp.linalg.inv(cell)
    s = positions @ inv  # unwrapped fractional
    grid = jnp.asarray(_image_grid(spec.images), dtype=positions.dtype)  # (M, 3)
    m = grid.shape[0]
    rc2 = spec.list_cutoff ** 2

    block = max(1, min(spec.block, n))
    nblocks = -(-n // block)
    centres = jnp.arange(nblocks * block).reshape(nblocks, block)

    def one_block(ib):
        i = jnp.minimum(ib, n - 1)  # (B,)
        valid_i = (ib < n) & atom_mask[i]
        d = s[None, :, :] - s[i][:, None, :]  # (B, N, 3)
        shift0 = jnp.round(d)
        dmin = d - shift0
        # candidate displacements for each image: (B, N, M, 3)
        frac = dmin[:, :, None, :] + grid[None, None, :, :]
        vec = frac @ cell
        r2 = jnp.sum(vec * vec, axis=-1)  # (B, N, M)
        j = jnp.arange(n)
        is_self = (j[None, :, None] == i[:, None, None]) & jnp.all(grid == 0, axis=-1)[None, None, :]
        ok = (r2 < rc2) & (~is_self) & atom_mask[None, :, None] & valid_i[:, None, None]
        count = jnp.sum(ok, axis=(1, 2))  # (B,)
        key = jnp.where(ok, -r2, -jnp.inf).reshape(block, n * m)
        kk = min(k, n * m)
        top, arg = jax.lax.top_k(key, kk)
        found = jnp.isfinite(top)
        jj = arg // m
        mm = arg % m
        # image relative to the unwrapped fractional coordinates
        img = grid[mm] - jnp.take_along_axis(shift0, jj[:, :, None], axis=1)
        idx = jnp.where(found, jj, n).astype(jnp.int32)
        img = jnp.where(found[..., None], img, 0.0)
        if kk < k:
            idx = jnp.concatenate([idx, jnp.full((block, k - kk), n, jnp.int32)], axis=1)
            img = jnp.concatenate([img, jnp.zeros((block, k - kk, 3), img.dtype)], axis=1)
        return idx, img, count

    idx, img, count = jax.lax.map(one_block, centres)
    idx = idx.reshape(-1, k)[:n]
    img = img.reshape(-1, k, 3)[:n]
    count = count.reshape(-1)[:n]
    max_count = jnp.max(count).astype(jnp.int32)
    needed = jnp.ceil(spec.list_cutoff / _cell_heights_jnp(cell) - 0.5)
    img_overflow = jnp.any(needed > jnp.asarray(spec.images, dtype=needed.dtype))
    return NeighborList(idx=idx, image=img, ref_positions=positions, ref_cell=cell,
                        max_count=max_count, overflow=(max_count > k) | img_overflow)


def allocate(positions, cell, cutoff: float, skin: float = 1.0, capacity: Optional[int] = None,
             capacity_factor: float = 1.3, image_margin: float = 0.0, atom_mask=None,
             block: int = 256) -> Tuple[NeighborList, NeighborSpec]:
    """Choose a capacity and image range for this configuration and build the list.

    Runs outside jit.  ``capacity`` defaults to ``capacity_factor`` times the largest
    neighbour count found; ``image_margin`` (Å) adds images for cells that will shrink.
    Returns ``(neighbor_list, spec)``; pass ``spec`` to :func:`build`/:func:`update`.
    """
    positions = jnp.asarray(positions)
    cell = np.asarray(cell, dtype=np.float64)
    images = images_needed(cell, cutoff + skin + image_margin)
    n = positions.shape[0]
    if capacity is None:
        probe = NeighborSpec(cutoff, skin, capacity=1, images=images, block=block)
        counted = build(positions, jnp.asarray(cell, positions.dtype), probe, atom_mask)
        capacity = max(1, int(math.ceil(int(counted.max_count) * capacity_factor)))
    spec = NeighborSpec(float(cutoff), float(skin), int(capacity), images, block=min(block, max(1, n)))
    nl = build(positions, jnp.asarray(cell, positions.dtype), spec, atom_mask)
    return nl, spec


def needs_rebuild(nl: NeighborList, positions, cell, spec: NeighborSpec):
    """True (a traced bool) when a neighbour within ``cutoff`` could be missing.

    Atoms are compared with their build-time positions carried along by the cell change
    (``s_ref @ cell``): two atoms each moving by d bring a pair closer by at most 2d.  A
    cell change alone alters a pair distance r by at most ``||cell_ref^-1 cell - 1||_2 r``,
    counted with r = cutoff + skin.  Rebuild when the two together exceed the skin.
    """
    s_ref = nl.ref_positions @ jnp.linalg.inv(nl.ref_cell)
    disp = positions - s_ref @ cell
    max_disp = jnp.sqrt(jnp.max(jnp.sum(disp * disp, axis=-1)))
    deform = jnp.linalg.inv(nl.ref_cell) @ cell - jnp.eye(3, dtype=cell.dtype)
    strain = jnp.linalg.norm(deform, ord=2)
    return 2.0 * max_disp + strain * spec.list_cutoff > spec.skin


def update(nl: NeighborList, positions, cell, spec: NeighborSpec, atom_mask=None) -> NeighborList:
    """Rebuild the list when :func:`needs_rebuild` says so (jittable, via ``lax.cond``).

    The caller must check ``overflow`` of the result (outside the jitted loop) and
    reallocate with :func:`allocate` when it is set.
    """
    return jax.lax.cond(needs_rebuild(nl, positions, cell, spec),
                        lambda: build(positions, cell, spec, atom_mask), lambda: nl)


def pair_vectors(positions, cell, nl: NeighborList):
    """Displacements to every neighbour slot.

    Args:
        positions: (N, 3) Å, continuous with the positions the list was built from.
        cell: (3, 3) current cell, rows are vectors.
        nl: the neighbour list.

    Returns:
        ``(rij, mask)``: rij (N, K, 3) = r_j + n @ cell - r_i (zero in empty slots) and
        mask (N, K) bool marking filled slots.
    """
    n = positions.shape[0]
    mask = nl.idx < n
    j = jnp.where(mask, nl.idx, 0)
    inv = jnp.linalg.inv(cell)
    s = positions @ inv
    frac = s[j] + nl.image - s[:, None, :]
    rij = frac @ cell
    return jnp.where(mask[..., None], rij, 0.0), mask


def neighbor_pairs_numpy(positions, cell, cutoff: float):
    """Reference (slow, numpy) list of all (i, j, image) with |r_ij| < cutoff.

    Used by tests and as a readable specification; returns arrays i, j, images (P, 3) and
    distances (P,).
    """
    positions = np.asarray(positions, dtype=np.float64)
    cell = np.asarray(cell, dtype=np.float64)
    images = images_needed(cell, cutoff)
    grid = _image_grid(tuple(c + 1 for c in images))
    s = positions @ np.linalg.inv(cell)
    out_i, out_j, out_n, out_d = [], [], [], []
    for i in range(len(positions)):
        d = s - s[i]
        for g in grid:
            vec = (d + g) @ cell
            r = np.linalg.norm(vec, axis=1)
            sel = r < cutoff
            if not np.any(g):
                sel[i] = False
            for j in np.nonzero(sel)[0]:
                out_i.append(i)
                out_j.append(j)
                out_n.append(g)
                out_d.append(r[j])
    return np.array(out_i), np.array(out_j), np.array(out_n).reshape(-1, 3), np.array(out_d)


def from_jax_md(jmd_neighbors, positions, cell, cutoff: float, skin: float = 0.0) -> NeighborList:
    """Adapt a jax-md *Dense* neighbour list to a :class:`NeighborList` (jittable).

    jax-md lists use the minimum-image convention, so each pair is seen in one image only:
    that is correct only when every perpendicular width of the cell is at least
    ``2 * (cutoff + skin)``.  The returned list's ``overflow`` is set when the jax-md list
    overflowed (``did_buffer_overflow``) *or* the cell is too thin for the minimum image, so
    the error is reported instead of silently missing neighbours.  Image vectors are the
    minimum-image shifts of the current positions.

    Args:
        jmd_neighbors: ``jax_md.partition.NeighborList`` in Dense format (idx (N, K), N = empty),
            built on Cartesian positions (``fractional_coordinates=False``).
        positions: (N, 3) Cartesian positions, Å.  cell: (3, 3) rows are vectors.
        cutoff, skin: the interaction cutoff and the skin the jax-md list was built with, Å.
    """
    idx = jnp.asarray(jmd_neighbors.idx)
    if idx.ndim != 2:
        from glassjax.errors import ConfigError

        raise ConfigError("from_jax_md needs a jax-md neighbour list in Dense format "
                          "(partition.NeighborListFormat.Dense)")
    positions = jnp.asarray(positions)
    cell = jnp.asarray(cell, positions.dtype)
    n = positions.shape[0]
    mask = idx < n
    j = jnp.where(mask, idx, 0)
    s = positions @ jnp.linalg.inv(cell)
    image = jax.lax.stop_gradient(-jnp.round(s[j] - s[:, None, :]))
    image = jnp.where(mask[..., None], image, 0.0)
    too_thin = jnp.any(_cell_heights_jnp(cell) < 2.0 * (cutoff + skin))
    count = jnp.max(jnp.sum(mask, axis=1)).astype(jnp.int32)
    return NeighborList(idx=jnp.where(mask, idx, n).astype(jnp.int32), image=image.astype(positions.dtype),
                        ref_positions=positions, ref_cell=cell, max_count=count,
                        overflow=jnp.asarray(jmd_neighbors.did_buffer_overflow) | too_thin)
