"""Linear response of a relaxed (inherent) structure by implicit differentiation.

A relaxed structure ``R*(theta)`` satisfies ``g(R*, theta) = dE/dR (R*, theta) = 0``.  The
implicit-function theorem gives its derivative with respect to any parameter ``theta`` of the
energy (a Flax parameter pytree, a pair-table entry, a strain)::

    H dR*/dtheta = - d^2E / dR dtheta,             H = d^2E/dR^2 (the position Hessian, (3N, 3N))

and, for an observable ``O(R*)`` (a smooth 4B fraction, a mean bond length), the adjoint form
needs one Hessian solve whatever the size of ``theta``::

    H lambda = dO/dR,      dO/dtheta = dO/dtheta|_R - lambda^T d^2E/dR dtheta,

where the last term is one vector-Jacobian product of the force with respect to ``theta``
(``jax.grad`` of ``lambda . dE/dR`` in ``theta``).

Translations: a periodic energy is invariant under a uniform shift of all atoms, so ``H`` has
three zero modes ``T`` (unit vectors ``e_a / sqrt(N)`` on every atom).  Every solve here works
in the complement: right-hand sides are projected with ``P = 1 - T T^T`` (subtract the mean
over atoms) and the operator is ``P H P + s T T^T`` (``s > 0``), which is non-singular with
the same solution on the complement.  The structure must be a *minimum* (no residual force,
positive curvature off the translations); :func:`check_minimum` enforces the first and the
dense solve the second.

Two solvers (``method``):

* ``"dense"``: the full Hessian by ``jax.hessian`` and ``jnp.linalg.eigh``; exact, fine up to
  ~1500 degrees of freedom (memory (3N)^2, time (3N)^3).
* ``"cg"``: matrix-free conjugate gradients with Hessian-vector products (``jax.jvp`` of
  ``jax.grad``), for larger systems; converges when the minimum is well conditioned.

All quantities are for the static structure (0 K, inherent structure).  Units: Å, eV.
Use float64 (``jax.config.update("jax_enable_x64", True)``, the caller's choice): the solve
amplifies round-off by the Hessian's condition number.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from glassjax.sensitivity.energy import deeppot_energy_of  # noqa: F401 (re-exported)
from glassjax.errors import ConfigError, SimulationError

METHODS = ("dense", "cg")


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ConfigError(f"implicit solve: method must be one of {METHODS}, got {method!r}")
    return method


def project_translations(v):
    """``P v``: remove the uniform translation (the mean over atoms) from ``v`` (..., N, 3)."""
    return v - jnp.mean(v, axis=-2, keepdims=True)


def position_hessian(energy_fn: Callable, positions, cell, nl):
    """(3N, 3N) Hessian ``d^2E / dR dR`` (eV/Å^2), rows/columns ordered atom-major (x0, y0, z0, x1, ...)."""
    n = positions.shape[0]

    def e(flat):
        return energy_fn(flat.reshape(n, 3), cell, nl)

    return jax.hessian(e)(positions.reshape(-1))


def hessian_vector_product(energy_fn: Callable, positions, cell, nl) -> Callable:
    """``v (N, 3) -> H v (N, 3)`` by forward-over-reverse differentiation (no Hessian stored)."""

    def grad_e(x):
        return jax.grad(energy_fn)(x, cell, nl)

    def hvp(v):
        return jax.jvp(grad_e, (positions,), (v,))[1]

    return hvp


def max_force(energy_fn: Callable, positions, cell, nl):
    """Largest per-atom force norm ``max_i |dE/dR_i|`` (eV/Å)."""
    g = jax.grad(energy_fn)(positions, cell, nl)
    return jnp.sqrt(jnp.max(jnp.sum(g * g, axis=-1)))


_max_force_jit = jax.jit(max_force, static_argnums=0)


def check_minimum(energy_fn: Callable, positions, cell, nl, force_tol: float = 1e-3, what: str = "structure",
                  _fmax: Optional[float] = None):
    """Raise :class:`~glassjax.errors.SimulationError` unless ``max |F| <= force_tol`` (eV/Å).

    Implicit differentiation is only valid at a minimum; the error of the derivative grows
    with the residual force.  Returns the residual force (a float) when the check passes.
    """
    fmax = float(_max_force_jit(energy_fn, positions, cell, nl)) if _fmax is None else float(_fmax)
    if not np.isfinite(fmax) or fmax > force_tol:
        raise SimulationError(
            f"{what} is not an energy minimum: largest residual force {fmax:.3g} eV/Å > "
            f"force_tol={force_tol:g} eV/Å; "
            "relaxed (implicit) derivatives need a minimum: minimise the positions at fixed cell first, e.g. "
            "glassjax.md.minimize.fire(energy_fn, positions, cell, nl, spec, fmax=1e-5), optionally polished with "
            "glassjax.sensitivity.implicit.newton_polish (or pass a larger force_tol to accept a rougher derivative)")
    return fmax


def _shift_of(h_diag):
    return jnp.maximum(jnp.mean(jnp.abs(h_diag)), 1e-8)


def projected_hessian(energy_fn: Callable, positions, cell, nl, shift: Optional[float] = None):
    """``P H P + s T T^T`` (3N, 3N): the Hessian with the 3 translations replaced by eigenvalue ``s``.

    ``s`` defaults to the mean |diagonal| of H (keeps the condition number of the translations
    harmless).
    """
    n = positions.shape[0]
    h = position_hessian(energy_fn, positions, cell, nl)
    t = jnp.tile(jnp.eye(3, dtype=h.dtype), (n, 1)) / jnp.sqrt(n)  # (3N, 3) orthonormal translations
    p = jnp.eye(3 * n, dtype=h.dtype) - t @ t.T
    s = _shift_of(jnp.diag(h)) if shift is None else shift
    hp = p @ h @ p
    return 0.5 * (hp + hp.T) + s * (t @ t.T)


def hessian_spectrum(energy_fn: Callable, positions, cell, nl):
    """Eigenvalues (3N - 3,) of the Hessian on the complement of the translations, ascending (eV/Å^2)."""
    n = positions.shape[0]
    h = position_hessian(energy_fn, positions, cell, nl)
    t = jnp.tile(jnp.eye(3, dtype=h.dtype), (n, 1)) / jnp.sqrt(n)
    # orthonormal basis of the complement from the QR of [T, I]
    q, _ = jnp.linalg.qr(jnp.concatenate([t, jnp.eye(3 * n, dtype=h.dtype)], axis=1))
    b = q[:, 3:3 * n]
    hb = b.T @ h @ b
    return jnp.linalg.eigvalsh(0.5 * (hb + hb.T))


@partial(jax.jit, static_argnames=("energy_fn",))
def _solve_dense(energy_fn, positions, cell, nl, b, shift):
    k, n = b.shape[0], positions.shape[0]
    a = projected_hessian(energy_fn, positions, cell, nl, shift)
    w, v = jnp.linalg.eigh(a)
    x = (v @ ((v.T @ b.reshape(k, 3 * n).T) / w[:, None])).T
    return project_translations(x.reshape(k, n, 3))


@partial(jax.jit, static_argnames=("energy_fn", "maxiter"))
def _solve_cg(energy_fn, positions, cell, nl, b, shift, tol, maxiter):
    hvp = hessian_vector_product(energy_fn, positions, cell, nl)

    def op(u):
        pu = project_translations(u)
        return project_translations(hvp(pu)) + shift * (u - pu)

    def one(bb):
        x, _ = jax.scipy.sparse.linalg.cg(op, bb, tol=tol, maxiter=maxiter)
        return x

    return project_translations(jax.vmap(one)(b))


def solve_hessian(energy_fn: Callable, positions, cell, nl, rhs, method: str = "dense", tol: float = 1e-12,
                  maxiter: Optional[int] = None, shift: Optional[float] = None, check_positive: bool = False):
    """Solve ``H x = P rhs`` on the complement of the translations.

    Args:
        energy_fn: ``energy_fn(positions, cell, nl) -> E`` (eV); a hashable callable (it is a
            static argument of the jitted solvers: create it once and reuse it).
        positions: (N, 3) Å, a minimum of ``energy_fn`` at this ``cell`` (3, 3) rows Å.
        rhs: (N, 3) or a batch (K, N, 3), e.g. eV/Å for a force perturbation.
        method: ``"dense"`` or ``"cg"`` (see the module docstring).
        tol, maxiter: CG relative tolerance and iteration limit (default 10 * 3N).
        shift: eigenvalue given to the translations (eV/Å^2); does not change the result.
        check_positive: raise :class:`SimulationError` when the Hessian has a negative
            eigenvalue off the translations (a saddle point, not a minimum; dense Hessian,
            outside jit).

    Returns:
        x with the shape of ``rhs`` (Å per unit of rhs / (eV/Å^2)), mean over atoms zero.
        Jittable (except ``check_positive``) and differentiable.
    """
    _check_method(method)
    positions = jnp.asarray(positions)
    rhs = jnp.asarray(rhs, dtype=positions.dtype)
    batched = rhs.ndim == 3
    b = project_translations(rhs if batched else rhs[None])  # (K, N, 3)
    n = positions.shape[0]
    if check_positive:
        spec = np.asarray(hessian_spectrum(energy_fn, positions, cell, nl))
        scale = float(np.max(np.abs(spec))) if spec.size else 1.0
        if spec.size and spec[0] < -1e-8 * scale:
            raise SimulationError(
                f"the position Hessian has a negative eigenvalue {spec[0]:.3g} eV/Å^2: the structure is a saddle "
                "point, not a minimum; minimise it further (glassjax.md.minimize.fire) before implicit derivatives")
    if method == "dense":
        x = _solve_dense(energy_fn, positions, cell, nl, b, shift)
    else:
        iters = 10 * 3 * n if maxiter is None else int(maxiter)
        x = _solve_cg(energy_fn, positions, cell, nl, b, 1.0 if shift is None else shift, tol, iters)
    return x if batched else x[0]


@partial(jax.jit, static_argnames=("energy_fn",))
def _newton_step(energy_fn, x, cell, nl):
    g = jax.grad(energy_fn)(x, cell, nl)
    x = x - _solve_dense(energy_fn, x, cell, nl, g[None], None)[0]
    return x, max_force(energy_fn, x, cell, nl)


def newton_polish(energy_fn: Callable, positions, cell, nl, steps: int = 5, force_tol: float = 1e-10):
    """Refine a near-minimum with projected Newton steps ``R <- R - H^-1 P g`` (dense Hessian).

    Quadratic convergence from a FIRE result (fmax ~1e-3 eV/Å) to ~1e-10 eV/Å in a few steps.
    A step that increases the largest force is rejected and the refinement stops there (far
    from the minimum, or near an inflection, Newton heads for another stationary point):
    the result is never worse than the input.  Returns ``(positions (N, 3), max |F| eV/Å)``.
    """
    x = jnp.asarray(positions)
    cell = jnp.asarray(cell, dtype=x.dtype)
    fmax = float(_max_force_jit(energy_fn, x, cell, nl))
    for _ in range(int(steps)):
        if fmax <= force_tol:
            break
        y, f = _newton_step(energy_fn, x, cell, nl)
        f = float(f)
        if not np.isfinite(f) or f >= fmax:
            break
        x, fmax = y, f
    return x, fmax


def relax_structure(energy_fn: Callable, positions, cell, nl, spec, fmax: float = 1e-3, max_steps: int = 20000,
                    force_tol: float = 1e-9, relax_cell: bool = False, pressure: float = 0.0):
    """An inherent structure ready for implicit differentiation: FIRE, then :func:`newton_polish`.

    Args:
        energy_fn: ``energy_fn(positions, cell, nl) -> E`` (eV); positions (N, 3) Å; cell (3, 3)
            rows Å; nl, spec: a neighbour list with a skin (``glassjax.neighbors.allocate`` or
            ``DeepPot.neighbor_list``).
        fmax: FIRE's threshold (eV/Å); force_tol: Newton's target (eV/Å).
        relax_cell: also relax the cell at ``pressure`` GPa with FIRE (then the positions are
            polished at that fixed cell).

    Returns ``(positions, cell, nl, spec, max |F|)`` (the list may have been reallocated); raises :class:`~glassjax.errors.SimulationError`
    when FIRE does not converge within ``max_steps``.
    """
    from glassjax.md.minimize import fire

    r = fire(energy_fn, positions, cell, nl, spec, fmax=fmax, max_steps=max_steps, relax_cell=relax_cell,
             pressure=pressure)
    if not bool(r.converged):
        raise SimulationError(f"relax_structure: FIRE did not reach fmax={fmax} eV/Å in {max_steps} steps; "
                              "raise max_steps or start from a better structure (e.g. after a quench)")
    x, f = newton_polish(energy_fn, r.positions, r.cell, r.nl, force_tol=force_tol)
    tight = min(fmax, 1e-2)
    while f > force_tol and tight > 1e-6:  # Newton stalled: closer to the minimum with FIRE, then again
        tight /= 10.0
        r = fire(energy_fn, x, r.cell, r.nl, r.spec, fmax=tight, max_steps=max_steps)
        x, f = newton_polish(energy_fn, r.positions, r.cell, r.nl, force_tol=force_tol)
    if f > force_tol:
        raise SimulationError(f"relax_structure: the largest residual force stays at {f:.2g} eV/Å > "
                              f"force_tol={force_tol:g} (a flat or unstable minimum); pass a larger force_tol")
    return x, r.cell, r.nl, r.spec, f


def relaxed_positions_jvp(energy_of: Callable, theta, dtheta, positions, cell, nl, method: str = "dense",
                          force_tol: Optional[float] = 1e-3, **solve_kw):
    """Forward-mode response ``dR*/dtheta . dtheta`` (N, 3) of the relaxed positions.

    ``H dR = - d/dtheta (dE/dR) . dtheta`` (one JVP of the gradient, one Hessian solve).
    ``energy_of(theta, positions, cell, nl) -> E``; ``positions`` must be a minimum at
    ``theta`` (checked against ``force_tol`` eV/Å unless it is None).
    """
    _check_method(method)
    if force_tol is not None:
        _check_minimum_at(energy_of, theta, positions, cell, nl, force_tol)
    return _jvp_core(energy_of, theta, dtheta, positions, cell, nl, method, _solve_opts(positions, solve_kw))


def _solve_opts(positions, solve_kw):
    unknown = set(solve_kw) - {"tol", "maxiter", "shift"}
    if unknown:
        raise ConfigError(f"implicit solve: unknown options {sorted(unknown)} (tol, maxiter, shift)")
    n = positions.shape[0]
    return (float(solve_kw.get("tol", 1e-12)), int(solve_kw.get("maxiter") or 10 * 3 * n), solve_kw.get("shift"))


@partial(jax.jit, static_argnames=("energy_of", "method", "opts"))
def _jvp_core(energy_of, theta, dtheta, positions, cell, nl, method, opts):
    def grad_r(th):
        return jax.grad(energy_of, argnums=1)(th, positions, cell, nl)

    mixed = jax.jvp(grad_r, (theta,), (dtheta,))[1]
    return _solve_traced(energy_of, theta, positions, cell, nl, -mixed, method, opts)


def _solve_traced(energy_of, theta, positions, cell, nl, rhs, method, opts):
    """Hessian solve at a traced ``theta`` (inside jit): the energy closes over theta."""
    tol, maxiter, shift = opts
    b = project_translations(rhs if rhs.ndim == 3 else rhs[None])
    k, n = b.shape[0], positions.shape[0]

    def efn(x, c, nl_):
        return energy_of(theta, x, c, nl_)

    if method == "dense":
        a = projected_hessian(efn, positions, cell, nl, shift)
        w, v = jnp.linalg.eigh(a)
        x = (v @ ((v.T @ b.reshape(k, 3 * n).T) / w[:, None])).T.reshape(k, n, 3)
    else:
        hvp = hessian_vector_product(efn, positions, cell, nl)
        s = 1.0 if shift is None else shift

        def op(u):
            pu = project_translations(u)
            return project_translations(hvp(pu)) + s * (u - pu)

        x = jax.vmap(lambda bb: jax.scipy.sparse.linalg.cg(op, bb, tol=tol, maxiter=maxiter)[0])(b)
    x = project_translations(x)
    return x if rhs.ndim == 3 else x[0]


@partial(jax.jit, static_argnums=0)
def _max_force_at(energy_of, theta, positions, cell, nl):
    g = jax.grad(energy_of, argnums=1)(theta, positions, cell, nl)
    return jnp.sqrt(jnp.max(jnp.sum(g * g, axis=-1)))


def _check_minimum_at(energy_of, theta, positions, cell, nl, force_tol):
    """:func:`check_minimum` for ``energy_of(theta, ...)`` (compiled once per energy_of, theta traced)."""

    fmax = float(_max_force_at(energy_of, theta, positions, cell, nl))
    return check_minimum(None, positions, cell, nl, force_tol, _fmax=fmax)


def _at(energy_of, theta):
    def efn(x, c, nl):
        return energy_of(theta, x, c, nl)

    return efn


def relaxed_param_gradient(energy_of: Callable, theta, positions, cell, nl, observable: Callable,
                           method: str = "dense", force_tol: Optional[float] = 1e-3, **solve_kw):
    """``(O, dO/dtheta)`` for an observable of the relaxed structure, by the adjoint method.

    Args:
        energy_of: ``energy_of(theta, positions, cell, nl) -> E`` (eV); ``theta`` any pytree.
        theta: the parameters at which ``positions`` is relaxed.
        positions: (N, 3) Å, a minimum of ``energy_of(theta, ., cell, nl)`` (fixed cell (3, 3)).
        nl: neighbour list valid for the energy and the observable.
        observable: ``observable(positions, cell, nl) -> scalar`` (no explicit theta dependence).
        method: ``"dense"`` or ``"cg"``; force_tol: minimum check in eV/Å (None: skip).

    Implements ``H lambda = dO/dR``, ``dO/dtheta = - lambda^T d^2E/dR dtheta`` (see module
    docstring): one Hessian solve and one VJP of the force, whatever the number of parameters.
    Returns the value ``O`` and a pytree like ``theta``.
    """
    _check_method(method)
    if force_tol is not None:
        _check_minimum_at(energy_of, theta, positions, cell, nl, force_tol)
    return _adjoint_core(energy_of, observable, theta, positions, cell, nl, method, _solve_opts(positions, solve_kw))


@partial(jax.jit, static_argnames=("energy_of", "observable", "method", "opts"))
def _adjoint_core(energy_of, observable, theta, positions, cell, nl, method, opts):
    value, d_o = jax.value_and_grad(observable)(positions, cell, nl)
    lam = jax.lax.stop_gradient(_solve_traced(energy_of, theta, positions, cell, nl, d_o, method, opts))

    def lam_dot_grad(th):
        g = jax.grad(energy_of, argnums=1)(th, positions, cell, nl)
        return jnp.vdot(lam, g)

    mixed = jax.grad(lam_dot_grad)(theta)
    return value, jax.tree_util.tree_map(lambda m: -m, mixed)


def deeppot_n4_param_gradient(model, variables, positions, cell, types, nl, obs_nl=None, cutoffs=None,
                              width: float = 0.05, cn_width: float = 0.1, method: str = "dense",
                              force_tol: Optional[float] = 1e-3, **solve_kw):
    """Gradient of the relaxed glass's smooth 4B fraction with respect to a DeepPot's parameters.

    Issue 9, item 3d ("which fitting-net parameters most change the 4B fraction").  The
    observable is :func:`glassjax.analysis.coordination.smooth_boron_n4` (Fermi-switched B-O
    coordination, then a sigmoid step at 3.5) of the relaxed structure; the derivative is the
    adjoint of :func:`relaxed_param_gradient`.

    Args:
        model: a :class:`glassjax.model.DeepPot`; variables: ``{"params", "constants"}``.
        positions (N, 3) Å: a minimum of the model at fixed ``cell`` (3, 3) (e.g. from
            :func:`glassjax.md.minimize.fire` with ``fmax`` <= ``force_tol``).
        types: (N,) int model types; nl: the model's neighbour list (for ``model.rcut``).
        obs_nl: list for the observable (cutoff >= B-O cutoff + 10 width); default ``nl``.
        cutoffs: (T, T) bond cutoffs in model type order (default
            :func:`glassjax.analysis.bonds.cutoff_matrix` of ``model.type_map``).

    Returns:
        ``(n4, grad)``: the smooth N4 (dimensionless) and a pytree like ``variables["params"]``
        (per unit of each parameter).  Only ``"params"`` are differentiated.
    """
    from glassjax.analysis import bonds
    from glassjax.analysis.coordination import smooth_boron_n4

    type_map = list(model.type_map)
    species = bonds.SpeciesIndex.from_type_map(type_map)
    if species.B < 0 or species.O < 0:
        raise ConfigError(f"deeppot_n4_param_gradient: the model's type_map {type_map} needs B and O")
    cut = jnp.asarray(bonds.cutoff_matrix(type_map) if cutoffs is None else cutoffs, dtype=positions.dtype)
    types_j = jnp.asarray(types, dtype=jnp.int32)
    onl = nl if obs_nl is None else obs_nl

    def observable(x, c, _nl):
        return smooth_boron_n4(x, c, types_j, onl, cut, species, width=width, cn_width=cn_width)

    energy_of = deeppot_energy_of(model, variables, types)
    return relaxed_param_gradient(energy_of, variables["params"], positions, cell, nl, observable,
                                  method=method, force_tol=force_tol, **solve_kw)
