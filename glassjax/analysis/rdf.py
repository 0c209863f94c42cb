"""Partial and total radial distribution functions g_ab(r), periodic, any cell size.

Definitions (the LAMMPS / ASE >= 3.27 convention)::

    g_ab(r) = V / (N_a N_b) * n_ab(r) / (4/3 pi ((r + dr/2)^3 - (r - dr/2)^3))
    g(r)    = sum_ab c_a c_b g_ab(r),   c_a = N_a / N

where n_ab(r) counts ordered pairs (i of species a, j of species b, j != i or another
periodic image) with |r_ij| in the bin.  An ideal gas gives g = 1 (up to (N-1)/N for
a == b).  All periodic images within ``r_max`` are counted, so ``r_max`` may exceed half
the cell (images from :func:`glassjax.neighbors.images_needed`).  Each frame is
normalised by its own volume and frames are averaged.

The kernel :func:`pair_histogram` is a dense, blocked search over atoms and images
(no neighbour-list capacity, hence no overflow), pure and vmappable over frames.
"""

from __future__ import annotations

from functools import partial
from typing import Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from glassjax import neighbors


@partial(jax.jit, static_argnames=("n_types", "n_bins", "r_max", "images", "block"))
def pair_histogram(positions, cell, types, *, n_types: int, n_bins: int, r_max: float,
                   images: Tuple[int, int, int], block: int = 128, atom_mask=None):
    """Counts of ordered pairs by species pair and distance bin for one frame.

    Args:
        positions: (N, 3) Å; cell: (3, 3) rows are vectors, Å.
        types: (N,) int species index in [0, n_types).
        n_types: T; n_bins: B; r_max: histogram range [0, r_max), bin width r_max / B.
        images: image range per cell vector (``neighbors.images_needed(cell, r_max)``).
        block: centre atoms per dense block (memory ~ block * N * (2c+1)^3).
        atom_mask: optional (N,) bool, False for padding atoms.

    Returns:
        (T, T, B) float counts; [a, b, k] counts pairs with i of type a and j of type b.
    """
    positions = jnp.asarray(positions)
    cell = jnp.asarray(cell, positions.dtype)
    types = jnp.asarray(types, jnp.int32)
    n = positions.shape[0]
    if atom_mask is None:
        atom_mask = jnp.ones((n,), bool)
    s = positions @ jnp.linalg.inv(cell)
    grid = jnp.asarray(neighbors._image_grid(images), positions.dtype)
    dr = r_max / n_bins
    block = max(1, min(block, n))
    nblocks = -(-n // block)
    centres = jnp.arange(nblocks * block).reshape(nblocks, block)
    length = n_types * n_types * n_bins

    def one_block(carry, ib):
        i = jnp.minimum(ib, n - 1)
        valid_i = (ib < n) & atom_mask[i]
        d = s[None, :, :] - s[i][:, None, :]
        d = d - jnp.round(d)
        vec = (d[:, :, None, :] + grid[None, None]) @ cell  # (B, N, M, 3)
        r = jnp.sqrt(jnp.sum(vec * vec, axis=-1))
        is_self = (jnp.arange(n)[None, :, None] == i[:, None, None]) & jnp.all(grid == 0, -1)[None, None]
        ok = (r < r_max) & ~is_self & valid_i[:, None, None] & atom_mask[None, :, None]
        k = jnp.clip(jnp.floor(r / dr).astype(jnp.int32), 0, n_bins - 1)
        pair = types[i][:, None, None] * n_types + types[None, :, None]
        key = jnp.where(ok, pair * n_bins + k, length)
        h = jnp.bincount(key.reshape(-1), length=length + 1)[:length]
        return carry + h.astype(positions.dtype), None

    total, _ = jax.lax.scan(one_block, jnp.zeros((length,), positions.dtype), centres)
    return total.reshape(n_types, n_types, n_bins)


def _shell_volumes(r_max: float, n_bins: int):
    edges = np.linspace(0.0, r_max, n_bins + 1)
    return edges, 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)


def rdf(positions, cells, types, n_types: int, r_max: float = 10.0, n_bins: int = 200,
        progress: bool = False):
    """Partial and total g(r) averaged over frames.

    Args:
        positions: (F, N, 3) or (N, 3), Å; cells: (F, 3, 3) or (3, 3).
        types: (N,) int species index; n_types: T.
        r_max: Å; n_bins: number of bins of width r_max / n_bins.

    Returns:
        dict with ``r`` (B,) bin centres, ``g_partial`` (T, T, B), ``g_total`` (B,),
        ``counts`` (T,) atoms per type, ``density`` mean number density (1/Å^3).
    """
    from glassjax.errors import ConfigError

    if r_max <= 0 or n_bins < 1:
        raise ConfigError(f"g(r): need r_max > 0 and n_bins >= 1 (got r_max={r_max}, n_bins={n_bins})")
    positions = np.asarray(positions, dtype=float)
    cells = np.asarray(cells, dtype=float)
    if positions.ndim == 2:
        positions, cells = positions[None], cells[None]
    types = np.asarray(types, dtype=np.int32)
    nt = np.bincount(types, minlength=n_types).astype(float)
    n = positions.shape[1]
    edges, shell = _shell_volumes(r_max, n_bins)
    g = np.zeros((n_types, n_types, n_bins))
    vols = np.abs(np.linalg.det(cells))
    it = range(positions.shape[0])
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="g(r)", unit="frame")
    images = None
    for f in it:
        img = neighbors.images_needed(cells[f], r_max)
        if images is None or any(a > b for a, b in zip(img, images)):
            images = img
        dtype = jnp.asarray(0.0).dtype
        h = np.asarray(pair_histogram(jnp.asarray(positions[f], dtype), jnp.asarray(cells[f], dtype),
                                      jnp.asarray(types), n_types=n_types, n_bins=n_bins, r_max=float(r_max),
                                      images=images))
        norm = np.outer(nt, nt) / vols[f]
        with np.errstate(divide="ignore", invalid="ignore"):
            g += np.where(norm[..., None] > 0, h / (norm[..., None] * shell), 0.0)
    g /= positions.shape[0]
    c = nt / n
    g_total = np.einsum("a,b,abk->k", c, c, g)
    return {"r": 0.5 * (edges[1:] + edges[:-1]), "g_partial": g, "g_total": g_total,
            "counts": nt, "density": float(np.mean(n / vols)), "r_max": float(r_max)}


def species_types(species: Sequence[str], elements: Optional[Sequence[str]] = None):
    """(types (N,), elements) with elements sorted by atomic number unless given."""
    from ase.data import atomic_numbers

    species = np.asarray(species)
    if elements is None:
        elements = sorted(set(species.tolist()), key=lambda e: atomic_numbers[e])
    index = {e: i for i, e in enumerate(elements)}
    return np.array([index[s] for s in species], dtype=np.int32), list(elements)
