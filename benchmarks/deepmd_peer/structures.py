"""Deterministic random oxide-glass-like cells shared by glassjax and its DeePMD-kit peer.

Only numpy and ASE are used, so the same module can be imported from glassjax's environment
and from the separate DeePMD-kit virtual environment (see docs/deepmd_kit_peer.md); both
sides then evaluate *identical* structures from a seed, with nothing to ship.

The cells are random sequential packings at a target mass density with a minimum
interatomic distance (periodic images included, so cells thinner than the distance cut-off
of a model are handled). They are not glasses: they are for timing and for comparing two
implementations of the same potential, not for physics.

Units: Å, g/cm^3.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers

AMU_G = 1.66053906660e-24  # g per atomic mass unit
#: atom counts of the benchmark cells (Li2O.2B2O3 formula units of 13 atoms each)
BENCH_SIZES = (300, 1000, 3000)
#: Li2O.2B2O3 (LB67 in the 2024 compression paper): 2 Li, 4 B, 7 O per formula unit
LB67_FORMULA = {"Li": 2, "B": 4, "O": 7}
LB67_DENSITY = 2.2  # g/cm^3, close to the experimental density of Li2B4O7 glass


def cell_volume_for_density(counts: Dict[str, int], density: float) -> float:
    """Volume (Å^3) that ``counts`` atoms occupy at mass density ``density`` (g/cm^3)."""
    mass_g = sum(atomic_masses[atomic_numbers[s]] * n for s, n in counts.items()) * AMU_G
    return mass_g / density * 1e24


def scaled_cell(shape: np.ndarray, volume: float) -> np.ndarray:
    """Scale a cell ``shape`` (3, 3), rows = vectors, to the given volume (Å^3)."""
    shape = np.asarray(shape, dtype=float)
    v0 = abs(np.linalg.det(shape))
    return shape * (volume / v0) ** (1.0 / 3.0)


def _image_shifts(cell: np.ndarray, rmax: float) -> np.ndarray:
    """Integer lattice shifts (M, 3) that reach every image within ``rmax`` of a cell point."""
    inv = np.linalg.inv(cell)
    # distance between opposite faces of the cell along each reciprocal direction
    heights = 1.0 / np.linalg.norm(inv, axis=0)
    # with wrapped fractional differences |d_i| <= 1/2, the image d + s is at least
    # |d_i + s_i| * h_i away, so shifts beyond rmax/h_i + 1/2 can never come closer than rmax
    n = np.floor(rmax / heights + 0.5).astype(int)
    grid = np.stack(np.meshgrid(*[np.arange(-k, k + 1) for k in n], indexing="ij"), -1)
    return grid.reshape(-1, 3)


def random_packing(
    counts: Dict[str, int],
    cell: np.ndarray,
    seed: int,
    min_dist: float = 1.3,
    max_tries: int = 20000,
) -> Atoms:
    """Random sequential placement of ``counts`` atoms in ``cell`` with a minimum distance.

    Args:
        counts: element -> number of atoms, e.g. ``{"Li": 8, "B": 8, "O": 20}``.
        cell: (3, 3) cell vectors as rows, Å (any triclinic cell).
        seed: numpy random seed; the same seed gives the same structure.
        min_dist: minimum distance between any two atoms, periodic images included, Å.
        max_tries: attempts per atom before giving up.

    Returns:
        A periodic ``ase.Atoms``; species are interleaved in random order.
    """
    cell = np.asarray(cell, dtype=float)
    rng = np.random.default_rng(seed)
    species = np.concatenate([[s] * int(n) for s, n in counts.items()])
    rng.shuffle(species)
    shifts = _image_shifts(cell, min_dist)
    # an atom must also keep min_dist from its own periodic images
    own = shifts[np.any(shifts != 0, axis=1)] @ cell
    if own.size and np.min(np.linalg.norm(own, axis=1)) < min_dist:
        raise ValueError(f"cell too thin for min_dist {min_dist} Å")
    frac = np.zeros((0, 3))
    for k in range(len(species)):
        for _ in range(max_tries):
            f = rng.random(3)
            if len(frac) == 0:
                break
            d = f - frac
            d -= np.round(d)
            # (M, K, 3) candidate-to-atom vectors over the nearby images
            vec = (d[None, :, :] + shifts[:, None, :]) @ cell
            if np.min(np.einsum("mki,mki->mk", vec, vec)) >= min_dist**2:
                break
        else:
            raise RuntimeError(f"could not place atom {k} of {len(species)} (density too high?)")
        frac = np.vstack([frac, f])
    return Atoms(symbols=list(species), scaled_positions=frac, cell=cell, pbc=True)


def random_glass_cell(
    counts: Dict[str, int],
    density: float,
    seed: int,
    shape: Optional[Sequence[Sequence[float]]] = None,
    min_dist: float = 1.3,
) -> Atoms:
    """A random cell of ``counts`` atoms at ``density`` (g/cm^3) with the given cell ``shape``.

    ``shape`` (3, 3) (rows = vectors) fixes the cell's form; it is scaled to the volume set
    by the density. Default: a cube.
    """
    shape = np.eye(3) if shape is None else np.asarray(shape, dtype=float)
    cell = scaled_cell(shape, cell_volume_for_density(counts, density))
    return random_packing(counts, cell, seed=seed, min_dist=min_dist)


def lb67_counts(natoms: int) -> Dict[str, int]:
    """Atom counts of the Li2O.2B2O3 cell closest to ``natoms`` (whole formula units)."""
    nfu = max(1, int(round(natoms / sum(LB67_FORMULA.values()))))
    return {s: n * nfu for s, n in LB67_FORMULA.items()}


def lb67_cell(natoms: int, seed: int = 0, density: float = LB67_DENSITY) -> Atoms:
    """Cubic random LB67-like cell of about ``natoms`` atoms (299 / 1001 / 3003 for 300/1000/3000)."""
    return random_glass_cell(lb67_counts(natoms), density, seed=seed + natoms)


def bench_cells(seed: int = 0) -> Dict[int, Atoms]:
    """The benchmark cells, keyed by nominal size (300, 1000, 3000)."""
    return {n: lb67_cell(n, seed=seed) for n in BENCH_SIZES}


if __name__ == "__main__":
    for n, at in bench_cells().items():
        vol = at.get_volume()
        rho = at.get_masses().sum() * AMU_G / (vol * 1e-24)
        print(n, len(at), at.get_chemical_formula(), f"L={vol ** (1 / 3):.3f} Å", f"rho={rho:.3f} g/cm3")
