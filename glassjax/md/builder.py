"""Glass builder: a random periodic configuration for an oxide-glass composition.

The papers start every glass from a random configuration at the experimental density, melt
it with an analytical force field and quench it (2022 paper: "a random configuration was
melted at 3500 K"; 2024 paper: "starting from random configurations with assuming
experimental density").  :func:`build_glass` makes that random start:

1. :func:`parse_composition` reads the composition: ``"(SiO2)10(B2O3)50(Li2O)40"``,
   ``"Li2O-2B2O3"``, ``"Li2O.2B2O3"``, a glass ID of the papers (``"LBS-10-50-40"``,
   ``"LB70"``; ``"LB<x>"`` is x mol% B2O3, the rest Li2O), or a dict of mol amounts.
2. :func:`formula_units` turns mol fractions into whole numbers of oxide formula units whose
   atom count is close to the target, so the stoichiometry (and charge neutrality) is
   exact; among counts within ``atom_tolerance`` of the target it picks the one whose mol
   fractions are closest to the requested ones.
3. The cubic box follows from the total mass and the density (default: the experimental
   density of the papers' Table II, :mod:`glassjax.md.compositions`, when the composition
   is one of those 18 glasses).
4. Atoms are inserted one by one at uniformly random positions (random sequential
   addition), a candidate being rejected when it lies closer than the pair's minimum
   distance to any atom already placed (minimum image, which is exact because the box is
   checked to be wider than twice the largest minimum distance).  Random sequential
   addition jams below glass packing for Li-rich compositions, so when no free spot is
   found in ``max_trials`` candidates the least-overlapping one is kept, and afterwards
   every remaining overlap is removed by pushing each too-close pair apart along its
   separation (repeated sweeps over all pairs found with a periodic k-d tree, like a
   constraint solver), until all pairs respect their minimum distance.

Default minimum distances (Å), chosen below the first peaks of the partial pair
distributions of borate/borosilicate glasses (B-O 1.37-1.47, Si-O 1.61, Li-O 1.9-2.0,
O-O 2.4-2.6 Å) so that a random start has no overlapping atoms yet packs easily at glass
density: O-O 2.0, cation-O 1.6 (Li-O 1.8), cation-cation 2.2 (Li-Li and Li-B 2.0);
1.6 for any other pair.  Pass ``min_distances`` to override any pair.
"""

from __future__ import annotations

import math
import re
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers
from scipy.spatial import cKDTree

from glassjax.errors import ConfigError, SimulationError
from glassjax.md.compositions import TABLE_II, find_glass
from glassjax.units import AMU_PER_A3_TO_G_PER_CM3

CompositionLike = Union[str, Mapping[str, float]]

DEFAULT_MIN_DISTANCES: Dict[Tuple[str, str], float] = {
    ("O", "O"): 2.0,
    ("B", "O"): 1.6,
    ("Si", "O"): 1.6,
    ("Li", "O"): 1.8,
    ("B", "B"): 2.2,
    ("Si", "Si"): 2.2,
    ("B", "Si"): 2.2,
    ("Li", "Li"): 2.0,
    ("B", "Li"): 2.0,
    ("Li", "Si"): 2.2,
}
FALLBACK_MIN_DISTANCE = 1.6

_FORMULA_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*)")


def parse_formula(formula: str) -> Dict[str, int]:
    """Element counts of a simple formula without brackets, e.g. ``"B2O3" -> {"B": 2, "O": 3}``."""
    formula = formula.strip()
    if not formula or _FORMULA_TOKEN.sub("", formula):
        raise ConfigError(f"composition: cannot read the oxide formula {formula!r} "
                          "(write it like SiO2, B2O3, Li2O)")
    counts: Dict[str, int] = {}
    for el, num in _FORMULA_TOKEN.findall(formula):
        if el not in atomic_numbers:
            raise ConfigError(f"composition: unknown element {el!r} in {formula!r}")
        counts[el] = counts.get(el, 0) + (int(num) if num else 1)
    return counts


def parse_composition(composition: CompositionLike) -> Dict[str, float]:
    """Mol fractions of oxides (summing to 1) from any accepted composition form.

    Accepted: ``"(SiO2)10(B2O3)50(Li2O)40"``, ``"Li2O-2B2O3"`` / ``"Li2O.2B2O3"`` /
    ``"Li2O·2B2O3"``, a Table II glass ID (``"LBS-10-50-40"``, ``"LB70"``), ``"LB<x>"``
    (x mol% B2O3 with Li2O), or a mapping ``{"SiO2": 10, "B2O3": 50, "Li2O": 40}``.
    """
    amounts: Dict[str, float] = {}
    if isinstance(composition, Mapping):
        amounts = {str(k): float(v) for k, v in composition.items()}
    elif isinstance(composition, str):
        text = composition.strip().replace(" ", "")
        m_lbs = re.fullmatch(r"LBS-([\d.]+)-([\d.]+)-([\d.]+)", text)
        m_lb = re.fullmatch(r"LB([\d.]+)", text)
        if text in TABLE_II:
            row = TABLE_II[text]
            amounts = {"SiO2": row.sio2, "B2O3": row.b2o3, "Li2O": row.li2o}
        elif m_lbs:
            amounts = {"SiO2": float(m_lbs.group(1)), "B2O3": float(m_lbs.group(2)),
                       "Li2O": float(m_lbs.group(3))}
        elif m_lb:
            x = float(m_lb.group(1))
            if not 0 < x <= 100:
                raise ConfigError(f"composition {composition!r}: LB<x> needs 0 < x <= 100 mol% B2O3")
            amounts = {"B2O3": x, "Li2O": 100.0 - x}
        elif text.startswith("("):
            parts = re.findall(r"\(([A-Za-z0-9]+)\)([\d.]+)", text)
            if not parts or "".join(f"({a}){b}" for a, b in parts) != text:
                raise ConfigError(f"composition {composition!r}: expected a form like (SiO2)10(B2O3)50(Li2O)40")
            for ox, amt in parts:
                amounts[ox] = amounts.get(ox, 0.0) + float(amt)
        else:
            for term in re.split(r"[-.·+]", text):
                m = re.fullmatch(r"([\d.]*)([A-Z][A-Za-z0-9]*)", term)
                if not m:
                    raise ConfigError(f"composition {composition!r}: cannot read the term {term!r} "
                                      "(expected e.g. Li2O-2B2O3)")
                amounts[m.group(2)] = amounts.get(m.group(2), 0.0) + (float(m.group(1)) if m.group(1) else 1.0)
    else:
        raise ConfigError(f"composition must be a string or a mapping, got {type(composition).__name__}")
    for ox, amt in amounts.items():
        parse_formula(ox)
        if not (amt >= 0 and math.isfinite(amt)):
            raise ConfigError(f"composition: amount of {ox} must be a non-negative number, got {amt}")
    amounts = {k: v for k, v in amounts.items() if v > 0}
    total = sum(amounts.values())
    if total <= 0:
        raise ConfigError(f"composition {composition!r} has no oxide with a positive amount")
    return {k: v / total for k, v in amounts.items()}


def formula_units(fractions: Mapping[str, float], n_atoms: int,
                  atom_tolerance: float = 0.05) -> Dict[str, int]:
    """Whole numbers of formula units per oxide for about ``n_atoms`` atoms.

    For each total M of formula units, ``n_k = round(M x_k)`` (at least 1 for every oxide
    present).  Among the M whose atom count lies within ``atom_tolerance`` (relative) of
    ``n_atoms``, the one with the smallest largest mol-fraction error wins (errors are
    compared in steps of 0.1 mol%; ties: closest atom count); when none does, the closest
    atom count wins.
    """
    if n_atoms < 1:
        raise ConfigError(f"n_atoms must be positive, got {n_atoms}")
    oxides = list(fractions)
    x = np.array([fractions[o] for o in oxides], dtype=float)
    x = x / x.sum()
    per_unit = np.array([sum(parse_formula(o).values()) for o in oxides], dtype=float)
    m_mid = n_atoms / float(x @ per_unit)
    best = None
    for m in range(max(1, int(m_mid * 0.7)), int(m_mid * 1.3) + 2):
        n = np.maximum(np.rint(m * x), 1).astype(int)
        atoms = int(n @ per_unit)
        err = float(np.max(np.abs(n / n.sum() - x)))
        rel = abs(atoms - n_atoms) / n_atoms
        # within the tolerance: mol-fraction errors below 0.1 mol% count as equal, then the
        # closest atom count wins
        key = (0 if rel <= atom_tolerance else 1, int(err / 1e-3) if rel <= atom_tolerance else rel,
               abs(atoms - n_atoms))
        if best is None or key < best[0]:
            best = (key, n)
    return {o: int(c) for o, c in zip(oxides, best[1])}


def min_distance(a: str, b: str, table: Optional[Mapping[Tuple[str, str], float]] = None) -> float:
    """Minimum insertion distance (Å) between species ``a`` and ``b`` (order does not matter)."""
    for t in (table or {}, DEFAULT_MIN_DISTANCES):
        for key in ((a, b), (b, a)):
            if key in t:
                return float(t[key])
    return FALLBACK_MIN_DISTANCE


def species_list(units: Mapping[str, int]) -> Sequence[str]:
    """Chemical symbols grouped by element: cations in the order of the oxides, oxygen last."""
    counts: Dict[str, int] = {}
    for ox, n in units.items():
        for el, c in parse_formula(ox).items():
            counts[el] = counts.get(el, 0) + c * n
    order = [el for el in counts if el != "O"] + (["O"] if "O" in counts else [])
    return [el for el in order for _ in range(counts[el])]


def _remove_overlaps(pos, types, dmin, length, max_sweeps, symbols, density):
    """Push apart every pair closer than its minimum distance until none is (periodic cube)."""
    pos = np.mod(pos, length)
    reach = float(dmin.max())
    for _ in range(max_sweeps):
        tree = cKDTree(pos, boxsize=length)
        pairs = tree.query_pairs(reach, output_type="ndarray")
        if pairs.size == 0:
            return pos
        i, j = pairs[:, 0], pairs[:, 1]
        d = pos[j] - pos[i]
        d -= length * np.rint(d / length)
        r = np.linalg.norm(d, axis=1)
        need = dmin[types[i], types[j]]
        bad = r < need
        if not bad.any():
            return pos
        i, j, d, r, need = i[bad], j[bad], d[bad], r[bad], need[bad]
        unit = d / np.maximum(r, 1e-12)[:, None]
        shift = (0.5 * (need - r) * 1.02 + 1e-6)[:, None] * unit
        np.add.at(pos, i, -shift)
        np.add.at(pos, j, shift)
        pos = np.mod(pos, length)
    raise SimulationError(f"build_glass: could not separate all {len(symbols)} atoms to their minimum distances "
                          f"at {density} g/cm^3 in {max_sweeps} sweeps; lower the density or the minimum "
                          "distances")


def build_glass(composition: CompositionLike, n_atoms: Optional[int] = 300, density: Optional[float] = None,
                seed: int = 0, min_distances: Optional[Mapping[Tuple[str, str], float]] = None,
                atom_tolerance: float = 0.05, max_trials: int = 64,
                units: Optional[Mapping[str, int]] = None, max_sweeps: int = 5000) -> Atoms:
    """A random periodic cubic configuration of an oxide glass.

    Args:
        composition: any form accepted by :func:`parse_composition`.
        n_atoms: target atom count (about 300, 1000, 3000); ignored when ``units`` is given.
        density: g/cm^3; default: the experimental density of the matching Table II glass
            (:data:`glassjax.md.compositions.TABLE_II`), else a :class:`ConfigError`.
        seed: random seed; the same arguments and seed give the same configuration.
        min_distances: per-pair overrides of :data:`DEFAULT_MIN_DISTANCES` (Å).
        atom_tolerance: relative deviation from ``n_atoms`` allowed when rounding.
        max_trials: random candidates tried per atom before the least-overlapping one is
            kept (its overlaps are then pushed apart).
        max_sweeps: overlap-removal sweeps before giving up.
        units: explicit formula units per oxide, e.g. ``{"B2O3": 50, "Li2O": 40}``.

    Returns:
        ``ase.Atoms`` (pbc, cubic cell, Å) with ``info`` keys ``composition`` (mol fractions),
        ``formula_units``, ``density`` (g/cm^3) and ``seed``.

    Raises:
        ConfigError: unreadable composition, missing density, or a box too small for the
            minimum distances.
        SimulationError: the overlaps could not be removed (lower the density or the distances).
    """
    fractions = parse_composition(composition)
    if units is None:
        if n_atoms is None:
            raise ConfigError("build_glass: give n_atoms (an atom target) or units (formula units per oxide)")
        units = formula_units(fractions, int(n_atoms), atom_tolerance)
    else:
        units = {str(k): int(v) for k, v in units.items() if int(v) > 0}
        fractions = parse_composition(units)
    if density is None:
        row = find_glass(fractions)
        if row is None:
            raise ConfigError(f"build_glass: no density given and composition {composition!r} is not one of the "
                              "papers' Table II glasses; pass density= in g/cm^3")
        density = row.density
    density = float(density)
    if not (density > 0 and math.isfinite(density)):
        raise ConfigError(f"build_glass: density must be positive (g/cm^3), got {density}")

    symbols = list(species_list(units))
    n = len(symbols)
    masses = np.array([atomic_masses[atomic_numbers[s]] for s in symbols])
    volume = masses.sum() * AMU_PER_A3_TO_G_PER_CM3 / density  # Å^3
    length = volume ** (1.0 / 3.0)

    kinds = sorted(set(symbols))
    kind_index = {k: i for i, k in enumerate(kinds)}
    dmin = np.array([[min_distance(a, b, min_distances) for b in kinds] for a in kinds])
    if length <= 2.0 * dmin.max():
        raise ConfigError(f"build_glass: a {length:.2f} Å box is too small for minimum distances up to "
                          f"{dmin.max():.2f} Å; use more atoms")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    types = np.array([kind_index[s] for s in symbols])
    pos = np.zeros((n, 3))
    done_pos = np.zeros((n, 3))  # positions in insertion order (contiguous: fast distance checks)
    done_type = np.zeros(n, dtype=int)
    for count, i in enumerate(order):
        prev = done_pos[:count]
        d_need2 = dmin[types[i]][done_type[:count]] ** 2  # (P,)
        tried = 0
        best, best_gap = None, -np.inf
        batch = 8
        while tried < max_trials:
            cand = rng.random((batch, 3)) * length  # (B, 3)
            if count == 0:
                best, best_gap = cand[0], 0.0
                break
            d = cand[:, None, :] - prev[None, :, :]
            d -= length * np.rint(d / length)
            gap = np.min(np.einsum("bpk,bpk->bp", d, d) - d_need2[None, :], axis=1)
            k = int(np.argmax(gap))
            if gap[k] > best_gap:
                best, best_gap = cand[k], gap[k]
            if best_gap >= 0:
                break
            tried += batch
            batch = min(256, batch * 2)
        # when no free spot was found, keep the least-overlapping candidate: the overlaps are
        # removed below
        pos[i] = best
        done_pos[count] = best
        done_type[count] = types[i]
    pos = _remove_overlaps(pos, types, dmin, length, max_sweeps, symbols, density)
    atoms = Atoms(symbols=symbols, positions=pos, cell=np.eye(3) * length, pbc=True)
    atoms.info.update({"composition": dict(fractions), "formula_units": dict(units), "density": density,
                       "seed": int(seed)})
    return atoms
