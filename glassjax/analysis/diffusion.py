"""Unwrapping, mean-square displacement, diffusion coefficient, Nernst-Einstein conductivity
and Arrhenius activation energy (2022 training paper: Li diffusion, Eq. 6 and Table 3).

* :func:`unwrap` removes periodic jumps: between consecutive frames the fractional
  displacement of each atom is taken by the minimum image, ``ds - round(ds)``, and summed;
  the unwrapped Cartesian position of frame f is ``s_unwrapped(f) @ cell(f)``, so a
  changing cell (NPT, deformation) is handled.  Atoms must move less than half a cell
  between saved frames.
* :func:`msd` averages ``|r(t0 + t) - r(t0)|^2`` over atoms and over all time origins t0
  (FFT algorithm, O(F log F) per atom).
* :func:`diffusion_coefficient`: ``D = MSD(t) / (6 t)`` (Eq. 6) as the slope of a linear fit
  of MSD against t over a window (the paper used 50-150 ps), in Å^2/ps
  (1 Å^2/ps = 1e-4 cm^2/s).
* :func:`nernst_einstein`: ``sigma = n q^2 D / (kB T)`` in S/cm, n the number density of
  the carriers, q their charge (e for Li+).
* :func:`arrhenius`: ``D = D0 exp(-Ea / (kB T))``, Ea in eV from a linear fit of ln D
  against 1/T.
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

#: 1 Å^2/ps in cm^2/s.
A2_PER_PS_TO_CM2_PER_S = 1.0e-4
#: Elementary charge, C (CODATA 2018, exact).
ELEMENTARY_CHARGE = 1.602176634e-19
#: Boltzmann constant, J/K (exact).
KB_J_PER_K = 1.380649e-23


@jax.jit
def unwrap(positions, cells):
    """Unwrap a trajectory across periodic boundaries.

    Args:
        positions: (F, N, 3) Cartesian positions, Å, wrapped or not.
        cells: (F, 3, 3) cell vectors as rows, Å (constant or changing).

    Returns:
        (F, N, 3) continuous positions; frame 0 is unchanged.
    """
    positions = jnp.asarray(positions)
    cells = jnp.asarray(cells, positions.dtype)
    s = jnp.einsum("fna,fab->fnb", positions, jnp.linalg.inv(cells))
    ds = jnp.diff(s, axis=0)
    ds = ds - jnp.round(ds)
    s_un = jnp.concatenate([s[:1], s[:1] + jnp.cumsum(ds, axis=0)], axis=0)
    return jnp.einsum("fna,fab->fnb", s_un, cells)


def _msd_fft_one(x):
    """MSD over all origins for one coordinate series x (F,) (Calandrini et al. FFT method)."""
    f = x.shape[0]
    x2 = x * x
    # S2(m) = sum_{k=0}^{F-1-m} x(k) x(k+m) / (F - m), by zero-padded FFT autocorrelation
    n = 2 * f
    fx = jnp.fft.rfft(x, n=n)
    acf = jnp.fft.irfft(fx * jnp.conj(fx), n=n)[:f]
    # S1(m) = sum_{k=0}^{F-1-m} (x(k)^2 + x(k+m)^2) / (F - m), by a running sum
    csum = jnp.concatenate([jnp.zeros((1,), x.dtype), jnp.cumsum(x2)])
    total = csum[-1]
    m = jnp.arange(f)
    # sum_{k=0}^{F-1-m} x(k)^2 = csum[F-m]; sum_{k=m}^{F-1} x(k)^2 = total - csum[m]
    s1 = csum[f - m] + (total - csum[m])
    return (s1 - 2.0 * acf) / (f - m)


@jax.jit
def msd(positions, atom_mask=None):
    """Mean-square displacement with every frame as a time origin.

    Args:
        positions: (F, N, 3) *unwrapped* positions, Å (see :func:`unwrap`), equally spaced in time.
        atom_mask: optional (N,) bool selecting atoms (e.g. Li); default all.

    Returns:
        (F,) MSD(lag) in Å^2 for lags 0 .. F-1 frames; lag m averages F - m origins.
    """
    positions = jnp.asarray(positions)
    if atom_mask is None:
        atom_mask = jnp.ones(positions.shape[1], bool)
    w = jnp.asarray(atom_mask, positions.dtype)
    series = jnp.transpose(positions, (1, 2, 0))  # (N, 3, F)
    per = jax.vmap(jax.vmap(_msd_fft_one))(series).sum(axis=1)  # (N, F)
    return jnp.einsum("n,nf->f", w, per) / jnp.sum(w)


def diffusion_coefficient(times, msd_values, t_min: Optional[float] = None, t_max: Optional[float] = None,
                          dim: int = 3):
    """D from the slope of MSD(t) over [t_min, t_max]: MSD = 2 dim D t + c (Eq. 6 for dim = 3).

    Args:
        times: (F,) lag times, ps; msd_values: (F,) Å^2.
        t_min, t_max: fit window, ps (default: the whole curve after the first 10 %, to the last 50 %
            boundary, i.e. [0.1, 0.5] of the longest lag, where many origins average).

    Returns:
        dict: ``D`` in Å^2/ps, ``D_cm2_s`` in cm^2/s, ``slope``, ``intercept``, ``t_min``, ``t_max``,
        ``stderr`` (standard error of D from the regression, Å^2/ps; correlated points make it a
        lower bound).
    """
    from glassjax.errors import ConfigError

    t = np.asarray(times, float)
    y = np.asarray(msd_values, float)
    t_min = 0.1 * t[-1] if t_min is None else float(t_min)
    t_max = 0.5 * t[-1] if t_max is None else float(t_max)
    sel = (t >= t_min) & (t <= t_max)
    if sel.sum() < 3:
        raise ConfigError(f"diffusion: the fit window [{t_min}, {t_max}] ps holds {int(sel.sum())} points "
                          f"(the trajectory spans 0-{t[-1]:.4g} ps); widen it or save frames more often")
    A = np.stack([t[sel], np.ones(sel.sum())], axis=1)
    coef, res, *_ = np.linalg.lstsq(A, y[sel], rcond=None)
    slope, intercept = coef
    dof = max(1, sel.sum() - 2)
    resid = y[sel] - A @ coef
    cov = np.sum(resid ** 2) / dof * np.linalg.inv(A.T @ A)
    d = slope / (2 * dim)
    return {"D": float(d), "D_cm2_s": float(d * A2_PER_PS_TO_CM2_PER_S), "slope": float(slope),
            "intercept": float(intercept), "t_min": t_min, "t_max": t_max,
            "stderr": float(np.sqrt(cov[0, 0]) / (2 * dim))}


def nernst_einstein(D_A2_ps, n_carriers: int, volume_A3: float, temperature_K: float, charge_e: float = 1.0):
    """Nernst-Einstein conductivity sigma = n q^2 D / (kB T), in S/cm.

    Args:
        D_A2_ps: tracer diffusion coefficient, Å^2/ps.
        n_carriers: number of mobile ions in the cell.
        volume_A3: cell volume, Å^3.
        temperature_K: K.
        charge_e: ion charge in units of e (Li+: 1).
    """
    n = n_carriers / (volume_A3 * 1e-30)  # 1/m^3
    D = D_A2_ps * 1e-20 / 1e-12  # m^2/s
    q = charge_e * ELEMENTARY_CHARGE
    sigma_S_per_m = n * q * q * D / (KB_J_PER_K * temperature_K)
    return sigma_S_per_m / 100.0


def arrhenius(temperatures_K: Sequence[float], D: Sequence[float]):
    """Fit D = D0 exp(-Ea / (kB T)) by least squares on ln D vs 1/T.

    Args:
        temperatures_K: (M,) K, M >= 2; D: (M,) diffusion coefficients (> 0, any unit).

    Returns:
        dict: ``Ea`` (eV), ``D0`` (unit of D), ``Ea_stderr`` (eV; NaN with two points).
    """
    from glassjax.errors import ConfigError
    from glassjax.units import KB

    T = np.asarray(temperatures_K, float)
    D = np.asarray(D, float)
    if T.shape != D.shape or T.size < 2:
        raise ConfigError("Arrhenius fit needs diffusion coefficients at two or more temperatures")
    if np.any(D <= 0) or np.any(T <= 0):
        raise ConfigError(f"Arrhenius fit needs positive D and T (got D={D.tolist()}, T={T.tolist()})")
    x = 1.0 / (KB * T)
    A = np.stack([x, np.ones_like(x)], axis=1)
    coef, *_ = np.linalg.lstsq(A, np.log(D), rcond=None)
    ea = -coef[0]
    if T.size > 2:
        resid = np.log(D) - A @ coef
        cov = np.sum(resid ** 2) / (T.size - 2) * np.linalg.inv(A.T @ A)
        err = float(np.sqrt(cov[0, 0]))
    else:
        err = float("nan")
    return {"Ea": float(ea), "D0": float(np.exp(coef[1])), "Ea_stderr": err}
