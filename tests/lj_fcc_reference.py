"""Independent numpy reference for the Lennard-Jones fcc crystal (argon parameters).

Shared by the deformation-loop tests and the elastic-tensor tests: a shifted-force LJ pair
energy, the lattice-sum energy per atom of the strained crystal, and its cubic elastic
constants (C11, C12, C44) by central second differences of the energy density, all numpy,
independent of glassjax.
"""

import numpy as np

from glassjax import units

EPS, SIG = 0.0104, 3.40  # argon, eV and Å
RC = 2.5 * SIG
A0 = 5.2972  # 0 K zero-pressure lattice constant of this shifted-force LJ (|P| < 1e-5 GPa)


def lj_numpy(r):
    """Shifted-force LJ pair energy, eV."""
    def u(x):
        return 4 * EPS * ((SIG / x) ** 12 - (SIG / x) ** 6)
    du_c = 4 * EPS * (-12 * SIG ** 12 / RC ** 13 + 6 * SIG ** 6 / RC ** 7)
    return np.where(r < RC, u(r) - u(RC) - (r - RC) * du_c, 0.0)


def lattice_energy(strain):
    """Energy per atom (eV) of the fcc lattice deformed by (1 + strain): lattice sum."""
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    m = int(np.ceil(RC / A0)) + 2
    g = np.arange(-m, m + 1)
    cells = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    pts = ((cells[:, None, :] + basis[None]).reshape(-1, 3) * A0) @ (np.eye(3) + strain)
    r = np.linalg.norm(pts, axis=1)
    return 0.5 * np.sum(lj_numpy(r[r > 1e-9]))


def numpy_elastic_constants(h=1e-4):
    """(C11, C12, C44) in GPa by central second differences of the energy density."""
    v = A0 ** 3 / 4

    def e(exx=0.0, eyy=0.0, gxy=0.0):
        s = np.zeros((3, 3))
        s[0, 0], s[1, 1] = exx, eyy
        s[0, 1] = s[1, 0] = gxy / 2
        return lattice_energy(s)

    e0 = e()
    c11 = (e(h) - 2 * e0 + e(-h)) / h ** 2
    c12 = (e(h, h) - e(h, -h) - e(-h, h) + e(-h, -h)) / (4 * h * h)
    c44 = (e(gxy=h) - 2 * e0 + e(gxy=-h)) / h ** 2
    return np.array([c11, c12, c44]) / v * units.EV_PER_A3_TO_GPA
