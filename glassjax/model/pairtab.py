"""Tabulated pair energies and the DP + ZBL combination, as DeePMD-kit's ``zbl`` model does it.

A DeePMD-kit "zbl" model (input keys ``use_srtab``, ``sw_rmin``, ``sw_rmax``, ``smin_alpha``)
mixes the DeepPot-SE atomic energy with a tabulated short-range pair energy, atom by atom:

    E_i = (1 - w_i) E_i^DP + w_i E_i^pair + b_{t_i},      E_i^pair = 1/2 sum_j V_{t_i t_j}(r_ij)

where ``b`` is the combined model's ``out_bias`` and the weight w_i switches on when atom i
comes close to any neighbour.  Its closeness is a soft minimum of the neighbour distances

    sigma_i = sum_j r_ij exp(-r_ij / alpha) / sum_j exp(-r_ij / alpha)      (alpha = smin_alpha)

and with u = (sigma_i - sw_rmin) / (sw_rmax - sw_rmin)

    w_i = 1 (sigma_i < sw_rmin),  1 - 10 u^3 + 15 u^4 - 6 u^5 (in between),  0 (sigma_i >= sw_rmax).

So above ``sw_rmax`` the model is the DeepPot-SE alone, and at close contact the repulsive
pair table (usually Ziegler-Biersack-Littmark, :mod:`glassjax.model.zbl`) takes over: the
usual remedy for a potential that was never shown two atoms closer than a bond length.

The table (DeePMD-kit's ``PairTab``): a text file whose first column is r (Å, uniform grid
step ``hh`` from ``rmin``) and one energy column (eV) per type pair in upper-triangle order
(00, 01, ..., 0T, 11, 12, ...).  Each column becomes a piecewise cubic (Hermite form with the
slopes of a clamped cubic spline through the grid values); between grid points
``k = floor((r - rmin)/hh)`` and ``k + 1``, with ``u = (r - rmin)/hh - k``::

    V(r) = ((a3 u + a2) u + a1) u + a0,    tab_data[ti, tj, k] = (a3, a2, a1, a0)

Pair energies are zero at r >= rcut and beyond the end of the table.  A table that ends
at zero before rcut is padded with zeros; one that does not reach zero is refused here
(DeePMD-kit would extrapolate it with an extra cubic; extend the table instead).

Shapes below: N atoms, S neighbour slots (``sum(sel)``, per-type sections), T types.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from glassjax.errors import ModelError


@dataclass(frozen=True)
class ZBLConfig:
    """Static settings of the DP + pair-table combination (the table arrays are model constants).

    sw_rmin, sw_rmax: Å, where the pair table takes over completely / starts to take over.
    smin_alpha: Å, softness of the soft-minimum distance sigma_i.
    rmin, hh, nspline: the table grid (first r, step, number of cubic pieces), Å.
    rcut: the pair table's cutoff, Å (DeePMD-kit uses the descriptor's rcut).
    rmax: the last r of the table as given (before zero padding to rcut), Å.
    nrows, ncols: shape of the table itself (``vdata``; kept for .dp export).
    """

    sw_rmin: float
    sw_rmax: float
    smin_alpha: float = 0.1
    rmin: float = 0.0
    hh: float = 0.01
    nspline: int = 0
    rcut: float = 6.0
    rmax: float = 6.0
    nrows: int = 0
    ncols: int = 0

    def __post_init__(self):
        from glassjax.errors import ConfigError

        if not 0.0 <= self.sw_rmin < self.sw_rmax:
            raise ConfigError(f"zbl: need 0 <= sw_rmin < sw_rmax (got sw_rmin={self.sw_rmin}, "
                              f"sw_rmax={self.sw_rmax} Å)")
        if not self.smin_alpha > 0.0:
            raise ConfigError(f"zbl: smin_alpha must be > 0 Å (got {self.smin_alpha})")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ZBLConfig":
        return cls(**{k: (int(v) if k in ("nspline", "nrows", "ncols") else float(v)) for k, v in data.items()})


# -- building the table (numpy, outside jit) ------------------------------------------------

def n_pair_columns(ntypes: int) -> int:
    return ntypes * (ntypes + 1) // 2


def read_table(path, rcut: float) -> np.ndarray:
    """The table ``vdata`` (rows, 1 + T(T+1)/2) of a DeePMD-kit pair-table text file, padded to rcut."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: pair table not found")
    try:
        vdata = np.loadtxt(path, ndmin=2)
    except ValueError as exc:
        raise ModelError(f"{path}: cannot read as a pair table (columns: r, then one energy per "
                         f"type pair): {exc}") from None
    return pad_table(vdata, rcut, str(path))


def pad_table(vdata, rcut: float, where: str = "pair table") -> np.ndarray:
    """Check a table's grid and pad it with zero rows up to ``rcut`` (DeePMD-kit's rule)."""
    vdata = np.asarray(vdata, dtype=np.float64)
    if vdata.ndim != 2 or vdata.shape[0] < 3 or vdata.shape[1] < 2:
        raise ModelError(f"{where}: a pair table needs at least 3 rows of r and pair energies, "
                         f"got shape {vdata.shape}")
    ncol = vdata.shape[1] - 1
    ntypes = int((-1 + np.sqrt(1 + 8 * ncol)) / 2 + 0.1)
    if n_pair_columns(ntypes) != ncol:
        raise ModelError(f"{where}: {ncol} energy columns is not T(T+1)/2 for any number of types T")
    r = vdata[:, 0]
    hh = r[1] - r[0]
    if not (hh > 0 and np.allclose(np.diff(r), hh, rtol=1e-6, atol=1e-9)):
        raise ModelError(f"{where}: the r column must be a uniform increasing grid")
    rmin, rmax = r[0], r[-1]
    rcut_idx = int(np.ceil(rcut / hh - rmin / hh))
    last = vdata[-1, 1:]
    if rcut > rmax:
        if not np.all(last == 0):
            raise ModelError(f"{where}: the table ends at r = {rmax:g} Å with non-zero energies but the "
                             f"cutoff is {rcut:g} Å; extend the table to the cutoff or let it decay to zero")
        n_pad = rcut_idx - (vdata.shape[0] - 1)
        if n_pad > 0:
            pad = np.zeros((n_pad, vdata.shape[1]))
            pad[:, 0] = np.linspace(rmax + hh, rmax + hh * n_pad, n_pad)
            vdata = np.concatenate([vdata, pad], axis=0)
    return vdata


def spline_coefficients(vdata) -> np.ndarray:
    """(T, T, nspline, 4) cubic pieces (a3, a2, a1, a0) of every type pair of table ``vdata``.

    Hermite form on each interval with end values v_k, v_{k+1} and slopes d_k, d_{k+1}
    (per grid step) of the clamped cubic spline through the column:
    a3 = 2 v_k - 2 v_{k+1} + d_k + d_{k+1}, a2 = -3 v_k + 3 v_{k+1} - 2 d_k - d_{k+1},
    a1 = d_k, a0 = v_k.
    """
    from scipy.interpolate import CubicSpline

    vdata = np.asarray(vdata, dtype=np.float64)
    r = vdata[:, 0]
    hh = r[1] - r[0]
    ncol = vdata.shape[1] - 1
    ntypes = int((-1 + np.sqrt(1 + 8 * ncol)) / 2 + 0.1)
    nspline = vdata.shape[0] - 1
    out = np.zeros((ntypes, ntypes, nspline, 4))
    col = 0
    for t0 in range(ntypes):
        for t1 in range(t0, ntypes):
            v = vdata[:, 1 + col]
            d = CubicSpline(r, v, bc_type="clamped")(r, 1) * hh
            c = np.stack([2 * v[:-1] - 2 * v[1:] + d[:-1] + d[1:],
                          -3 * v[:-1] + 3 * v[1:] - 2 * d[:-1] - d[1:],
                          d[:-1], v[:-1]], axis=-1)
            out[t0, t1] = c
            out[t1, t0] = c
            col += 1
    return out


def make_table(vdata, rcut: float, sw_rmin: float, sw_rmax: float, smin_alpha: float = 0.1,
               where: str = "pair table") -> Tuple[ZBLConfig, Dict[str, np.ndarray]]:
    """``(ZBLConfig, constants)`` for table rows ``vdata``: constants ``pairtab_data``
    (T, T, nspline, 4) and ``pairtab_vdata`` (the padded table)."""
    rmax = float(np.asarray(vdata, dtype=np.float64)[-1, 0])
    vdata = pad_table(vdata, rcut, where)
    r = vdata[:, 0]
    data = spline_coefficients(vdata)
    cfg = ZBLConfig(sw_rmin=float(sw_rmin), sw_rmax=float(sw_rmax), smin_alpha=float(smin_alpha),
                    rmin=float(r[0]), hh=float(r[1] - r[0]), nspline=int(vdata.shape[0] - 1),
                    rcut=float(rcut), rmax=rmax, nrows=int(vdata.shape[0]),
                    ncols=int(vdata.shape[1]))
    return cfg, {"pairtab_data": data, "pairtab_vdata": vdata}


# -- evaluation (JAX, jit/grad-safe) ----------------------------------------------------------

def pair_energies(tab_data, cfg: ZBLConfig, ti, tj, r, mask):
    """(N, S) tabulated pair energies V_{ti tj}(r), eV; zero where ``mask`` is False, at
    r >= rcut and beyond the table.

    tab_data (T, T, nspline, 4); ti (N,) centre types; tj (S,) or (N, S) neighbour types;
    r (N, S) Å; mask (N, S) bool.
    """
    uu = (r - cfg.rmin) / cfg.hh
    uu = jnp.where(mask, uu, cfg.nspline + 1.0)
    k = jnp.trunc(uu).astype(jnp.int32)          # DeePMD-kit: int cast, toward zero
    u = uu - k
    ti_b = jnp.broadcast_to(jnp.maximum(ti, 0)[:, None], r.shape)
    tj_b = jnp.broadcast_to(jnp.maximum(tj, 0), r.shape)
    coef = tab_data[ti_b, tj_b, jnp.clip(k, 0, cfg.nspline - 1)]        # (N, S, 4)
    e = ((coef[..., 0] * u + coef[..., 1]) * u + coef[..., 2]) * u + coef[..., 3]
    outside = (k > cfg.nspline) | (r >= cfg.rcut) | (r >= cfg.rmin + cfg.nspline * cfg.hh)
    return jnp.where(mask & ~outside, e, 0.0)


def softmin_distance(r, mask, alpha: float):
    """(N,) soft minimum sigma_i of each row's masked distances r (N, S), Å (0 for no neighbour).

    Computed relative to the row's nearest distance (which cancels exactly) so that
    exp() neither underflows nor loses precision in float32.
    """
    big = jnp.asarray(1e6, r.dtype)
    r_m = jnp.where(mask, r, big)
    r0 = jax.lax.stop_gradient(jnp.min(r_m, axis=-1, keepdims=True))
    x = jnp.where(mask, jnp.exp(-(r_m - r0) / alpha), 0.0)
    den = jnp.sum(x, axis=-1)
    num = jnp.sum(x * jnp.where(mask, r, 0.0), axis=-1)
    has = den > 0
    return jnp.where(has, num / jnp.where(has, den, 1.0), 0.0)


def zbl_weight(sigma, sw_rmin: float, sw_rmax: float):
    """(N,) weight w_i of the pair table: 1 below sw_rmin, 0 from sw_rmax, quintic between;
    0 for an atom without neighbours (sigma = 0)."""
    u = (sigma - sw_rmin) / (sw_rmax - sw_rmin)
    uc = jnp.clip(u, 0.0, 1.0)
    smooth = 1.0 - 10.0 * uc ** 3 + 15.0 * uc ** 4 - 6.0 * uc ** 5
    w = jnp.where(sigma < sw_rmin, 1.0, jnp.where(sigma < sw_rmax, smooth, 0.0))
    return jnp.where(sigma != 0, w, 0.0)


def combine(e_dp, e_pair_atom, w, out_bias_atom):
    """E_i = (1 - w_i) E_i^DP + w_i E_i^pair + b_{t_i} (all (N,), eV)."""
    return (1.0 - w) * e_dp + w * e_pair_atom + out_bias_atom


def add_pair_table(config, variables, vdata, sw_rmin: float, sw_rmax: float, smin_alpha: float = 0.1,
                   where: str = "pair table"):
    """``(config, variables)`` of the DP + pair-table model made from a trained DeepPot-SE.

    The DP part keeps its weights and statistics; its ``out_bias`` becomes the combined
    model's (so wherever every atom's soft-minimum distance is >= ``sw_rmax``, energies and
    forces are exactly those of the original model).  ``vdata``: table rows (see
    :func:`read_table` / :func:`glassjax.model.zbl.zbl_table`); the pair table's cutoff is
    the descriptor's rcut.
    """
    new_cfg, consts = pair_table_config(config, vdata, sw_rmin, sw_rmax, smin_alpha, where)
    new_vars = {"params": variables["params"], "constants": {**variables["constants"], **consts}}
    return new_cfg, new_vars


def pair_table_config(config, vdata, sw_rmin: float, sw_rmax: float, smin_alpha: float = 0.1,
                      where: str = "pair table"):
    """``(config with the pair table, its constants)`` for a DeepPotConfig without one
    (the table's cutoff is the descriptor's rcut; its types must match the type_map)."""
    import dataclasses

    if config.zbl is not None:
        raise ModelError("the model already has a pair table (it is a DP + ZBL model)")
    vdata = np.asarray(vdata, dtype=np.float64)
    ntypes = int((-1 + np.sqrt(1 + 8 * (vdata.shape[1] - 1))) / 2 + 0.1)
    if ntypes != config.descriptor.ntypes:
        raise ModelError(f"{where}: {ntypes} types in the table but {config.descriptor.ntypes} in the model's "
                         f"type_map {list(config.type_map)}")
    zcfg, consts = make_table(vdata, config.rcut, sw_rmin, sw_rmax, smin_alpha, where)
    return dataclasses.replace(config, zbl=zcfg), consts
