"""Molecular-dynamics integrators: NVE, Nosé-Hoover-chain NVT, and MTK NPT with an isotropic,
orthorhombic (independent axes) or fully flexible (triclinic) cell, all in one jit-able step.

Why our own: jax-md's ``npt_nose_hoover`` is isotropic only and is built around jax-md's own
space and neighbour-list functions; glassjax needs any potential
``energy_fn(positions, cell, nl) -> E`` over a :mod:`glassjax.neighbors` list (positions kept
*unwrapped* between list rebuilds, cells thinner than twice the cutoff) and a barostat that
moves each cell component separately (uniaxial loading with stress-free lateral faces).

Equations (Martyna, Tobias & Klein, J. Chem. Phys. 101, 4177 (1994), "MTK", their fully
flexible cell; Nosé-Hoover chains of Martyna, Klein & Tuckerman, J. Chem. Phys. 97, 2635
(1992)), written for column vectors, with barostat velocity ``v_g = p_g / W`` (3x3, a strain
rate) and first thermostat velocity ``v_xi1``::

    dr/dt   = p/m + v_g r
    dp/dt   = F - (v_g + tr(v_g)/N_f) p - v_xi1 p
    dh/dt   = v_g h                                  (h: cell vectors as columns)
    W dv_g/dt = proj[ V (P_int - P_ext) + (1/N_f) sum_i p_i^2/m_i 1 ]
    P_int   = (sum_i p_i p_i^T / m_i + Wvir) / V     (Wvir: the extensive virial, eV)

``proj`` selects the cell degrees of freedom: ``"iso"`` (trace part only: isotropic NPT),
``"aniso"`` (diagonal: orthorhombic cell, independent axes), ``"tri"`` (symmetric part: a
fully flexible cell without rotation), each optionally restricted by a 3x3 ``mask`` (e.g. only
z).  N_f = 3N - 3 (the centre-of-mass momentum is removed at start and conserved); in a
padded batch (:mod:`glassjax.md.batch`, ``MDState.atom_mask``) N counts the real atoms only.

Integration: a time-reversible Trotter splitting in the order LAMMPS's ``fix npt`` uses
(thermostat half step, barostat half kick, particle half kick with the barostat friction,
position/cell drift with the deformation split around a free flight, new forces, and the
reverse).  With thermostat and barostat both off it is exactly velocity Verlet.  The
positions and the cell are deformed by the same matrix, so fractional coordinates stay
continuous and the neighbour list (refreshed inside the step by :func:`glassjax.neighbors.update`)
remains valid; an overflow is recorded in ``state.overflow`` (sticky) for the driver to
reallocate and redo the chunk.  :func:`step` is :func:`step_drift` (up to the drift), the list
refresh, and :func:`step_kick` (new forces onwards), so batched drivers can refresh the lists
of many systems with one decision.

Units: positions Å, masses amu, momenta amu Å / t_ase (ASE's time unit,
``glassjax.units.PS`` per ps), energies eV, times given in ps, temperatures in K, pressures in
GPa (positive = compressive, the convention of ``glassjax.potential.pressure_from_virial``).
Thermostat masses Q_1 = N_f kT tau_T^2, Q_k = kT tau_T^2; barostat mass
W = (N_f + 3)/3 kT tau_P^2, both from the current target temperature (so temperature ramps
passed per step work inside the jitted loop).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from glassjax import units
from glassjax.errors import ConfigError
from glassjax.neighbors import NeighborList, NeighborSpec, update
from glassjax.potential import energy_forces_virial


class MDState(NamedTuple):
    """Dynamic state (a JAX pytree).  N atoms, M thermostat chain length.

    positions (N, 3) Å, unwrapped; momenta (N, 3) amu Å/t_ase; masses (N,) amu; cell (3, 3)
    rows Å; energy () eV; forces (N, 3) eV/Å; virial (3, 3) eV (extensive, positive =
    compressive); nl: neighbour list; overflow () bool (sticky since the last reset);
    xi, v_xi (M,): thermostat chain positions and velocities (1/t_ase); v_g (3, 3): barostat
    strain rate (1/t_ase); xi_b, v_xi_b (M,): the chain thermostatting the barostat (NPT);
    step () int; atom_mask: None (every atom is real) or (N,) bool, False for padding atoms
    of a padded batch (:mod:`glassjax.md.batch`): they carry zero momentum and force, are
    left out of neighbour lists, N_f, the temperature and the density, and only follow the
    cell's affine deformation.
    """

    positions: jax.Array
    momenta: jax.Array
    masses: jax.Array
    cell: jax.Array
    energy: jax.Array
    forces: jax.Array
    virial: jax.Array
    nl: NeighborList
    overflow: jax.Array
    xi: jax.Array
    v_xi: jax.Array
    v_g: jax.Array
    xi_b: jax.Array
    v_xi_b: jax.Array
    step: jax.Array
    atom_mask: Optional[jax.Array] = None


@dataclass(frozen=True)
class Ensemble:
    """Static integrator settings (hashable: a jit static argument).

    Attributes:
        dt: time step, ps.
        tau_t: thermostat time, ps; None for no thermostat (NVE/NPH).
        tau_p: barostat time, ps; None for a fixed cell (NVE/NVT).
        couple: ``"iso"``, ``"aniso"`` (independent axes) or ``"tri"`` (full cell).
        mask: optional 3x3 nested tuple of bools: strain-rate components allowed to move
            (applied after ``couple``; e.g. ``((0,0,0),(0,0,0),(0,0,1))`` moves only z).
        chain: Nosé-Hoover chain length.
    """

    dt: float
    tau_t: Optional[float] = None
    tau_p: Optional[float] = None
    couple: str = "iso"
    mask: Optional[Tuple[Tuple[bool, bool, bool], ...]] = None
    chain: int = 3

    def __post_init__(self):
        if not self.dt > 0:
            raise ConfigError(f"Ensemble: time step dt must be positive (ps), got {self.dt}")
        if self.tau_t is not None and not self.tau_t > 0:
            raise ConfigError(f"Ensemble: thermostat time tau_t must be positive (ps), got {self.tau_t}")
        if self.tau_p is not None and not self.tau_p > 0:
            raise ConfigError(f"Ensemble: barostat time tau_p must be positive (ps), got {self.tau_p}")
        if self.couple not in ("iso", "aniso", "tri"):
            raise ConfigError(f"Ensemble: couple must be iso, aniso or tri, got {self.couple!r}")
        if self.chain < 1:
            raise ConfigError(f"Ensemble: chain length must be >= 1, got {self.chain}")
        if self.mask is not None and np.asarray(self.mask).shape != (3, 3):
            raise ConfigError("Ensemble: mask must be 3x3")

    @property
    def thermostat(self) -> bool:
        return self.tau_t is not None

    @property
    def barostat(self) -> bool:
        return self.tau_p is not None

    @property
    def n_cell_dof(self) -> int:
        """Independent barostat degrees of freedom (1 for iso, free diagonal entries for aniso,
        free symmetric entries for tri)."""
        m = np.ones((3, 3), bool) if self.mask is None else np.asarray(self.mask, bool)
        m = m | m.T
        if self.couple == "iso":
            return 1 if m.diagonal().any() else 0
        if self.couple == "aniso":
            return int(m.diagonal().sum())
        return int(np.triu(m).sum())


def nve(dt: float) -> Ensemble:
    """Velocity Verlet, dt in ps."""
    return Ensemble(dt=dt)


def nvt(dt: float, tau_t: float = 0.1, chain: int = 3) -> Ensemble:
    """Nosé-Hoover-chain NVT; dt and tau_t in ps."""
    return Ensemble(dt=dt, tau_t=tau_t, chain=chain)


def npt(dt: float, tau_t: Optional[float] = 0.1, tau_p: float = 1.0, couple: str = "iso", mask=None,
        chain: int = 3) -> Ensemble:
    """MTK NPT (NPH when tau_t is None); couple ``iso``/``aniso``/``tri``; times in ps."""
    if mask is not None:
        mask = tuple(tuple(bool(x) for x in row) for row in np.asarray(mask))
    return Ensemble(dt=dt, tau_t=tau_t, tau_p=tau_p, couple=couple, mask=mask, chain=chain)


def _expm(a):
    """exp(a) for a small 3x3 matrix (|a| ~ strain rate x dt << 1): Taylor series to order 8,
    after one squaring step (relative error far below round-off for |a| < 0.05)."""
    eye = jnp.eye(3, dtype=a.dtype)
    half = a / 2.0
    term = eye
    out = eye
    for k in range(1, 9):
        term = term @ half / k
        out = out + term
    return out @ out


def n_dof(n_atoms: int) -> int:
    """Degrees of freedom with the centre-of-mass momentum removed: 3N - 3."""
    return 3 * n_atoms - 3


def state_n_dof(state: MDState):
    """N_f of a state: 3N - 3 over real atoms (a Python float without a mask, a traced
    scalar with one: ``3 sum(atom_mask) - 3``)."""
    if state.atom_mask is None:
        return float(n_dof(state.positions.shape[0]))
    return 3.0 * jnp.sum(state.atom_mask).astype(state.positions.dtype) - 3.0


def _kinetic_tensor(momenta, masses):
    return jnp.einsum("ia,ib->ab", momenta, momenta / masses[:, None])


def _project(g, ens: Ensemble):
    if ens.couple == "iso":
        out = jnp.trace(g) / 3.0 * jnp.eye(3, dtype=g.dtype)
    elif ens.couple == "aniso":
        out = jnp.diag(jnp.diag(g))
    else:
        out = 0.5 * (g + g.T)
    if ens.mask is not None:
        m = jnp.asarray(ens.mask, dtype=g.dtype)
        out = out * jnp.maximum(m, m.T)
    return out


def pressure_target_tensor(pressure, dtype=jnp.float64):
    """(3, 3) target pressure tensor in eV/Å^3 from GPa: a scalar (hydrostatic), (3,) diagonal or (3, 3)."""
    p = jnp.asarray(pressure, dtype=dtype) / units.EV_PER_A3_TO_GPA
    if p.ndim == 0:
        return p * jnp.eye(3, dtype=dtype)
    if p.shape == (3,):
        return jnp.diag(p)
    return p


def _forces(energy_fn, positions, cell, nl):
    e, f, w = energy_forces_virial(energy_fn, positions, cell, nl)
    return e, f, w


def init_state(energy_fn: Callable, positions, cell, masses, nl: NeighborList, *, key=None,
               temperature: float = 0.0, chain: int = 3, momenta=None) -> MDState:
    """Initial state: Maxwell-Boltzmann momenta at ``temperature`` (K), exact after rescaling.

    Args:
        energy_fn: ``energy_fn(positions, cell, nl) -> E`` (eV).
        positions: (N, 3) Å; cell: (3, 3) rows Å; masses: (N,) amu.
        nl: a neighbour list built for these positions (``glassjax.neighbors.allocate``).
        key: ``jax.random`` key (needed when temperature > 0 and momenta is None).
        temperature: K; the centre-of-mass momentum is removed and the kinetic temperature
            (with N_f = 3N - 3) set exactly to it.
        chain: thermostat chain length (must match the :class:`Ensemble`).
        momenta: optional (N, 3) initial momenta (amu Å/t_ase), used as given.
    """
    positions = jnp.asarray(positions)
    dtype = positions.dtype
    cell = jnp.asarray(cell, dtype=dtype)
    masses = jnp.asarray(masses, dtype=dtype)
    n = positions.shape[0]
    if momenta is None:
        if temperature > 0:
            if key is None:
                raise ConfigError("init_state: pass key= (jax.random.PRNGKey) to draw velocities")
            p = jax.random.normal(key, (n, 3), dtype=dtype) * jnp.sqrt(masses[:, None] * units.KB * temperature)
            p = p - masses[:, None] * (jnp.sum(p, axis=0) / jnp.sum(masses))[None, :]
            ke2 = jnp.sum(p * p / masses[:, None])
            p = p * jnp.sqrt(n_dof(n) * units.KB * temperature / ke2)
        else:
            p = jnp.zeros((n, 3), dtype=dtype)
    else:
        p = jnp.asarray(momenta, dtype=dtype)
    e, f, w = _forces(energy_fn, positions, cell, nl)
    z = jnp.zeros((chain,), dtype=dtype)
    return MDState(positions=positions, momenta=p, masses=masses, cell=cell, energy=e, forces=f, virial=w,
                   nl=nl, overflow=jnp.asarray(nl.overflow), xi=z, v_xi=z, v_g=jnp.zeros((3, 3), dtype=dtype),
                   xi_b=z, v_xi_b=z, step=jnp.asarray(0, dtype=jnp.int32))


def _thermostat_masses(kt, nf, tau, chain, dtype):
    q = jnp.full((chain,), kt * tau * tau, dtype=dtype)
    return q.at[0].multiply(nf)


def _nhc_half(ke2, xi, v, q, kt, nf, h):
    """Half step h of a Nosé-Hoover chain acting on particles with 2 KE = ke2.

    Returns (momentum scale factor, xi, v).  Standard Trotter factorisation (Martyna et al.
    1996, Mol. Phys. 87, 1117): outer-to-inner half kicks, the particle scaling, then back.
    """
    m = v.shape[0]

    def g(k, ke2_, v_):
        if k == 0:
            return (ke2_ - nf * kt) / q[0]
        return (q[k - 1] * v_[k - 1] ** 2 - kt) / q[k]

    for k in range(m - 1, -1, -1):
        if k < m - 1:
            v = v.at[k].multiply(jnp.exp(-v[k + 1] * h / 4))
        v = v.at[k].add(g(k, ke2, v) * h / 2)
        if k < m - 1:
            v = v.at[k].multiply(jnp.exp(-v[k + 1] * h / 4))
    scale = jnp.exp(-v[0] * h)
    ke2 = ke2 * scale * scale
    xi = xi + v * h
    for k in range(m):
        if k < m - 1:
            v = v.at[k].multiply(jnp.exp(-v[k + 1] * h / 4))
        v = v.at[k].add(g(k, ke2, v) * h / 2)
        if k < m - 1:
            v = v.at[k].multiply(jnp.exp(-v[k + 1] * h / 4))
    return scale, xi, v


class _Coeffs(NamedTuple):
    dt: float
    h: float
    kt: jax.Array
    kt_m: jax.Array
    nf: object
    n_b: float
    q: Optional[jax.Array]
    w_mass: Optional[jax.Array]
    p_ext: Optional[jax.Array]


def _coeffs(state: MDState, ens: Ensemble, temperature, pressure) -> _Coeffs:
    dtype = state.positions.dtype
    nf = state_n_dof(state)
    dt = ens.dt * units.PS
    kt = jnp.asarray(temperature, dtype=dtype) * units.KB
    kt_m = jnp.maximum(kt, units.KB * 1e-3)  # masses stay positive for a 0 K target
    q = _thermostat_masses(kt_m, nf, ens.tau_t * units.PS, ens.chain, dtype) if ens.thermostat else None
    w_mass = p_ext = None
    if ens.barostat:
        w_mass = (nf + 3.0) / 3.0 * kt_m * (ens.tau_p * units.PS) ** 2
        p_ext = pressure_target_tensor(pressure, dtype)
    return _Coeffs(dt=dt, h=0.5 * dt, kt=kt, kt_m=kt_m, nf=nf, n_b=float(max(ens.n_cell_dof, 1)), q=q,
                   w_mass=w_mass, p_ext=p_ext)


def _baro_kick(c: _Coeffs, ens: Ensemble, p_, masses, v_g_, virial, cell_):
    eye = jnp.eye(3, dtype=p_.dtype)
    vol = jnp.abs(jnp.linalg.det(cell_))
    k_t = _kinetic_tensor(p_, masses)
    p_int = (k_t + virial) / vol
    g = vol * (p_int - c.p_ext) + jnp.trace(k_t) / c.nf * eye
    return v_g_ + c.h * _project(g, ens) / c.w_mass


def _particle_kick(c: _Coeffs, ens: Ensemble, p_, f_, v_g_):
    if ens.barostat:
        eye = jnp.eye(3, dtype=p_.dtype)
        a = v_g_ + jnp.trace(v_g_) / c.nf * eye
        s = _expm(-a * c.h / 2)
        p_ = p_ @ s.T
        p_ = p_ + c.h * f_
        return p_ @ s.T
    return p_ + c.h * f_


def _thermo_half(c: _Coeffs, p_, masses, xi_, v_xi_):
    ke2 = jnp.sum(p_ * p_ / masses[:, None])
    scale, xi_, v_xi_ = _nhc_half(ke2, xi_, v_xi_, c.q, c.kt, c.nf, c.h)
    return p_ * scale, xi_, v_xi_


def _baro_thermo_half(c: _Coeffs, ens: Ensemble, v_g_, xi_, v_):
    # Nosé-Hoover chain on the barostat kinetic energy W tr(v_g v_g^T) / 2 (MTK 1994)
    qb = _thermostat_masses(c.kt_m, 1.0, ens.tau_p * units.PS, ens.chain, v_g_.dtype) * c.n_b
    ke2 = c.w_mass * jnp.sum(v_g_ * v_g_)
    scale, xi_, v_ = _nhc_half(ke2, xi_, v_, qb, c.kt, c.n_b, c.h)
    return v_g_ * scale, xi_, v_


def _both(ens: Ensemble) -> bool:
    return ens.thermostat and ens.barostat and ens.n_cell_dof > 0


def step_drift(state: MDState, ens: Ensemble, temperature=0.0, pressure=0.0) -> MDState:
    """First part of :func:`step`: thermostat and barostat half steps, the half kick with the
    current forces, and the position/cell drift (pure, jit-able).

    The returned state has the new positions, cell, momenta and thermostat/barostat
    variables, but still the *old* forces, energy, virial and neighbour list: refresh the
    list (:func:`glassjax.neighbors.update`, or a batch-wide rebuild) and finish with
    :func:`step_kick`.  ``step = step_kick(step_drift(...) with updated list)``.
    """
    c = _coeffs(state, ens, temperature, pressure)
    p, x, cell = state.momenta, state.positions, state.cell
    xi, v_xi, v_g = state.xi, state.v_xi, state.v_g
    xi_b, v_xi_b = state.xi_b, state.v_xi_b
    m = state.masses[:, None]
    if _both(ens):
        v_g, xi_b, v_xi_b = _baro_thermo_half(c, ens, v_g, xi_b, v_xi_b)
    if ens.thermostat:
        p, xi, v_xi = _thermo_half(c, p, state.masses, xi, v_xi)
    if ens.barostat:
        v_g = _baro_kick(c, ens, p, state.masses, v_g, state.virial, cell)
    p = _particle_kick(c, ens, p, state.forces, v_g)
    if ens.barostat:
        d = _expm(v_g * c.h)
        x = x @ d.T
        cell = cell @ d.T
        x = x + c.dt * p / m
        x = x @ d.T
        cell = cell @ d.T
    else:
        x = x + c.dt * p / m
    return state._replace(positions=x, momenta=p, cell=cell, xi=xi, v_xi=v_xi, v_g=v_g, xi_b=xi_b,
                          v_xi_b=v_xi_b)


def step_kick(energy_fn: Callable, state: MDState, ens: Ensemble, temperature=0.0, pressure=0.0) -> MDState:
    """Second part of :func:`step`: new forces on the drifted state (whose neighbour list must
    already be refreshed), the second half kick and the thermostat/barostat half steps.
    Forces on padding atoms (``atom_mask`` False) are set to zero."""
    c = _coeffs(state, ens, temperature, pressure)
    p, v_g = state.momenta, state.v_g
    xi, v_xi, xi_b, v_xi_b = state.xi, state.v_xi, state.xi_b, state.v_xi_b
    e, f, w = _forces(energy_fn, state.positions, state.cell, state.nl)
    if state.atom_mask is not None:
        f = jnp.where(state.atom_mask[:, None], f, 0.0)
    p = _particle_kick(c, ens, p, f, v_g)
    if ens.barostat:
        v_g = _baro_kick(c, ens, p, state.masses, v_g, w, state.cell)
    if ens.thermostat:
        p, xi, v_xi = _thermo_half(c, p, state.masses, xi, v_xi)
    if _both(ens):
        v_g, xi_b, v_xi_b = _baro_thermo_half(c, ens, v_g, xi_b, v_xi_b)
    return state._replace(momenta=p, energy=e, forces=f, virial=w, overflow=state.overflow | state.nl.overflow,
                          xi=xi, v_xi=v_xi, v_g=v_g, xi_b=xi_b, v_xi_b=v_xi_b, step=state.step + 1)


def step(energy_fn: Callable, state: MDState, spec: NeighborSpec, ens: Ensemble, temperature=0.0,
         pressure=0.0) -> MDState:
    """One MD step (pure, jit-able; ``energy_fn``, ``spec`` and ``ens`` static).

    Args:
        temperature: target temperature this step, K (thermostat target; sets the thermostat
            and barostat masses).  A traced scalar: schedules run inside a scan.
        pressure: target pressure this step, GPa: scalar, (3,) diagonal or (3, 3) tensor
            (positive = compressive; a uniaxial tensile stress s along x is ``(-s, 0, 0)``).

    Equal to :func:`step_drift`, the neighbour-list refresh (:func:`glassjax.neighbors.update`,
    with the state's ``atom_mask``), then :func:`step_kick`.  Under ``jax.vmap`` the list
    refresh turns into a rebuild every step (a batched ``lax.cond`` runs both branches);
    :mod:`glassjax.md.batch` avoids that by deciding the rebuild once for the whole batch.
    """
    mid = step_drift(state, ens, temperature, pressure)
    nl = update(mid.nl, mid.positions, mid.cell, spec, mid.atom_mask)
    return step_kick(energy_fn, mid._replace(nl=nl), ens, temperature, pressure)


def kinetic_energy(state: MDState):
    """Kinetic energy, eV."""
    return 0.5 * jnp.sum(state.momenta ** 2 / state.masses[:, None])


def temperature_of(state: MDState):
    """Kinetic temperature, K (N_f = 3N - 3 over real atoms, see :func:`state_n_dof`)."""
    return 2.0 * kinetic_energy(state) / (state_n_dof(state) * units.KB)


def real_mass(state: MDState):
    """Total mass of the real atoms, amu (padding atoms excluded)."""
    if state.atom_mask is None:
        return jnp.sum(state.masses)
    return jnp.sum(jnp.where(state.atom_mask, state.masses, 0.0))


def pressure_tensor(state: MDState):
    """Instantaneous pressure tensor (kinetic + virial) / V, GPa (positive = compressive)."""
    vol = jnp.abs(jnp.linalg.det(state.cell))
    return (_kinetic_tensor(state.momenta, state.masses) + state.virial) / vol * units.EV_PER_A3_TO_GPA


def conserved_energy(state: MDState, ens: Ensemble, temperature=0.0, pressure=0.0):
    """The extended-system energy that the dynamics conserves (eV), for a constant target.

    KE + PE, plus for the thermostat ``sum Q_k v_k^2 / 2 + N_f kT xi_1 + kT sum_{k>1} xi_k`` and
    for the barostat ``W tr(v_g v_g^T) / 2 + P V`` (hydrostatic ``pressure``, GPa).
    """
    dtype = state.positions.dtype
    nf = state_n_dof(state)
    kt = jnp.asarray(temperature, dtype=dtype) * units.KB
    kt_m = jnp.maximum(kt, units.KB * 1e-3)
    h = kinetic_energy(state) + state.energy
    if ens.thermostat:
        q = _thermostat_masses(kt_m, nf, ens.tau_t * units.PS, ens.chain, dtype)
        h = h + 0.5 * jnp.sum(q * state.v_xi ** 2) + nf * kt * state.xi[0] + kt * jnp.sum(state.xi[1:])
    if ens.barostat:
        w_mass = (nf + 3.0) / 3.0 * kt_m * (ens.tau_p * units.PS) ** 2
        p_ev = jnp.trace(pressure_target_tensor(pressure, dtype)) / 3.0  # hydrostatic part
        h = h + 0.5 * w_mass * jnp.sum(state.v_g ** 2) + p_ev * jnp.abs(jnp.linalg.det(state.cell))
        if ens.thermostat and ens.n_cell_dof > 0:
            n_b = float(ens.n_cell_dof)
            qb = _thermostat_masses(kt_m, 1.0, ens.tau_p * units.PS, ens.chain, dtype) * n_b
            h = h + 0.5 * jnp.sum(qb * state.v_xi_b ** 2) + n_b * kt * state.xi_b[0] + kt * jnp.sum(state.xi_b[1:])
    return h


def thermo(state: MDState, ens: Ensemble, temperature=0.0, pressure=0.0):
    """Per-step observables: dict of T (K), P (GPa), stress tensor (GPa, 3x3, ASE sign:
    negative = compressive), PE, KE, conserved (eV), volume (Å^3), density (g/cm^3), cell."""
    vol = jnp.abs(jnp.linalg.det(state.cell))
    pt = pressure_tensor(state)
    return {
        "temperature": temperature_of(state),
        "pressure": jnp.trace(pt) / 3.0,
        "stress": -pt,
        "potential_energy": state.energy,
        "kinetic_energy": kinetic_energy(state),
        "conserved": conserved_energy(state, ens, temperature, pressure),
        "volume": vol,
        "density": real_mass(state) * units.AMU_PER_A3_TO_G_PER_CM3 / vol,
        "cell": state.cell,
    }


@partial(jax.jit, static_argnames=("energy_fn", "spec", "ens", "every", "frames"))
def run_chunk(energy_fn: Callable, state: MDState, spec: NeighborSpec, ens: Ensemble, temperatures,
              pressures, every: int = 1, frames: bool = False):
    """``len(temperatures)`` steps in one ``lax.scan``; returns ``(state, thermo)``.

    Args:
        temperatures: (S,) target temperature per step, K (a ramp or a hold).
        pressures: (S,), (S, 3) or (S, 3, 3) target pressure per step, GPa.
        every: record thermo every ``every`` steps (S must be a multiple).
        frames: also record ``positions`` (Å) and ``velocities`` (Å/ps) at those steps.

    The caller must check ``state.overflow`` afterwards: when set the chunk is invalid and must
    be redone from its starting state with a larger list (see :func:`run`).
    """
    temperatures = jnp.asarray(temperatures)
    pressures = jnp.asarray(pressures)
    s = temperatures.shape[0]
    if s % every:
        raise ConfigError(f"run_chunk: {s} steps is not a multiple of every={every}")
    t_r = temperatures.reshape((s // every, every))
    p_r = pressures.reshape((s // every, every) + pressures.shape[1:])

    def inner(st, tp):
        t, p = tp
        return step(energy_fn, st, spec, ens, t, p), None

    def outer(st, tp):
        t, p = tp
        st, _ = jax.lax.scan(inner, st, (t, p))
        rec = thermo(st, ens, t[-1], p[-1])
        if frames:
            rec["positions"] = st.positions
            rec["velocities"] = st.momenta / st.masses[:, None] * units.PS
        return st, rec

    return jax.lax.scan(outer, state, (t_r, p_r))
