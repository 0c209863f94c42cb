"""The Ziegler-Biersack-Littmark (ZBL) universal screened nuclear repulsion, as a pair table.

    V(r) = (Z_i Z_j e^2 / (4 pi eps0 r)) phi(r / a),     a = 0.46850 Å / (Z_i^0.23 + Z_j^0.23)
    phi(x) = 0.18175 e^{-3.19980 x} + 0.50986 e^{-0.94229 x} + 0.28022 e^{-0.40290 x}
             + 0.02817 e^{-0.20162 x}

(J. F. Ziegler, J. P. Biersack, U. Littmark, *The Stopping and Range of Ions in Solids*,
1985; a = 0.8854 a_0 / (Z_i^0.23 + Z_j^0.23)).  e^2/(4 pi eps0) = 14.399645 eV Å.

ZBL describes two nuclei pushed far inside their electron shells (r below about one Å for
Li-B-Si-O); at bond lengths it is not a model of anything.  :func:`zbl_table` therefore
switches it off smoothly between ``r_on`` and ``r_off`` (1 - 10u^3 + 15u^4 - 6u^5), and the
DP + ZBL model (:mod:`glassjax.model.pairtab`) only gives it weight when an atom is closer
to a neighbour than ``sw_rmax``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

COULOMB = 14.399645  # e^2 / (4 pi eps0), eV Å
SCREENING_LENGTH = 0.46850  # 0.8854 a_0, Å
PHI_C = (0.18175, 0.50986, 0.28022, 0.02817)
PHI_D = (3.19980, 0.94229, 0.40290, 0.20162)


def zbl_energy(r, z1: int, z2: int):
    """ZBL pair energy (eV) of nuclear charges z1, z2 at distance r (Å, numpy array or float)."""
    r = np.asarray(r, dtype=np.float64)
    a = SCREENING_LENGTH / (z1 ** 0.23 + z2 ** 0.23)
    x = r / a
    phi = sum(c * np.exp(-d * x) for c, d in zip(PHI_C, PHI_D))
    return COULOMB * z1 * z2 / r * phi


def smoothstep_off(r, r_on: float, r_off: float):
    """1 below r_on, 0 above r_off, 1 - 10u^3 + 15u^4 - 6u^5 (u = (r - r_on)/(r_off - r_on)) between."""
    u = np.clip((np.asarray(r, dtype=np.float64) - r_on) / (r_off - r_on), 0.0, 1.0)
    return 1.0 - 10.0 * u ** 3 + 15.0 * u ** 4 - 6.0 * u ** 5


def zbl_table(type_map: Sequence[str], rmin: float = 0.05, rmax: float = 3.0, hh: float = 0.01,
              r_on: float = 1.5, r_off: float = 2.5) -> np.ndarray:
    """DeePMD-kit pair-table rows (r, V_00, V_01, ..., V_TT) of the switched ZBL repulsion.

    r from ``rmin`` to ``rmax`` in steps of ``hh`` (Å); V = ZBL(r) x switch(r_on -> r_off), so
    the table is exactly zero from ``r_off`` on (it needs r_off <= rmax).
    """
    from ase.data import atomic_numbers

    from glassjax.errors import ConfigError

    if not 0 < rmin < r_on < r_off <= rmax:
        raise ConfigError(f"zbl table: need 0 < rmin < r_on < r_off <= rmax (got rmin={rmin}, r_on={r_on}, "
                          f"r_off={r_off}, rmax={rmax} Å)")
    try:
        z = [atomic_numbers[s] for s in type_map]
    except KeyError as exc:
        raise ConfigError(f"zbl table: {exc.args[0]!r} in type_map is not an element") from None
    n = int(round((rmax - rmin) / hh))
    r = np.round(rmin + hh * np.arange(n + 1), 10)
    cols = [r]
    sw = smoothstep_off(r, r_on, r_off)
    for i in range(len(z)):
        for j in range(i, len(z)):
            cols.append(zbl_energy(r, z[i], z[j]) * sw)
    return np.stack(cols, axis=1)


def write_table(path, rows: np.ndarray, type_map: Sequence[str]) -> None:
    """Write table rows in DeePMD-kit's text format (atomically), with a header naming the columns."""
    from glassjax.atomic_write import atomic_path

    names = ["r"] + [f"{type_map[i]}-{type_map[j]}" for i in range(len(type_map))
                     for j in range(i, len(type_map))]
    with atomic_path(path, suffix=".txt") as tmp:
        np.savetxt(tmp, rows, fmt="%.12e",
                   header="ZBL pair table (glassjax.model.zbl), r in Å, energies in eV\n" + " ".join(names))
