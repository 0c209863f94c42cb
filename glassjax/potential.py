"""Forces, virial and stress of any energy function, by automatic differentiation.

Every potential in glassjax (DeepPot-SE, the classical Teter/Du force field, ensembles) is
just an energy function ``energy_fn(positions, cell, *args) -> E`` (eV) with positions
(N, 3) in Å and cell vectors as rows (3, 3).  This module turns it into forces and virial,
as apax separates its energy model from the force/stress wrapper.

Virial by homogeneous strain: with positions and cell deformed as ``x (1 + e)`` and
``cell (1 + e)``, the extensive virial is ``W = -dE/de`` (eV, DeePMD sign: positive when
compressed) and ASE's stress is ``sigma = -W / V`` (eV/Å^3).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def strained_energy(energy_fn: Callable, positions, cell, strain, *args, **kwargs):
    """Energy after deforming positions and cell by ``(1 + strain)`` (strain is 3x3)."""
    deform = jnp.eye(3, dtype=cell.dtype) + strain
    return energy_fn(positions @ deform, cell @ deform, *args, **kwargs)


def energy_forces_virial(energy_fn: Callable, positions, cell, *args, **kwargs):
    """Return ``(energy, forces (N, 3), virial (3, 3))`` of ``energy_fn``.

    forces = -dE/dx; virial = -dE/de at e = 0 (extensive, eV).  Extra ``args`` (e.g. a
    neighbour list, parameters) are passed through unchanged.
    """
    zero = jnp.zeros((3, 3), dtype=cell.dtype)

    def f(x, e):
        return strained_energy(energy_fn, x, cell, e, *args, **kwargs)

    energy, (g_x, g_e) = jax.value_and_grad(f, argnums=(0, 1))(positions, zero)
    return energy, -g_x, -g_e


def energy_and_forces(energy_fn: Callable, positions, cell, *args, **kwargs):
    """Return ``(energy, forces)`` (cheaper than :func:`energy_forces_virial`)."""
    energy, g_x = jax.value_and_grad(energy_fn)(positions, cell, *args, **kwargs)
    return energy, -g_x


def stress_from_virial(virial, cell):
    """ASE-convention stress (3, 3), eV/Å^3, from the extensive virial (eV)."""
    return -virial / jnp.abs(jnp.linalg.det(cell))


def pressure_from_virial(virial, cell, kinetic_energy=0.0):
    """Scalar pressure, eV/Å^3: (tr W + 2 KE) / (3 V) (virial part plus ideal-gas part)."""
    vol = jnp.abs(jnp.linalg.det(cell))
    return (jnp.trace(virial) + 2.0 * kinetic_energy) / (3.0 * vol)
