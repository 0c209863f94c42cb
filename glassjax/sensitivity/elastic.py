"""The 0 K elastic tensor of a structure by automatic differentiation of the stress.

Conventions (stated once, used everywhere in this module):

* Voigt order ``(xx, yy, zz, yz, xz, xy)``.  Strains in Voigt form use *engineering* shears:
  ``eps_voigt = (e_xx, e_yy, e_zz, 2 e_yz, 2 e_xz, 2 e_xy)`` for the symmetric small-strain
  tensor ``e``.  Stresses in Voigt form are the plain tensor components.
* Deformation: positions and cell (rows) are mapped affinely by ``F = 1 + e`` (symmetric
  ``e``, no rotation): ``x -> x F``, ``cell -> cell F`` (as :func:`glassjax.potential.strained_energy`).
* Stress: ASE sign convention (tensile positive), the Cauchy stress of the deformed
  configuration ``sigma = -W / V`` with the virial ``W = -dE/de`` (GPa).  Pressure is
  ``-tr(sigma)/3``.
* ``C_ij = d sigma_i / d eps_j`` at ``eps = 0`` (GPa): the derivative of the Cauchy stress.
  For a stress-free reference it equals the energy-density Hessian
  ``(1/V) d^2E/de_i de_j``; under a residual stress ``sigma0`` the two differ by terms
  linear in ``sigma0`` (relax the cell first, e.g. ``fire(..., relax_cell=True)``, when the
  thermodynamic constants of a stress-free solid are wanted).

Clamped-ion (``relaxed=False``): all atoms follow the affine deformation.  Relaxed-ion
(``relaxed=True``): the atoms also relax at the strained cell; with internal coordinates
``u`` in the reference frame (positions ``u F``) and ``g = dE/du = 0`` at the minimum,

    d sigma/d eps = d sigma/d eps|_u + d sigma/du . du/d eps,   H du/d eps = - d^2E/du d eps

(H the position Hessian with the 3 translations projected out; :mod:`glassjax.sensitivity.implicit`).

Temperature: these are **0 K** constants of the given (inherent) structure: no thermal
(fluctuation or kinetic) contribution.  The glass's room-temperature moduli need a
fluctuation/strain-rate study by MD (glassjax.md.deform).

Neighbour list: ``nl`` must be built for ``cutoff + skin`` with a skin > 0
(``glassjax.neighbors.allocate(..., skin=...)``): a strain ``eps`` moves pair distances by
up to ``~|eps| * cutoff``, which must stay below the skin (1e-4 strain and 8 Å: 1e-3 Å).
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np

from glassjax.errors import ConfigError
from glassjax.potential import energy_forces_virial, strained_energy, stress_from_virial
from glassjax.sensitivity import implicit
from glassjax.units import EV_PER_A3_TO_GPA

_VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def voigt_to_strain(eps_voigt):
    """(6,) Voigt strain with engineering shears -> (3, 3) symmetric strain tensor."""
    v = jnp.asarray(eps_voigt)
    return jnp.stack([
        jnp.stack([v[0], v[5] / 2, v[4] / 2]),
        jnp.stack([v[5] / 2, v[1], v[3] / 2]),
        jnp.stack([v[4] / 2, v[3] / 2, v[2]]),
    ])


def strain_to_voigt(eps):
    """(3, 3) strain tensor -> (6,) Voigt vector with engineering shears (2 e_yz, 2 e_xz, 2 e_xy)."""
    e = 0.5 * (jnp.asarray(eps) + jnp.asarray(eps).T)
    return jnp.stack([e[0, 0], e[1, 1], e[2, 2], 2 * e[1, 2], 2 * e[0, 2], 2 * e[0, 1]])


def stress_to_voigt(sigma):
    """(..., 3, 3) stress tensor -> (..., 6) Voigt vector (xx, yy, zz, yz, xz, xy), symmetrised."""
    s = 0.5 * (sigma + jnp.swapaxes(sigma, -1, -2))
    return jnp.stack([s[..., a, b] for a, b in _VOIGT], axis=-1)


def voigt_to_stress(s6):
    """(..., 6) Voigt stress -> (..., 3, 3) symmetric tensor."""
    s6 = jnp.asarray(s6)
    rows = [[s6[..., 0], s6[..., 5], s6[..., 4]],
            [s6[..., 5], s6[..., 1], s6[..., 3]],
            [s6[..., 4], s6[..., 3], s6[..., 2]]]
    return jnp.stack([jnp.stack(r, axis=-1) for r in rows], axis=-2)


def stress_tensor(energy_fn: Callable, positions, cell, nl):
    """(3, 3) Cauchy stress, GPa, ASE sign (tensile positive): ``-W / V`` with W the virial."""
    _, _, w = energy_forces_virial(energy_fn, positions, cell, nl)
    return stress_from_virial(w, cell) * EV_PER_A3_TO_GPA


@partial(jax.jit, static_argnums=0)
def _stress_voigt(energy_fn, positions, cell, nl):
    return stress_to_voigt(stress_tensor(energy_fn, positions, cell, nl))


def stress_of_strain(energy_fn: Callable, positions, cell, nl, strain_voigt):
    """(6,) Voigt stress (GPa, ASE sign) after the affine deformation ``F = 1 + e(strain_voigt)``.

    Args:
        energy_fn: ``energy_fn(positions, cell, nl) -> E`` (eV).
        positions: (N, 3) Å; cell: (3, 3) rows Å; nl: a neighbour list built with a skin
            (valid for small strains; see the module docstring).
        strain_voigt: (6,) Voigt strain, engineering shears.

    Pure and differentiable in all array arguments (``jax.jacfwd`` in ``strain_voigt`` gives
    the clamped-ion elastic tensor).
    """
    f = jnp.eye(3, dtype=cell.dtype) + voigt_to_strain(jnp.asarray(strain_voigt, dtype=cell.dtype))
    return stress_to_voigt(stress_tensor(energy_fn, positions @ f, cell @ f, nl))


def _strained_energy_fn(energy_fn):
    """``energy_of(eps_voigt, u, cell0, nl)``: energy of internal coordinates u (reference frame)
    under the strain; the form :mod:`implicit` differentiates (theta = eps_voigt)."""

    def energy_of(eps_voigt, u, cell0, nl):
        return strained_energy(energy_fn, u, cell0, voigt_to_strain(eps_voigt), nl)

    return energy_of


@partial(jax.jit, static_argnums=0)
def clamped_elastic_tensor(energy_fn: Callable, positions, cell, nl):
    """(6, 6) clamped-ion ``C_ij = d sigma_i/d eps_j`` (GPa), jitted (``jax.jacfwd``; energy_fn static)."""
    zero = jnp.zeros((6,), dtype=cell.dtype)
    return jax.jacfwd(lambda e: stress_of_strain(energy_fn, positions, cell, nl, e))(zero)


def relaxation_correction(energy_fn: Callable, positions, cell, nl, method: str = "dense", **solve_kw):
    """(6, 6) internal-relaxation term ``d sigma/du . du/d eps`` (GPa) and ``du/d eps`` (6, N, 3), Å.

    ``positions`` must be a minimum at ``cell`` (not checked here; :func:`elastic_tensor` checks).
    ``solve_kw``: tol, maxiter, shift of :func:`glassjax.sensitivity.implicit.solve_hessian`.
    """
    implicit._check_method(method)
    return _relaxation(energy_fn, positions, cell, nl, method, implicit._solve_opts(positions, solve_kw))


@partial(jax.jit, static_argnames=("energy_fn", "method", "opts"))
def _relaxation(energy_fn, positions, cell, nl, method, opts):
    energy_of = _strained_energy_fn(energy_fn)
    zero = jnp.zeros((6,), dtype=cell.dtype)

    def grad_u(e):
        return jax.grad(energy_of, argnums=1)(e, positions, cell, nl)

    mixed = jax.jacfwd(grad_u)(zero)  # (N, 3, 6): d^2E / du d eps_j
    du = implicit._solve_traced(energy_of, zero, positions, cell, nl, -jnp.moveaxis(mixed, -1, 0), method, opts)

    def sigma_of_u(u):
        return stress_of_strain(energy_fn, u, cell, nl, zero)

    dsig = jax.vmap(lambda d: jax.jvp(sigma_of_u, (positions,), (d,))[1])(du)  # (6 strains, 6 stresses)
    return dsig.T, du


def elastic_tensor(energy_fn: Callable, positions, cell, nl, relaxed: bool = False, method: str = "dense",
                   force_tol: float = 1e-3, **solve_kw):
    """(6, 6) elastic tensor ``C_ij = d sigma_i / d eps_j`` in GPa, 0 K, by automatic differentiation.

    Args:
        energy_fn: ``energy_fn(positions, cell, nl) -> E`` (eV).
        positions: (N, 3) Å; cell: (3, 3) rows Å; nl: list with a skin (module docstring).
        relaxed: False: clamped-ion (affine) tensor ``jax.jacfwd`` of :func:`stress_of_strain`;
            True: relaxed-ion tensor, adding the internal-relaxation term by implicit
            differentiation (module docstring).  Needs a minimum at fixed cell: the largest
            residual force must be below ``force_tol`` (eV/Å), otherwise
            :class:`~glassjax.errors.SimulationError` says what to do.
        method: Hessian solver for ``relaxed``: ``"dense"`` or ``"cg"``.

    Voigt order (xx, yy, zz, yz, xz, xy), engineering shear strains, ASE stress sign.
    """
    positions = jnp.asarray(positions)
    cell = jnp.asarray(cell, dtype=positions.dtype)
    c = clamped_elastic_tensor(energy_fn, positions, cell, nl)
    if not relaxed:
        return c
    implicit._check_method(method)
    implicit.check_minimum(energy_fn, positions, cell, nl, force_tol,
                           what="elastic_tensor(relaxed=True): the structure")
    corr, _ = relaxation_correction(energy_fn, positions, cell, nl, method=method, **solve_kw)
    return c + corr


def elastic_tensor_fd(energy_fn: Callable, positions, cell, nl, h: float = 1e-4,
                      relax: Optional[Callable] = None):
    """(6, 6) elastic tensor (GPa) by central finite strain ``(sigma(+h e_j) - sigma(-h e_j)) / 2h``.

    Args:
        h: strain step (dimensionless; engineering shear for j = 4..6).
        relax: optional ``relax(positions, cell, nl) -> positions`` that re-minimises the
            positions at the fixed strained cell (relaxed-ion check); None: clamped-ion.

    Independent of automatic differentiation of the strain (only the stress, by the virial,
    is differentiated).
    """
    if not np.isfinite(h) or h <= 0:
        raise ConfigError(f"elastic_tensor_fd: strain step h={h!r} must be a positive number")
    positions = jnp.asarray(positions)
    cell = jnp.asarray(cell, dtype=positions.dtype)
    def sig(x, c):
        return _stress_voigt(energy_fn, x, c, nl)

    cols = []
    for j in range(6):
        pair = []
        for s in (h, -h):
            e = np.zeros(6)
            e[j] = s
            f = jnp.eye(3, dtype=cell.dtype) + voigt_to_strain(jnp.asarray(e, dtype=cell.dtype))
            x, c = positions @ f, cell @ f
            if relax is not None:
                x = jnp.asarray(relax(x, c, nl))
            pair.append(sig(x, c))
        cols.append((pair[0] - pair[1]) / (2 * h))
    return jnp.stack(cols, axis=1)


def isotropic_moduli(c) -> Dict[str, float]:
    """Voigt, Reuss and Hill averages of a (6, 6) elastic tensor (GPa) for an isotropic glass.

    Voigt (uniform strain): ``K_V = (C11+C22+C33 + 2(C12+C13+C23)) / 9``,
    ``G_V = (C11+C22+C33 - (C12+C13+C23) + 3(C44+C55+C66)) / 15``; Reuss (uniform stress),
    with ``S = C^-1``: ``1/K_R = S11+S22+S33 + 2(S12+S13+S23)``,
    ``15/G_R = 4(S11+S22+S33) - 4(S12+S13+S23) + 3(S44+S55+S66)``; Hill: the means.
    Young's modulus ``E = 9KG/(3K+G)`` and Poisson's ratio ``nu = (3K-2G)/(2(3K+G))`` from the
    Hill values.  Returns floats: K_V, K_R, K_H, G_V, G_R, G_H, E, nu (moduli in GPa).
    """
    c = np.asarray(c, dtype=np.float64)
    if c.shape != (6, 6) or not np.all(np.isfinite(c)):
        raise ConfigError(f"isotropic_moduli: need a finite (6, 6) elastic tensor, got shape {c.shape}")
    s = np.linalg.inv(0.5 * (c + c.T))
    d, o, sh = (lambda m: m[0, 0] + m[1, 1] + m[2, 2]), (lambda m: m[0, 1] + m[0, 2] + m[1, 2]), \
        (lambda m: m[3, 3] + m[4, 4] + m[5, 5])
    kv = (d(c) + 2 * o(c)) / 9
    gv = (d(c) - o(c) + 3 * sh(c)) / 15
    kr = 1.0 / (d(s) + 2 * o(s))
    gr = 15.0 / (4 * d(s) - 4 * o(s) + 3 * sh(s))
    kh, gh = (kv + kr) / 2, (gv + gr) / 2
    return {"K_V": float(kv), "K_R": float(kr), "K_H": float(kh), "G_V": float(gv), "G_R": float(gr),
            "G_H": float(gh), "E": float(9 * kh * gh / (3 * kh + gh)),
            "nu": float((3 * kh - 2 * gh) / (2 * (3 * kh + gh)))}
