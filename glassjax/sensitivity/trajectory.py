"""Gradients of short-trajectory averages with respect to the potential's parameters and temperature.

The observable is the time average of a per-state quantity ``a`` over an MD trajectory of
``n_steps`` steps started from fixed positions and from fixed *unit* momenta::

    O(theta, T) = (1 / N) sum_{n=1}^{N} a(x_n(theta, T), p_n(theta, T), h_n)

where ``(x_n, p_n)`` is the n-th state of the integrator of :mod:`glassjax.md.integrators`
(velocity Verlet for NVE, Nosé-Hoover chains for NVT) driven by the forces of
``energy_of(theta, positions, cell, nl)``.  The whole loop is one ``lax.scan``, so
``jax.grad`` differentiates through every step (backpropagation through time) and returns
``dO/dtheta`` (a pytree like ``theta``) and ``dO/dT`` (per K).

Roles of the temperature T (K), both differentiable:

1. **Initial momenta.**  Unit momenta ``p1`` are drawn once from a fixed ``key``
   (Maxwell-Boltzmann shape ``p ~ N(0, m k_B)``, centre-of-mass momentum removed, rescaled so
   that the kinetic temperature with N_f = 3N - 3 is exactly 1 K, as
   :func:`glassjax.md.integrators.init_state` does) and the trajectory starts from
   ``p0 = sqrt(T) p1``: the kinetic temperature at step 0 is exactly T and the random
   numbers do not depend on T, so the derivative in T is the derivative of one trajectory.
2. **Thermostat target** (NVT only): the Nosé-Hoover chain drives the kinetic temperature to
   T (the same traced scalar; the thermostat masses ``Q = N_f k_B T tau^2`` move with it).

Neighbour list: a fixed-capacity :class:`glassjax.neighbors.NeighborList` is built from the
start positions inside the traced function and refreshed every step by
:func:`glassjax.neighbors.update` (a ``lax.cond``).  Its integer indices carry no gradient
(the energy is a smooth function of the positions once the list covers the cutoff, so the
derivative does not depend on which rebuild happened when).  An overflowed list is reported
in the result (``aux["overflow"]``); :func:`trajectory_gradients` raises
:class:`~glassjax.errors.SimulationError` then.

Memory: reverse mode stores the integrator state of every step (N x (positions, momenta,
forces, neighbour list, ...)) plus the intermediates of every force evaluation.
``checkpoint_every=c`` splits the loop into blocks of c steps (a nested scan) and wraps each
block in ``jax.checkpoint``: only the N/c block-start states are kept and each block is
recomputed during the backward pass (about one extra forward run), so thousands of steps fit.
Values and gradients are identical to the unsplit loop (same operations, same order).

Where trajectory gradients are meaningful (horizon, chaos)
----------------------------------------------------------
MD of a glass or liquid is chaotic: a perturbation of the initial state, or of the forces,
grows like ``exp(lambda t)`` with a largest Lyapunov exponent lambda of order 1-10 / ps for
hot oxide melts.  The AD derivative is the exact derivative of *this one trajectory*; its
tangent ``d x_n / d theta`` grows like ``exp(lambda n dt)``, so for long horizons the AD
gradient of a single trajectory grows exponentially and stops telling anything about the
*ensemble average* <a>_{theta, T}, whose derivative stays bounded (the time-average of a
chaotic system is smooth in the parameters, its single-trajectory derivative is not:
"exploding gradients" of differentiable MD).  A finite difference with a finite step h
measures a different, smoothed quantity at long horizons (the two trajectories at
theta ± h decorrelate, and the difference quotient is noise / h), so AD and FD agree at
short horizons and disagree beyond the Lyapunov time (see :func:`horizon_study`).
Example (``tests/test_sensitivity_trajectory.py``, a 32-atom Lennard-Jones liquid at 300 K,
dt = 5 fs, mean potential energy): AD and FD agree to 1e-10 at 0.1 ps and 2e-7 at 1 ps, and
differ by 70 % (parameter direction) at 4 ps; by 8 ps the AD value is 10^3 times the FD one.

Use trajectory gradients

* at short horizons (tens to a few hundred fs, before ``lambda t`` reaches a few), e.g. for
  the sensitivity of an initial response or of a short relaxation;
* averaged over several initial keys (independent unit momenta) and kept short, which
  estimates the derivative of the ensemble average with a bias that grows with the horizon;
* or, for properties of a relaxed (inherent) structure, the implicit derivative of the
  minimum (:mod:`glassjax.sensitivity.implicit`), which has no horizon at all.

Units: positions Å, cell rows Å, masses amu, time step (in the :class:`Ensemble`) ps,
temperature K, energies eV, pressure GPa (positive = compressive).
"""

from __future__ import annotations

from typing import Callable, Dict, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from glassjax import neighbors, units
from glassjax.sensitivity.energy import deeppot_energy_of  # noqa: F401 (re-exported)
from glassjax.errors import ConfigError, SimulationError
from glassjax.md import integrators as I
from glassjax.sensitivity import fd

Observable = Union[str, Callable]

#: Built-in per-state observables (``observable=`` names): eV, K or GPa.
BUILTIN_OBSERVABLES = ("potential_energy", "kinetic_energy", "total_energy", "temperature", "pressure")


def unit_momenta(key, masses, dtype=None):
    """(N, 3) Maxwell-Boltzmann momenta at exactly 1 K (amu Å / t_ase).

    ``p ~ N(0, m_i k_B)`` per component, centre-of-mass momentum removed, then scaled so that
    ``sum_i |p_i|^2 / m_i = N_f k_B`` with N_f = 3N - 3 (the kinetic temperature is 1 K).
    Momenta at temperature T are ``sqrt(T) * unit_momenta(...)``: the same directions for
    every T (the construction of :func:`glassjax.md.integrators.init_state`, taken apart).

    Args:
        key: ``jax.random`` key; masses: (N,) amu; dtype: defaults to the masses' dtype.
    """
    masses = jnp.asarray(masses) if dtype is None else jnp.asarray(masses, dtype)
    n = masses.shape[0]
    p = jax.random.normal(key, (n, 3), dtype=masses.dtype) * jnp.sqrt(masses[:, None] * units.KB)
    p = p - masses[:, None] * (jnp.sum(p, axis=0) / jnp.sum(masses))[None, :]
    ke2 = jnp.sum(p * p / masses[:, None])
    return p * jnp.sqrt(I.n_dof(n) * units.KB / ke2)


def _builtin(name: str) -> Callable:
    if name == "potential_energy":
        return lambda st: st.energy
    if name == "kinetic_energy":
        return I.kinetic_energy
    if name == "total_energy":
        return lambda st: st.energy + I.kinetic_energy(st)
    if name == "temperature":
        return I.temperature_of
    if name == "pressure":
        return lambda st: jnp.trace(I.pressure_tensor(st)) / 3.0
    raise ConfigError(f"observable {name!r} is not built in; use one of {BUILTIN_OBSERVABLES} "
                      "or pass a callable observable(state) -> scalar")


def resolve_observable(observable: Observable) -> Callable:
    """A callable ``a(state: MDState) -> scalar`` from a name in :data:`BUILTIN_OBSERVABLES`
    or a callable (returned as is)."""
    if isinstance(observable, str):
        return _builtin(observable)
    if callable(observable):
        return observable
    raise ConfigError(f"observable must be a name {BUILTIN_OBSERVABLES} or a callable, not {observable!r}")


def smooth_n4_observable(types, type_map: Sequence[str], cutoffs=None, width: float = 0.05,
                         cn_width: float = 0.1) -> Callable:
    """Per-state smooth N4 (fraction of 4-coordinated boron) for ``observable=``.

    Wraps :func:`glassjax.analysis.coordination.smooth_boron_n4` (a Fermi switch of ``width``
    Å on the B-O bond cutoff, then ``sigmoid((CN_BO - 3.5) / cn_width)`` averaged over B) on
    the state's own neighbour list, whose cutoff (the potential's, e.g. 5 Å) must exceed the
    B-O bond cutoff (2.0 Å by default) by 10 widths.

    Args:
        types: (N,) int types in the order ``type_map``; cutoffs: bond cutoffs as
            :func:`glassjax.analysis.bonds.cutoff_matrix` takes them (default table).
    """
    from glassjax.analysis.bonds import SpeciesIndex, cutoff_matrix
    from glassjax.analysis.coordination import smooth_boron_n4

    species = SpeciesIndex.from_type_map(type_map)
    if species.B < 0 or species.O < 0:
        raise ConfigError(f"smooth N4 needs B and O in the type map, got {list(type_map)}")
    cut = cutoff_matrix(species.type_map, cutoffs)
    types = np.asarray(types, dtype=np.int32)

    def n4(state):
        return smooth_boron_n4(state.positions, state.cell, jnp.asarray(types), state.nl,
                               jnp.asarray(cut, state.positions.dtype), species, width=width, cn_width=cn_width)

    return n4


class TrajectoryAux(NamedTuple):
    """Extra outputs of :func:`trajectory_observable` with ``return_aux=True``.

    series: (n_steps,) the per-step observable a(state_n), n = 1..N; overflow: () bool, the
    neighbour list overflowed somewhere (the run is invalid); final: the last MDState.
    """

    series: jax.Array
    overflow: jax.Array
    final: I.MDState


def trajectory_observable(energy_of: Callable, theta, temperature, positions, cell, masses, key, *,
                          ensemble: I.Ensemble, n_steps: int, spec: neighbors.NeighborSpec,
                          observable: Observable = "potential_energy", checkpoint_every: Optional[int] = None,
                          return_aux: bool = False):
    """Time average of a per-state observable over ``n_steps`` MD steps (pure, differentiable).

    ``O = (1/N) sum_{n=1}^{N} a(state_n)`` (the state after each step, not the start).

    Args:
        energy_of: ``energy_of(theta, positions, cell, nl) -> E`` (eV).
        theta: any pytree of parameters (e.g. a DeepPot's ``variables["params"]``).
        temperature: T, K (scalar, may be traced): initial momenta ``sqrt(T) * p1`` and the NVT
            thermostat target.
        positions: (N, 3) Å start positions; cell: (3, 3) rows Å; masses: (N,) amu.
        key: ``jax.random`` key of the unit momenta p1 (:func:`unit_momenta`).
        ensemble: NVE (:func:`glassjax.md.integrators.nve`) or NVT (``nvt``), static; a fixed cell.
        n_steps: N (static).
        spec: static :class:`~glassjax.neighbors.NeighborSpec` (from
            :func:`glassjax.neighbors.allocate`, ``DeepPot.neighbor_list`` or :func:`make_spec`),
            its cutoff at least the potential's; the list is built inside from ``positions``.
        observable: a name in :data:`BUILTIN_OBSERVABLES` or ``a(state: MDState) -> scalar``.
        checkpoint_every: c: ``jax.checkpoint`` over blocks of c steps (the last block is padded
            with no-op iterations when c does not divide the loop length).
        return_aux: also return a :class:`TrajectoryAux` (series, overflow flag, last state).

    Returns:
        the scalar O (units of the observable), or ``(O, aux)``.
    """
    obs = resolve_observable(observable)
    if not isinstance(ensemble, I.Ensemble) or ensemble.barostat:
        raise ConfigError(f"trajectory_observable: ensemble must be NVE or NVT (glassjax.md.integrators.nve/nvt), "
                          f"got {ensemble!r}; trajectory gradients at constant pressure are not supported")
    n_steps = int(n_steps)
    if n_steps < 1:
        raise ConfigError(f"trajectory_observable: n_steps must be >= 1, got {n_steps}")
    if checkpoint_every is not None:
        checkpoint_every = int(checkpoint_every)
        if checkpoint_every < 1:
            raise ConfigError(f"trajectory_observable: checkpoint_every={checkpoint_every} must be a positive "
                              "number of steps per recomputed block")
    positions = jnp.asarray(positions)
    dtype = positions.dtype
    cell = jnp.asarray(cell, dtype)
    masses = jnp.asarray(masses, dtype)
    temperature = jnp.asarray(temperature, dtype)

    def efn(x, c, nl):
        return energy_of(theta, x, c, nl)

    nl0 = jax.lax.stop_gradient(neighbors.build(positions, cell, spec))
    p0 = jnp.sqrt(temperature) * unit_momenta(key, masses)
    # The start forces are computed by the loop's own first iteration instead of init_state: a
    # step from zero momenta and zero forces leaves the positions exactly in place (fixed cell),
    # and its momenta and thermostat variables are then reset to p0 and zero.  The force graph
    # then appears once in the compiled program (about a third less compile time).
    z = jnp.zeros((ensemble.chain,), dtype)
    state = I.MDState(positions=positions, momenta=jnp.zeros_like(positions), masses=masses, cell=cell,
                      energy=jnp.zeros((), dtype), forces=jnp.zeros_like(positions),
                      virial=jnp.zeros((3, 3), dtype), nl=nl0, overflow=jnp.asarray(nl0.overflow), xi=z,
                      v_xi=z, v_g=jnp.zeros((3, 3), dtype), xi_b=z, v_xi_b=z, step=jnp.asarray(0, jnp.int32))
    n_iter = n_steps + 1
    block = n_iter if checkpoint_every is None else checkpoint_every
    n_blocks = -(-n_iter // block)
    padded = n_blocks * block != n_iter

    def one(st, i):
        mid = I.step_drift(st, ensemble, temperature)
        nl = jax.lax.stop_gradient(neighbors.update(mid.nl, mid.positions, mid.cell, spec))
        new = I.step_kick(efn, mid._replace(nl=nl), ensemble, temperature)
        first = i == 0
        new = new._replace(momenta=jnp.where(first, p0, new.momenta), xi=jnp.where(first, z, new.xi),
                           v_xi=jnp.where(first, z, new.v_xi), step=jnp.where(first, 0, new.step))
        if padded:  # iterations past the end (checkpoint blocks that do not divide) change nothing
            new = jax.tree_util.tree_map(lambda a, b: jnp.where(i < n_iter, a, b), new, st)
        return new, obs(new)

    steps = jnp.arange(n_blocks * block)
    if checkpoint_every is None:
        final, series = jax.lax.scan(one, state, steps)
    else:
        @jax.checkpoint
        def run_block(st, idx):
            return jax.lax.scan(one, st, idx)

        final, series = jax.lax.scan(run_block, state, steps.reshape(n_blocks, block))
        series = series.reshape((n_blocks * block,))
    series = series[n_iter - n_steps:n_iter]
    value = jnp.mean(series)
    if return_aux:
        return value, TrajectoryAux(series=series, overflow=final.overflow, final=final)
    return value


def make_spec(positions, cell, cutoff: float, skin: float = 1.0, capacity_factor: float = 1.5,
              image_margin: float = 0.0) -> neighbors.NeighborSpec:
    """A :class:`~glassjax.neighbors.NeighborSpec` for :func:`trajectory_observable` (outside jit).

    ``cutoff``: the potential's cutoff, Å; ``skin``: Å; ``capacity_factor``: headroom over the
    largest neighbour count of the start structure (a hot melt needs more than a glass).
    """
    _, spec = neighbors.allocate(jnp.asarray(positions), cell, cutoff, skin=skin, capacity_factor=capacity_factor,
                                 image_margin=image_margin)
    return spec


_STATIC = ("energy_of", "ensemble", "n_steps", "spec", "observable", "checkpoint_every")


#: XLA options of ``fast_compile=True``: no LLVM backend optimisation (CPU compile about 2x
#: faster, the compiled loop about 2x slower: right for short trajectories and tests).
FAST_COMPILE_OPTIONS = {"xla_backend_optimization_level": 0}


def _jit(fn, static):
    """(default jit, fast-compiling jit) of ``fn``."""
    return (jax.jit(fn, static_argnames=static),
            jax.jit(fn, static_argnames=static, compiler_options=FAST_COMPILE_OPTIONS))


def _value_and_grads_impl(energy_of, theta, temperature, positions, cell, masses, key, *, ensemble, n_steps, spec,
                          observable, checkpoint_every):
    def f(th, t):
        return trajectory_observable(energy_of, th, t, positions, cell, masses, key, ensemble=ensemble,
                                     n_steps=n_steps, spec=spec, observable=observable,
                                     checkpoint_every=checkpoint_every, return_aux=True)

    (value, aux), (g_theta, g_t) = jax.value_and_grad(f, argnums=(0, 1), has_aux=True)(theta, temperature)
    return value, g_theta, g_t, aux.overflow


def _value_impl(energy_of, theta, temperature, positions, cell, masses, key, *, ensemble, n_steps, spec, observable,
                checkpoint_every):
    value, aux = trajectory_observable(energy_of, theta, temperature, positions, cell, masses, key,
                                       ensemble=ensemble, n_steps=n_steps, spec=spec, observable=observable,
                                       checkpoint_every=checkpoint_every, return_aux=True)
    return value, aux.overflow


_VALUE_AND_GRADS = _jit(_value_and_grads_impl, _STATIC)
_VALUE = _jit(_value_impl, _STATIC)


def _check(value, overflow, what: str):
    if bool(overflow):
        raise SimulationError(f"{what}: the neighbour list overflowed during the trajectory; the result is invalid "
                              "(allocate a larger capacity: make_spec(..., capacity_factor=2) or a larger "
                              "image_margin, or shorten the trajectory)")
    if not np.all(np.isfinite(np.asarray(value))):
        raise SimulationError(f"{what}: the trajectory observable is not finite (the MD blew up, or a DeepPot "
                              "'sel' section overflowed: check the time step, temperature and model)")


def trajectory_value(energy_of, theta, temperature, positions, cell, masses, key, *, ensemble, n_steps, spec,
                     observable: Observable = "potential_energy", checkpoint_every=None, fast_compile: bool = False):
    """:func:`trajectory_observable` jitted, with overflow/blow-up checks (raises
    :class:`~glassjax.errors.SimulationError`).  Returns a float.  ``fast_compile``: see
    :data:`FAST_COMPILE_OPTIONS`."""
    temperature = jnp.asarray(temperature, jnp.asarray(positions).dtype)
    value, overflow = _VALUE[bool(fast_compile)](energy_of, theta, temperature, positions, cell, masses, key,
                                                 ensemble=ensemble, n_steps=int(n_steps), spec=spec,
                                                 observable=observable, checkpoint_every=checkpoint_every)
    _check(value, overflow, "trajectory_value")
    return float(value)


def trajectory_gradients(energy_of, theta, temperature, positions, cell, masses, key, *, ensemble, n_steps, spec,
                         observable: Observable = "potential_energy", checkpoint_every=None,
                         fast_compile: bool = False):
    """``(O, dO/dtheta, dO/dT)`` by reverse-mode AD through the whole trajectory (jitted).

    Arguments as :func:`trajectory_observable`.  ``dO/dtheta`` is a pytree like ``theta``
    (units of O per unit of each parameter), ``dO/dT`` in units of O per K.  Raises
    :class:`~glassjax.errors.SimulationError` when the neighbour list overflowed or the value
    is not finite.  Compiles once per (energy_of, observable, ensemble, n_steps, spec,
    checkpoint_every, fast_compile); pass the same objects to reuse the compilation.
    ``fast_compile=True`` compiles about twice as fast and runs about twice as slowly
    (:data:`FAST_COMPILE_OPTIONS`): for short trajectories.
    """
    value, g_theta, g_t, overflow = _VALUE_AND_GRADS[bool(fast_compile)](
        energy_of, theta, jnp.asarray(temperature, jnp.asarray(positions).dtype), positions, cell, masses, key,
        ensemble=ensemble, n_steps=int(n_steps), spec=spec, observable=observable, checkpoint_every=checkpoint_every)
    _check(value, overflow, "trajectory_gradients")
    return value, g_theta, g_t


def key_averaged_gradients(energy_of, theta, temperature, positions, cell, masses, keys, *, ensemble, n_steps,
                           spec, observable: Observable = "potential_energy", checkpoint_every=None,
                           fast_compile: bool = False, progress: bool = False) -> Dict[str, object]:
    """:func:`trajectory_gradients` averaged over independent initial momenta, one per key.

    ``O_bar = (1/K) sum_k O(theta, T; key_k)`` and its derivatives: an estimate of the derivative
    of the ensemble average that, at short horizons, is far less noisy than one trajectory's
    (see the module docstring on chaos).  Standard errors are ``std(ddof=1) / sqrt(K)`` over keys.

    Args:
        keys: a sequence of K >= 2 ``jax.random`` keys (or a (K, 2) key array); the other
            arguments as :func:`trajectory_gradients` (one compilation serves every key).
        progress: show a tqdm bar over keys.

    Returns:
        dict: ``value``, ``value_stderr`` (float), ``dtheta``, ``dtheta_stderr`` (pytrees like
        theta), ``dtemperature``, ``dtemperature_stderr`` (float, per K), ``values`` (K,).
    """
    from tqdm.auto import tqdm

    keys = list(keys)
    if len(keys) < 2:
        raise ConfigError(f"key_averaged_gradients: pass at least 2 keys (got {len(keys)})")
    vals, g_ts, g_thetas = [], [], []
    for key in tqdm(keys, disable=not progress, desc="trajectories"):
        v, g, g_t = trajectory_gradients(energy_of, theta, temperature, positions, cell, masses, key,
                                         ensemble=ensemble, n_steps=n_steps, spec=spec, observable=observable,
                                         checkpoint_every=checkpoint_every, fast_compile=fast_compile)
        vals.append(float(v))
        g_ts.append(float(g_t))
        g_thetas.append(jax.tree_util.tree_map(np.asarray, g))
    k = len(keys)
    stack = jax.tree_util.tree_map(lambda *xs: np.stack(xs), *g_thetas)
    sem = lambda x: np.std(x, axis=0, ddof=1) / np.sqrt(k)  # noqa: E731
    return {
        "value": float(np.mean(vals)), "value_stderr": float(sem(np.asarray(vals))),
        "dtheta": jax.tree_util.tree_map(lambda x: np.mean(x, axis=0), stack),
        "dtheta_stderr": jax.tree_util.tree_map(sem, stack),
        "dtemperature": float(np.mean(g_ts)), "dtemperature_stderr": float(sem(np.asarray(g_ts))),
        "values": np.asarray(vals),
    }


_PREFIX_STATIC = ("energy_of", "ensemble", "n_steps", "spec", "observable")


def _prefix_means_impl(energy_of, theta, temperature, positions, cell, masses, key, *, ensemble, n_steps, spec,
                       observable):
    _, aux = trajectory_observable(energy_of, theta, temperature, positions, cell, masses, key, ensemble=ensemble,
                                   n_steps=n_steps, spec=spec, observable=observable, return_aux=True)
    means = jnp.cumsum(aux.series) / jnp.arange(1, n_steps + 1, dtype=aux.series.dtype)
    return means, aux.overflow


def _prefix_jvp_impl(energy_of, theta, temperature, positions, cell, masses, key, d_theta, d_t, *, ensemble, n_steps,
                     spec, observable):
    def f(th, t):
        return _prefix_means_impl(energy_of, th, t, positions, cell, masses, key, ensemble=ensemble,
                                  n_steps=n_steps, spec=spec, observable=observable)

    (means, overflow), (d_means, _) = jax.jvp(f, (theta, temperature), (d_theta, d_t))
    return means, d_means, overflow


_PREFIX_MEANS = _jit(_prefix_means_impl, _PREFIX_STATIC)
_PREFIX_JVP = _jit(_prefix_jvp_impl, _PREFIX_STATIC)


def horizon_study(energy_of, theta, temperature, positions, cell, masses, key, *, ensemble, horizons: Sequence[int],
                  spec, observable: Observable = "potential_energy", direction=None, h_theta: float = 1e-5,
                  h_temperature: float = 1e-2, direction_key=None, fast_compile: bool = False) -> Dict[str, np.ndarray]:
    """AD and finite-difference derivatives of ``O_N`` for several horizons N (one trajectory).

    ``O_N`` is the mean of the observable over the first N steps.  For every N the study gives
    the directional derivative along ``direction`` in parameter space (AD: ``<grad O_N, d>``
    by forward mode, one tangent trajectory for all N; FD: central difference with step
    ``h_theta`` along d) and the temperature derivative (AD and FD with step ``h_temperature``
    K).  At short horizons the two agree to FD accuracy; beyond the Lyapunov time the AD
    derivative of the single trajectory grows exponentially (chaos) while FD with a finite
    step saturates (see the module docstring): the ratio shows where trajectory gradients
    stop being meaningful.

    Args:
        horizons: the N to report (each 1 <= N <= max); one trajectory of max(horizons) steps.
        direction: pytree like theta (default: a unit random direction from ``direction_key``).
        h_theta: FD step along the direction; h_temperature: FD step in T, K.
        fast_compile: see :data:`FAST_COMPILE_OPTIONS`.

    Returns:
        dict of (H,) numpy arrays: ``horizon``, ``time_ps``, ``value``, ``ad_theta``,
        ``fd_theta``, ``ad_temperature``, ``fd_temperature``, ``rel_diff_theta``,
        ``rel_diff_temperature`` (``|AD - FD| / max(|AD|, |FD|)``).
    """
    horizons = np.asarray(sorted(set(int(h) for h in horizons)))
    if horizons.size == 0 or horizons[0] < 1:
        raise ConfigError(f"horizon_study: horizons must be positive step counts, got {list(horizons)}")
    n_max = int(horizons[-1])
    dtype = jnp.asarray(positions).dtype
    temperature = jnp.asarray(temperature, dtype)
    if direction is None:
        direction = fd.random_direction(theta, jax.random.PRNGKey(0) if direction_key is None else direction_key)
    kw = dict(ensemble=ensemble, n_steps=n_max, spec=spec, observable=observable)
    args = (positions, cell, masses, key)

    fast = bool(fast_compile)

    def means(th, t):
        m, overflow = _PREFIX_MEANS[fast](energy_of, th, t, *args, **kw)
        _check(m[-1], overflow, "horizon_study")
        return np.asarray(m)

    zero_theta = jax.tree_util.tree_map(jnp.zeros_like, theta)
    value, ad_theta, overflow = _PREFIX_JVP[fast](energy_of, theta, temperature, *args, direction,
                                                  jnp.zeros_like(temperature), **kw)
    _check(value[-1], overflow, "horizon_study")
    _, ad_t, _ = _PREFIX_JVP[fast](energy_of, theta, temperature, *args, zero_theta, jnp.ones_like(temperature), **kw)
    shift = lambda s: jax.tree_util.tree_map(lambda p, d: p + s * d, theta, direction)  # noqa: E731
    fd_theta = (means(shift(h_theta), temperature) - means(shift(-h_theta), temperature)) / (2 * h_theta)
    fd_t = (means(theta, temperature + h_temperature) - means(theta, temperature - h_temperature)) / (2 * h_temperature)
    sel = horizons - 1
    out = {
        "horizon": horizons,
        "time_ps": horizons * ensemble.dt,
        "value": np.asarray(value)[sel],
        "ad_theta": np.asarray(ad_theta)[sel],
        "fd_theta": fd_theta[sel],
        "ad_temperature": np.asarray(ad_t)[sel],
        "fd_temperature": fd_t[sel],
    }
    for k in ("theta", "temperature"):
        a, b = out[f"ad_{k}"], out[f"fd_{k}"]
        out[f"rel_diff_{k}"] = np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-300)
    return out
