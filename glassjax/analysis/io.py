"""Read trajectories and structures for analysis into :class:`glassjax.data.Frames`.

:func:`read_trajectory` is the one entry point the analysis kernels and the
``glassjax analyze`` sub-commands use.  It reads

* anything ASE reads (extxyz, xyz with a ``Lattice``, POSCAR/CONTCAR/XDATCAR, CIF,
  ASE ``.traj``, LAMMPS data and dump files, ...);
* pymatgen ``Structure.as_dict()`` JSON files (``format="pymatgen-json"``, detected from
  the content of a ``.json`` file), without needing pymatgen;
* glassjax's own HDF5 dataset (``glassjax.data.dataset``, when that module is installed);
* glassjax H5MD trajectories (written by the MD engine, ``glassjax.md.trajectory``).

LAMMPS files carry integer atom types, not elements: pass ``species_map={1: 'B', 2: 'O'}``.
LAMMPS data files with a ``Masses`` section are mapped from the masses when no map is
given; dump files without an ``element`` column need the map.

All frames of one file must hold the same atoms in the same order (one system).  Every
problem raises :class:`glassjax.errors.DataError` naming the file (and frame).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Mapping, Optional, Union

import numpy as np

from glassjax.data.frames import Frames, check_element
from glassjax.errors import DataError

IndexLike = Union[str, int, slice]

_LAMMPS_DUMP_FORMATS = ("lammps-dump-text", "lammps-dump-binary")
_LAMMPS_DATA_FORMATS = ("lammps-data",)


def _normalise_species_map(species_map: Optional[Mapping], path) -> Optional[Dict[int, str]]:
    if species_map is None:
        return None
    if isinstance(species_map, str):
        species_map = parse_species_map(species_map)
    out: Dict[int, str] = {}
    for key, value in dict(species_map).items():
        try:
            t = int(key)
        except (TypeError, ValueError):
            raise DataError(path, f"species_map key {key!r} is not an integer LAMMPS type",
                            hint="use e.g. {1: 'B', 2: 'O'}") from None
        if t < 1:
            raise DataError(path, f"species_map type {t} must be >= 1 (LAMMPS types start at 1)")
        out[t] = check_element(value, where=str(path))
    return out


def parse_species_map(text: str) -> Dict[int, str]:
    """Parse ``"1:B,2:O"`` or ``"B,O"`` (types 1, 2, ... in order) into ``{1: 'B', 2: 'O'}``."""
    text = str(text).strip()
    if not text:
        return {}
    items = [t.strip() for t in text.split(",") if t.strip()]
    out: Dict[int, str] = {}
    for k, item in enumerate(items, start=1):
        if ":" in item or "=" in item:
            key, val = item.replace("=", ":").split(":", 1)
            try:
                out[int(key)] = val.strip()
            except ValueError:
                raise DataError("<species map>", f"cannot parse {item!r}",
                                hint="write e.g. '1:B,2:O' or 'B,O'") from None
        else:
            out[k] = item
    return out


def _parse_index(index: IndexLike):
    if isinstance(index, (int, slice)):
        return index
    text = str(index).strip()
    if text == ":":
        return slice(None)
    if ":" in text:
        parts = [int(p) if p.strip() else None for p in text.split(":")]
        return slice(*parts)
    return int(text)


def _looks_like_pymatgen(path: Path) -> bool:
    try:
        with open(path, "r") as fh:
            head = fh.read(4096)
    except (OSError, UnicodeDecodeError):
        return False
    return '"@class"' in head and "Structure" in head or ('"lattice"' in head and '"sites"' in head)


def _read_pymatgen_json(path: Path) -> Frames:
    try:
        doc = json.loads(path.read_text())
        cell = np.asarray(doc["lattice"]["matrix"], dtype=np.float64).reshape(3, 3)
        species, pos = [], []
        for k, site in enumerate(doc["sites"]):
            spec = site["species"]
            if len(spec) != 1 or float(spec[0].get("occu", 1.0)) != 1.0:
                raise DataError(path, f"site {k} is partially occupied or disordered",
                                hint="analysis needs an ordered structure")
            species.append(check_element(spec[0]["element"], where=str(path)))
            if "xyz" in site:
                pos.append(site["xyz"])
            else:
                pos.append(np.asarray(site["abc"], dtype=np.float64) @ cell)
    except DataError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise DataError(path, f"not a pymatgen Structure JSON ({exc.__class__.__name__}: {exc})",
                        hint="expected the output of Structure.as_dict()") from None
    return Frames(species=np.array(species), positions=np.asarray(pos, dtype=np.float64)[None],
                  cells=cell[None], source=[f"{path}@0"], name=path.stem)


def _read_hdf5(path: Path, index, system: Optional[str]) -> Frames:
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a core dependency
        raise DataError(path, "h5py is needed to read HDF5 files") from None
    try:
        with h5py.File(path, "r") as fh:
            is_h5md = "h5md" in fh
    except OSError as exc:
        raise DataError(path, f"not a readable HDF5 file ({exc})") from None
    if is_h5md:
        from glassjax.md.trajectory import read_h5md

        idx = _parse_index(index)
        images = read_h5md(path, idx)
        return _atoms_to_frames(images if isinstance(images, list) else [images], path, path.stem)
    try:
        from glassjax.data.dataset import read_frames  # the data stage's HDF5 dataset
    except ImportError:
        raise DataError(path, "reading glassjax HDF5 datasets needs glassjax.data.dataset, "
                        "which is not available in this installation") from None
    result = read_frames(path, system)
    if isinstance(result, Frames):
        frames = result
    else:
        systems = list(result)
        if len(systems) != 1:
            names = [s.name for s in systems]
            raise DataError(path, f"the dataset holds {len(systems)} systems {names}",
                            hint="choose one with system=NAME (CLI: --system NAME)")
        frames = systems[0]
    idx = _parse_index(index)
    if isinstance(idx, int):
        idx = [idx]
    return frames.select(idx)


def _atoms_to_frames(images, path: Path, name: str) -> Frames:
    if len(images) == 0:
        raise DataError(path, "no frames selected", hint="check the index")
    species0 = np.array(images[0].get_chemical_symbols())
    if species0.size == 0:
        raise DataError(path, "the structure holds no atoms", frame=0)
    positions, cells, energies, forces, virials = [], [], [], [], []
    have_e, have_f, have_v = True, True, True
    for k, atoms in enumerate(images):
        sp = np.array(atoms.get_chemical_symbols())
        if sp.shape != species0.shape or np.any(sp != species0):
            raise DataError(path, "atoms differ from frame 0 (number, order or elements)", frame=k,
                            hint="analysis reads one system per file; split mixed files")
        cell = np.asarray(atoms.get_cell()[:], dtype=np.float64)
        if not np.all(atoms.pbc) or abs(np.linalg.det(cell)) < 1e-8:
            raise DataError(path, "frame has no full 3D periodic cell", frame=k,
                            hint="analysis of glasses needs periodic cells; add a Lattice/cell")
        positions.append(atoms.get_positions())
        cells.append(cell)
        calc = atoms.calc
        e = f = s = None
        if calc is not None:
            res = getattr(calc, "results", {}) or {}
            e = res.get("energy", res.get("free_energy"))
            f = res.get("forces")
            s = res.get("stress")
        have_e &= e is not None
        have_f &= f is not None
        have_v &= s is not None
        energies.append(e)
        forces.append(f)
        if s is not None:
            s = np.asarray(s, dtype=np.float64)
            if s.shape == (6,):
                xx, yy, zz, yz, xz, xy = s
                s = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
            virials.append(-s.reshape(3, 3) * abs(np.linalg.det(cell)))
        else:
            virials.append(None)
    return Frames(
        species=species0,
        positions=np.stack(positions),
        cells=np.stack(cells),
        energy=np.array(energies, dtype=np.float64) if have_e else None,
        forces=np.stack(forces) if have_f else None,
        virial=np.stack(virials) if have_v else None,
        source=[f"{path}@{k}" for k in range(len(images))],
        name=name,
    )


def _dump_has_element_column(path: Path) -> bool:
    try:
        with open(path, "r", errors="replace") as fh:
            for _, line in zip(range(200), fh):
                if line.startswith("ITEM: ATOMS"):
                    return "element" in line.split()
    except OSError:
        return False
    return False


def read_trajectory(path, index: IndexLike = ":", format: Optional[str] = None,
                    species_map: Optional[Mapping] = None, system: Optional[str] = None,
                    atom_style: Optional[str] = None) -> Frames:
    """Read a trajectory or structure file into one :class:`~glassjax.data.Frames`.

    Args:
        path: file to read.
        index: frames to keep: ``":"`` (all), ``"-1"`` (last), ``"0:100:10"``, an int or a slice.
        format: ASE format name (``"extxyz"``, ``"lammps-data"``, ``"lammps-dump-text"``,
            ``"vasp"``, ...), ``"pymatgen-json"`` or ``"glassjax-h5"``; guessed when None.
        species_map: LAMMPS type -> element, e.g. ``{1: 'B', 2: 'O'}`` (or the string
            ``"1:B,2:O"``).  Required for LAMMPS dumps without an ``element`` column.
        system: for a glassjax HDF5 dataset holding several systems, which one.
        atom_style: LAMMPS data ``atom_style`` (default: from the file's ``Atoms # style``
            comment, else ``atomic``).

    Returns:
        Frames with positions (F, N, 3) Å and cells (F, 3, 3) (rows are vectors); energy,
        forces and virial when the file carries them.

    Raises:
        DataError: missing or unreadable file, non-periodic frames, changing atoms, bad map.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    if path.is_dir():
        raise DataError(path, "is a folder, not a trajectory file",
                        hint="for DeePMD npy systems convert them with `glassjax data convert` first")
    smap = _normalise_species_map(species_map, path)
    fmt = format.lower() if format else None
    suffix = path.suffix.lower()

    if fmt in ("glassjax-h5", "h5", "hdf5") or (fmt is None and suffix in (".h5", ".hdf5", ".h5md")):
        return _read_hdf5(path, index, system)
    if fmt == "pymatgen-json" or (fmt is None and suffix == ".json" and _looks_like_pymatgen(path)):
        frames = _read_pymatgen_json(path)
        idx = _parse_index(index)
        return frames.select([idx] if isinstance(idx, int) else idx)

    import ase.io

    if fmt is None:
        fmt = _sniff_lammps(path)
    if fmt is None:
        try:
            from ase.io.formats import filetype

            fmt = filetype(str(path), guess=True)
        except Exception:  # noqa: BLE001 - ASE raises many kinds here
            fmt = None
    kwargs = {}
    if fmt in _LAMMPS_DATA_FORMATS:
        if atom_style is None:
            atom_style = _lammps_data_style(path) or "atomic"
        kwargs["atom_style"] = atom_style
        if smap:
            from ase.data import atomic_numbers

            kwargs["Z_of_type"] = {t: atomic_numbers[e] for t, e in smap.items()}
    elif fmt in _LAMMPS_DUMP_FORMATS:
        if smap:
            ntypes = max(smap)
            missing = [t for t in range(1, ntypes + 1) if t not in smap]
            if missing:
                raise DataError(path, f"species_map lacks LAMMPS types {missing}",
                                hint="give an element for every type 1..max")
            kwargs["specorder"] = [smap[t] for t in range(1, ntypes + 1)]
        elif fmt == "lammps-dump-binary" or not _dump_has_element_column(path):
            raise DataError(path, "LAMMPS dump without an element column needs a species map",
                            hint="pass species_map={1: 'B', 2: 'O'} (CLI: --species-map 1:B,2:O)")
    try:
        ase_index = _parse_index(index)
        images = ase.io.read(str(path), index=ase_index, format=fmt, **kwargs)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - ASE raises many kinds of errors for bad files
        raise DataError(path, f"cannot read as {fmt or 'an ASE format'} ({exc.__class__.__name__}: {exc})",
                        hint="pass format= explicitly (an ASE format name), or check the file") from None
    if not isinstance(images, list):
        images = [images]
    frames = _atoms_to_frames(images, path, name=path.stem)
    return frames


def _lammps_data_style(path: Path) -> Optional[str]:
    try:
        with open(path, "r", errors="replace") as fh:
            for _, line in zip(range(100000), fh):
                if line.strip().startswith("Atoms"):
                    if "#" in line:
                        style = line.split("#", 1)[1].strip().split()[0]
                        return style.split("/")[0]
                    return None
    except OSError:
        return None
    return None


def _sniff_lammps(path: Path) -> Optional[str]:
    """'lammps-data' / 'lammps-dump-text' from the first lines, else None (ASE guesses)."""
    try:
        with open(path, "r", errors="replace") as fh:
            first = fh.readline()
            second = fh.readline()
    except OSError:
        return None
    if first.startswith("ITEM: TIMESTEP"):
        return "lammps-dump-text"
    if "LAMMPS" in first and "data" in first.lower():
        return "lammps-data"
    if path.suffix.lower() in (".data", ".lmp") and not second.strip():
        return "lammps-data"
    if path.suffix.lower() == ".lammpstrj":
        return "lammps-dump-text"
    return None
