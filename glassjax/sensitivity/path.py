"""Strain derivatives of the smooth 4B fraction and of the pressure along a compression path.

For every frame ``(R, h)`` of a deformation run (positions (N, 3) Å, cell rows (3, 3) Å), the
observables are evaluated on the affinely deformed frame ``(R F, h F)`` with

    F(eps) = 1 + eps D,     D = 1 (triaxial / hydrostatic)  or  D = e_a e_a (uniaxial along axis a),

and differentiated at ``eps = 0`` (``eps > 0`` is tension, ``eps < 0`` compression, as in
:mod:`glassjax.md.deform`):

* ``n4``: :func:`glassjax.analysis.coordination.smooth_boron_n4` (Fermi-switched B-O
  coordination, sigmoid step at 3.5; dimensionless);
* ``pressure``: the **virial (potential) pressure only**, ``P = tr(W) / (3 V)`` in GPa
  (``W = -dE/de``, positive under compression).  The kinetic part ``2 KE / (3 V)`` is left out:
  at fixed momenta it depends on strain only through ``1/V``, it is absent in inherent
  structures, and a frame's momenta are not a function of an imposed strain.

``dX/deps`` is computed by automatic differentiation (``jax.jvp`` at ``eps = 0``,
:func:`path_strain_derivatives`) and by central finite differences
(:func:`glassjax.sensitivity.fd.central_difference`, :func:`path_strain_derivatives_fd`), both
vectorised over frames with ``jax.vmap`` (the frames of one run share N; one neighbour-list
capacity for all frames, :func:`path_neighbor_lists`).  The affine derivative is the
instantaneous response at frozen internal coordinates (clamped ion).  With
:func:`path_strain_derivatives_relaxed` frames that are energy minima (inherent structures)
get the relaxed-ion derivative, by implicit differentiation
(:mod:`glassjax.sensitivity.implicit`).

Clamped-ion check at 0 K: ``dP/deps = -(1/3) sum_i dsigma_ii/deps = -(1/3) sum_{i<=3, j<=3} C_ij``
(triaxial) with C from :func:`glassjax.sensitivity.elastic.elastic_tensor` (same convention:
Cauchy stress of the deformed frame).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable, Dict, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from glassjax import neighbors
from glassjax.analysis import bonds
from glassjax.analysis.coordination import smooth_boron_n4
from glassjax.errors import ConfigError, SimulationError
from glassjax.potential import energy_forces_virial, pressure_from_virial
from glassjax.sensitivity import fd, implicit
from glassjax.units import EV_PER_A3_TO_GPA

MODES = ("triaxial", "uniaxial")


def loading_direction(mode: str = "triaxial", axis: int = 0, dtype=jnp.float64):
    """(3, 3) ``D`` of ``F = 1 + eps D``: the identity (triaxial) or ``e_a e_a`` (uniaxial along ``axis``)."""
    if mode not in MODES:
        raise ConfigError(f"loading_direction: mode must be one of {MODES}, got {mode!r}")
    if mode == "triaxial":
        return jnp.eye(3, dtype=dtype)
    if axis not in (0, 1, 2):
        raise ConfigError(f"loading_direction: uniaxial axis must be 0, 1 or 2 (x, y, z), got {axis!r}")
    return jnp.zeros((3, 3), dtype=dtype).at[axis, axis].set(1.0)


def frame_observables(energy_fn: Callable, positions, cell, nl, types, cutoffs, species: bonds.SpeciesIndex,
                      width: float = 0.05, cn_width: float = 0.1):
    """``(n4, pressure)`` of one frame: smooth N4 (dimensionless) and virial pressure (GPa).

    positions (N, 3) Å, cell (3, 3) rows Å, types (N,) int, cutoffs (T, T) Å bond cutoffs;
    ``nl`` must reach the potential's cutoff and ``max(cutoffs) + 10 width``.
    """
    _, _, w = energy_forces_virial(energy_fn, positions, cell, nl)
    p = pressure_from_virial(w, cell) * EV_PER_A3_TO_GPA
    n4 = smooth_boron_n4(positions, cell, types, nl, cutoffs, species, width=width, cn_width=cn_width)
    return jnp.stack([n4, p])


def _strained(energy_fn, positions, cell, nl, types, cutoffs, species, direction, eps, width, cn_width):
    f = jnp.eye(3, dtype=cell.dtype) + eps * direction
    return frame_observables(energy_fn, positions @ f, cell @ f, nl, types, cutoffs, species, width, cn_width)


@partial(jax.jit, static_argnames=("energy_fn", "species", "width", "cn_width"))
def _ad_frames(energy_fn, positions, cells, nls, types, cutoffs, species, direction, width, cn_width):
    def one(x, c, nl):
        g = partial(_strained, energy_fn, x, c, nl, types, cutoffs, species, direction, width=width,
                    cn_width=cn_width)
        zero = jnp.zeros((), dtype=c.dtype)
        return jax.jvp(g, (zero,), (jnp.ones_like(zero),))

    return jax.vmap(one)(positions, cells, nls)


@partial(jax.jit, static_argnames=("energy_fn", "species", "width", "cn_width"))
def _values_at(energy_fn, positions, cells, nls, types, cutoffs, species, direction, eps, width, cn_width):
    def one(x, c, nl):
        return _strained(energy_fn, x, c, nl, types, cutoffs, species, direction, eps, width, cn_width)

    return jax.vmap(one)(positions, cells, nls)


def path_neighbor_lists(positions, cells, cutoff: float, skin: float = 0.5, capacity_factor: float = 1.3):
    """One neighbour-list capacity for all frames, built for each frame (vmapped).

    Args:
        positions: (F, N, 3) Å; cells: (F, 3, 3) rows Å; cutoff: list cutoff without skin, Å
            (the larger of the potential's cutoff and the bond cutoffs + 10 width).
        skin: Å, must exceed the largest pair-distance change of the finite-difference strains.

    Returns:
        ``(nls, spec)``: a batched :class:`~glassjax.neighbors.NeighborList` (leading axis F)
        and the shared static spec.
    """
    positions = jnp.asarray(positions)
    cells_np = np.asarray(cells, dtype=np.float64)
    if positions.ndim != 3 or cells_np.shape != (positions.shape[0], 3, 3):
        raise ConfigError(f"path_neighbor_lists: need positions (F, N, 3) and cells (F, 3, 3), got "
                          f"{positions.shape} and {cells_np.shape}")
    images = tuple(int(x) for x in np.max([neighbors.images_needed(c, cutoff + skin) for c in cells_np], axis=0))
    probe = neighbors.NeighborSpec(float(cutoff), float(skin), capacity=1, images=images)
    cells_j = jnp.asarray(cells_np, positions.dtype)
    counts = jax.vmap(lambda x, c: neighbors.build(x, c, probe).max_count)(positions, cells_j)
    capacity = max(1, int(math.ceil(int(jnp.max(counts)) * capacity_factor)))
    spec = neighbors.NeighborSpec(float(cutoff), float(skin), capacity, images, block=min(256, positions.shape[1]))
    nls = jax.vmap(lambda x, c: neighbors.build(x, c, spec))(positions, cells_j)
    if bool(jnp.any(nls.overflow)):
        raise SimulationError("path_neighbor_lists: the shared neighbour list overflowed (internal error; "
                              "raise capacity_factor)")
    return nls, spec


def _prepare(energy_fn, positions, cells, types, type_map, cutoffs, cutoff, skin, width, nls, mode, axis):
    direction = loading_direction(mode, axis)
    positions = jnp.asarray(positions)
    if positions.ndim == 2:
        positions = positions[None]
    cells = jnp.asarray(cells, dtype=positions.dtype)
    if cells.ndim == 2:
        cells = cells[None]
    species = bonds.SpeciesIndex.from_type_map(list(type_map))
    if species.B < 0 or species.O < 0:
        raise ConfigError(f"path strain derivatives: type_map {list(type_map)} needs B and O for the 4B fraction")
    cut = np.asarray(bonds.cutoff_matrix(list(type_map)) if cutoffs is None else cutoffs, dtype=np.float64)
    if nls is None:
        if cutoff is None:
            cutoff = getattr(energy_fn, "cutoff", None)
            if cutoff is None:
                raise ConfigError("path strain derivatives: pass cutoff= (the potential's cutoff, Å) or nls=")
        cutoff = max(float(cutoff), float(np.max(cut)) + 10 * width)
        nls, _ = path_neighbor_lists(positions, cells, cutoff, skin)
    if nls.idx.ndim != 3 or nls.idx.shape[:2] != positions.shape[:2]:
        raise ConfigError(f"path strain derivatives: nls must be batched over the {positions.shape[0]} frames of "
                          f"{positions.shape[1]} atoms (path_neighbor_lists), got idx shape {tuple(nls.idx.shape)}")
    types = jnp.asarray(types, dtype=jnp.int32)
    if types.shape != (positions.shape[1],):
        raise ConfigError(f"path strain derivatives: types must have shape ({positions.shape[1]},), got {types.shape}")
    return positions, cells, types, species, jnp.asarray(cut, positions.dtype), nls, \
        direction.astype(positions.dtype)


def path_strain_derivatives(energy_fn: Callable, positions, cells, types, type_map: Sequence[str],
                            mode: str = "triaxial", axis: int = 0, cutoffs=None, cutoff: Optional[float] = None,
                            skin: float = 0.5, width: float = 0.05, cn_width: float = 0.1,
                            nls=None) -> Dict[str, jax.Array]:
    """Affine (clamped-ion) strain derivatives along a path, by ``jax.jvp`` (vmapped over frames).

    Args:
        energy_fn: ``energy_fn(positions, cell, nl) -> E`` (eV); must be hashable (a static
            argument of the jitted kernel: create it once).
        positions: (F, N, 3) Å (or one frame (N, 3)); cells: (F, 3, 3) rows Å.
        types: (N,) int types in ``type_map`` order (e.g. ``Frames.types(type_map)``).
        mode, axis: ``"triaxial"`` (``F = (1 + eps) 1``) or ``"uniaxial"`` along ``axis``.
        cutoffs: (T, T) bond cutoffs, Å (default :func:`glassjax.analysis.bonds.cutoff_matrix`).
        cutoff: the potential's cutoff (default ``energy_fn.cutoff``); skin: list skin, Å.
        nls: optional batched lists (from :func:`path_neighbor_lists`).

    Returns:
        dict of (F,) arrays: ``n4``, ``pressure`` (GPa, virial part), ``dn4_deps``,
        ``dpressure_deps`` (GPa per unit strain).
    """
    x, c, t, sp, cut, nls, d = _prepare(energy_fn, positions, cells, types, type_map, cutoffs, cutoff, skin, width,
                                        nls, mode, axis)
    val, der = _ad_frames(energy_fn, x, c, nls, t, cut, sp, d, float(width), float(cn_width))
    return {"n4": val[:, 0], "pressure": val[:, 1], "dn4_deps": der[:, 0], "dpressure_deps": der[:, 1]}


def path_strain_derivatives_fd(energy_fn: Callable, positions, cells, types, type_map: Sequence[str],
                               mode: str = "triaxial", axis: int = 0, h: float = 1e-5, cutoffs=None,
                               cutoff: Optional[float] = None, skin: float = 0.5, width: float = 0.05,
                               cn_width: float = 0.1, nls=None) -> Dict[str, jax.Array]:
    """The same derivatives by central finite strain ``(X(+h) - X(-h)) / 2h`` (vmapped over frames).

    ``h * cutoff`` must stay well below ``skin``.  Same arguments and keys as
    :func:`path_strain_derivatives`.
    """
    x, c, t, sp, cut, nls, d = _prepare(energy_fn, positions, cells, types, type_map, cutoffs, cutoff, skin, width,
                                        nls, mode, axis)

    def values(eps):
        return _values_at(energy_fn, x, c, nls, t, cut, sp, d, jnp.asarray(eps, c.dtype), float(width),
                          float(cn_width))

    val = values(0.0)
    der = fd.central_difference(values, 0.0, h)
    return {"n4": val[:, 0], "pressure": val[:, 1], "dn4_deps": der[:, 0], "dpressure_deps": der[:, 1]}


def path_strain_derivatives_relaxed(energy_fn: Callable, positions, cells, types, type_map: Sequence[str],
                                    mode: str = "triaxial", axis: int = 0, cutoffs=None,
                                    cutoff: Optional[float] = None, skin: float = 0.5, width: float = 0.05,
                                    cn_width: float = 0.1, nls=None, method: str = "dense",
                                    force_tol: float = 1e-3) -> Dict[str, jax.Array]:
    """Relaxed-ion (inherent-structure) strain derivatives for frames that are energy minima.

    With internal coordinates ``u`` (positions ``u F``), ``H du/deps = -d^2E/du deps`` and
    ``dX/deps = dX/deps|_u + dX/du . du/deps`` (:mod:`glassjax.sensitivity.implicit`).  Each
    frame must be a minimum at its cell (largest force <= ``force_tol`` eV/Å, else
    :class:`~glassjax.errors.SimulationError`): minimise each frame first (e.g.
    ``glassjax.md.minimize.fire`` at fixed cell).  Frames are processed one by one.
    Returns the keys of :func:`path_strain_derivatives`.
    """
    x, c, t, sp, cut, nls, d = _prepare(energy_fn, positions, cells, types, type_map, cutoffs, cutoff, skin, width,
                                        nls, mode, axis)
    implicit._check_method(method)
    out = []
    for k in range(x.shape[0]):
        nl = jax.tree_util.tree_map(lambda a: a[k], nls)
        implicit.check_minimum(energy_fn, x[k], c[k], nl, force_tol, what=f"frame {k}")
        out.append(_relaxed_frame(energy_fn, x[k], c[k], nl, t, cut, sp, d, method, float(width), float(cn_width),
                                  implicit._solve_opts(x[k], {})))
    val = jnp.stack([o[0] for o in out])
    der = jnp.stack([o[1] for o in out])
    return {"n4": val[:, 0], "pressure": val[:, 1], "dn4_deps": der[:, 0], "dpressure_deps": der[:, 1]}


@partial(jax.jit, static_argnames=("energy_fn", "species", "method", "width", "cn_width", "opts"))
def _relaxed_frame(energy_fn, positions, cell, nl, types, cutoffs, species, direction, method, width, cn_width, opts):
    def energy_of(eps, u, cell0, nl_):
        f = jnp.eye(3, dtype=cell0.dtype) + eps * direction
        return energy_fn(u @ f, cell0 @ f, nl_)

    zero = jnp.zeros((), dtype=cell.dtype)

    def grad_u(eps):
        return jax.grad(energy_of, argnums=1)(eps, positions, cell, nl)

    mixed = jax.jvp(grad_u, (zero,), (jnp.ones_like(zero),))[1]
    du = implicit._solve_traced(energy_of, zero, positions, cell, nl, -mixed, method, opts)

    def g(eps, u):
        return _strained(energy_fn, u, cell, nl, types, cutoffs, species, direction, eps, width, cn_width)

    return jax.jvp(g, (zero, positions), (jnp.ones_like(zero), du))
