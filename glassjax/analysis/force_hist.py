"""Histograms of the force on boron atoms along the deformation axis, split by 3B / 4B.

The 2024 paper (Fig. S9): "the forces acting on boron atoms along the deformation direction
were analyzed ... histograms of absolute force values", for 3B and 4B separately at every
strain, to compare the stability of the two units.

:func:`force_histogram` is a pure JAX kernel over one frame (vmappable over frames):
the force component f_i = F_i · e along the unit axis e (or |F_i · e|), binned per class.
The classes (e.g. 0 = 3B, 1 = 4B, -1 = ignore) come from the boron coordination of the
*same* frame (:func:`glassjax.analysis.coordination.coordination_numbers`), since 3B turn
into 4B during deformation; :func:`boron_classes` builds them.
"""

from __future__ import annotations

from functools import partial
from typing import Tuple

import jax
import jax.numpy as jnp
import numpy as np

#: Class names of :func:`boron_classes`, in id order.
BORON_CLASSES: Tuple[str, ...] = ("3B", "4B")


def axis_vector(axis) -> np.ndarray:
    """Unit vector for ``'x'|'y'|'z'``, 0|1|2 or a 3-vector."""
    from glassjax.errors import ConfigError

    if isinstance(axis, str):
        if axis.lower() not in ("x", "y", "z"):
            raise ConfigError(f"force histogram: axis must be x, y, z or a vector, not {axis!r}")
        axis = "xyz".index(axis.lower())
    if np.ndim(axis) == 0:
        e = np.zeros(3)
        e[int(axis)] = 1.0
        return e
    e = np.asarray(axis, float).reshape(3)
    norm = np.linalg.norm(e)
    if norm == 0:
        raise ConfigError("force histogram: the axis vector is zero")
    return e / norm


@partial(jax.jit, static_argnames=("n_classes", "absolute"))
def force_histogram(forces, classes, axis, edges, *, n_classes: int = 2, absolute: bool = True):
    """Per-class histogram of the force component along ``axis`` for one frame.

    Args:
        forces: (N, 3) eV/Å.
        classes: (N,) int class ids in [0, n_classes); negative ids are ignored.
        axis: (3,) unit vector (the deformation direction).
        edges: (B+1,) increasing bin edges, eV/Å; values outside are not counted.
        n_classes: C.
        absolute: histogram |F·e| (the paper) instead of F·e.

    Returns:
        ``(counts (C, B), sums (C,), n (C,))``: histogram counts, the sum of the binned
        quantity over all atoms of each class (for means) and the number of atoms per class.
    """
    forces = jnp.asarray(forces)
    f = forces @ jnp.asarray(axis, forces.dtype)
    if absolute:
        f = jnp.abs(f)
    edges = jnp.asarray(edges, forces.dtype)
    nb = edges.shape[0] - 1
    k = jnp.searchsorted(edges, f, side="right") - 1
    # the last edge is inclusive, like numpy.histogram
    k = jnp.where(f == edges[-1], nb - 1, k)
    inside = (k >= 0) & (k < nb)
    classes = jnp.asarray(classes)
    valid = (classes >= 0) & (classes < n_classes)
    key = jnp.where(inside & valid, classes * nb + k, n_classes * nb)
    counts = jnp.bincount(key, length=n_classes * nb + 1)[:-1].reshape(n_classes, nb)
    onehot = (classes[:, None] == jnp.arange(n_classes)[None, :]).astype(forces.dtype)
    return counts, onehot.T @ f, jnp.sum(onehot, axis=0)


def force_histograms(forces, classes, axis="z", edges=None, n_classes: int = 2, absolute: bool = True):
    """:func:`force_histogram` over frames.

    Args:
        forces: (F, N, 3) eV/Å.
        classes: (F, N) or (N,) int class ids (per frame, or fixed).
        axis: 'x' | 'y' | 'z' | index | vector.
        edges: (B+1,) bin edges, eV/Å; default 0-5 eV/Å in 50 bins (or ±5 when not absolute).

    Returns:
        dict: ``edges``, ``counts`` (F, C, B), ``mean`` (F, C) mean of the binned quantity
        over all atoms of the class (NaN when empty), ``n`` (F, C).
    """
    forces = np.asarray(forces, float)
    if forces.ndim == 2:
        forces = forces[None]
    classes = np.asarray(classes)
    if classes.ndim == 1:
        classes = np.broadcast_to(classes, forces.shape[:2])
    if edges is None:
        edges = np.linspace(0.0, 5.0, 51) if absolute else np.linspace(-5.0, 5.0, 101)
    edges = np.asarray(edges, float)
    e = axis_vector(axis)
    dtype = jnp.asarray(0.0).dtype
    fn = jax.vmap(lambda f, c: force_histogram(f, c, jnp.asarray(e, dtype), jnp.asarray(edges, dtype),
                                               n_classes=n_classes, absolute=absolute))
    counts, sums, n = fn(jnp.asarray(forces, dtype), jnp.asarray(classes, jnp.int32))
    n = np.asarray(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.asarray(sums) / np.where(n > 0, n, np.nan)
    return {"edges": edges, "counts": np.asarray(counts), "mean": mean, "n": n}


@partial(jax.jit, static_argnames=("spec", "ntypes"))
def _boron_cn_chunk(positions, cells, types, cutoffs, spec, ntypes):
    from glassjax import neighbors
    from glassjax.analysis.coordination import coordination_numbers

    def one(pos, cell):
        nl = neighbors.build(pos, cell, spec)
        return coordination_numbers(pos, cell, types, nl, cutoffs, ntypes), nl.overflow

    return jax.vmap(one)(positions, cells)


def boron_classes(frames, cutoffs=None, chunk: int = 32) -> np.ndarray:
    """(F, N) class ids per frame: 0 = 3B, 1 = 4B, -1 = other atoms and other B coordination.

    B coordination is the number of O within the B-O cutoff of
    :mod:`glassjax.analysis.coordination` (default 2.0 Å; ``cutoffs={"B-O": 1.9}`` to change).
    """
    from glassjax.analysis.bonds import (SpeciesIndex, cutoff_matrix, grow_spec, max_cutoff,
                                         neighbor_spec, parse_cutoffs)

    type_map = frames.elements
    types = frames.types(type_map)
    sp = SpeciesIndex.from_type_map(type_map)
    out = np.full((frames.nframes, frames.natoms), -1, dtype=np.int32)
    if sp.B < 0 or sp.O < 0:
        return out
    cut = cutoff_matrix(type_map, parse_cutoffs(cutoffs))
    dtype = jnp.asarray(0.0).dtype
    spec = neighbor_spec(jnp.asarray(frames.positions[0], dtype), frames.cells[0], max_cutoff(cut))
    spec = grow_spec(spec, frames.cells)
    spec = type(spec)(spec.cutoff, spec.skin, max(8, spec.capacity // 2), spec.images, spec.block)
    tj, cj = jnp.asarray(types), jnp.asarray(cut, dtype)
    isb = types == sp.B
    for s in range(0, frames.nframes, chunk):
        pos = jnp.asarray(frames.positions[s:s + chunk], dtype)
        cells = jnp.asarray(frames.cells[s:s + chunk], dtype)
        while True:
            cn, overflow = _boron_cn_chunk(pos, cells, tj, cj, spec, len(type_map))
            if not bool(jnp.any(overflow)):
                break
            spec = grow_spec(spec, frames.cells[s:s + chunk])
        cno = np.asarray(cn)[..., sp.O]
        out[s:s + chunk] = np.where(isb & (cno == 3), 0, np.where(isb & (cno == 4), 1, -1))
    return out
