"""Strain loops inside ``jax.jit``: uniaxial, triaxial, simple-shear and pure-shear deformation MD.

The 2024 paper's deformation runs (uniaxial tension/compression at an engineering strain
rate of +/-1e-3 per ps with stress-free lateral faces, and triaxial compression to
-0.15...-0.25 strain, at 300 K) as one ``lax.scan`` over MD steps, with the cell and the
positions deformed affinely, a Nosé-Hoover-chain thermostat, and for uniaxial loading an MTK
barostat acting on the lateral axes only.

Modes (:class:`Deformation`, static) and their prescribed deformation, with ``t`` the time
since the undeformed ``reference_cell`` (``state.step * dt``) and ``r = params.rate``
(1/ps, negative = compression):

* ``"uniaxial"``: the loading axis ``a = params.axis`` (0, 1, 2 = x, y, z) is stretched so
  that its length is ``L_a(t) = L_a0 (1 + r t)`` (LAMMPS ``fix deform ... erate r``).  The
  lateral axes are either ``"fixed"`` (uniaxial strain, NVT) or under the anisotropic MTK
  barostat at ``params.lateral_pressure`` (GPa; 0 = stress-free lateral faces, the
  paper's loading): the barostat moves only the two lateral diagonal entries of the cell
  (an orthorhombic barostat masked to the lateral axes).
* ``"triaxial"``: all three axes ``L_k(t) = L_k0 (1 + r t)`` (isotropic compression, NVT).
* ``"shear"``: simple shear by a tilt, LAMMPS ``fix deform xy/xz/yz erate r``: component i
  of every point moves by ``gamma x_j`` with the engineering shear strain
  ``gamma(t) = r t``; ``params.axis`` picks the plane, 0 = yz (i=y, j=z), 1 = xz (i=x, j=z),
  2 = xy (i=x, j=y) (Voigt components 4, 5, 6).  For an ASE/LAMMPS lower-triangular cell
  this grows the tilt factor (``xy`` by ``gamma ly``).  NVT.
* ``"pure_shear"``: plane-strain pure shear, volume conserving: in the plane (i, j) picked by
  ``params.axis`` as for ``"shear"``, axis i is stretched, ``L_i(t) = L_i0 (1 + r t)``, axis j
  is compressed, ``L_j(t) = L_j0 / (1 + r t)``, the third axis is held.  The recorded
  ``strain`` is the engineering strain of axis i, ``r t``.  NVT.

Equations of motion (column vectors; ``G = v_b + L`` the total velocity gradient, ``v_b``
the lateral barostat strain rate kept in ``state.v_g``, ``L`` the prescribed one)::

    dr/dt = p/m + G r
    dp/dt = F - (G + tr(v_b)/N_f) p - v_xi1 p
    dh/dt = G h
    W dv_b/dt = proj_lateral[ V (P_int - P_ext) + (1/N_f) sum_i p_i^2/m_i 1 ]

i.e. the MTK equations of :mod:`glassjax.md.integrators` with the prescribed deformation
added to the barostat's.  **Momenta** are *peculiar* (thermal) momenta, measured relative
to the affine streaming velocity ``G r``: the affine remap moves positions and cell (as
LAMMPS ``fix deform remap x``), and the momenta feel the SLLOD term ``-G p``, which is
Newton's equation for peculiar momenta up to ``O(|G|^2)``.  LAMMPS ``remap x`` leaves
velocities unchanged and drops that term; the difference is of order ``rate * KE`` (a
relative change of 1e-3 per ps at the paper's rate), which the thermostat absorbs.  The
temperature is always computed from the peculiar momenta.

Integration: the time-reversible splitting of :func:`glassjax.md.integrators.step`
(thermostat half step, barostat half kick, particle half kick, drift with
``exp(G dt/2)`` around a free flight, new forces, the reverse), with the true strain rate
over the step, ``L_aa = ln((1 + r t_{n+1}) / (1 + r t_n)) / dt``, so that the cell after every
step is exactly the prescribed one; the remaining round-off of the exponentials is removed by
snapping the prescribed cell columns to their exact values before the forces are computed
(an affine correction of order 1e-16, applied to positions too).  The strain therefore
depends only on ``state.step``: a chunked or resumed run is the uninterrupted one.

Recorded (every ``every`` steps): ``strain`` (scalar: uniaxial ``eps_aa``, triaxial the
linear strain ``eps_xx = eps_yy = eps_zz``, shear the engineering shear strain
``gamma = 2 eps_ij``), ``strain_tensor`` (3x3 small-strain tensor ``(F + F^T)/2 - 1`` of the
deformation gradient ``F`` with ``cell = reference_cell F^T``; its diagonal entries are the
engineering strains ``L_k/L_k0 - 1`` of the axes, lateral ones included), ``stress`` (3x3
GPa, ASE sign: negative = compressive; virial plus kinetic), ``pressure`` (GPa, positive =
compressive), ``temperature`` (K), ``potential_energy``, ``kinetic_energy``, ``conserved``
(eV: the extended-system energy, which under deformation changes by the work done on the
system), ``volume`` (Å^3), ``density`` (g/cm^3), ``cell`` (3x3 Å) and the caller's
``observables(state)`` (any jittable function returning a dict of arrays, e.g. the smooth N4
of :func:`glassjax.analysis.coordination.smooth_boron_n4` or the 3-ring count of
:func:`glassjax.analysis.rings.three_rings`, over ``state.nl`` when its cutoff reaches the
bond cutoffs).

Units: Å, eV, ps (rates in 1/ps), K, GPa.  Batches: everything that may differ between the
members of a batch (loading axis, rate, temperature, lateral pressure, reference cell) is a
traced argument, so :func:`deform_scan` vmaps over states and :class:`DeformParams`.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from glassjax import units
from glassjax.atomic_write import atomic_path
from glassjax.errors import ConfigError, DataError, SimulationError
from glassjax.md import integrators as _I
from glassjax.md.integrators import Ensemble, MDState
from glassjax.neighbors import NeighborSpec, update
from glassjax.potential import energy_forces_virial

MODES = ("uniaxial", "triaxial", "shear", "pure_shear")
LATERAL = ("barostat", "fixed")
#: (i, j) of the simple-shear plane for params.axis = 0, 1, 2: x_i += gamma x_j.
SHEAR_PLANES = ((1, 2), (0, 2), (0, 1))
#: Keys of every record (besides the caller's observables).
RECORD_KEYS = ("strain", "strain_tensor", "stress", "pressure", "temperature", "potential_energy",
               "kinetic_energy", "conserved", "volume", "density", "cell")


@dataclass(frozen=True)
class Deformation:
    """Static description of a strain loop (hashable: a jit static argument).

    Attributes:
        mode: ``"uniaxial"``, ``"triaxial"``, ``"shear"`` or ``"pure_shear"`` (see the module docstring).
        lateral: uniaxial only: ``"barostat"`` (the lateral axes under the MTK barostat at
            ``params.lateral_pressure``; needs ``ens.tau_p``) or ``"fixed"`` (lateral
            lengths held: uniaxial strain).  Ignored by the other modes (their cell is fully
            prescribed).

    The thermostat (``ens.tau_t``, ``ens.chain``), the barostat time (``ens.tau_p``) and the
    time step come from the :class:`~glassjax.md.integrators.Ensemble`; its ``couple`` and
    ``mask`` are not used (the barostat's axes follow from the traced loading axis).
    """

    mode: str = "uniaxial"
    lateral: str = "barostat"

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError(f"Deformation: mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.lateral not in LATERAL:
            raise ConfigError(f"Deformation: lateral must be 'barostat' or 'fixed', got {self.lateral!r}")

    @property
    def barostat(self) -> bool:
        """True when the lateral axes are under the barostat (uniaxial with lateral='barostat')."""
        return self.mode == "uniaxial" and self.lateral == "barostat"


class DeformParams(NamedTuple):
    """Traced parameters of a strain loop (a pytree: give each field a leading batch axis to vmap).

    axis: () int: uniaxial loading axis 0/1/2 (x/y/z); shear plane 0/1/2 (yz/xz/xy);
        ignored by triaxial.
    rate: () engineering strain rate, 1/ps (negative = compression).
    temperature: () thermostat target, K (also sets the thermostat and barostat masses).
    lateral_pressure: () pressure on the lateral faces, GPa (positive = compressive; 0 =
        stress-free); uniaxial with the lateral barostat only.
    """

    axis: jax.Array
    rate: jax.Array
    temperature: jax.Array
    lateral_pressure: jax.Array


def deform_params(axis=0, rate=1e-3, temperature=300.0, lateral_pressure=0.0, dtype=None) -> DeformParams:
    """Build :class:`DeformParams` from numbers or arrays (same leading shape for a batch).

    ``dtype``: the float dtype (default: JAX's current default float).  Values are not checked
    here; :func:`check_params` does (and :func:`deform_chunk` / :func:`run_deformation` call it).
    """
    if dtype is None:
        dtype = jnp.result_type(float)
    return DeformParams(axis=jnp.asarray(axis, dtype=jnp.int32), rate=jnp.asarray(rate, dtype=dtype),
                        temperature=jnp.asarray(temperature, dtype=dtype),
                        lateral_pressure=jnp.asarray(lateral_pressure, dtype=dtype))


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_params(deformation: Deformation, params: DeformParams, ens: Optional[Ensemble] = None,
                 target_strain=None) -> None:
    """Raise one :class:`ConfigError` naming the bad parameter (concrete values only; traced
    values, e.g. inside a caller's own jit, are skipped).  Works on batched params."""
    if not isinstance(deformation, Deformation):
        raise ConfigError(f"deformation must be a glassjax.md.deform.Deformation, got {type(deformation).__name__}")
    if not isinstance(params, DeformParams):
        raise ConfigError(f"params must be DeformParams (glassjax.md.deform.deform_params), got "
                          f"{type(params).__name__}")
    if ens is not None:
        if deformation.barostat and not ens.barostat:
            raise ConfigError("ens.tau_p: uniaxial loading with lateral='barostat' needs a barostat time "
                              "(Ensemble tau_p, ps); or use lateral='fixed'")
    if _is_concrete(params.axis) and deformation.mode != "triaxial":
        ax = np.asarray(params.axis)
        if not np.all((ax >= 0) & (ax <= 2)) or not np.all(ax == np.round(ax)):
            what = "loading axis" if deformation.mode == "uniaxial" else "shear plane (0=yz, 1=xz, 2=xy)"
            raise ConfigError(f"params.axis: the {what} must be 0, 1 or 2, got {ax.tolist()}")
    rate = None
    if _is_concrete(params.rate):
        rate = np.asarray(params.rate, dtype=float)
        if not np.all(np.isfinite(rate)) or np.any(rate == 0):
            raise ConfigError(f"params.rate: the engineering strain rate (1/ps) must be finite and nonzero, "
                              f"got {rate.tolist()}")
    if _is_concrete(params.temperature):
        t = np.asarray(params.temperature, dtype=float)
        if not np.all(np.isfinite(t)) or np.any(t < 0):
            raise ConfigError(f"params.temperature must be >= 0 K, got {t.tolist()}")
    if _is_concrete(params.lateral_pressure):
        p = np.asarray(params.lateral_pressure, dtype=float)
        if not np.all(np.isfinite(p)):
            raise ConfigError(f"params.lateral_pressure must be finite (GPa), got {p.tolist()}")
    if target_strain is not None:
        ts = np.asarray(target_strain, dtype=float)
        if not np.all(np.isfinite(ts)) or np.any(ts == 0):
            raise ConfigError(f"target_strain must be finite and nonzero, got {ts.tolist()}")
        if rate is not None and np.any(np.sign(ts) != np.sign(rate)):
            raise ConfigError(f"target_strain {ts.tolist()} has the opposite sign to params.rate {rate.tolist()} "
                              "(negative rate = compression: give a negative target strain)")
        if deformation.mode in ("uniaxial", "triaxial", "pure_shear") and np.any(ts <= -1):
            raise ConfigError(f"target_strain must be > -1 (an engineering strain of -1 collapses the cell), "
                              f"got {ts.tolist()}")


# ----------------------------------------------------------------------------- kinematics

def _direction(deformation: Deformation, axis, dtype):
    """(3,) 1 on the prescribed axes (uniaxial: the loading axis; triaxial: all)."""
    if deformation.mode == "triaxial":
        return jnp.ones((3,), dtype)
    return (jnp.arange(3) == axis).astype(dtype)


def _pure_shear_signs(axis, dtype):
    """(3,) +1 on the stretched axis i, -1 on the compressed axis j of the plane ``axis``."""
    ij = jnp.asarray(SHEAR_PLANES, dtype=jnp.int32)[axis]
    k = jnp.arange(3)
    return (k == ij[0]).astype(dtype) - (k == ij[1]).astype(dtype)


def _shear_unit(axis, dtype):
    """(3, 3) E with E[i, j] = 1 for the shear plane picked by ``axis``."""
    ij = jnp.asarray(SHEAR_PLANES, dtype=jnp.int32)[axis]
    return ((jnp.arange(3)[:, None] == ij[0]) & (jnp.arange(3)[None, :] == ij[1])).astype(dtype)


def prescribed_strain(params: DeformParams, time_ps):
    """Engineering (or shear) strain ``rate * t`` at time ``t`` (ps) since the reference."""
    return params.rate * time_ps


def deformation_gradient(deformation: Deformation, params: DeformParams, time_ps, dtype=None):
    """(3, 3) prescribed deformation gradient F (column convention: ``x = F X``) at time t (ps).

    Uniaxial: ``1 + e e_a e_a^T`` (lateral entries 1; with the lateral barostat only the
    loading entry is prescribed); triaxial ``(1 + e) 1``; shear ``1 + gamma E_ij``.
    """
    dtype = dtype or jnp.asarray(params.rate).dtype
    e = prescribed_strain(params, time_ps)
    if deformation.mode == "shear":
        return jnp.eye(3, dtype=dtype) + e * _shear_unit(params.axis, dtype)
    if deformation.mode == "pure_shear":  # diag: 1 + e on i, 1 / (1 + e) on j, 1 on k
        return jnp.diag((1.0 + e) ** _pure_shear_signs(params.axis, dtype))
    return jnp.eye(3, dtype=dtype) + jnp.diag(e * _direction(deformation, params.axis, dtype))


def prescribed_cell(reference_cell, deformation: Deformation, params: DeformParams, time_ps):
    """(3, 3) cell (rows) at time t: ``reference_cell F^T`` (lateral rows as the reference for
    uniaxial; with the lateral barostat only the loading column is prescribed)."""
    ref = jnp.asarray(reference_cell)
    return ref @ deformation_gradient(deformation, params, time_ps, ref.dtype).T


def strain_tensor(cell, reference_cell):
    """(3, 3) small-strain tensor ``(F + F^T)/2 - 1`` with ``cell = reference_cell F^T``.

    Diagonal: engineering strains of the axes (for a diagonal F); off-diagonal: half the
    engineering shear strains.  Shapes: cell, reference_cell (3, 3) rows Å.
    """
    ft = jnp.linalg.solve(reference_cell, cell)  # F^T
    return 0.5 * (ft + ft.T) - jnp.eye(3, dtype=cell.dtype)


def scalar_strain(eps, deformation: Deformation, axis):
    """The loop's scalar strain from the strain tensor (see the module docstring)."""
    if deformation.mode == "uniaxial":
        return jnp.sum(jnp.diagonal(eps) * (jnp.arange(3) == axis))
    if deformation.mode == "triaxial":
        return jnp.trace(eps) / 3.0
    if deformation.mode == "pure_shear":
        return jnp.sum(jnp.diagonal(eps) * (_pure_shear_signs(axis, eps.dtype) > 0))
    return 2.0 * jnp.sum(eps * _shear_unit(axis, eps.dtype))


# ----------------------------------------------------------------------------- one step

def _n_dof(state: MDState):
    mask = getattr(state, "atom_mask", None)
    if mask is None:
        return float(_I.n_dof(state.positions.shape[0]))
    return 3.0 * jnp.sum(mask).astype(state.positions.dtype) - 3.0


class _C(NamedTuple):
    dt: float
    h: float
    kt: jax.Array
    kt_m: jax.Array
    nf: object
    q: Optional[jax.Array]
    w_mass: Optional[jax.Array]
    p_ext: Optional[jax.Array]
    lat: Optional[jax.Array]  # (3,) 1 on the barostat's (lateral) axes


N_LATERAL = 2.0  # barostat degrees of freedom of a uniaxial loop


def _coeffs(state: MDState, ens: Ensemble, deformation: Deformation, params: DeformParams) -> _C:
    dtype = state.positions.dtype
    nf = _n_dof(state)
    kt = jnp.asarray(params.temperature, dtype) * units.KB
    kt_m = jnp.maximum(kt, units.KB * 1e-3)  # masses stay positive for a 0 K target
    q = _I._thermostat_masses(kt_m, nf, ens.tau_t * units.PS, ens.chain, dtype) if ens.thermostat else None
    w_mass = p_ext = lat = None
    if deformation.barostat:
        w_mass = (nf + 3.0) / 3.0 * kt_m * (ens.tau_p * units.PS) ** 2
        p_ext = jnp.asarray(params.lateral_pressure, dtype) / units.EV_PER_A3_TO_GPA * jnp.eye(3, dtype=dtype)
        lat = 1.0 - (jnp.arange(3) == params.axis).astype(dtype)
    dt = ens.dt * units.PS
    return _C(dt=dt, h=0.5 * dt, kt=kt, kt_m=kt_m, nf=nf, q=q, w_mass=w_mass, p_ext=p_ext, lat=lat)


def _velocity_gradient(deformation: Deformation, params: DeformParams, step, ens: Ensemble, dtype):
    """Prescribed velocity gradient L over step n -> n+1, 1/t_ase (see the module docstring)."""
    dt = ens.dt
    rate = jnp.asarray(params.rate, dtype)
    if deformation.mode == "shear":
        return rate / units.PS * _shear_unit(params.axis, dtype)
    t0 = step.astype(dtype) * dt
    true_rate = jnp.log1p(rate * dt / (1.0 + rate * t0)) / (dt * units.PS)
    if deformation.mode == "pure_shear":
        return jnp.diag(true_rate * _pure_shear_signs(params.axis, dtype))
    return jnp.diag(true_rate * _direction(deformation, params.axis, dtype))


def _baro_kick(c: _C, p, masses, v_b, virial, cell):
    eye = jnp.eye(3, dtype=p.dtype)
    vol = jnp.abs(jnp.linalg.det(cell))
    k_t = _I._kinetic_tensor(p, masses)
    g = (k_t + virial) - vol * c.p_ext + jnp.trace(k_t) / c.nf * eye
    return v_b + c.h * jnp.diag(jnp.diagonal(g) * c.lat) / c.w_mass


def _particle_kick(c: _C, p, f, v_b, lg):
    eye = jnp.eye(3, dtype=p.dtype)
    a = v_b + lg + jnp.trace(v_b) / c.nf * eye
    s = _I._expm(-a * c.h / 2)
    return ((p @ s.T) + c.h * f) @ s.T


def _thermo_half(c: _C, p, masses, xi, v_xi):
    ke2 = jnp.sum(p * p / masses[:, None])
    scale, xi, v_xi = _I._nhc_half(ke2, xi, v_xi, c.q, c.kt, c.nf, c.h)
    return p * scale, xi, v_xi


def _baro_thermo_half(c: _C, ens: Ensemble, v_b, xi, v):
    qb = _I._thermostat_masses(c.kt_m, 1.0, ens.tau_p * units.PS, ens.chain, v_b.dtype) * N_LATERAL
    ke2 = c.w_mass * jnp.sum(v_b * v_b)
    scale, xi, v = _I._nhc_half(ke2, xi, v, qb, c.kt, N_LATERAL, c.h)
    return v_b * scale, xi, v


def _snap(x, cell, reference_cell, deformation: Deformation, params: DeformParams, step_after, ens: Ensemble):
    """Put the prescribed part of the cell exactly on its target (removes exp/log round-off)."""
    t1 = step_after.astype(cell.dtype) * ens.dt
    if deformation.mode == "shear":
        target = prescribed_cell(reference_cell, deformation, params, t1)
        corr = jnp.linalg.solve(cell, target)  # cell @ corr = target
        return x @ corr, target
    e1 = prescribed_strain(params, t1)
    norm_ref = jnp.linalg.norm(reference_cell, axis=0)  # column lengths
    norm_now = jnp.linalg.norm(cell, axis=0)
    if deformation.mode == "pure_shear":
        sg = _pure_shear_signs(params.axis, cell.dtype)
        s = 1.0 + jnp.abs(sg) * ((1.0 + e1) ** sg * norm_ref / norm_now - 1.0)
    else:
        d = _direction(deformation, params.axis, cell.dtype)
        s = 1.0 + d * ((1.0 + e1) * norm_ref / norm_now - 1.0)
    return x * s[None, :], cell * s[None, :]


def deform_drift(state: MDState, ens: Ensemble, deformation: Deformation, params: DeformParams,
                 reference_cell) -> MDState:
    """First part of :func:`deform_step` (pure): thermostat/barostat half steps, the half kick
    with the current forces, and the affine drift of positions and cell to the next step's
    prescribed cell.  Forces, energy, virial and neighbour list are still the old ones:
    refresh the list, then call :func:`deform_kick` (as :func:`glassjax.md.integrators.step_drift`)."""
    c = _coeffs(state, ens, deformation, params)
    dtype = state.positions.dtype
    p, x, cell = state.momenta, state.positions, state.cell
    xi, v_xi, xi_b, v_xi_b = state.xi, state.v_xi, state.xi_b, state.v_xi_b
    # only the lateral diagonal entries are barostat variables (a state coming from an NPT run
    # may carry other components: they are dropped, the prescribed gradient replaces them)
    v_b = jnp.diag(jnp.diagonal(state.v_g) * c.lat) if deformation.barostat else jnp.zeros_like(state.v_g)
    lg = _velocity_gradient(deformation, params, state.step, ens, dtype)
    if deformation.barostat and ens.thermostat:
        v_b, xi_b, v_xi_b = _baro_thermo_half(c, ens, v_b, xi_b, v_xi_b)
    if ens.thermostat:
        p, xi, v_xi = _thermo_half(c, p, state.masses, xi, v_xi)
    if deformation.barostat:
        v_b = _baro_kick(c, p, state.masses, v_b, state.virial, cell)
    p = _particle_kick(c, p, state.forces, v_b, lg)
    d = _I._expm((v_b + lg) * c.h)
    x = x @ d.T
    cell = cell @ d.T
    x = x + c.dt * p / state.masses[:, None]
    x = x @ d.T
    cell = cell @ d.T
    x, cell = _snap(x, cell, jnp.asarray(reference_cell, dtype), deformation, params, state.step + 1, ens)
    return state._replace(positions=x, momenta=p, cell=cell, xi=xi, v_xi=v_xi, v_g=v_b, xi_b=xi_b, v_xi_b=v_xi_b)


def deform_kick(energy_fn: Callable, state: MDState, ens: Ensemble, deformation: Deformation,
                params: DeformParams) -> MDState:
    """Second part of :func:`deform_step` (pure): new forces on the drifted state (its list
    already refreshed), the second half kick, barostat kick and thermostat half steps."""
    c = _coeffs(state, ens, deformation, params)
    dtype = state.positions.dtype
    p, v_b = state.momenta, state.v_g
    xi, v_xi, xi_b, v_xi_b = state.xi, state.v_xi, state.xi_b, state.v_xi_b
    lg = _velocity_gradient(deformation, params, state.step, ens, dtype)
    e, f, w = energy_forces_virial(energy_fn, state.positions, state.cell, state.nl)
    mask = getattr(state, "atom_mask", None)
    if mask is not None:
        f = jnp.where(mask[:, None], f, 0.0)
    p = _particle_kick(c, p, f, v_b, lg)
    if deformation.barostat:
        v_b = _baro_kick(c, p, state.masses, v_b, w, state.cell)
    if ens.thermostat:
        p, xi, v_xi = _thermo_half(c, p, state.masses, xi, v_xi)
    if deformation.barostat and ens.thermostat:
        v_b, xi_b, v_xi_b = _baro_thermo_half(c, ens, v_b, xi_b, v_xi_b)
    return state._replace(momenta=p, energy=e, forces=f, virial=w, overflow=state.overflow | state.nl.overflow,
                          xi=xi, v_xi=v_xi, v_g=v_b, xi_b=xi_b, v_xi_b=v_xi_b, step=state.step + 1)


def deform_step(energy_fn: Callable, state: MDState, spec: NeighborSpec, ens: Ensemble, deformation: Deformation,
                params: DeformParams, reference_cell) -> MDState:
    """One deformation MD step n -> n+1 (pure, jit-able; energy_fn, spec, ens, deformation static).

    ``state.step`` counts steps since the undeformed ``reference_cell`` ((3, 3) rows Å, the
    cell at step 0): the cell after the step is the prescribed one at ``(step + 1) * dt``.
    """
    mid = deform_drift(state, ens, deformation, params, reference_cell)
    nl = update(mid.nl, mid.positions, mid.cell, spec, getattr(mid, "atom_mask", None))
    return deform_kick(energy_fn, mid._replace(nl=nl), ens, deformation, params)


# ----------------------------------------------------------------------------- records

def extended_energy(state: MDState, ens: Ensemble, deformation: Deformation, params: DeformParams):
    """Extended-system energy, eV: KE + PE, the thermostat chain terms, and with the lateral
    barostat ``W tr(v_b v_b^T)/2 + P_lat V`` and its chain.  Not conserved under deformation:
    it changes by the work that the prescribed deformation does."""
    c = _coeffs(state, ens, deformation, params)
    ke = _I.kinetic_energy(state)
    h = ke + state.energy
    if ens.thermostat:
        h = h + 0.5 * jnp.sum(c.q * state.v_xi ** 2) + c.nf * c.kt * state.xi[0] + c.kt * jnp.sum(state.xi[1:])
    if deformation.barostat:
        vol = jnp.abs(jnp.linalg.det(state.cell))
        h = h + 0.5 * c.w_mass * jnp.sum(state.v_g ** 2) + c.p_ext[0, 0] * vol
        if ens.thermostat:
            qb = _I._thermostat_masses(c.kt_m, 1.0, ens.tau_p * units.PS, ens.chain, h.dtype) * N_LATERAL
            h = h + 0.5 * jnp.sum(qb * state.v_xi_b ** 2) + N_LATERAL * c.kt * state.xi_b[0] \
                + c.kt * jnp.sum(state.xi_b[1:])
    return h


def deform_records(state: MDState, ens: Ensemble, deformation: Deformation, params: DeformParams, reference_cell,
                   observables: Optional[Callable] = None) -> Dict[str, jax.Array]:
    """The per-record observables of one state (keys :data:`RECORD_KEYS` plus the caller's)."""
    dtype = state.positions.dtype
    ref = jnp.asarray(reference_cell, dtype)
    vol = jnp.abs(jnp.linalg.det(state.cell))
    ke = _I.kinetic_energy(state)
    k_t = _I._kinetic_tensor(state.momenta, state.masses)
    pt = (k_t + state.virial) / vol * units.EV_PER_A3_TO_GPA
    eps = strain_tensor(state.cell, ref)
    mask = getattr(state, "atom_mask", None)
    mass = jnp.sum(state.masses) if mask is None else jnp.sum(jnp.where(mask, state.masses, 0.0))
    rec = {
        "strain": scalar_strain(eps, deformation, params.axis),
        "strain_tensor": eps,
        "stress": -pt,
        "pressure": jnp.trace(pt) / 3.0,
        "temperature": 2.0 * ke / (_n_dof(state) * units.KB),
        "potential_energy": state.energy,
        "kinetic_energy": ke,
        "conserved": extended_energy(state, ens, deformation, params),
        "volume": vol,
        "density": mass * units.AMU_PER_A3_TO_G_PER_CM3 / vol,
        "cell": state.cell,
    }
    if observables is not None:
        extra = observables(state)
        clash = set(extra) & set(rec)
        if clash:
            raise ConfigError(f"observables: names {sorted(clash)} clash with the built-in records; rename them")
        rec.update(extra)
    return rec


# ----------------------------------------------------------------------------- scan

def deform_scan(energy_fn: Callable, state: MDState, spec: NeighborSpec, ens: Ensemble, deformation: Deformation,
                params: DeformParams, reference_cell, n_steps: int, every: int,
                observables: Optional[Callable] = None):
    """``n_steps`` deformation steps in a ``lax.scan`` (pure, not jitted: vmap or jit it yourself).

    Args:
        energy_fn: ``energy_fn(positions, cell, nl) -> E`` (eV).
        state: :class:`~glassjax.md.integrators.MDState`; ``state.step`` = steps since the
            undeformed ``reference_cell`` (0 at the start of the loop: see :func:`start`).
        spec: the neighbour list's static spec.
        ens: time step, thermostat (tau_t, chain) and barostat time (tau_p).
        deformation: static :class:`Deformation`.
        params: traced :class:`DeformParams`.
        reference_cell: (3, 3) rows Å, the undeformed cell (the state's cell at step 0).
        n_steps, every: static; ``n_steps`` must be a multiple of ``every``.
        observables: static ``observables(state) -> dict of arrays`` evaluated at each record.

    Returns:
        ``(state, records)``: records is a dict of arrays with a leading axis of
        ``n_steps // every`` (keys :data:`RECORD_KEYS`, the observables' keys, and ``step``).
        The caller must check ``state.overflow`` afterwards and redo the chunk with a larger
        list when it is set (as :func:`run_deformation` does).
    """
    if n_steps % every:
        raise ConfigError(f"deform_scan: n_steps={n_steps} must be a multiple of every={every}")

    def inner(st, _):
        return deform_step(energy_fn, st, spec, ens, deformation, params, reference_cell), None

    def outer(st, _):
        st, _ = jax.lax.scan(inner, st, None, length=every)
        rec = deform_records(st, ens, deformation, params, reference_cell, observables)
        rec["step"] = st.step
        return st, rec

    return jax.lax.scan(outer, state, None, length=n_steps // every)


_deform_chunk_jit = jax.jit(deform_scan, static_argnames=("energy_fn", "spec", "ens", "deformation", "n_steps",
                                                          "every", "observables"))


def deform_chunk(energy_fn: Callable, state: MDState, spec: NeighborSpec, ens: Ensemble, deformation: Deformation,
                 params: DeformParams, reference_cell, n_steps: int, every: int,
                 observables: Optional[Callable] = None):
    """Jitted :func:`deform_scan` (energy_fn, spec, ens, deformation, n_steps, every and
    observables static) after checking the inputs (:func:`check_params`)."""
    check_params(deformation, params, ens)
    if every < 1 or n_steps < 1:
        raise ConfigError(f"deform_chunk: n_steps ({n_steps}) and every ({every}) must be positive")
    return _deform_chunk_jit(energy_fn, state, spec, ens, deformation, params, jnp.asarray(reference_cell),
                             n_steps=int(n_steps), every=int(every), observables=observables)


def start(state: MDState) -> MDState:
    """The state ready for a new strain loop: step counter 0 (the reference is its cell), the
    barostat at rest (``v_g``, ``xi_b``, ``v_xi_b`` zeroed: e.g. after an NPT equilibration);
    positions, momenta and the particle thermostat carry over."""
    return state._replace(step=jnp.zeros_like(state.step), v_g=jnp.zeros_like(state.v_g),
                          xi_b=jnp.zeros_like(state.xi_b), v_xi_b=jnp.zeros_like(state.v_xi_b))


# ----------------------------------------------------------------------------- output

def _flat6(a):
    a = np.asarray(a)
    return [a[..., 0, 0], a[..., 1, 1], a[..., 2, 2], a[..., 1, 2], a[..., 0, 2], a[..., 0, 1]]


class DeformLog:
    """CSV log of a strain loop, one row per record: step, time_ps, strain, eps_{xx,yy,zz,yz,xz,xy},
    s{xx,yy,zz,yz,xz,xy}_GPa (ASE sign), P_GPa, T_K, PE_eV, KE_eV, conserved_eV, volume_A3,
    density_g_cm3, lx_A, ly_A, lz_A (lengths of the cell vectors), then the scalar observables."""

    BASE = (["step", "time_ps", "strain", "eps_xx", "eps_yy", "eps_zz", "eps_yz", "eps_xz", "eps_xy",
             "sxx_GPa", "syy_GPa", "szz_GPa", "syz_GPa", "sxz_GPa", "sxy_GPa", "P_GPa", "T_K", "PE_eV", "KE_eV",
             "conserved_eV", "volume_A3", "density_g_cm3", "lx_A", "ly_A", "lz_A"])

    def __init__(self, path, extra_columns=(), truncate_to: Optional[int] = None):
        self.path = Path(path)
        self.extra = list(extra_columns)
        self.columns = self.BASE + self.extra
        if truncate_to is None:
            self.n_rows = 0
            with atomic_path(self.path) as tmp:
                tmp.write_text(",".join(self.columns) + "\n")
        else:
            if not self.path.is_file():
                raise DataError(self.path, "deformation log to resume is missing")
            lines = self.path.read_text().splitlines(keepends=True)
            if len(lines) - 1 < truncate_to:
                raise DataError(self.path, f"holds {len(lines) - 1} rows but the checkpoint expects {truncate_to}",
                                hint="the log and the checkpoint do not belong together")
            with atomic_path(self.path) as tmp:
                tmp.write_text("".join(lines[:truncate_to + 1]))
            self.n_rows = int(truncate_to)
        self._fh = open(self.path, "a", newline="")
        self._w = csv.writer(self._fh)

    def append(self, records: Mapping[str, np.ndarray]) -> None:
        n = len(records["step"])
        cols = [records["step"], records["time_ps"], records["strain"]]
        cols += _flat6(records["strain_tensor"]) + _flat6(records["stress"])
        cols += [records[k] for k in ("pressure", "temperature", "potential_energy", "kinetic_energy", "conserved",
                                      "volume", "density")]
        cols += list(np.linalg.norm(np.asarray(records["cell"]), axis=-1).T)
        cols += [records[k] for k in self.extra]
        for i in range(n):
            row = [int(cols[0][i]), f"{cols[1][i]:.6f}"] + [repr(float(c[i])) for c in cols[2:]]
            self._w.writerow(row)
        self.n_rows += n
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def read_deformation_log(path) -> Dict[str, np.ndarray]:
    """Columns of a :class:`DeformLog` CSV as numpy arrays."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "deformation log not found")
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise DataError(path, "empty deformation log")
    data = np.array(rows[1:], dtype=float).reshape(-1, len(rows[0]))
    out = {k: data[:, i] for i, k in enumerate(rows[0])}
    out["step"] = out["step"].astype(np.int64)
    return out


def h5_append_observable(writer, name: str, shape, step, time_ps, value, unit=None) -> None:
    """Append to /observables/<name> of an H5MD writer (created on first use)."""
    from glassjax.md import trajectory as T

    obs = writer._file["observables"]
    if name not in obs:
        T._element(obs, name, tuple(shape), np.float64, unit)
    T._append(obs[name], step, time_ps, value)
    writer._file.flush()


def h5_truncate_observables(writer, n_frames: int) -> None:
    """Cut every /observables/<name> of an H5MD writer back to its first ``n_frames`` frames
    (on resume, so appended observables stay aligned with the position frames)."""
    from glassjax.md.trajectory import OBSERVABLES

    obs = writer._file["observables"]
    for name in obs:
        if name not in OBSERVABLES:
            for key in ("step", "time", "value"):
                obs[name][key].resize(n_frames, axis=0)
    writer._file.flush()


def _meta(deformation, params, ens, target_strain, reference_cell, record_steps, snapshot_steps, total_steps):
    return {"deformation": asdict(deformation), "axis": int(params.axis), "rate": float(params.rate),
            "temperature": float(params.temperature), "lateral_pressure": float(params.lateral_pressure),
            "dt": ens.dt, "target_strain": float(target_strain), "record_steps": int(record_steps),
            "snapshot_steps": int(snapshot_steps), "total_steps": int(total_steps),
            "reference_cell": np.asarray(reference_cell, dtype=float).tolist()}


def run_deformation(energy_fn: Callable, state: MDState, spec: NeighborSpec, ens: Ensemble, deformation: Deformation,
                    params: DeformParams, target_strain: float, record_strain_interval: float,
                    snapshot_strain_interval: Optional[float] = None, out_dir=None, symbols=None,
                    checkpoint_every: Optional[float] = None, progress: bool = True,
                    observables: Optional[Callable] = None, reference_cell=None, restart: bool = True,
                    min_distance: Optional[float] = 0.5, max_force: Optional[float] = None,
                    max_reallocations: int = 5, on_chunk: Optional[Callable] = None, return_state: bool = False):
    """Run a strain loop up to ``target_strain`` in jitted chunks, with output and restarts.

    Args:
        energy_fn, state, spec, ens, deformation, params: as :func:`deform_scan` (one system;
            scalar params).  A new run starts the step counter at 0 (:func:`start`).
        target_strain: final scalar strain (same sign as ``params.rate``); the run ends at the
            first record at or beyond it.
        record_strain_interval: strain between records (rows of the CSV, returned records).
        snapshot_strain_interval: strain between H5MD frames (rounded to a multiple of the
            record interval; default: every record).  One jitted chunk runs from snapshot to
            snapshot.
        out_dir: folder for ``trajectory.h5`` (H5MD: positions, velocities, cell, the standard
            observables and ``strain``, ``strain_tensor`` and the observables, one frame per
            snapshot including strain 0), ``deform.csv`` (:class:`DeformLog`, every record)
            and ``checkpoint.npz``; None: nothing written.
        symbols: chemical symbols (needed with ``out_dir``, for the H5MD species).
        checkpoint_every: strain between checkpoints (rounded to whole chunks; default: every
            chunk).  A checkpoint is written after the chunk's output is flushed.
        progress: tqdm bar in strain.
        observables: static ``observables(state) -> dict``; scalar ones go to the CSV too.
        reference_cell: the undeformed cell (default: the state's cell).
        restart: when ``out_dir`` holds a checkpoint of this same loop, continue from it
            (output truncated to the checkpoint; the result is the uninterrupted run's).
            A checkpoint of a different loop (mode, axis, rate, temperature, ...) is a
            :class:`ConfigError`.
        min_distance, max_force: blow-up checks after each chunk (Å, eV/Å; None disables).
        max_reallocations: neighbour-list overflows tolerated per chunk (each redoes it).
        on_chunk: optional ``on_chunk(state, records)`` after each accepted chunk.
        return_state: also return the final state and spec.

    Returns:
        records (dict of numpy arrays over the records of *this call*, with ``step`` and
        ``time_ps``; after a restart the earlier rows are in ``deform.csv``:
        :func:`read_deformation_log`), or ``(state, spec, records)`` with ``return_state``.

    Raises:
        ConfigError on bad parameters; SimulationError when the run blows up, carrying
        ``last_good_state``/``last_good_step`` (saved in the checkpoint when there is one).
    """
    from tqdm.auto import tqdm

    from glassjax.md.runner import check_state, redo_on_overflow
    from glassjax.md.trajectory import H5MDWriter, load_checkpoint, save_checkpoint

    check_params(deformation, params, ens, target_strain)
    if np.ndim(params.rate) or np.ndim(params.axis) or np.ndim(params.temperature):
        raise ConfigError("run_deformation: params must be scalars (one system); batches: vmap deform_scan")
    rate = float(params.rate)
    target = float(target_strain)
    for name, val in (("record_strain_interval", record_strain_interval),
                      ("snapshot_strain_interval", snapshot_strain_interval), ("checkpoint_every", checkpoint_every)):
        if val is not None and not (np.isfinite(val) and val > 0):
            raise ConfigError(f"{name} must be a positive strain, got {val}")
    strain_per_step = abs(rate) * ens.dt
    record_steps = max(1, int(round(record_strain_interval / strain_per_step)))
    snap_records = 1 if snapshot_strain_interval is None else max(
        1, int(round(snapshot_strain_interval / (record_steps * strain_per_step))))
    chunk_steps = record_steps * snap_records
    total_steps = int(math.ceil(abs(target) / strain_per_step / record_steps - 1e-9)) * record_steps
    ckpt_chunks = 1 if checkpoint_every is None else max(
        1, int(round(checkpoint_every / (chunk_steps * strain_per_step))))
    if out_dir is not None and symbols is None:
        raise ConfigError("run_deformation: pass symbols= (chemical symbols) to write the H5MD trajectory")
    if symbols is not None and len(symbols) != state.positions.shape[0]:
        raise ConfigError(f"symbols: {len(symbols)} symbols for {state.positions.shape[0]} atoms")

    ref = np.asarray(state.cell if reference_cell is None else reference_cell, dtype=float)
    traj = log = None
    ckpt = None
    done = 0
    meta_now = _meta(deformation, params, ens, target, ref, record_steps, chunk_steps, total_steps)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        ckpt = out_dir / "checkpoint.npz"
    extra_cols: List[str] = []
    if ckpt is not None and restart and ckpt.is_file():
        state, spec, meta = load_checkpoint(ckpt)
        old = meta.get("extra", {})
        for key, val in meta_now.items():
            if key == "reference_cell":
                continue
            if old.get(key) != val:
                raise ConfigError(f"{key}: the checkpoint in {out_dir} belongs to a different loop "
                                  f"({old.get(key)!r} there, {val!r} now); use another out_dir or restart=False")
        ref = np.asarray(old["reference_cell"])
        done = int(meta["steps_done"])
        extra_cols = list(old.get("csv_observables", []))
        traj = H5MDWriter(out_dir / "trajectory.h5", symbols, np.asarray(state.masses), truncate_to=meta["frames"])
        h5_truncate_observables(traj, meta["frames"])
        log = DeformLog(out_dir / "deform.csv", extra_cols, truncate_to=meta["rows"])
    else:
        state = start(state)
    ref_j = jnp.asarray(ref, dtype=state.positions.dtype)

    def write_frame(st, rec, i):
        step_i = np.asarray([int(rec["step"][i])])
        t_i = step_i * ens.dt
        one = {k: np.asarray(v)[i:i + 1] for k, v in rec.items()}
        one["positions"] = np.asarray(st.positions)[None]
        one["velocities"] = (np.asarray(st.momenta) / np.asarray(st.masses)[:, None] * units.PS)[None]
        traj.append(step_i, t_i, one)
        h5_append_observable(traj, "strain", (), step_i, t_i, one["strain"])
        h5_append_observable(traj, "strain_tensor", (3, 3), step_i, t_i, one["strain_tensor"])
        for k in rec:
            if k not in RECORD_KEYS and k not in ("step", "time_ps"):
                h5_append_observable(traj, k, np.shape(one[k])[1:], step_i, t_i, np.asarray(one[k], dtype=np.float64))

    if out_dir is not None and traj is None:
        rec0 = jax.tree_util.tree_map(lambda a: np.asarray(a)[None],
                                      deform_records(state, ens, deformation, params, ref_j, observables))
        rec0["step"] = np.asarray([0])
        extra_cols = [k for k, v in rec0.items() if k not in RECORD_KEYS and k != "step" and np.ndim(v) == 1]
        traj = H5MDWriter(out_dir / "trajectory.h5", symbols, np.asarray(state.masses))
        write_frame(state, rec0, 0)
        log = DeformLog(out_dir / "deform.csv", extra_cols)
        meta_now["csv_observables"] = extra_cols
        save_checkpoint(ckpt, state, spec, 0, frames=traj.n_frames, rows=0, extra=meta_now)
    meta_now["csv_observables"] = extra_cols

    records: Dict[str, List[np.ndarray]] = {}
    bar = tqdm(total=abs(target), initial=min(done, total_steps) * strain_per_step, disable=not progress,
               unit="strain", bar_format="{l_bar}{bar}| {n:.4f}/{total:.4f} strain [{elapsed}<{remaining}{postfix}]")
    n_chunk = 0
    try:
        while done < total_steps:
            size = min(chunk_steps, total_steps - done)
            start_state = state
            new_state, rec, state, spec = redo_on_overflow(
                lambda st, sp: deform_chunk(energy_fn, st, sp, ens, deformation, params, ref_j, size,
                                            record_steps, observables),
                state, spec, done, max_reallocations)
            try:
                check_state(new_state, done + size, min_distance, max_force)
            except SimulationError as exc:
                where = (f"; the last good state (step {done}, strain {done * rate * ens.dt:.4g}) is saved in "
                         f"{ckpt}: inspect or resume from it" if ckpt is not None else "")
                err = SimulationError(f"{exc} (strain {(done + size) * rate * ens.dt:.4g}){where}")
                err.last_good_state, err.last_good_step = start_state, done
                raise err from None
            state = new_state
            rec = {k: np.asarray(v) for k, v in rec.items()}
            rec["time_ps"] = rec["step"] * ens.dt
            for k, v in rec.items():
                records.setdefault(k, []).append(v)
            done += size
            n_chunk += 1
            if traj is not None:
                write_frame(state, rec, len(rec["step"]) - 1)
                log.append(rec)
                if n_chunk % ckpt_chunks == 0 or done >= total_steps:
                    save_checkpoint(ckpt, state, spec, done, frames=traj.n_frames, rows=log.n_rows, extra=meta_now)
            if on_chunk is not None:
                on_chunk(state, rec)
            bar.update(size * strain_per_step)
            bar.set_postfix(s=f"{float(rec['strain'][-1]):+.4f}", T=f"{float(rec['temperature'][-1]):.0f}K",
                            P=f"{float(rec['pressure'][-1]):.2f}GPa")
    finally:
        bar.close()
        if traj is not None:
            traj.close()
            log.close()
    out = {k: np.concatenate(v) for k, v in records.items()}
    if return_state:
        return state, spec, out
    return out
