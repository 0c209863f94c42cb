"""Classical pair potentials in JAX: the Teter/Du force field for Li2O-B2O3-SiO2 glasses, and Lennard-Jones.

Both are energy functions ``energy_fn(positions, cell, nl) -> E`` (eV) over a
:mod:`glassjax.neighbors` list (full list: every pair appears from both sides, with every
periodic image inside the cutoff, so cells thinner than twice the cutoff are handled), the
form every glassjax integrator and :func:`glassjax.potential.energy_forces_virial` take.

Teter/Du potential
------------------
Pair energy (Du & Cormack, J. Non-Cryst. Solids 349, 66 (2004); Teter, private
communication; boron by L. Deng & J. Du, J. Am. Ceram. Soc. 102, 2482 (2019))::

    U_ij(r) = k q_i q_j / r  +  A exp(-r / rho) - C / r^6        (r >= r0)
                             +  B / r^n + D r^2                  (r <  r0)

with partial charges O -1.2, Si 2.4, B 1.8, Li 0.6 and k = e^2/(4 pi eps0) = 14.3996 eV Å.
Buckingham parameters (A eV, rho Å, C eV Å^6):

    O-O   2029.2204  0.343645  192.58    (Du & Cormack 2004)
    Si-O  13702.905  0.193817   54.681   (Teter; Du & Cormack 2004)
    Li-O  41051.938  0.151160    0.0     (Teter; Du & Cormack 2004, Deng & Du 2019)
    B-O   A_BO       0.171271   28.5     (Deng & Du 2019)

Cation-cation pairs interact by Coulomb only.

Short-range wall.  A Buckingham term with C > 0 turns over and dives to -infinity at short r
(the "Buckingham catastrophe"), which a hot melt can reach.  Following Du's practice, below
r0 the Buckingham term is replaced by ``B / r^n + D r^2``, with r0 the first zero of the
third derivative of the Buckingham term and (B, n, D) chosen so that value, first and
second derivative are continuous at r0.  :func:`repulsive_wall` solves these in closed form:
with ``V, V', V''`` the Buckingham values at r0,
``n = (r0^2 V'' - r0 V') / (2 V - r0 V')``, ``B r0^-n = (2 V - r0 V') / (n + 2)``,
``D r0^2 = V - B r0^-n``.  This reproduces Du's tabulated walls (Si-O: r0 1.168 Å,
B 28.95, n 3.932, D -3.059; O-O: r0 1.906, B 46.46, n 3.43, D -0.326) and gives the
composition-dependent B-O wall.  Li-O (C = 0) needs no wall.

Composition-dependent B-O term (Deng & Du 2019): with K = [SiO2]/[B2O3],
R = [M2O]/[B2O3], R_max = 1/2 + K/16 and N4 the fraction of four-coordinated boron::

    A_BO = 11900 + 4350 (R_max - (R_max - N4)^2 / R_max) + 85 K^2    (R <= R_max)
    A_BO = 12525 + T3 N4 R_max / R,  T3 = (11900 + 85 K^2 - 12525) / R_max + 4350   (R > R_max)

For binary Li borates with R <= 0.5 (K = 0, N4 = R) this is ``11900 + 8700 R (1 - R)``.
N4 defaults to the Dell-Bray-Xiao model (J. Non-Cryst. Solids 58, 1 (1983)):
N4 = R for R <= R_max; R_max for R_max < R <= R_d1 = 1/2 + K/4;
(8 + K)/12 (1 - R/(2 + K)) for R_d1 < R < 2 + K; 0 beyond.  For the LBS glasses (K > 0,
R up to 4) this is the recipe Deng & Du give for sodium borosilicates, applied here with
Li2O as the modifier (R = [Li2O]/[B2O3]); that substitution is our choice, made because no
lithium-specific B-O parametrisation is published with parameters we can check.  The
papers' own pre-melt force field (Urata, Miyajima, Kayaba, Deng & Du, Int. J. Appl. Glass
Sci. 13, 444 (2022), ref. [25] of the 2024 paper) is a refit of this family for LBS glasses
whose parameters are not given in the papers.  Pass ``n4=`` to use a measured value instead
(e.g. the 4B column of :data:`glassjax.md.compositions.TABLE_II`), or ``a_bo=`` directly.

Cutoffs.  The short-range term is cut at ``rc_sr`` (default 8 Å) with a shifted-force
correction (value and force zero at the cutoff, so MD conserves energy); Coulomb is the
damped shifted force (DSF) sum of Fennell & Gezelter, J. Chem. Phys. 124, 234104 (2006),
their Eq. (19), with alpha = 0.25 1/Å and rc = 8 Å::

    U_DSF(r) = k q_i q_j [ erfc(a r)/r - erfc(a rc)/rc
                           + (erfc(a rc)/rc^2 + 2a/sqrt(pi) exp(-a^2 rc^2)/rc) (r - rc) ]

plus the constant self term ``-k sum_i q_i^2 (erfc(a rc)/(2 rc) + a/sqrt(pi))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import ase.units
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erfc

from glassjax.errors import ConfigError
from glassjax.neighbors import pair_vectors

#: e^2 / (4 pi eps0) in eV Å.
COULOMB_K = float(ase.units.Hartree * ase.units.Bohr)

#: Teter/Du formal partial charges (e).
TETER_CHARGES: Dict[str, float] = {"O": -1.2, "Si": 2.4, "B": 1.8, "Li": 0.6}

#: Buckingham (A eV, rho Å, C eV Å^6) per cation-oxygen and O-O pair (B-O: rho and C only;
#: its A is composition dependent, see :func:`deng_du_a_bo`).
TETER_BUCKINGHAM: Dict[Tuple[str, str], Tuple[float, float, float]] = {
    ("O", "O"): (2029.2204, 0.343645, 192.58),
    ("Si", "O"): (13702.905, 0.193817, 54.681),
    ("Li", "O"): (41051.938, 0.151160, 0.0),
}
BO_RHO = 0.171271
BO_C = 28.5


def dell_bray_n4(R: float, K: float = 0.0) -> float:
    """Fraction of four-coordinated boron of the Dell-Bray-Xiao model (see module docstring)."""
    R, K = float(R), float(K)
    r_max = 0.5 + K / 16.0
    r_d1 = 0.5 + K / 4.0
    r_d3 = 2.0 + K
    if R <= r_max:
        return R
    if R <= r_d1:
        return r_max
    if R < r_d3:
        return (8.0 + K) / 12.0 * (1.0 - R / (2.0 + K))
    return 0.0


def deng_du_a_bo(R: float, K: float = 0.0, n4: Optional[float] = None) -> float:
    """Composition-dependent B-O Buckingham prefactor A_BO (eV) of Deng & Du (2019).

    Args:
        R: [Li2O]/[B2O3] (modifier to boron oxide molar ratio).
        K: [SiO2]/[B2O3].
        n4: fraction of 4-coordinated boron (0..1); default :func:`dell_bray_n4`.
    """
    if R < 0 or K < 0:
        raise ConfigError(f"deng_du_a_bo: R and K must be non-negative, got R={R}, K={K}")
    if n4 is None:
        n4 = dell_bray_n4(R, K)
    if not 0.0 <= n4 <= 1.0:
        raise ConfigError(f"deng_du_a_bo: n4 is a fraction in [0, 1], got {n4}")
    a1, a2, t1, t2 = 11900.0, 12525.0, 4350.0, 85.0
    r_max = 0.5 + K / 16.0
    if R <= r_max:
        return a1 + t1 * (r_max - (r_max - n4) ** 2 / r_max) + t2 * K * K
    t3 = (a1 + t2 * K * K - a2) / r_max + t1
    return a2 + t3 * n4 * r_max / R


def _buck_derivs(r, a, rho, c):
    e = a * math.exp(-r / rho)
    v = e - c / r ** 6
    v1 = -e / rho + 6.0 * c / r ** 7
    v2 = e / rho ** 2 - 42.0 * c / r ** 8
    v3 = -e / rho ** 3 + 336.0 * c / r ** 9
    return v, v1, v2, v3


def repulsive_wall(a: float, rho: float, c: float) -> Tuple[float, float, float, float]:
    """``(B, n, D, r0)`` of the short-range wall ``B/r^n + D r^2`` for a Buckingham pair.

    r0 is the first zero (from small r) of the third derivative of ``A exp(-r/rho) - C/r^6``,
    found by bisection; B, n, D match value, slope and curvature there (closed form in the
    module docstring).  Returns zeros for pairs with C = 0 (no catastrophe, no wall).
    """
    if c <= 0.0 or a <= 0.0:
        return 0.0, 0.0, 0.0, 0.0
    # scan outwards from small r for the first sign change of V'''
    grid = np.linspace(0.3, 4.0, 3701)
    d3 = np.array([_buck_derivs(r, a, rho, c)[3] for r in grid])
    sign_change = np.nonzero(np.sign(d3[:-1]) != np.sign(d3[1:]))[0]
    if sign_change.size == 0:
        raise ConfigError(f"repulsive_wall: no inflection found for A={a}, rho={rho}, C={c}")
    lo, hi = grid[sign_change[0]], grid[sign_change[0] + 1]
    f_lo = _buck_derivs(lo, a, rho, c)[3]
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        f_mid = _buck_derivs(mid, a, rho, c)[3]
        if (f_mid > 0) == (f_lo > 0):
            lo, f_lo = mid, f_mid
        else:
            hi = mid
    r0 = 0.5 * (lo + hi)
    v, v1, v2, _ = _buck_derivs(r0, a, rho, c)
    n = (r0 * r0 * v2 - r0 * v1) / (2.0 * v - r0 * v1)
    b_scaled = (2.0 * v - r0 * v1) / (n + 2.0)
    d_scaled = v - b_scaled
    return b_scaled * r0 ** n, n, d_scaled / r0 ** 2, r0


@dataclass(frozen=True)
class PairTable:
    """Per-species-pair parameters as (T, T) numpy arrays (symmetric), T = number of species.

    Attributes:
        species: the T chemical symbols, in type order.
        charges: (T,) partial charges, e.
        A, rho, C: Buckingham parameters (A = 0 for no short-range term).
        B, n, D, r0: short-range wall (r0 = 0 for none).
        rc_sr: short-range cutoff, Å; rc_coul: Coulomb (DSF) cutoff, Å; alpha: DSF damping, 1/Å.
    """

    species: Tuple[str, ...]
    charges: np.ndarray
    A: np.ndarray
    rho: np.ndarray
    C: np.ndarray
    B: np.ndarray
    n: np.ndarray
    D: np.ndarray
    r0: np.ndarray
    rc_sr: float = 8.0
    rc_coul: float = 8.0
    alpha: float = 0.25
    notes: Dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def cutoff(self) -> float:
        return max(self.rc_sr, self.rc_coul)


def teter_du_table(species: Sequence[str], composition: Optional[Mapping[str, float]] = None,
                   n4: Optional[float] = None, a_bo: Optional[float] = None,
                   rc_sr: float = 8.0, rc_coul: float = 8.0, alpha: float = 0.25) -> PairTable:
    """The Teter/Du parameter table for the species present.

    Args:
        species: chemical symbols of the atoms (any order, repeats allowed) or of the types.
        composition: oxide mol fractions (e.g. from :func:`glassjax.md.builder.parse_composition`),
            needed for the B-O term when boron is present (sets R and K).
        n4: fraction of 4-coordinated boron for A_BO (default: Dell-Bray-Xiao).
        a_bo: give A_BO directly (overrides composition and n4).
        rc_sr, rc_coul: cutoffs, Å; alpha: DSF damping, 1/Å.
    """
    kinds = tuple(sorted(set(species), key=lambda s: (s == "O", s)))
    unknown = [s for s in kinds if s not in TETER_CHARGES]
    if unknown:
        raise ConfigError(f"teter_du_table: no Teter/Du parameters for {unknown}; supported: {sorted(TETER_CHARGES)}")
    if rc_sr <= 0 or rc_coul <= 0 or alpha < 0:
        raise ConfigError(f"teter_du_table: cutoffs must be positive and alpha >= 0 (got {rc_sr}, {rc_coul}, {alpha})")
    buck = dict(TETER_BUCKINGHAM)
    notes: Dict[str, float] = {}
    if "B" in kinds:
        if a_bo is None:
            if composition is None:
                raise ConfigError("teter_du_table: boron present: pass composition= (oxide mol fractions) or a_bo=")
            b2o3 = float(composition.get("B2O3", 0.0))
            if b2o3 <= 0:
                raise ConfigError("teter_du_table: boron present but the composition has no B2O3")
            R = (float(composition.get("Li2O", 0.0)) + float(composition.get("Na2O", 0.0))) / b2o3
            K = float(composition.get("SiO2", 0.0)) / b2o3
            a_bo = deng_du_a_bo(R, K, n4)
            notes.update({"R": R, "K": K, "n4": dell_bray_n4(R, K) if n4 is None else float(n4)})
        notes["A_BO"] = float(a_bo)
        buck[("B", "O")] = (float(a_bo), BO_RHO, BO_C)
    t = len(kinds)
    arr = {k: np.zeros((t, t)) for k in ("A", "rho", "C", "B", "n", "D", "r0")}
    arr["rho"][:] = 1.0
    for (a, b), (A, rho, C) in buck.items():
        if a in kinds and b in kinds:
            wb, wn, wd, r0 = repulsive_wall(A, rho, C)
            for i, j in ((kinds.index(a), kinds.index(b)), (kinds.index(b), kinds.index(a))):
                for key, val in zip(("A", "rho", "C", "B", "n", "D", "r0"), (A, rho, C, wb, wn, wd, r0)):
                    arr[key][i, j] = val
    if np.max(arr["r0"]) >= rc_sr:
        raise ConfigError(f"teter_du_table: rc_sr={rc_sr} Å must exceed the wall radii (max {np.max(arr['r0']):.2f} Å)")
    charges = np.array([TETER_CHARGES[s] for s in kinds])
    return PairTable(species=kinds, charges=charges, rc_sr=float(rc_sr), rc_coul=float(rc_coul),
                     alpha=float(alpha), notes=notes, **arr)


def _buck_wall(r, A, rho, C, B, n, D, r0):
    """Buckingham above r0, wall below (elementwise arrays)."""
    buck = A * jnp.exp(-r / rho) - C / r ** 6
    wall = B * r ** (-n) + D * r * r
    return jnp.where(r < r0, wall, buck)


def _dsf(r, qq, alpha, rc):
    erfc_rc = erfc(alpha * rc)
    slope = erfc_rc / rc ** 2 + 2.0 * alpha / math.sqrt(math.pi) * math.exp(-(alpha * rc) ** 2) / rc
    return COULOMB_K * qq * (erfc(alpha * r) / r - erfc_rc / rc + slope * (r - rc))


def pair_energy(r, ti, tj, table: PairTable):
    """Teter/Du pair energy U(r) (eV) for type indices ``ti, tj`` (arrays broadcast together).

    Short-range part shifted-force-truncated at ``rc_sr``; Coulomb by DSF truncated at
    ``rc_coul``.  No self term (see :func:`teter_du_energy_fn`).
    """
    p = {k: jnp.asarray(getattr(table, k))[ti, tj] for k in ("A", "rho", "C", "B", "n", "D", "r0")}
    q = jnp.asarray(table.charges)
    rc = table.rc_sr
    # shifted force at rc (rc > r0, so the Buckingham branch applies there):
    # U(r) - U(rc) - (r - rc) U'(rc)
    e_rc = table.A * np.exp(-rc / table.rho)
    u_rc = jnp.asarray(e_rc - table.C / rc ** 6)[ti, tj]
    du_rc = jnp.asarray(-e_rc / table.rho + 6.0 * table.C / rc ** 7)[ti, tj]
    sr = jnp.where(r < rc, _buck_wall(r, **p) - u_rc - (r - rc) * du_rc, 0.0)
    coul = jnp.where(r < table.rc_coul, _dsf(r, q[ti] * q[tj], table.alpha, table.rc_coul), 0.0)
    return sr + coul


def types_of(symbols: Sequence[str], table: PairTable) -> np.ndarray:
    """(N,) int type index of each atom in ``table.species``."""
    try:
        return np.array([table.species.index(s) for s in symbols], dtype=np.int32)
    except ValueError as exc:
        raise ConfigError(f"types_of: an atom's species is not in the parameter table {table.species}") from exc


def teter_du_energy_fn(symbols: Sequence[str], table: PairTable) -> Callable:
    """Energy function ``energy_fn(positions, cell, nl) -> E`` (eV) of the Teter/Du potential.

    Args:
        symbols: (N,) chemical symbols of the atoms.
        table: parameters from :func:`teter_du_table`; the neighbour list must be built for
            a cutoff of at least ``table.cutoff``.

    The energy is ``1/2 sum_i sum_{slots k} U(r_ik) + E_self`` over the full neighbour list
    (positions (N, 3) Å, cell (3, 3) rows Å).
    """
    types = jnp.asarray(types_of(symbols, table))
    q = np.asarray(table.charges)[np.asarray(types)]
    e_self = -COULOMB_K * float(np.sum(q * q)) * (
        math.erfc(table.alpha * table.rc_coul) / (2.0 * table.rc_coul) + table.alpha / math.sqrt(math.pi))
    n_atoms = len(symbols)

    def energy_fn(positions, cell, nl):
        rij, mask = pair_vectors(positions, cell, nl)
        r2 = jnp.sum(rij * rij, axis=-1)
        r2 = jnp.where(mask, r2, 1.0)
        r = jnp.sqrt(r2)
        tj = types[jnp.where(mask, nl.idx, 0)]
        ti = jnp.broadcast_to(types[:, None], tj.shape)
        u = pair_energy(r, ti, tj, table)
        return 0.5 * jnp.sum(jnp.where(mask, u, 0.0)) + e_self

    energy_fn.n_atoms = n_atoms
    energy_fn.cutoff = table.cutoff
    return energy_fn


def lennard_jones_energy_fn(epsilon: float = 1.0, sigma: float = 1.0, cutoff: float = 2.5,
                            shift: str = "force") -> Callable:
    """Single-species Lennard-Jones ``energy_fn(positions, cell, nl) -> E``.

    ``U(r) = 4 eps ((sigma/r)^12 - (sigma/r)^6)`` for r < cutoff; ``shift="energy"`` subtracts
    U(rc), ``"force"`` also subtracts (r - rc) U'(rc) (so forces are continuous), ``"none"``
    leaves the plain truncation.  Used for the integrator tests (fcc crystal, liquid).
    """
    if shift not in ("none", "energy", "force"):
        raise ConfigError(f"lennard_jones_energy_fn: shift must be none, energy or force, got {shift!r}")

    def lj(r):
        sr6 = (sigma / r) ** 6
        return 4.0 * epsilon * (sr6 * sr6 - sr6)

    u_c = lj(cutoff)
    du_c = 4.0 * epsilon * (-12.0 * sigma ** 12 / cutoff ** 13 + 6.0 * sigma ** 6 / cutoff ** 7)

    def energy_fn(positions, cell, nl):
        rij, mask = pair_vectors(positions, cell, nl)
        r2 = jnp.where(mask, jnp.sum(rij * rij, axis=-1), 1.0)
        r = jnp.sqrt(r2)
        u = lj(r)
        if shift in ("energy", "force"):
            u = u - u_c
        if shift == "force":
            u = u - (r - cutoff) * du_c
        return 0.5 * jnp.sum(jnp.where(mask & (r < cutoff), u, 0.0))

    energy_fn.cutoff = cutoff
    return energy_fn
