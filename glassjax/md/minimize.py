"""FIRE energy minimisation, with or without relaxing the cell, in one jitted ``while_loop``.

FIRE: E. Bitzek, P. Koskinen, F. Gähler, M. Moseler, P. Gumbsch, Phys. Rev. Lett. 97, 170201
(2006), with unit masses and the parameter values ASE's ``FIRE`` uses (dt 0.1, dt_max 1.0,
N_min 5, f_inc 1.1, f_dec 0.5, alpha 0.1, f_alpha 0.99, max step 0.2 Å per iteration).

Cell relaxation uses generalised coordinates like ASE's ``UnitCellFilter``: with the
deformation ``D = 1 + eta / N`` (N atoms) of the starting cell ``h0`` (rows),
positions ``x = u D`` and cell ``h = h0 D``, the minimised function is the enthalpy
``H(u, eta) = E(u D, h0 D) + P V``; the generalised force on ``eta`` is the virial minus
``P V`` divided by N, so converging all generalised forces below ``fmax`` means forces below
``fmax`` (eV/Å) and ``|stress - target| V / N`` below ``fmax``.  ``couple`` / ``mask``
restrict which strain components move, as for the barostat (``iso``, ``aniso``, ``tri``).
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from glassjax import neighbors
from glassjax.errors import ConfigError, SimulationError
from glassjax.md.integrators import Ensemble, _project, pressure_target_tensor
from glassjax.neighbors import NeighborList, NeighborSpec


class MinimizeResult(NamedTuple):
    """positions (N, 3) Å, cell (3, 3) Å, energy eV (the enthalpy E + PV when relaxing the cell
    under pressure), fmax (largest generalised force, eV/Å),
    steps, converged, nl (valid for the final positions), spec."""

    positions: jax.Array
    cell: jax.Array
    energy: jax.Array
    fmax: float
    steps: int
    converged: bool
    nl: NeighborList
    spec: NeighborSpec


class _Fire(NamedTuple):
    u: jax.Array
    eta: jax.Array
    v: jax.Array  # (N + 3, 3)
    dt: jax.Array
    alpha: jax.Array
    n_pos: jax.Array
    nl: NeighborList
    overflow: jax.Array
    step: jax.Array
    fmax: jax.Array
    energy: jax.Array


def _enthalpy(energy_fn, u, eta, cell0, nl, p_ext, n):
    d = jnp.eye(3, dtype=u.dtype) + eta / n
    cell = cell0 @ d
    vol = jnp.abs(jnp.linalg.det(cell))
    return energy_fn(u @ d, cell, nl) + jnp.trace(p_ext) / 3.0 * vol


FIRE_DT0, FIRE_ALPHA0 = 0.1, 0.1  # ASE's starting time step and mixing


def fire_move(f, v, dt, alpha, n_pos, fmax_target, max_step_len):
    """One FIRE update of one system (pure; vmap it for a batch).

    Args:
        f: (M, 3) generalised forces, eV/Å; v: (M, 3) FIRE velocities.
        dt, alpha, n_pos: FIRE's time step, mixing and count of downhill steps (scalars).
        fmax_target: convergence threshold, eV/Å; max_step_len: largest move, Å.

    Returns:
        ``(dr, v, dt, alpha, n_pos, fmax)``: the (M, 3) move (zero once ``fmax`` = the
        largest row norm of ``f`` is at most ``fmax_target``) and the new FIRE variables.
    """
    dt_max, n_min, f_inc, f_dec, a_start, f_a = 1.0, 5, 1.1, 0.5, FIRE_ALPHA0, 0.99
    fmax = jnp.sqrt(jnp.max(jnp.sum(f * f, axis=1)))
    power = jnp.sum(f * v)
    vnorm = jnp.sqrt(jnp.sum(v * v))
    fnorm = jnp.sqrt(jnp.sum(f * f))
    mixed = (1.0 - alpha) * v + alpha * vnorm * f / jnp.maximum(fnorm, 1e-300)
    up = power > 0
    v = jnp.where(up, mixed, 0.0)
    grow = up & (n_pos > n_min)
    dt = jnp.where(up, jnp.where(grow, jnp.minimum(dt * f_inc, dt_max), dt), dt * f_dec)
    alpha = jnp.where(up, jnp.where(grow, alpha * f_a, alpha), a_start)
    n_pos = jnp.where(up, n_pos + 1, 0)
    v = v + dt * f
    dr = dt * v
    longest = jnp.sqrt(jnp.max(jnp.sum(dr * dr, axis=1)))
    dr = dr * jnp.minimum(1.0, max_step_len / jnp.maximum(longest, 1e-300))
    dr = jnp.where(fmax <= fmax_target, 0.0, dr)
    return dr, v, dt, alpha, n_pos, fmax


@partial(jax.jit, static_argnames=("energy_fn", "spec", "cell_ens", "max_steps"))
def _fire_loop(energy_fn, state: _Fire, cell0, spec: NeighborSpec, cell_ens: Optional[Ensemble], p_ext,
               fmax_target, max_steps: int, max_step_len):
    n = state.u.shape[0]

    def gen_forces(u, eta, nl):
        e, (gu, ge) = jax.value_and_grad(_enthalpy, argnums=(1, 2))(energy_fn, u, eta, cell0, nl, p_ext, n)
        if cell_ens is None:
            ge = jnp.zeros_like(ge)
        else:
            ge = _project(ge, cell_ens)
        f = -jnp.concatenate([gu, ge], axis=0)
        return e, f

    def cond(s: _Fire):
        return (s.step < max_steps) & (s.fmax > fmax_target) & (~s.overflow)

    def body(s: _Fire):
        d = jnp.eye(3, dtype=s.u.dtype) + s.eta / n
        nl = neighbors.update(s.nl, s.u @ d, cell0 @ d, spec)
        e, f = gen_forces(s.u, s.eta, nl)
        dr, v, dt, alpha, n_pos, fmax = fire_move(f, s.v, s.dt, s.alpha, s.n_pos, fmax_target, max_step_len)
        u = s.u + dr[:n]
        eta = s.eta + dr[n:]
        return _Fire(u=u, eta=eta, v=v, dt=dt, alpha=alpha, n_pos=n_pos, nl=nl,
                     overflow=s.overflow | nl.overflow, step=s.step + 1, fmax=fmax, energy=e)

    return jax.lax.while_loop(cond, body, state)


def fire(energy_fn: Callable, positions, cell, nl: NeighborList, spec: NeighborSpec, *, relax_cell: bool = False,
         couple: str = "tri", mask=None, pressure=0.0, fmax: float = 1e-3, max_steps: int = 5000,
         max_step: float = 0.2, max_reallocations: int = 5) -> MinimizeResult:
    """Minimise the energy (or, with ``relax_cell``, the enthalpy at ``pressure`` GPa).

    Args:
        energy_fn: ``energy_fn(positions, cell, nl) -> E`` (eV).
        positions: (N, 3) Å; cell: (3, 3) rows Å; nl, spec: a neighbour list for them.
        relax_cell: also relax the cell; ``couple`` (iso/aniso/tri) and ``mask`` as for the
            barostat.
        pressure: target pressure, GPa (scalar: hydrostatic).
        fmax: convergence threshold on the largest generalised force, eV/Å.
        max_steps: iteration limit (result has ``converged=False`` when reached).
        max_step: largest move per iteration, Å.

    The loop stops early when the neighbour list overflows; it is then reallocated and the
    minimisation continues from where it stopped (velocities reset).
    """
    if fmax <= 0 or max_steps < 1 or max_step <= 0:
        raise ConfigError(f"fire: need fmax > 0, max_steps >= 1, max_step > 0 (got {fmax}, {max_steps}, {max_step})")
    positions = jnp.asarray(positions)
    dtype = positions.dtype
    cell0 = jnp.asarray(cell, dtype=dtype)
    n = positions.shape[0]
    cell_ens = None
    if relax_cell:
        m = None if mask is None else tuple(tuple(bool(x) for x in row) for row in np.asarray(mask))
        cell_ens = Ensemble(dt=1.0, tau_p=1.0, couple=couple, mask=m)
    p_ext = pressure_target_tensor(pressure, dtype)
    if relax_cell and bool(jnp.any(p_ext != jnp.trace(p_ext) / 3.0 * jnp.eye(3, dtype=dtype))):
        raise ConfigError("fire: only a hydrostatic target pressure is supported for cell relaxation")
    eta = jnp.zeros((3, 3), dtype=dtype)
    u = positions
    steps_done = 0
    for _ in range(max_reallocations + 1):
        st = _Fire(u=u, eta=eta, v=jnp.zeros((n + 3, 3), dtype), dt=jnp.asarray(FIRE_DT0, dtype),
                   alpha=jnp.asarray(FIRE_ALPHA0, dtype), n_pos=jnp.asarray(0), nl=nl, overflow=jnp.asarray(False),
                   step=jnp.asarray(0), fmax=jnp.asarray(jnp.inf, dtype), energy=jnp.asarray(0.0, dtype))
        out = _fire_loop(energy_fn, st, cell0, spec, cell_ens, p_ext, float(fmax), int(max_steps - steps_done),
                         float(max_step))
        steps_done += int(out.step)
        u, eta = out.u, out.eta
        if not bool(out.overflow):
            break
        d = jnp.eye(3, dtype=dtype) + eta / n
        nl, spec = neighbors.allocate(u @ d, np.asarray(cell0 @ d), spec.cutoff, spec.skin,
                                      capacity_factor=1.5, image_margin=1.0, block=spec.block)
        # keep u, eta: the new list is built for the current deformed positions, which is
        # what the loop evaluates (u @ d with the same cell0)
    else:
        raise SimulationError("fire: neighbour list kept overflowing; the structure may be collapsing")
    d = jnp.eye(3, dtype=dtype) + eta / n
    return MinimizeResult(positions=u @ d, cell=cell0 @ d, energy=out.energy, fmax=float(out.fmax),
                          steps=steps_done, converged=bool(out.fmax <= fmax), nl=out.nl, spec=spec)
