"""Python driver for jitted MD chunks: neighbour-list overflow handling, blow-up checks, progress.

Each chunk is one :func:`glassjax.md.integrators.run_chunk` call (a ``lax.scan`` of many steps
with the neighbour list refreshed inside).  After every chunk the driver checks the sticky
``overflow`` flag: when set, the chunk's results are thrown away, the list is reallocated
(more capacity and images) from the state at the *start* of the chunk, and the chunk is redone,
so a run never continues with a wrong list.  It also stops with a
:class:`glassjax.errors.SimulationError` when the energy or
positions become non-finite, atoms come closer than ``min_distance``, or any force exceeds
``max_force``.  The error carries the last good state (``last_good_state``,
``last_good_step``), and with a ``checkpoint`` path that state is already saved there,
written after the last accepted chunk.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional

import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from glassjax import neighbors
from glassjax.errors import ConfigError, SimulationError
from glassjax.md.integrators import Ensemble, MDState, run_chunk
from glassjax.neighbors import NeighborSpec


def reallocate(state: MDState, spec: NeighborSpec, capacity_factor: float = 1.5, image_margin: float = 1.0,
               min_capacity: int = 0):
    """A new list (and spec) for the state's positions and cell, with room to grow.

    ``min_capacity``: at least this many slots (e.g. from the neighbour count the overflowed
    chunk reached, so a cell that keeps shrinking does not overflow again).
    """
    probe, probe_spec = neighbors.allocate(state.positions, np.asarray(state.cell), spec.cutoff, spec.skin,
                                           capacity_factor=capacity_factor, image_margin=image_margin,
                                           block=spec.block)
    capacity = max(probe_spec.capacity, int(min_capacity))
    if capacity == probe_spec.capacity:
        nl, new_spec = probe, probe_spec
    else:
        nl, new_spec = neighbors.allocate(state.positions, np.asarray(state.cell), spec.cutoff, spec.skin,
                                          capacity=capacity, image_margin=image_margin, block=spec.block)
    if bool(nl.overflow):
        raise SimulationError("neighbour list overflows right after reallocation; the cell may have collapsed")
    return state._replace(nl=nl, overflow=jnp.asarray(False)), new_spec


def redo_on_overflow(chunk: Callable, state: MDState, spec: NeighborSpec, step: int, max_reallocations: int):
    """Run ``chunk(state, spec) -> (new_state, out)``; while the neighbour list overflowed,
    redo it from the same start with a larger list (room for the neighbour count the failed
    chunk reached, growing margins on repeated overflow).

    Returns ``(new_state, out, state, spec)``: the chunk's result and the (possibly
    reallocated) starting state and spec.  Raises :class:`SimulationError` naming ``step``
    after ``max_reallocations`` failed reallocations.
    """
    for attempt in range(max_reallocations + 1):
        new_state, out = chunk(state, spec)
        if not bool(new_state.overflow):
            return new_state, out, state, spec
        state, spec = reallocate(state, spec, capacity_factor=1.5 ** (attempt + 1), image_margin=1.0 * (attempt + 1),
                                 min_capacity=int(1.3 * int(new_state.nl.max_count)))
    raise SimulationError(f"neighbour list kept overflowing at step {step} after {max_reallocations} reallocations")


def _min_pair_distance(state: MDState) -> float:
    rij, mask = neighbors.pair_vectors(state.positions, state.cell, state.nl)
    r = jnp.sqrt(jnp.sum(rij * rij, axis=-1))
    return float(jnp.min(jnp.where(mask, r, jnp.inf)))


def check_state(state: MDState, step: int, min_distance: Optional[float] = None,
                max_force: Optional[float] = None) -> None:
    """Raise :class:`SimulationError` when the state has blown up (see module docstring)."""
    if not (np.isfinite(float(state.energy)) and bool(jnp.all(jnp.isfinite(state.positions)))
            and bool(jnp.all(jnp.isfinite(state.forces)))):
        raise SimulationError(f"MD blew up by step {step}: non-finite energy, positions or forces "
                              "(reduce the time step, or start from a minimised structure; with a "
                              "DeepPot-SE model this also means an atom had more neighbours of a type "
                              "than the model's sel: check with `glassjax model info MODEL --structure`)")
    if max_force is not None:
        fmax = float(jnp.max(jnp.linalg.norm(state.forces, axis=1)))
        if fmax > max_force:
            raise SimulationError(f"MD blew up by step {step}: a force of {fmax:.3g} eV/Å exceeds "
                                  f"max_force={max_force} eV/Å")
    if min_distance is not None:
        dmin = _min_pair_distance(state)
        if dmin < min_distance:
            raise SimulationError(f"MD blew up by step {step}: two atoms are {dmin:.3f} Å apart, closer than "
                                  f"min_distance={min_distance} Å")


def simulate(energy_fn: Callable, state: MDState, spec: NeighborSpec, ens: Ensemble, temperatures,
             pressures=None, chunk: int = 1000, every: int = 10, min_distance: Optional[float] = 0.5,
             max_force: Optional[float] = None, max_reallocations: int = 5, progress: bool = True,
             on_chunk: Optional[Callable] = None, start_step: int = 0, trajectory=None, log=None,
             checkpoint=None):
    """Run ``len(temperatures)`` steps in chunks.

    Args:
        energy_fn: ``energy_fn(positions, cell, nl) -> E``.
        state: from :func:`glassjax.md.integrators.init_state`.
        spec: the neighbour list's spec (replaced on reallocation; the final one is returned).
        ens: the :class:`Ensemble`.
        temperatures: (S,) target temperature per step, K (e.g. from ``glassjax.md.schedule``).
        pressures: (S,) / (S, 3) / (S, 3, 3) per step, GPa, or None for zero.
        chunk: steps per jitted chunk (S need not be a multiple; the last chunk is shorter).
        every: thermo output interval (steps); must divide ``chunk``.
        min_distance, max_force: blow-up thresholds (Å, eV/Å); None disables.
        on_chunk: optional callback ``on_chunk(state, thermo_chunk)`` after each accepted chunk.
        start_step: steps of the schedule already done (a restart): the run continues at
            ``temperatures[start_step]``.
        trajectory: optional :class:`glassjax.md.trajectory.H5MDWriter`: a frame every ``every`` steps.
        log: optional :class:`glassjax.md.trajectory.ThermoLog`: a row every ``every`` steps.
        checkpoint: optional path: the full state is saved there (atomically) after each chunk,
            after the trajectory and log are flushed; :func:`resume` restarts from it.

    Returns:
        ``(state, spec, thermo)``: thermo is a dict of numpy arrays over recorded steps,
        including ``step``.
    """
    temperatures = np.asarray(temperatures, dtype=float)
    n_steps = temperatures.shape[0]
    if pressures is None:
        pressures = np.zeros(n_steps)
    pressures = np.asarray(pressures, dtype=float)
    if pressures.shape[0] != n_steps:
        raise ConfigError(f"simulate: {pressures.shape[0]} pressures for {n_steps} temperatures")
    if chunk % every:
        raise ConfigError(f"simulate: chunk={chunk} must be a multiple of every={every}")
    records: Dict[str, List[np.ndarray]] = {}
    done = int(start_step)
    frames = trajectory is not None
    bar = tqdm(total=n_steps, initial=done, disable=not progress, unit="step")
    while done < n_steps:
        size = min(chunk, n_steps - done)
        size -= size % every
        if size == 0:
            size = n_steps - done
            rec_every = size
        else:
            rec_every = every
        t = jnp.asarray(temperatures[done:done + size])
        p = jnp.asarray(pressures[done:done + size])
        new_state, th, state, spec = redo_on_overflow(
            lambda st, sp: run_chunk(energy_fn, st, sp, ens, t, p, every=rec_every, frames=frames),
            state, spec, done, max_reallocations)
        try:
            check_state(new_state, done + size, min_distance, max_force)
        except SimulationError as exc:
            bar.close()
            where = (f"; the last good state (step {done}) is saved in {checkpoint}: inspect or resume from it"
                     if checkpoint is not None and done > start_step else "")
            err = SimulationError(f"{exc}{where}")
            err.last_good_state, err.last_good_step = state, done
            raise err from None
        state = new_state
        th = {k: np.asarray(v) for k, v in th.items()}
        th["step"] = done + rec_every * (np.arange(size // rec_every) + 1)
        for k, v in th.items():
            if k not in ("positions", "velocities"):
                records.setdefault(k, []).append(v)
        time_ps = th["step"] * ens.dt
        if trajectory is not None:
            trajectory.append(th["step"], time_ps, th)
        if log is not None:
            log.append(th["step"], time_ps, th)
        if checkpoint is not None:
            from glassjax.md.trajectory import save_checkpoint
            save_checkpoint(checkpoint, state, spec, done + size,
                            frames=trajectory.n_frames if trajectory is not None else 0,
                            rows=log.n_rows if log is not None else 0)
        if on_chunk is not None:
            on_chunk(state, th)
        th.pop("positions", None)
        th.pop("velocities", None)
        done += size
        bar.update(size)
        bar.set_postfix(T=f"{th['temperature'][-1]:.0f}K", P=f"{th['pressure'][-1]:.2f}GPa",
                        rho=f"{th['density'][-1]:.3f}")
    bar.close()
    return state, spec, {k: np.concatenate(v) for k, v in records.items()}


def resume(checkpoint, trajectory_path=None, log_path=None, symbols=None):
    """Reopen a run from its checkpoint.

    Returns ``(state, spec, steps_done, trajectory, log)``: the writers (None when their path
    is None) are truncated to the frames/rows that the checkpoint covers, so anything a
    killed run wrote after its last checkpoint is dropped.  Continue with
    ``simulate(..., start_step=steps_done, trajectory=..., log=..., checkpoint=...)``.
    """
    from glassjax.md.trajectory import H5MDWriter, ThermoLog, load_checkpoint

    state, spec, meta = load_checkpoint(checkpoint)
    traj = None
    if trajectory_path is not None:
        traj = H5MDWriter(trajectory_path, symbols or [], np.asarray(state.masses), truncate_to=meta["frames"])
    log = ThermoLog(log_path, truncate_to=meta["rows"]) if log_path is not None else None
    return state, spec, int(meta["steps_done"]), traj, log
