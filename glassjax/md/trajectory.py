"""MD output: H5MD trajectories, a CSV thermo log, and checkpoints for exact restarts.

H5MD (P. de Buyl et al., Comput. Phys. Commun. 185, 1546 (2014); version 1.1 layout, read by
MDAnalysis and OVITO)::

    /h5md                      version = [1, 1]; author/, creator/ (name, version)
    /particles/all/species     (N,) int32 atomic numbers (attribute "symbols": the elements)
    /particles/all/mass        (N,) float, amu
    /particles/all/box         attrs dimension = 3, boundary = periodic x3
    /particles/all/box/edges/{step (F,), time (F,) ps, value (F, 3, 3) Å, rows = cell vectors}
    /particles/all/position/{step, time, value (F, N, 3) Å, unwrapped}
    /particles/all/velocity/{step, time, value (F, N, 3) Å/ps}
    /observables/<name>/{step, time, value}   potential_energy, kinetic_energy (eV),
                               temperature (K), pressure (GPa), stress (3x3 GPa, negative =
                               compressive), volume (Å^3), density (g/cm^3), conserved (eV)

Frames are appended chunk by chunk into resizable datasets and flushed.  Appending cannot be
atomic, so crash safety comes from the checkpoint: :func:`save_checkpoint` writes the whole
MD state (neighbour list included, so a restart is bit-for-bit the uninterrupted run) and the
number of trajectory frames and log rows that belong to it, atomically, *after* the chunk's
output is flushed.  On restart, :class:`H5MDWriter` and :class:`ThermoLog` are opened with
``truncate_to=`` those counts, dropping anything a killed run wrote after its last checkpoint.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence

import h5py
import jax.numpy as jnp
import numpy as np
from ase.data import atomic_numbers

from glassjax.atomic_write import atomic_path
from glassjax.units import PS
from glassjax.errors import DataError
from glassjax.md.integrators import MDState
from glassjax.neighbors import NeighborList, NeighborSpec

OBSERVABLES = ("potential_energy", "kinetic_energy", "conserved", "temperature", "pressure", "stress", "volume",
               "density")
_UNITS = {"potential_energy": "eV", "kinetic_energy": "eV", "conserved": "eV", "temperature": "K",
          "pressure": "GPa", "stress": "GPa", "volume": "Angstrom3", "density": "g cm-3"}


def _element(group: h5py.Group, name: str, shape: tuple, dtype, unit: Optional[str]) -> h5py.Group:
    g = group.create_group(name)
    g.create_dataset("step", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=True)
    g.create_dataset("time", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=True)
    g["time"].attrs["unit"] = "ps"
    v = g.create_dataset("value", shape=(0,) + shape, maxshape=(None,) + shape, dtype=dtype, chunks=True)
    if unit:
        v.attrs["unit"] = unit
    return g


def _append(g: h5py.Group, step, time, value):
    n = g["step"].shape[0]
    f = len(step)
    for key, data in (("step", step), ("time", time), ("value", value)):
        ds = g[key]
        ds.resize(n + f, axis=0)
        ds[n:n + f] = data


class H5MDWriter:
    """Append-only H5MD trajectory writer (see the module docstring for the layout)."""

    def __init__(self, path, symbols: Sequence[str], masses, truncate_to: Optional[int] = None):
        """Create ``path`` (``truncate_to=None``) or reopen it keeping its first ``truncate_to`` frames."""
        self.path = Path(path)
        n = len(symbols)
        self.n_atoms = n
        if truncate_to is None:
            with atomic_path(self.path) as tmp:  # the empty file appears complete or not at all
                with h5py.File(tmp, "w") as f:
                    h5 = f.create_group("h5md")
                    h5.attrs["version"] = np.array([1, 1], dtype=np.int32)
                    h5.create_group("author").attrs["name"] = "glassjax user"
                    cr = h5.create_group("creator")
                    cr.attrs["name"] = "glassjax"
                    cr.attrs["version"] = "0.1.0"
                    part = f.create_group("particles/all")
                    sp = part.create_dataset("species", data=np.array([atomic_numbers[s] for s in symbols], np.int32))
                    sp.attrs["symbols"] = json.dumps(sorted(set(symbols)))
                    part.create_dataset("mass", data=np.asarray(masses, dtype=np.float64)).attrs["unit"] = "amu"
                    box = part.create_group("box")
                    box.attrs["dimension"] = 3
                    box.attrs["boundary"] = np.array([b"periodic"] * 3)
                    _element(box, "edges", (3, 3), np.float64, "Angstrom")
                    _element(part, "position", (n, 3), np.float64, "Angstrom")
                    _element(part, "velocity", (n, 3), np.float64, "Angstrom ps-1")
                    obs = f.create_group("observables")
                    for name in OBSERVABLES:
                        _element(obs, name, (3, 3) if name == "stress" else (), np.float64, _UNITS[name])
        elif not self.path.is_file():
            raise DataError(self.path, "trajectory to resume is missing", hint="start a new run without restart")
        self._file = h5py.File(self.path, "a")
        if truncate_to is not None:
            self.truncate(int(truncate_to))

    @property
    def n_frames(self) -> int:
        return int(self._file["particles/all/position/step"].shape[0])

    def truncate(self, n_frames: int) -> None:
        """Drop frames beyond the first ``n_frames`` (everything written after a checkpoint)."""
        if n_frames > self.n_frames:
            raise DataError(self.path, f"holds {self.n_frames} frames but the checkpoint expects {n_frames}",
                            hint="the trajectory and checkpoint do not belong together")
        groups = ["particles/all/box/edges", "particles/all/position", "particles/all/velocity"]
        groups += [f"observables/{k}" for k in OBSERVABLES]
        for g in groups:
            for key in ("step", "time", "value"):
                self._file[g][key].resize(n_frames, axis=0)
        self._file.flush()

    def append(self, step, time_ps, records: Mapping[str, np.ndarray]) -> None:
        """Append F frames: ``records`` from :func:`glassjax.md.integrators.run_chunk` with ``frames=True``."""
        step = np.asarray(step, dtype=np.int64)
        time_ps = np.asarray(time_ps, dtype=np.float64)
        f = self._file
        _append(f["particles/all/box/edges"], step, time_ps, np.asarray(records["cell"]))
        _append(f["particles/all/position"], step, time_ps, np.asarray(records["positions"]))
        _append(f["particles/all/velocity"], step, time_ps, np.asarray(records["velocities"]))
        for name in OBSERVABLES:
            _append(f[f"observables/{name}"], step, time_ps, np.asarray(records[name]))
        f.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ThermoLog:
    """CSV thermo log: step, time_ps, T_K, P_GPa, stress_{xx,yy,zz,yz,xz,xy}_GPa, PE_eV, KE_eV,
    conserved_eV, volume_A3, density_g_cm3."""

    COLUMNS = ["step", "time_ps", "T_K", "P_GPa", "sxx_GPa", "syy_GPa", "szz_GPa", "syz_GPa", "sxz_GPa",
               "sxy_GPa", "PE_eV", "KE_eV", "conserved_eV", "volume_A3", "density_g_cm3"]

    def __init__(self, path, truncate_to: Optional[int] = None):
        self.path = Path(path)
        self.n_rows = 0 if truncate_to is None else int(truncate_to)
        if truncate_to is None:
            with atomic_path(self.path) as tmp:
                tmp.write_text(",".join(self.COLUMNS) + "\n")
        else:
            if not self.path.is_file():
                raise DataError(self.path, "thermo log to resume is missing")
            lines = self.path.read_text().splitlines(keepends=True)
            if len(lines) - 1 < truncate_to:
                raise DataError(self.path, f"holds {len(lines) - 1} rows but the checkpoint expects {truncate_to}")
            with atomic_path(self.path) as tmp:
                tmp.write_text("".join(lines[:truncate_to + 1]))
        self._fh = open(self.path, "a", newline="")
        self._w = csv.writer(self._fh)

    def append(self, step, time_ps, records: Mapping[str, np.ndarray]) -> None:
        s = np.asarray(records["stress"])
        for k in range(len(step)):
            row = [int(step[k]), f"{time_ps[k]:.6f}", f"{records['temperature'][k]:.6f}",
                   f"{records['pressure'][k]:.8f}"]
            row += [f"{s[k][a, b]:.8f}" for a, b in ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))]
            row += [f"{records[key][k]:.10f}" for key in ("potential_energy", "kinetic_energy", "conserved")]
            row += [f"{records['volume'][k]:.6f}", f"{records['density'][k]:.8f}"]
            self._w.writerow(row)
        self.n_rows += len(step)
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def save_checkpoint(path, state: MDState, spec: NeighborSpec, steps_done: int, frames: int = 0, rows: int = 0,
                    extra: Optional[Dict] = None) -> None:
    """Write the complete state atomically (``.npz``); ``frames``/``rows``: output written so far."""
    # optional fields (atom_mask) are stored only when set
    arrays = {f"state.{k}": np.asarray(v) for k, v in state._asdict().items() if k != "nl" and v is not None}
    arrays.update({f"nl.{k}": np.asarray(v) for k, v in state.nl._asdict().items()})
    meta = {"spec": {"cutoff": spec.cutoff, "skin": spec.skin, "capacity": spec.capacity,
                     "images": list(spec.images), "block": spec.block},
            "steps_done": int(steps_done), "frames": int(frames), "rows": int(rows), "extra": extra or {}}
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def load_checkpoint(path):
    """Read a checkpoint: returns ``(state, spec, meta)`` with meta keys steps_done, frames, rows, extra."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "checkpoint not found")
    try:
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            nl = NeighborList(**{k: jnp.asarray(z[f"nl.{k}"]) for k in NeighborList._fields})
            fields = {k: jnp.asarray(z[f"state.{k}"]) for k in MDState._fields
                      if k != "nl" and (k not in MDState._field_defaults or f"state.{k}" in z.files)}
    except (KeyError, ValueError, OSError) as exc:
        raise DataError(path, f"not a glassjax checkpoint ({exc})") from None
    sp = meta["spec"]
    spec = NeighborSpec(sp["cutoff"], sp["skin"], sp["capacity"], tuple(sp["images"]), sp["block"])
    return MDState(nl=nl, **fields), spec, meta


def read_h5md(path, index=slice(None)):
    """Frames of a glassjax H5MD trajectory as a list of ``ase.Atoms`` (positions, cell, pbc,
    momenta from the velocities; ``info``: step, time_ps and the scalar observables)."""
    from ase import Atoms

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(path, f"cannot open as HDF5 ({exc})") from None
    with f:
        try:
            part = f["particles/all"]
            numbers = part["species"][:]
            masses = part["mass"][:]
            pos = part["position/value"][index]
            vel = part["velocity/value"][index]
            cells = part["box/edges/value"][index]
            steps = part["position/step"][index]
            times = part["position/time"][index]
            obs = {k: f[f"observables/{k}/value"][index] for k in OBSERVABLES if k != "stress"}
        except KeyError as exc:
            raise DataError(path, f"not a glassjax H5MD trajectory (missing {exc})") from None
    pos, vel, cells, steps, times = (np.atleast_1d(a) for a in (pos, vel, cells, steps, times))
    if pos.ndim == 2:
        pos, vel, cells = pos[None], vel[None], cells[None]
        obs = {k: np.atleast_1d(v) for k, v in obs.items()}
    frames = []
    for i in range(pos.shape[0]):
        a = Atoms(numbers=numbers, positions=pos[i], cell=cells[i], pbc=True, masses=masses)
        a.set_momenta(vel[i] * masses[:, None] / PS)  # Å/ps -> amu Å / t_ase
        a.info.update({"step": int(steps[i]), "time_ps": float(times[i])})
        a.info.update({k: float(v[i]) for k, v in obs.items()})
        frames.append(a)
    return frames


def export_extxyz(h5md_path, out_path, index=slice(None)) -> int:
    """Write the frames of an H5MD trajectory to an extended-XYZ file (atomically); returns the count."""
    import ase.io

    frames = read_h5md(h5md_path, index)
    with atomic_path(out_path, suffix=".extxyz") as tmp:
        ase.io.write(tmp, frames, format="extxyz")
    return len(frames)
