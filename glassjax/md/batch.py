"""Many independent MD systems in one vmapped program: padding, masking and sharding.

B systems (different seeds, compositions, atom counts, loading directions, ...) run as one
``jax.vmap`` of the single-system integrator (:mod:`glassjax.md.integrators`) inside one
``lax.scan``, so a GPU sees one large program instead of B small ones, and the batch axis
can be split over devices with :mod:`jax.sharding`.

Batch layout (B systems padded to the largest atom count N)::

    state      MDState with a leading batch axis on every leaf: positions (B, N, 3) Å,
               momenta (B, N, 3), masses (B, N) amu, cell (B, 3, 3), energy (B,) eV, ...,
               nl.idx (B, N, K), atom_mask (B, N) bool (False = padding atom)
    params     per-system pytree with a leading batch axis, read by the energy factory,
               e.g. {"types": (B, N) int32 with -1 for padding atoms, ...}
    shared     pytree common to all systems (not batched), e.g. DeepPot variables

Padding atoms have zero momentum, zero force, mass 1 amu (any positive value: their
momentum stays zero), are excluded from every neighbour list (``atom_mask`` passed to
:func:`glassjax.neighbors.build`), from N_f = 3 N_real - 3, the temperature, the pressure's
kinetic part and the density, and their positions only follow the cell's affine
deformation (so they never trigger a list rebuild).  Whatever their positions (any finite
values), they never influence real atoms.

Energy functions are built per system *inside* the vmapped program from traced data:
``make_energy_fn(params, shared) -> energy_fn(positions, cell, nl)``, a hashable callable
(a static jit argument).  :class:`TeterDuFactory` (classical Teter/Du with per-system,
composition-dependent parameter tables) and :class:`DeepPotFactory` (one DeepPot-SE model,
types traced) are provided.

Neighbour lists: all systems share one :class:`~glassjax.neighbors.NeighborSpec`
(the largest capacity and image range of the batch).  Under ``vmap`` a per-system
``lax.cond`` would rebuild every list every step, so the batched step is split
(:func:`glassjax.md.integrators.step_drift` / ``step_kick``) and the rebuild is decided
once for the whole batch: when any member needs it, every list is rebuilt.  The lists hold
the same pairs either way, so this only reorders sums (round-off).  Overflow of any member
makes :func:`batched_simulate` reallocate for the whole batch and redo the chunk.

Sharding: :func:`device_mesh` makes a 1-D mesh with axis ``"batch"`` over the devices; with
``mesh=`` :func:`batched_simulate` pads B to a multiple of the device count (copies of the
last system, dropped from the results) and places every batched array with
``NamedSharding(mesh, PartitionSpec("batch"))``.  Across hosts the same code runs under
``jax.distributed`` (see ``docs/batch.md``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erfc
from tqdm.auto import tqdm

from glassjax import neighbors
from glassjax.errors import ConfigError, SimulationError
from glassjax.md import classical
from glassjax.md.integrators import Ensemble, MDState, step_drift, step_kick, thermo
from glassjax.neighbors import NeighborList, NeighborSpec
from glassjax.units import PS

# ----------------------------------------------------------------------------- vmapping


def vmap_systems(fn: Callable, in_axes=0, out_axes=0) -> Callable:
    """``jax.vmap`` over the leading (system) axis of every argument, for any pure per-system
    function (e.g. a deformation scan ``fn(state, params)``).  ``in_axes`` as in ``jax.vmap``
    (``None`` for arguments shared by all systems)."""
    return jax.vmap(fn, in_axes=in_axes, out_axes=out_axes)


def stack(trees: Sequence[Any]):
    """Stack equally shaped pytrees along a new leading axis (numpy leaves stay numpy)."""
    if not trees:
        raise ConfigError("batch: no systems to stack")
    return jax.tree_util.tree_map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *trees)


def index(tree, i: int):
    """Member ``i`` of a batched pytree."""
    return jax.tree_util.tree_map(lambda x: x[i], tree)


def pad_atoms(x, n_max: int, fill=0):
    """Pad the leading (atom) axis of ``x`` to ``n_max`` rows with ``fill`` (a scalar or an
    array broadcastable to the padded rows)."""
    x = np.asarray(x)
    n = x.shape[0]
    if n > n_max:
        raise ConfigError(f"batch: {n} atoms do not fit a batch padded to {n_max}")
    out = np.empty((n_max,) + x.shape[1:], dtype=x.dtype)
    out[:n] = x
    out[n:] = fill
    return out


def pad_state(state: MDState, n_max: int, fill_positions=None) -> MDState:
    """An unbatched state padded to ``n_max`` atoms, with ``atom_mask`` set.

    Args:
        state: a single system (e.g. from :func:`glassjax.md.integrators.init_state`); its
            own ``atom_mask`` (if any) is respected.
        n_max: padded atom count.
        fill_positions: positions of the padding atoms, Å: None (the origin) or an array of
            shape (n_max - N, 3) or (3,); any finite values give the same dynamics.

    The neighbour list is left as it is (it is rebuilt for the batch by :func:`make_batch`).
    """
    n = state.positions.shape[0]
    mask = np.ones(n, bool) if state.atom_mask is None else np.asarray(state.atom_mask, bool)
    fill = 0.0 if fill_positions is None else np.asarray(fill_positions, dtype=np.asarray(state.positions).dtype)
    if not np.all(np.isfinite(fill)):
        raise ConfigError("pad_state: padding positions must be finite")
    dt = state.positions.dtype
    return state._replace(
        positions=jnp.asarray(pad_atoms(state.positions, n_max, fill), dt),
        momenta=jnp.asarray(pad_atoms(state.momenta, n_max, 0.0), dt),
        masses=jnp.asarray(pad_atoms(state.masses, n_max, 1.0), dt),
        forces=jnp.asarray(pad_atoms(state.forces, n_max, 0.0), dt),
        atom_mask=jnp.asarray(pad_atoms(mask, n_max, False)))


def unpad_state(state: MDState) -> MDState:
    """A single padded state cut back to its real atoms (``atom_mask`` dropped; padding atoms
    must come last, as :func:`pad_state` puts them).  The neighbour list is dropped to the
    real rows and its empty-slot marker remapped, so it is valid for the unpadded state."""
    if state.atom_mask is None:
        return state
    mask = np.asarray(state.atom_mask, bool)
    n = int(mask.sum())
    if not mask[:n].all():
        raise ConfigError("unpad_state: padding atoms must come after the real atoms")
    nl = state.nl
    idx = jnp.where(nl.idx[:n] >= n, n, nl.idx[:n]).astype(jnp.int32)
    nl = nl._replace(idx=idx, image=nl.image[:n], ref_positions=nl.ref_positions[:n])
    return state._replace(positions=state.positions[:n], momenta=state.momenta[:n], masses=state.masses[:n],
                          forces=state.forces[:n], nl=nl, atom_mask=None)


# ----------------------------------------------------------------------------- neighbour lists


@partial(jax.jit, static_argnames=("spec",))
def build_batch_lists(positions, cells, spec: NeighborSpec, atom_mask) -> NeighborList:
    """Neighbour lists of every system: positions (B, N, 3), cells (B, 3, 3), atom_mask (B, N)."""
    return jax.vmap(neighbors.build, in_axes=(0, 0, None, 0))(positions, cells, spec, atom_mask)


def batch_spec(positions, cells, atom_mask, cutoff: float, skin: float = 1.0, capacity: Optional[int] = None,
               capacity_factor: float = 1.3, image_margin: float = 0.0, min_capacity: int = 0,
               block: int = 256) -> NeighborSpec:
    """One :class:`NeighborSpec` for the whole batch (outside jit): the image range that the
    thinnest cell needs and ``capacity_factor`` times the largest neighbour count."""
    cells_np = to_host(cells).astype(np.float64)
    imgs = np.max([neighbors.images_needed(c, cutoff + skin + image_margin) for c in cells_np], axis=0)
    images = tuple(int(x) for x in imgs)
    n = int(np.asarray(positions).shape[1])
    block = min(block, max(1, n))
    if capacity is None:
        probe = NeighborSpec(float(cutoff), float(skin), 1, images, block=block)
        counted = build_batch_lists(jnp.asarray(positions), jnp.asarray(cells), probe, jnp.asarray(atom_mask))
        capacity = max(1, int(math.ceil(int(jnp.max(counted.max_count)) * capacity_factor)))
    capacity = max(int(capacity), int(min_capacity))
    return NeighborSpec(float(cutoff), float(skin), capacity, images, block=block)


def rebuild_batch(state: MDState, spec: NeighborSpec) -> MDState:
    """Rebuild every member's list for ``spec`` and clear the overflow flags."""
    nl = build_batch_lists(state.positions, state.cell, spec, state.atom_mask)
    return state._replace(nl=nl, overflow=jnp.zeros_like(state.overflow))


def reallocate_batch(state: MDState, spec: NeighborSpec, capacity_factor: float = 1.5,
                     image_margin: float = 1.0, min_capacity: int = 0) -> Tuple[MDState, NeighborSpec]:
    """Larger lists for the whole batch (after an overflow of any member)."""
    new_spec = batch_spec(state.positions, state.cell, state.atom_mask, spec.cutoff, spec.skin,
                          capacity_factor=capacity_factor, image_margin=image_margin, min_capacity=min_capacity,
                          block=spec.block)
    state = rebuild_batch(state, new_spec)
    if bool(jnp.any(state.nl.overflow)):
        raise SimulationError("batch: a neighbour list overflows right after reallocation; a cell may have collapsed")
    return state, new_spec


def make_batch(states: Sequence[MDState], cutoff: float, skin: float = 1.0, n_max: Optional[int] = None,
               fill_positions: Optional[Sequence] = None, capacity: Optional[int] = None,
               capacity_factor: float = 1.3, image_margin: float = 0.0) -> Tuple[MDState, NeighborSpec]:
    """Pad, stack and list B single-system states.

    Args:
        states: B states (:func:`glassjax.md.integrators.init_state`), any atom counts; they
            must share dtype and thermostat chain length.
        cutoff, skin: neighbour-list cutoff and skin, Å (the energy functions' cutoff).
        n_max: padded atom count (default: the largest N).
        fill_positions: optional per-system padding positions (see :func:`pad_state`).
        capacity, capacity_factor, image_margin: as :func:`glassjax.neighbors.allocate`.

    Returns:
        ``(state, spec)``: the batched state (leading axis B, lists rebuilt for the batch)
        and the shared spec.
    """
    if not states:
        raise ConfigError("make_batch: no systems")
    sizes = [int(s.positions.shape[0]) for s in states]
    n_max = max(sizes) if n_max is None else int(n_max)
    if n_max < max(sizes):
        raise ConfigError(f"make_batch: n_max={n_max} is smaller than the largest system ({max(sizes)} atoms)")
    chains = {int(s.xi.shape[0]) for s in states}
    if len(chains) != 1:
        raise ConfigError(f"make_batch: the systems have different thermostat chain lengths {sorted(chains)}")
    fills = [None] * len(states) if fill_positions is None else list(fill_positions)
    padded = [pad_state(s, n_max, f) for s, f in zip(states, fills)]
    # lists are rebuilt below; give every member a placeholder of one shape for stacking
    dummy = NeighborList(idx=jnp.zeros((n_max, 1), jnp.int32), image=jnp.zeros((n_max, 1, 3), states[0].positions.dtype),
                         ref_positions=padded[0].positions, ref_cell=padded[0].cell,
                         max_count=jnp.asarray(0, jnp.int32), overflow=jnp.asarray(False))
    padded = [p._replace(nl=dummy._replace(ref_positions=p.positions, ref_cell=p.cell),
                         overflow=jnp.asarray(False), step=jnp.asarray(p.step, jnp.int32)) for p in padded]
    batch = stack(padded)
    spec = batch_spec(batch.positions, batch.cell, batch.atom_mask, cutoff, skin, capacity=capacity,
                      capacity_factor=capacity_factor, image_margin=image_margin)
    batch = rebuild_batch(batch, spec)
    if bool(jnp.any(batch.nl.overflow)):
        raise SimulationError("make_batch: a neighbour list overflows right after allocation")
    return batch, spec


def n_systems(state: MDState) -> int:
    return int(state.positions.shape[0])


# ----------------------------------------------------------------------------- the batched step


def update_batch_lists(state: MDState, spec: NeighborSpec) -> MDState:
    """Refresh the neighbour lists of a batched state (jit-able): when any member needs a
    rebuild (:func:`glassjax.neighbors.needs_rebuild`) every member's list is rebuilt, else
    none is (one batch-wide ``lax.cond``; a per-member ``lax.cond`` under ``vmap`` would
    rebuild every list every step).  Use it between a vmapped drift and a vmapped kick,
    e.g. ``glassjax.md.deform.deform_drift`` / ``deform_kick``::

        mid = jax.vmap(lambda s, p: deform_drift(s, ens, deformation, p, ref))(state, dparams)
        mid = update_batch_lists(mid, spec)
        new = jax.vmap(lambda s, prm, p: deform_kick(make_energy_fn(prm, shared), s, ens, deformation, p))(
            mid, params, dparams)
    """
    need = jax.vmap(neighbors.needs_rebuild, in_axes=(0, 0, 0, None))(state.nl, state.positions, state.cell, spec)
    nl = jax.lax.cond(jnp.any(need),
                      lambda: jax.vmap(neighbors.build, in_axes=(0, 0, None, 0))(state.positions, state.cell, spec,
                                                                                 state.atom_mask),
                      lambda: state.nl)
    return state._replace(nl=nl)


def _batched_step(make_energy_fn, state, params, shared, spec, ens, t_b, p_b):
    mid = jax.vmap(lambda s, t, p: step_drift(s, ens, t, p))(state, t_b, p_b)
    mid = update_batch_lists(mid, spec)

    def kick(s, prm, t, p):
        return step_kick(make_energy_fn(prm, shared), s, ens, t, p)

    return jax.vmap(kick)(mid, params, t_b, p_b)


def batched_step(make_energy_fn: Callable, state: MDState, params, spec: NeighborSpec, ens: Ensemble,
                 temperatures, pressures, shared=None) -> MDState:
    """One MD step of every system (pure, jit-able; ``make_energy_fn``, ``spec``, ``ens`` static).

    Args:
        make_energy_fn: ``make_energy_fn(params_i, shared) -> energy_fn(positions, cell, nl)``.
        state: batched state (:func:`make_batch`); params: batched per-system pytree.
        temperatures: (B,) K; pressures: (B,), (B, 3) or (B, 3, 3) GPa.
        shared: pytree common to all systems.
    """
    return _batched_step(make_energy_fn, state, params, shared, spec, ens, jnp.asarray(temperatures),
                         jnp.asarray(pressures))


@partial(jax.jit, static_argnames=("make_energy_fn", "spec", "ens", "every", "frames"))
def batched_run_chunk(make_energy_fn: Callable, state: MDState, params, spec: NeighborSpec, ens: Ensemble,
                      temperatures, pressures, shared=None, every: int = 1, frames: bool = False):
    """``S`` steps of every system in one ``lax.scan``; returns ``(state, thermo)``.

    Args:
        make_energy_fn, state, params, spec, ens, shared: see :func:`batched_step`.
        temperatures: (B, S) target temperature per system and step, K.
        pressures: (B, S), (B, S, 3) or (B, S, 3, 3) target pressure, GPa.
        every: record every ``every`` steps (S must be a multiple).
        frames: also record positions (Å) and velocities (Å/ps).

    Returns:
        the new batched state and a dict of thermo arrays of shape (B, S // every, ...)
        (the keys of :func:`glassjax.md.integrators.thermo`).  Check ``state.overflow``
        afterwards: when any member is set the chunk must be redone (:func:`batched_simulate`).
    """
    temperatures = jnp.asarray(temperatures)
    pressures = jnp.asarray(pressures)
    b, s = temperatures.shape
    if s % every:
        raise ConfigError(f"batched_run_chunk: {s} steps is not a multiple of every={every}")
    # scan over steps: (S // every, every, B, ...)
    t_r = jnp.moveaxis(temperatures, 0, 1).reshape((s // every, every, b))
    p_r = jnp.moveaxis(pressures, 0, 1).reshape((s // every, every, b) + pressures.shape[2:])

    def inner(st, tp):
        t, p = tp
        return _batched_step(make_energy_fn, st, params, shared, spec, ens, t, p), None

    def outer(st, tp):
        t, p = tp
        st, _ = jax.lax.scan(inner, st, (t, p))
        rec = jax.vmap(lambda x, tt, pp: thermo(x, ens, tt, pp))(st, t[-1], p[-1])
        if frames:
            rec["positions"] = st.positions
            rec["velocities"] = st.momenta / st.masses[..., None] * PS
        return st, rec

    state, rec = jax.lax.scan(outer, state, (t_r, p_r))
    return state, jax.tree_util.tree_map(lambda x: jnp.moveaxis(x, 0, 1), rec)


# ----------------------------------------------------------------------------- sharding


def device_mesh(devices=None):
    """A 1-D :class:`jax.sharding.Mesh` with axis ``"batch"`` over ``devices`` (default: all,
    across every host under ``jax.distributed``)."""
    devs = np.asarray(jax.devices() if devices is None else devices)
    return jax.sharding.Mesh(devs.reshape(-1), ("batch",))


def _place(x, sharding):
    """``x`` placed with ``sharding``.  Under ``jax.distributed`` (several processes) every
    process holds the same full value, and each one fills its own devices' shards."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return jax.device_put(x, sharding)  # already a global array
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    xn = np.asarray(x)
    return jax.make_array_from_callback(xn.shape, sharding, lambda idx: xn[idx])


def to_host(x) -> np.ndarray:
    """A (possibly multi-host sharded) array as a full numpy array on this process."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def shard(tree, mesh):
    """Place every leaf of a batched pytree with its leading axis split over ``mesh``'s
    ``"batch"`` axis (the length must be a multiple of the device count)."""
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
    return jax.tree_util.tree_map(lambda x: _place(x, sharding), tree)


def replicate(tree, mesh):
    """Place a pytree fully replicated on ``mesh`` (for ``shared`` data)."""
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    return jax.tree_util.tree_map(lambda x: _place(x, sharding), tree)


def pad_batch(tree, multiple: int):
    """Pad the leading axis of a batched pytree to a multiple of ``multiple`` with copies of the
    last member; returns ``(tree, B)`` with B the original size."""
    leaves = jax.tree_util.tree_leaves(tree)
    b = int(leaves[0].shape[0])
    extra = (-b) % multiple
    if extra == 0:
        return tree, b

    def pad(x):
        x = jnp.asarray(x)
        return jnp.concatenate([x, jnp.repeat(x[-1:], extra, axis=0)], axis=0)

    return jax.tree_util.tree_map(pad, tree), b


# ----------------------------------------------------------------------------- driver


def _per_system(x, b: int, s: int, name: str) -> np.ndarray:
    """Broadcast a schedule to (B, S, ...): (S, ...) is shared, (B, S, ...) per system."""
    x = np.asarray(x, dtype=float)
    if x.ndim >= 2 and x.shape[:2] == (b, s):
        return x
    if x.shape[:1] == (s,):
        return np.broadcast_to(x, (b,) + x.shape).copy()
    raise ConfigError(f"batched_simulate: {name} must have shape (S, ...) or (B, S, ...) with B={b}, S={s}; "
                      f"got {x.shape}")


def check_batch(state: MDState, step: int, names: Sequence[str], min_distance: Optional[float] = 0.5,
                max_force: Optional[float] = None) -> None:
    """Raise :class:`SimulationError` naming the first blown-up system (non-finite energy,
    positions or forces of real atoms, a pair closer than ``min_distance`` Å, or a force
    above ``max_force`` eV/Å)."""
    mask = to_host(state.atom_mask).astype(bool)
    e = to_host(state.energy)
    x = to_host(state.positions)
    f = to_host(state.forces)
    for i, name in enumerate(names):
        m = mask[i]
        if not (np.isfinite(e[i]) and np.all(np.isfinite(x[i][m])) and np.all(np.isfinite(f[i][m]))):
            raise SimulationError(f"batch: system {i} ({name}) blew up by step {step}: non-finite energy, positions "
                                  "or forces (reduce the time step or start from a minimised structure; with a "
                                  "DeepPot-SE model an atom may have more neighbours of a type than sel)")
        if max_force is not None:
            fmax = float(np.max(np.linalg.norm(f[i][m], axis=1)))
            if fmax > max_force:
                raise SimulationError(f"batch: system {i} ({name}) blew up by step {step}: a force of {fmax:.3g} "
                                      f"eV/Å exceeds max_force={max_force} eV/Å")
    if min_distance is not None:
        rij, filled = jax.vmap(neighbors.pair_vectors)(state.positions, state.cell, state.nl)
        r = jnp.sqrt(jnp.sum(rij * rij, axis=-1))
        dmin = to_host(jnp.min(jnp.where(filled, r, jnp.inf), axis=(1, 2)))
        for i, name in enumerate(names):
            if dmin[i] < min_distance:
                raise SimulationError(f"batch: system {i} ({name}) blew up by step {step}: two atoms are "
                                      f"{dmin[i]:.3f} Å apart, closer than min_distance={min_distance} Å")


def batched_simulate(make_energy_fn: Callable, state: MDState, params, spec: NeighborSpec, ens: Ensemble,
                     temperatures, pressures=None, shared=None, chunk: int = 1000, every: int = 10,
                     names: Optional[Sequence[str]] = None, min_distance: Optional[float] = 0.5,
                     max_force: Optional[float] = None, max_reallocations: int = 5, progress: bool = True,
                     mesh=None, trajectories: Optional[Sequence] = None, logs: Optional[Sequence] = None,
                     on_chunk: Optional[Callable] = None, start_step: int = 0):
    """Run every system of a batch through its schedule, in jitted chunks.

    Args:
        make_energy_fn, state, params, spec, ens, shared: see :func:`batched_step`.
        temperatures: (S,) shared or (B, S) per-system target temperatures, K.
        pressures: None (0 GPa), (S,), (S, 3), (S, 3, 3) shared or (B, S, ...) per system, GPa.
        chunk, every: steps per jitted chunk and thermo interval (``every`` divides ``chunk``).
        names: system names for error messages (default ``"0"``, ``"1"``, ...).
        min_distance, max_force: blow-up thresholds (Å, eV/Å), None disables.
        mesh: optional :func:`device_mesh`: B is padded to a multiple of the device count and
            the batch axis is sharded over the mesh.
        trajectories, logs: optional per-system :class:`glassjax.md.trajectory.H5MDWriter` /
            :class:`~glassjax.md.trajectory.ThermoLog` (or None entries): frames and rows of
            the real atoms every ``every`` steps.
        on_chunk: optional ``on_chunk(state, thermo_chunk)`` after each accepted chunk
            (batched state and thermo with leading axis B).
        start_step: schedule steps already done.

    Returns:
        ``(state, spec, thermo)``: the batched state (B members, sharding padding removed),
        the final spec, and a dict of numpy arrays (B, F, ...) plus ``step`` (F,).
    """
    b = n_systems(state)
    temperatures = np.asarray(temperatures, dtype=float)
    if mesh is not None:
        state, params = (jax.tree_util.tree_map(to_host, x) for x in (state, params))
    s_total = temperatures.shape[-1]
    temperatures = _per_system(temperatures, b, s_total, "temperatures")
    pressures = np.zeros((b, s_total)) if pressures is None else _per_system(pressures, b, s_total, "pressures")
    names = [str(i) for i in range(b)] if names is None else [str(x) for x in names]
    if len(names) != b:
        raise ConfigError(f"batched_simulate: {len(names)} names for {b} systems")
    if chunk % every:
        raise ConfigError(f"batched_simulate: chunk={chunk} must be a multiple of every={every}")
    frames = trajectories is not None and any(t is not None for t in trajectories)
    if mesh is not None:
        (state, params, temperatures, pressures), _ = pad_batch((state, params, temperatures, pressures),
                                                                int(mesh.devices.size))
        state, params = shard(state, mesh), shard(params, mesh)
        if shared is not None:
            shared = replicate(shared, mesh)
    temperatures = np.asarray(temperatures)
    pressures = np.asarray(pressures)
    records: Dict[str, List[np.ndarray]] = {}
    steps: List[np.ndarray] = []
    done = int(start_step)
    bar = tqdm(total=s_total, initial=done, disable=not progress, unit="step")
    while done < s_total:
        size = min(chunk, s_total - done)
        size -= size % every
        rec_every = every
        if size == 0:
            size = rec_every = s_total - done
        t = jnp.asarray(temperatures[:, done:done + size])
        p = jnp.asarray(pressures[:, done:done + size])
        if mesh is not None:
            t, p = shard(t, mesh), shard(p, mesh)
        for attempt in range(max_reallocations + 1):
            new_state, th = batched_run_chunk(make_energy_fn, state, params, spec, ens, t, p, shared=shared,
                                              every=rec_every, frames=frames)
            if not bool(jnp.any(new_state.overflow)):
                break
            state, spec = reallocate_batch(state, spec, capacity_factor=1.5 ** (attempt + 1),
                                           image_margin=1.0 * (attempt + 1),
                                           min_capacity=int(1.3 * int(jnp.max(new_state.nl.max_count))))
            if mesh is not None:
                state = shard(state, mesh)
        else:
            raise SimulationError(f"batch: neighbour lists kept overflowing at step {done} after "
                                  f"{max_reallocations} reallocations")
        try:
            check_batch(index_range(new_state, b), done + size, names, min_distance, max_force)
        except SimulationError as exc:
            bar.close()
            err = SimulationError(str(exc))
            err.last_good_state, err.last_good_step = index_range(state, b), done
            raise err from None
        state = new_state
        th = {k: to_host(v)[:b] for k, v in th.items()}
        step_ids = done + rec_every * (np.arange(size // rec_every) + 1)
        time_ps = step_ids * ens.dt
        if frames or logs is not None:
            mask = to_host(state.atom_mask)[:b].astype(bool)
            for i in range(b):
                rec_i = {k: v[i] for k, v in th.items()}
                if frames and trajectories[i] is not None:
                    m = mask[i]
                    rec_i = dict(rec_i, positions=rec_i["positions"][:, m], velocities=rec_i["velocities"][:, m])
                    trajectories[i].append(step_ids, time_ps, rec_i)
                if logs is not None and logs[i] is not None:
                    logs[i].append(step_ids, time_ps, rec_i)
        if on_chunk is not None:
            on_chunk(index_range(state, b), th)
        for k, v in th.items():
            if k not in ("positions", "velocities"):
                records.setdefault(k, []).append(v)
        steps.append(step_ids)
        done += size
        bar.update(size)
        bar.set_postfix(T=f"{np.mean(th['temperature'][:, -1]):.0f}K", P=f"{np.mean(th['pressure'][:, -1]):.2f}GPa")
    bar.close()
    out = {k: np.concatenate(v, axis=1) for k, v in records.items()}
    out["step"] = np.concatenate(steps) if steps else np.zeros(0, int)
    return index_range(state, b), spec, out


def index_range(tree, b: int):
    """The first ``b`` members of a batched pytree (drops sharding padding)."""
    return jax.tree_util.tree_map(lambda x: x[:b], tree)


# ----------------------------------------------------------------------------- energy factories


def teter_du_params(symbols: Sequence[str], n_max: int, composition: Optional[Mapping[str, float]] = None,
                    n4: Optional[float] = None, a_bo: Optional[float] = None,
                    species: Sequence[str] = ("B", "Li", "Si", "O"), rc_sr: float = 8.0, rc_coul: float = 8.0,
                    alpha: float = 0.25) -> Dict[str, np.ndarray]:
    """Per-system parameters of :class:`TeterDuFactory` (numpy; stack them with :func:`stack`).

    Args:
        symbols: the system's N chemical symbols (N <= n_max).
        n_max: padded atom count of the batch.
        composition, n4, a_bo: as :func:`glassjax.md.classical.teter_du_table` (the
            composition-dependent B-O term).
        species: the common type order of the batch (every system must use the same).
        rc_sr, rc_coul, alpha: must equal the factory's.

    Returns:
        dict: ``types`` (n_max,) int32 (-1 = padding), ``charges`` (T,), and (T, T) tables
        ``A, rho, C, B, n, D, r0`` plus the shifted-force constants ``u_rc, du_rc``.
    """
    table = classical.teter_du_table(list(species), composition=composition, n4=n4, a_bo=a_bo, rc_sr=rc_sr,
                                     rc_coul=rc_coul, alpha=alpha)
    types = classical.types_of(symbols, table)
    out = {"types": pad_atoms(types, n_max, -1).astype(np.int32), "charges": np.asarray(table.charges, float)}
    for k in ("A", "rho", "C", "B", "n", "D", "r0"):
        out[k] = np.asarray(getattr(table, k), float)
    rc = table.rc_sr
    e_rc = table.A * np.exp(-rc / table.rho)
    out["u_rc"] = e_rc - table.C / rc ** 6
    out["du_rc"] = -e_rc / table.rho + 6.0 * table.C / rc ** 7
    return out


@dataclass(frozen=True)
class TeterDuFactory:
    """``make_energy_fn(params, shared)`` for the Teter/Du potential with traced per-system tables.

    The same energy as :func:`glassjax.md.classical.teter_du_energy_fn` (shifted-force
    Buckingham + wall, DSF Coulomb, self term), with every parameter and the atom types
    read from ``params`` (:func:`teter_du_params`) so systems of different compositions
    share one compiled program.  Padding atoms (type -1) contribute nothing.
    """

    rc_sr: float = 8.0
    rc_coul: float = 8.0
    alpha: float = 0.25

    @property
    def cutoff(self) -> float:
        return max(self.rc_sr, self.rc_coul)

    def __call__(self, params, shared=None) -> Callable:
        rc_sr, rc_c, alpha = self.rc_sr, self.rc_coul, self.alpha
        k = classical.COULOMB_K
        erfc_rc = math.erfc(alpha * rc_c)
        slope = erfc_rc / rc_c ** 2 + 2.0 * alpha / math.sqrt(math.pi) * math.exp(-(alpha * rc_c) ** 2) / rc_c
        self_c = erfc_rc / (2.0 * rc_c) + alpha / math.sqrt(math.pi)

        def energy_fn(positions, cell, nl):
            types = params["types"]
            real = types >= 0
            t = jnp.where(real, types, 0)
            rij, filled = neighbors.pair_vectors(positions, cell, nl)
            j = jnp.where(filled, nl.idx, 0)
            pair = filled & real[:, None] & real[j]
            r = jnp.sqrt(jnp.where(pair, jnp.sum(rij * rij, axis=-1), 1.0))
            ti = jnp.broadcast_to(t[:, None], j.shape)
            tj = t[j]
            g = {key: params[key][ti, tj] for key in ("A", "rho", "C", "B", "n", "D", "r0", "u_rc", "du_rc")}
            buck = g["A"] * jnp.exp(-r / g["rho"]) - g["C"] / r ** 6
            wall = g["B"] * r ** (-g["n"]) + g["D"] * r * r
            sr = jnp.where(r < g["r0"], wall, buck) - g["u_rc"] - (r - rc_sr) * g["du_rc"]
            sr = jnp.where(r < rc_sr, sr, 0.0)
            q = params["charges"][t]
            coul = k * q[:, None] * q[j] * (erfc(alpha * r) / r - erfc_rc / rc_c + slope * (r - rc_c))
            coul = jnp.where(r < rc_c, coul, 0.0)
            e_self = -k * jnp.sum(jnp.where(real, q * q, 0.0)) * self_c
            return 0.5 * jnp.sum(jnp.where(pair, sr + coul, 0.0)) + e_self

        return energy_fn


@dataclass(frozen=True, eq=False)
class DeepPotFactory:
    """``make_energy_fn(params, shared)`` for one DeepPot-SE model: ``params["types"]`` (N,)
    with -1 for padding atoms, ``shared`` = the model's variables (hashed by identity)."""

    model: Any
    strict: bool = True
    type_capacity: Optional[Tuple[int, ...]] = None

    @property
    def cutoff(self) -> float:
        return float(self.model.rcut)

    def __call__(self, params, shared=None) -> Callable:
        return self.model.energy_fn(shared, params["types"], strict=self.strict, type_capacity=self.type_capacity)

    def for_structures(self, structures: Sequence) -> "DeepPotFactory":
        """This factory with ``type_capacity`` = the largest count of each atom type over
        ``structures``: each type's networks then run on that many atoms of every batch
        member instead of every network on every (padded) atom (the types of a padded batch
        are traced under ``vmap``; :mod:`glassjax.model.typegroups`)."""
        from glassjax.model.typegroups import TypeCapacity

        rows = [self.model.types_from_species(a.get_chemical_symbols()) for a in structures]
        caps = TypeCapacity.of(rows, len(self.model.type_map)).capacity
        return dataclasses.replace(self, type_capacity=caps)


def deeppot_params(model, symbols: Sequence[str], n_max: int) -> Dict[str, np.ndarray]:
    """Per-system parameters of :class:`DeepPotFactory`: the padded type array."""
    types = np.asarray(model.types_from_species(list(symbols)), np.int32)
    return {"types": pad_atoms(types, n_max, -1).astype(np.int32)}


class BatchPotential(NamedTuple):
    """What a batched driver needs to know about a potential.

    factory: ``make_energy_fn(params, shared)`` (hashable); params:
    ``params(symbols, n_max, composition) -> dict`` per system (composition: oxide mol
    fractions, may be None when the potential does not need it); shared: pytree common to
    all systems (e.g. model variables) or None; cutoff: neighbour-list cutoff, Å.
    """

    factory: Callable
    params: Callable
    shared: Any
    cutoff: float

    def for_structures(self, structures: Sequence) -> "BatchPotential":
        """The potential specialised to a batch of ``structures`` where its factory can use it
        (:meth:`DeepPotFactory.for_structures`: per-type capacities, about ntypes x fewer
        network evaluations); otherwise itself."""
        spec = getattr(self.factory, "for_structures", None)
        return self if spec is None else self._replace(factory=spec(structures))


def teter_potential(rc_sr: float = 8.0, rc_coul: float = 8.0, alpha: float = 0.25,
                    n4: Optional[float] = None) -> BatchPotential:
    """Teter/Du for a batch (composition-dependent B-O term from each system's composition)."""
    fac = TeterDuFactory(float(rc_sr), float(rc_coul), float(alpha))

    def params(symbols, n_max, composition=None):
        return teter_du_params(symbols, n_max, composition=composition, n4=n4, rc_sr=rc_sr, rc_coul=rc_coul,
                               alpha=alpha)

    return BatchPotential(fac, params, None, fac.cutoff)


def deeppot_potential(path, dtype=None, strict: bool = True) -> BatchPotential:
    """A DeepPot-SE model file (``.dp`` or glassjax checkpoint) for a batch."""
    from glassjax.model import load_model

    model, variables = load_model(path, dtype=dtype)
    fac = DeepPotFactory(model, strict)

    def params(symbols, n_max, composition=None):
        return deeppot_params(model, symbols, n_max)

    return BatchPotential(fac, params, variables, fac.cutoff)


# ----------------------------------------------------------------------------- initial batch


@partial(jax.jit, static_argnames=("make_energy_fn",))
def batch_energy_forces_virial(make_energy_fn: Callable, positions, cells, nl: NeighborList, params, shared=None):
    """(B,) energies (eV), (B, N, 3) forces (eV/Å) and (B, 3, 3) virials (eV) of a batch."""
    from glassjax.potential import energy_forces_virial

    def one(x, c, nl_, p):
        return energy_forces_virial(make_energy_fn(p, shared), x, c, nl_)

    return jax.vmap(one)(positions, cells, nl, params)


class _BatchFire(NamedTuple):
    state: MDState
    v: jax.Array  # (B, N, 3)
    dt: jax.Array  # (B,)
    alpha: jax.Array  # (B,)
    n_pos: jax.Array  # (B,)
    fmax: jax.Array  # (B,)
    step: jax.Array
    overflow: jax.Array


@partial(jax.jit, static_argnames=("make_energy_fn", "spec"))
def _batched_fire_loop(make_energy_fn, c: _BatchFire, params, shared, spec: NeighborSpec, fmax_target,
                       max_steps, max_step_len):
    from glassjax.md.minimize import fire_move

    def cond(c):
        return (c.step < max_steps) & jnp.any(c.fmax > fmax_target) & (~c.overflow)

    def body(c):
        st = update_batch_lists(c.state, spec)
        _, f, _ = batch_energy_forces_virial(make_energy_fn, st.positions, st.cell, st.nl, params, shared)
        f = jnp.where(st.atom_mask[..., None], f, 0.0)
        dr, v, dt, alpha, n_pos, fmax = jax.vmap(fire_move, in_axes=(0, 0, 0, 0, 0, None, None))(
            f, c.v, c.dt, c.alpha, c.n_pos, fmax_target, max_step_len)
        overflow = jnp.any(st.nl.overflow)
        dr = jnp.where(overflow, 0.0, dr)  # forces from an overflowing list are incomplete
        return _BatchFire(state=st._replace(positions=st.positions + dr), v=v, dt=dt, alpha=alpha, n_pos=n_pos,
                          fmax=fmax, step=c.step + 1, overflow=overflow)

    return jax.lax.while_loop(cond, body, c)


def batched_fire(make_energy_fn: Callable, state: MDState, params, spec: NeighborSpec, shared=None,
                 fmax: float = 0.2, max_steps: int = 200, max_step: float = 0.2,
                 max_reallocations: int = 5) -> Tuple[MDState, NeighborSpec, np.ndarray, int]:
    """FIRE-relax the atoms of every system of a batch at fixed cells, in one jitted loop.

    Each system follows :func:`glassjax.md.minimize.fire` (fixed cell, same FIRE parameters)
    with its own time step and mixing and stops moving once its largest force is at most
    ``fmax``; the loop ends when every system has converged or after ``max_steps``
    iterations.  Use it on random starts (:func:`glassjax.md.builder.build_glass`) before a
    hot melt: an unrelaxed start can have forces of tens of eV/Å.

    Args:
        make_energy_fn, state, params, spec, shared: as :func:`batched_step` (momenta,
            cells and thermostat variables are kept).
        fmax: convergence threshold, eV/Å; max_steps: iteration limit; max_step: largest
            move per iteration, Å.

    Returns:
        ``(state, spec, fmax, steps)``: the state at the relaxed positions (energy, forces
        and virial recomputed, lists rebuilt), the possibly enlarged spec, the (B,) largest
        residual force per system (eV/Å) and the iterations run.
    """
    if fmax <= 0 or max_steps < 1 or max_step <= 0:
        raise ConfigError(f"batched_fire: need fmax > 0, max_steps >= 1, max_step > 0 "
                          f"(got {fmax}, {max_steps}, {max_step})")
    from glassjax.md.minimize import FIRE_ALPHA0, FIRE_DT0

    b = n_systems(state)
    dtype = state.positions.dtype
    done = 0
    for _ in range(max_reallocations + 1):
        c = _BatchFire(state=state, v=jnp.zeros_like(state.positions), dt=jnp.full((b,), FIRE_DT0, dtype),
                       alpha=jnp.full((b,), FIRE_ALPHA0, dtype), n_pos=jnp.zeros((b,), jnp.int32),
                       fmax=jnp.full((b,), jnp.inf, dtype), step=jnp.asarray(0), overflow=jnp.asarray(False))
        c = _batched_fire_loop(make_energy_fn, c, params, shared, spec, float(fmax), int(max_steps - done),
                               float(max_step))
        done += int(c.step)
        state = c.state
        if not bool(c.overflow):
            break
        state, spec = reallocate_batch(state, spec, capacity_factor=1.5, image_margin=1.0,
                                       min_capacity=int(1.3 * int(jnp.max(state.nl.max_count))))
    else:
        raise SimulationError("batched_fire: neighbour lists kept overflowing; a structure may be collapsing")
    state = rebuild_batch(state, spec)
    if bool(jnp.any(state.nl.overflow)):
        state, spec = reallocate_batch(state, spec, capacity_factor=1.5, image_margin=1.0,
                                       min_capacity=int(1.3 * int(jnp.max(state.nl.max_count))))
    e, f, w = batch_energy_forces_virial(make_energy_fn, state.positions, state.cell, state.nl, params, shared)
    f = jnp.where(state.atom_mask[..., None], f, 0.0)
    residual = np.sqrt(np.max(np.sum(to_host(f) ** 2, axis=-1), axis=-1))
    return state._replace(energy=e, forces=f, virial=w), spec, residual, done


def init_batch(potential: "BatchPotential", structures: Sequence, temperatures, seed: int = 0, skin: float = 1.0,
               n_max: Optional[int] = None, chain: int = 3, dtype=None, capacity: Optional[int] = None,
               capacity_factor: float = 1.3) -> Tuple[MDState, Any, NeighborSpec]:
    """A padded batch straight from structures, with one compiled force evaluation for all.

    Args:
        potential: :class:`BatchPotential`.
        structures: B ``ase.Atoms`` (periodic; ``info["composition"]`` is passed to the
            potential's ``params``, e.g. from :func:`glassjax.md.builder.build_glass`).
        temperatures: scalar or (B,) K: Maxwell-Boltzmann momenta of the real atoms, centre of
            mass at rest, kinetic temperature set exactly (N_f = 3 N_real - 3) as
            :func:`glassjax.md.integrators.init_state` does; system i uses
            ``jax.random.PRNGKey(seed + i)``.
        skin: neighbour-list skin, Å; n_max: padded atom count (default the largest N).
        chain: thermostat chain length; dtype: float dtype (default JAX's default float).
        capacity, capacity_factor: neighbour capacity (default from the largest count).

    Returns:
        ``(state, params, spec)``.
    """
    from glassjax import units

    b = len(structures)
    if b == 0:
        raise ConfigError("init_batch: no structures")
    dtype = jnp.zeros(()).dtype if dtype is None else jnp.dtype(dtype)
    sizes = [len(a) for a in structures]
    n_max = max(sizes) if n_max is None else int(n_max)
    if n_max < max(sizes):
        raise ConfigError(f"init_batch: n_max={n_max} is smaller than the largest structure ({max(sizes)} atoms)")
    temps = np.broadcast_to(np.asarray(temperatures, dtype=float), (b,))
    pos = np.stack([pad_atoms(a.positions, n_max, 0.0) for a in structures])
    cells = np.stack([np.asarray(a.cell.array, dtype=float) for a in structures])
    if np.any(np.abs(np.linalg.det(cells)) < 1e-6):
        raise ConfigError("init_batch: every structure needs a periodic cell with a non-zero volume")
    masses = np.stack([pad_atoms(a.get_masses(), n_max, 1.0) for a in structures])
    mask = np.stack([pad_atoms(np.ones(len(a), bool), n_max, False) for a in structures])
    mom = np.zeros((b, n_max, 3))
    for i, a in enumerate(structures):
        n = len(a)
        if temps[i] > 0:
            m = masses[i, :n, None]
            p = np.asarray(jax.random.normal(jax.random.PRNGKey(seed + i), (n, 3), dtype=dtype)) * np.sqrt(
                m * units.KB * temps[i])
            p = p - m * (p.sum(axis=0) / m.sum())[None, :]
            p = p * np.sqrt((3 * n - 3) * units.KB * temps[i] / np.sum(p * p / m))
            mom[i, :n] = p
    params = stack([potential.params(a.get_chemical_symbols(), n_max, a.info.get("composition"))
                    for a in structures])
    positions = jnp.asarray(pos, dtype)
    cells_j = jnp.asarray(cells, dtype)
    mask_j = jnp.asarray(mask)
    spec = batch_spec(positions, cells_j, mask_j, potential.cutoff, skin, capacity=capacity,
                      capacity_factor=capacity_factor)
    nl = build_batch_lists(positions, cells_j, spec, mask_j)
    if bool(jnp.any(nl.overflow)):
        raise SimulationError("init_batch: a neighbour list overflows right after allocation")
    e, f, w = batch_energy_forces_virial(potential.factory, positions, cells_j, nl, params, potential.shared)
    f = jnp.where(mask_j[..., None], f, 0.0)
    z = jnp.zeros((b, chain), dtype)
    state = MDState(positions=positions, momenta=jnp.asarray(mom, dtype), masses=jnp.asarray(masses, dtype),
                    cell=cells_j, energy=e, forces=f, virial=w, nl=nl, overflow=jnp.zeros((b,), bool), xi=z, v_xi=z,
                    v_g=jnp.zeros((b, 3, 3), dtype), xi_b=z, v_xi_b=z, step=jnp.zeros((b,), jnp.int32),
                    atom_mask=mask_j)
    return state, params, spec
