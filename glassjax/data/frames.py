"""The in-memory container every reader produces and every stage consumes.

A :class:`Frames` object holds *one system*: a fixed list of atoms (species do not change
between frames) observed in ``nframes`` configurations, with optional DFT labels.

Conventions (DeePMD-kit's, stated once here):

* lengths in Å, energies in eV, forces in eV/Å;
* ``cells[f]`` has the cell *vectors as rows* (ASE and DeePMD ``box.npy`` convention);
* ``virial`` is extensive, in eV, ``virial = -stress * volume`` where ``stress`` has ASE's
  sign (negative = compressive), so a compressed system has a positive virial trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np

from ase.data import atomic_numbers, chemical_symbols


def check_element(symbol: str, where: str = "") -> str:
    """Return ``symbol`` normalised ('li' -> 'Li'), or raise for an unknown element."""
    from glassjax.errors import DataError

    s = str(symbol).strip()
    norm = s[:1].upper() + s[1:].lower()
    if norm not in atomic_numbers or norm == "X":
        raise DataError(where or "<input>", f"unknown element {symbol!r}",
                        hint="type maps must hold element symbols such as 'Li', 'B', 'O', 'Si'")
    return norm


@dataclass
class Frames:
    """Frames of one system (fixed atoms, varying positions and cell).

    Attributes (shapes with F = frames, N = atoms):
        species:   (N,) element symbols, e.g. ``['B', 'O', ...]``.
        positions: (F, N, 3) Cartesian positions, Å.
        cells:     (F, 3, 3) cell vectors as rows, Å.
        energy:    (F,) total energy, eV, or None.
        forces:    (F, N, 3) eV/Å, or None.
        virial:    (F, 3, 3) extensive virial, eV (DeePMD sign), or None.
        source:    per-frame provenance strings, e.g. ``"path/OUTCAR@3"``.
        pbc:       periodic boundary flags (glassjax systems are periodic).
        name:      short system name used as the HDF5 group name.
        meta:      free-form provenance, e.g. ``{"reader": "deepmd-npy", "files": [...]}``.
    """

    species: np.ndarray
    positions: np.ndarray
    cells: np.ndarray
    energy: Optional[np.ndarray] = None
    forces: Optional[np.ndarray] = None
    virial: Optional[np.ndarray] = None
    source: List[str] = field(default_factory=list)
    pbc: tuple = (True, True, True)
    name: str = "system"
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.species = np.asarray(self.species, dtype=str)
        self.positions = np.asarray(self.positions, dtype=np.float64)
        self.cells = np.asarray(self.cells, dtype=np.float64)
        if self.energy is not None:
            self.energy = np.asarray(self.energy, dtype=np.float64).reshape(-1)
        if self.forces is not None:
            self.forces = np.asarray(self.forces, dtype=np.float64)
        if self.virial is not None:
            self.virial = np.asarray(self.virial, dtype=np.float64).reshape(-1, 3, 3)
        if not self.source:
            self.source = [f"{self.name}@{i}" for i in range(self.nframes)]
        self.source = [str(s) for s in self.source]

    # ---------------------------------------------------------------- properties
    @property
    def nframes(self) -> int:
        return int(self.positions.shape[0])

    @property
    def natoms(self) -> int:
        return int(self.species.shape[0])

    @property
    def elements(self) -> List[str]:
        """Distinct elements, sorted by atomic number."""
        return sorted(set(self.species.tolist()), key=lambda s: atomic_numbers[s])

    @property
    def numbers(self) -> np.ndarray:
        """(N,) atomic numbers."""
        return np.array([atomic_numbers[s] for s in self.species], dtype=np.int64)

    @property
    def formula(self) -> str:
        counts = {e: int(np.sum(self.species == e)) for e in self.elements}
        return "".join(f"{e}{n}" for e, n in counts.items())

    def types(self, type_map: Sequence[str]) -> np.ndarray:
        """(N,) integer types of the atoms in the given element order ``type_map``."""
        from glassjax.errors import DataError

        index = {e: i for i, e in enumerate(type_map)}
        missing = sorted(set(self.species.tolist()) - set(index))
        if missing:
            raise DataError(self.name, f"elements {missing} are not in the type map {list(type_map)}")
        return np.array([index[s] for s in self.species], dtype=np.int32)

    def volumes(self) -> np.ndarray:
        """(F,) cell volumes, Å^3."""
        return np.abs(np.linalg.det(self.cells))

    # ---------------------------------------------------------------- helpers
    def select(self, frames) -> "Frames":
        """A new Frames with only the given frame indices (slice, list or mask)."""
        idx = np.arange(self.nframes)[frames]
        pick = lambda a: None if a is None else a[idx]  # noqa: E731
        return Frames(
            species=self.species.copy(), positions=self.positions[idx], cells=self.cells[idx],
            energy=pick(self.energy), forces=pick(self.forces), virial=pick(self.virial),
            source=[self.source[i] for i in idx], pbc=self.pbc, name=self.name,
            meta=dict(self.meta),
        )

    @property
    def labels(self) -> List[str]:
        """Names of the labels present, in the order energy, forces, virial."""
        return [k for k in ("energy", "forces", "virial") if getattr(self, k) is not None]

    def validate(self, where: str = "") -> "Frames":
        """Check shapes, elements and finiteness; raise :class:`DataError` naming the frame.

        Returns ``self`` so readers can write ``return Frames(...).validate(path)``.
        """
        from glassjax.errors import DataError

        where = where or self.name
        n, f = self.natoms, self.nframes
        if self.species.ndim != 1 or n == 0:
            raise DataError(where, f"a system needs at least one atom (species has shape {self.species.shape})")
        for s in set(self.species.tolist()):
            check_element(s, where)
        if f == 0:
            raise DataError(where, "holds no frames")
        expect = {"positions": (f, n, 3), "cells": (f, 3, 3), "energy": (f,),
                  "forces": (f, n, 3), "virial": (f, 3, 3)}
        for key, shape in expect.items():
            arr = getattr(self, key)
            if arr is None:
                continue
            if arr.shape != shape:
                raise DataError(where, f"{key} has shape {arr.shape}, expected {shape} "
                                       f"({f} frames of {n} atoms)")
            bad = ~np.isfinite(arr.reshape(f, -1)).all(axis=1)
            if bad.any():
                i = int(np.argmax(bad))
                raise DataError(where, f"{key} contains NaN or inf", frame=i,
                                hint=f"source {self.source[i] if i < len(self.source) else '?'}; "
                                     "remove or fix that frame")
        if len(self.source) != f:
            raise DataError(where, f"source lists {len(self.source)} entries for {f} frames")
        vol = np.abs(np.linalg.det(self.cells))
        if (vol < 1e-6).any():
            i = int(np.argmax(vol < 1e-6))
            raise DataError(where, "has no periodic cell (zero cell volume)", frame=i,
                            hint="glassjax datasets hold periodic systems; give the frame a cell")
        return self

    def to_atoms(self, frame: int):
        """The frame as an :class:`ase.Atoms` with a single-point calculator holding labels."""
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator

        atoms = Atoms(symbols=list(self.species), positions=self.positions[frame],
                      cell=self.cells[frame], pbc=self.pbc)
        results = {}
        if self.energy is not None:
            results["energy"] = float(self.energy[frame])
        if self.forces is not None:
            results["forces"] = self.forces[frame]
        if self.virial is not None:
            vol = abs(np.linalg.det(self.cells[frame]))
            stress = -self.virial[frame] / vol
            results["stress"] = stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        return atoms


def symbols_from_numbers(numbers) -> np.ndarray:
    return np.array([chemical_symbols[int(z)] for z in numbers])
