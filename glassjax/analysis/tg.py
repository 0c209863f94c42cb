"""Glass transition temperature from the fold of potential energy (or volume) vs temperature.

The 2022 paper: "Tg values were determined as a folding point of potential energy curve"
on heating at 10 K/ps.  Here the curve y(T) is fitted by a continuous two-line
(piecewise-linear, hinge) model with the break point optimised::

    y(T) = a + b T + c max(T - Tg, 0)

glass slope b below Tg, liquid slope b + c above.  For each trial Tg the model is linear in
(a, b, c) and solved by least squares; Tg minimises the residual sum of squares (a grid over
the data range, then a bounded scalar refinement).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def _hinge_fit(T, y, tg):
    A = np.stack([np.ones_like(T), T, np.maximum(T - tg, 0.0)], axis=1)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    r = y - A @ coef
    return coef, float(r @ r)


def fit_tg(temperatures, values, min_points: int = 3, t_range: Optional[Sequence[float]] = None):
    """Two-line fit of y(T); the break point is Tg.

    Args:
        temperatures: (M,) K (any order).
        values: (M,) potential energy (eV or eV/atom) or volume; same length.
        min_points: at least this many points on each side of the break.
        t_range: optional (T_lo, T_hi) K to fit only that part of the curve.

    Returns:
        dict: ``Tg`` (K), ``slope_glass`` and ``slope_liquid`` (unit of y per K),
        ``intercept``, ``rss`` (residual sum of squares), ``n`` points used.
    """
    from scipy.optimize import minimize_scalar

    from glassjax.errors import ConfigError

    T = np.asarray(temperatures, float).reshape(-1)
    y = np.asarray(values, float).reshape(-1)
    if T.shape != y.shape:
        raise ConfigError(f"Tg fit: {T.size} temperatures but {y.size} values")
    keep = np.isfinite(T) & np.isfinite(y)
    if t_range is not None:
        keep &= (T >= t_range[0]) & (T <= t_range[1])
    T, y = T[keep], y[keep]
    order = np.argsort(T)
    T, y = T[order], y[order]
    if T.size < 2 * min_points + 1:
        raise ConfigError(f"Tg fit needs at least {2 * min_points + 1} points (got {T.size}); "
                          "record the potential energy at more temperatures")
    lo, hi = T[min_points - 1], T[-min_points]
    if not hi > lo:
        raise ConfigError("Tg fit: the temperatures do not span a range")
    grid = np.linspace(lo, hi, 200)
    rss = np.array([_hinge_fit(T, y, g)[1] for g in grid])
    k = int(np.argmin(rss))
    a, b = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    res = minimize_scalar(lambda g: _hinge_fit(T, y, g)[1], bounds=(a, b), method="bounded",
                          options={"xatol": 1e-6 * (hi - lo)})
    tg = float(res.x) if res.fun <= rss[k] else float(grid[k])
    coef, r = _hinge_fit(T, y, tg)
    return {"Tg": tg, "slope_glass": float(coef[1]), "slope_liquid": float(coef[1] + coef[2]),
            "intercept": float(coef[0]), "rss": r, "n": int(T.size)}


def fit_tg_runs(runs, **kwargs):
    """Tg of several independent runs (the paper used three): mean and sample std.

    Args:
        runs: sequence of (temperatures, values) pairs.

    Returns:
        dict: ``Tg`` mean, ``Tg_std`` (NaN for one run), ``fits`` (list of :func:`fit_tg` dicts).
    """
    fits = [fit_tg(t, v, **kwargs) for t, v in runs]
    tgs = np.array([f["Tg"] for f in fits])
    return {"Tg": float(tgs.mean()), "Tg_std": float(tgs.std(ddof=1)) if tgs.size > 1 else float("nan"),
            "fits": fits}


def hinge_curve(T, fit):
    """The fitted two-line model evaluated at T (for plotting)."""
    T = np.asarray(T, float)
    c = fit["slope_liquid"] - fit["slope_glass"]
    return fit["intercept"] + fit["slope_glass"] * T + c * np.maximum(T - fit["Tg"], 0.0)
