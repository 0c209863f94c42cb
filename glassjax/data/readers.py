"""Readers: DeePMD-kit systems (npy and raw), VASP OUTCAR / vasprun.xml, and any ASE format.

Every reader returns a list of :class:`~glassjax.data.frames.Frames`, one per *system*
(a fixed list of atoms).  Species are always element symbols, so systems written with
different DeePMD type maps (``B O`` and ``O B``) describe their atoms the same way.

Conventions (see ``docs/data.md``):

* lengths Å, energies eV, forces eV/Å; cells have the cell vectors as rows;
* the virial is extensive, in eV, ``virial = -stress * volume`` with ASE's stress sign
  (DeePMD-kit's convention: positive trace = compressed);
* VASP energies are the free energy ``TOTEN`` (ASE's ``free_energy``), the energy whose
  derivatives are VASP's forces and stress, and the one dpdata puts into DeePMD systems;
* every input array is converted to float64.

Bad input raises :class:`glassjax.errors.DataError` naming the file (and the frame) and
what is wrong.  Harmless surprises (label files glassjax does not use, a VASP run that
stopped between two ionic steps) are reported as :class:`DataNotice` warnings.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from glassjax.data.frames import Frames, check_element
from glassjax.errors import DataError

__all__ = ["DataNotice", "read_deepmd", "read_vasp", "read_ase", "read_any", "find_inputs"]


class DataNotice(UserWarning):
    """Something in the input was skipped or tolerated; the data that were read are valid."""


def _notice(msg: str) -> None:
    warnings.warn(msg, DataNotice, stacklevel=3)


# DeePMD-kit label files glassjax reads; everything else in a set is ignored with a notice.
_DEEPMD_USED = ("coord", "box", "energy", "force", "virial")
_GENERIC_DIR_NAMES = {"train", "training", "val", "valid", "validation", "test", "npy", "raw",
                      "data", "dpdata", "set", "deepmd", "system"}


def _system_name(path: Path) -> str:
    """A short, readable name for a system found at ``path`` (a folder or a file)."""
    path = Path(os.path.abspath(path))
    parts = [path.stem if path.is_file() else path.name]
    stem = parts[0].lower()
    generic = (stem in _GENERIC_DIR_NAMES or re.fullmatch(r"data_?\d*", stem) is not None
               or stem in ("outcar", "vasprun"))
    if generic and path.parent.name:
        parts.insert(0, path.parent.name)
        if parts[0].lower() in _GENERIC_DIR_NAMES and path.parent.parent.name:
            parts.insert(0, path.parent.parent.name)
    name = "_".join(parts)
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", name).strip("_") or "system"


def _formula(species) -> str:
    from ase.data import atomic_numbers

    els = sorted(set(species), key=lambda e: atomic_numbers.get(e, 0))
    return "".join(f"{e}{list(species).count(e)}" for e in els)


def _first_bad_frame(arr: np.ndarray) -> Optional[int]:
    flat = arr.reshape(arr.shape[0], -1)
    bad = ~np.isfinite(flat).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else None


# ============================================================================ DeePMD-kit
def _read_type_map(path: Path, type_map: Optional[Sequence[str]]) -> Tuple[List[str], Path]:
    tm_file = path / "type_map.raw"
    if tm_file.is_file():
        names = tm_file.read_text(errors="replace").split()
        if not names:
            raise DataError(tm_file, "is empty", hint="list the element of each type, one per line")
        where = tm_file
    elif type_map is not None:
        names, where = list(type_map), path
    else:
        raise DataError(tm_file, "is missing, so the integer types in type.raw cannot be "
                                 "turned into elements",
                        hint="write the element symbols in type order (e.g. 'B' then 'O'), one "
                             "per line, into type_map.raw, or pass type_map=['B', 'O'] "
                             "(CLI: --type-map B,O)")
    return [check_element(n, str(where)) for n in names], where


def _read_types(path: Path) -> np.ndarray:
    f = path / "type.raw"
    try:
        types = np.loadtxt(f, dtype=np.int64, ndmin=1)
    except (ValueError, OSError) as exc:
        raise DataError(f, f"is not a list of integer atom types ({exc})") from None
    types = types.reshape(-1)
    if types.size == 0:
        raise DataError(f, "lists no atoms")
    if types.min() < 0:
        raise DataError(f, f"holds a negative atom type ({types.min()})")
    return types


def _load_array(f: Path, raw: bool) -> np.ndarray:
    try:
        if raw:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # numpy's "empty input file"
                arr = np.loadtxt(f, dtype=np.float64, ndmin=2)
        else:
            arr = np.load(f, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        kind = "text (.raw)" if raw else ".npy"
        raise DataError(f, f"is not a readable {kind} array file ({exc})") from None
    if not np.issubdtype(arr.dtype, np.number):
        raise DataError(f, f"holds {arr.dtype} data, not numbers")
    return np.asarray(arr, dtype=np.float64)


def _read_deepmd_set(set_dir: Path, natoms: int, raw: bool):
    """Read one set (a ``set.*`` folder, or the system folder itself for raw format)."""
    ext = ".raw" if raw else ".npy"
    files = {p.name[: -len(ext)]: p for p in sorted(set_dir.glob("*" + ext))
             if p.is_file() and p.name not in ("type.raw", "type_map.raw")}
    if not files:
        raise DataError(set_dir, f"is an empty set: it holds no {ext} files",
                        hint="remove the folder or fill it with box/coord/energy/force files")
    if "real_atom_types" in files:
        raise DataError(files["real_atom_types"], "mixed-type DeePMD systems (per-frame atom "
                        "types) are not supported", hint="convert them to one system per composition")
    for key in ("coord", "box"):
        if key not in files:
            raise DataError(set_dir / (key + ext), "is missing", hint="every set needs coord and box")
    arrays: Dict[str, np.ndarray] = {}
    per_frame = {"coord": 3 * natoms, "box": 9, "energy": 1, "force": 3 * natoms, "virial": 9}
    nframes = None
    for key in _DEEPMD_USED:
        if key not in files:
            continue
        f = files[key]
        arr = _load_array(f, raw)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.size == 0:
            raise DataError(f, "is an empty set: it holds 0 frames")
        if key == "energy":
            arr = arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr.reshape(-1, 1)
            if raw and arr.shape[0] == 1 and arr.shape[1] > 1:
                arr = arr.reshape(-1, 1)  # one energy per line, or all on one line
        else:
            arr = arr.reshape(arr.shape[0], -1)
        if arr.shape[1] != per_frame[key]:
            what = f"type.raw lists {natoms} atoms, so {per_frame[key]} are expected" \
                if key in ("coord", "force") else f"{per_frame[key]} are expected"
            raise DataError(f, f"holds {arr.shape[1]} values per frame, but {what}",
                            hint="the files of this set do not belong together")
        if nframes is None:
            nframes, first = arr.shape[0], f
        elif arr.shape[0] != nframes:
            raise DataError(f, f"holds {arr.shape[0]} frames but {first.name} holds {nframes}",
                            hint="all files of a set must have one row per frame")
        bad = _first_bad_frame(arr)
        if bad is not None:
            raise DataError(f, f"{key} contains NaN or inf", frame=bad,
                            hint="remove that frame or fix the label")
        arrays[key] = arr
    extra = sorted(k + ext for k in files if k not in _DEEPMD_USED)
    return arrays, nframes, extra


def read_deepmd(path, type_map: Optional[Sequence[str]] = None) -> List[Frames]:
    """Read one DeePMD-kit system folder (npy ``set.*`` folders or raw text format).

    Args:
        path: folder holding ``type.raw``, ``type_map.raw`` and either ``set.*/`` folders of
            ``box.npy, coord.npy[, energy.npy, force.npy, virial.npy]`` or the same arrays as
            ``*.raw`` text files.  float32 and float64 inputs are both read as float64.
        type_map: element symbols in type order, used only when ``type_map.raw`` is absent.

    Returns:
        A one-element list: the system's frames, sets concatenated in sorted order.
        Shapes: positions (F, N, 3) Å, cells (F, 3, 3) rows = vectors, energy (F,) eV,
        forces (F, N, 3) eV/Å, virial (F, 3, 3) eV (extensive, DeePMD sign), as present.

    Label files glassjax does not use (e.g. ``atomic_dipole.npy``, ``fparam.npy``) are
    ignored with one :class:`DataNotice` per system.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(path, "is not a DeePMD-kit system folder (expected a folder holding type.raw)")
    if not (path / "type.raw").is_file():
        raise DataError(path / "type.raw", "is missing: this is not a DeePMD-kit system folder")
    if (path / "nopbc").exists():
        raise DataError(path / "nopbc", "marks a non-periodic system; glassjax datasets hold "
                                        "periodic systems only")
    types = _read_types(path)
    elements, tm_where = _read_type_map(path, type_map)
    if types.max() >= len(elements):
        raise DataError(path / "type.raw", f"uses atom type {int(types.max())}, but the type map "
                        f"({tm_where}) lists only {len(elements)} elements {elements}")
    species = np.array(elements)[types]
    natoms = types.size

    set_dirs = sorted(p for p in path.glob("set.*") if p.is_dir())
    raw = not set_dirs
    if raw and not (path / "coord.raw").is_file():
        raise DataError(path, "holds neither set.* folders (npy format) nor coord.raw (raw format)",
                        hint="is this an empty DeePMD-kit system?")
    chunks, sources, extras = [], [], set()
    first_labels, first_dir = None, None
    for set_dir in (set_dirs or [path]):
        arrays, nframes, extra = _read_deepmd_set(set_dir, natoms, raw)
        extras.update(extra)
        labels = tuple(k for k in ("energy", "force", "virial") if k in arrays)
        if first_labels is None:
            first_labels, first_dir = labels, set_dir
        elif labels != first_labels:
            raise DataError(set_dir, f"carries labels {list(labels)} but {first_dir.name} carries "
                                     f"{list(first_labels)}",
                            hint="every set of a system must carry the same label files")
        chunks.append(arrays)
        sources += [f"{set_dir}@{i}" for i in range(nframes)]
    if extras:
        _notice(f"{path}: ignoring label files glassjax does not use: {', '.join(sorted(extras))}")

    def cat(key):
        if key not in chunks[0]:
            return None
        return np.concatenate([c[key] for c in chunks], axis=0)

    nf = len(sources)
    fr = Frames(
        species=species,
        positions=cat("coord").reshape(nf, natoms, 3),
        cells=cat("box").reshape(nf, 3, 3),
        energy=None if cat("energy") is None else cat("energy").reshape(nf),
        forces=None if cat("force") is None else cat("force").reshape(nf, natoms, 3),
        virial=None if cat("virial") is None else cat("virial").reshape(nf, 3, 3),
        source=sources, name=_system_name(path),
        meta={"reader": "deepmd-raw" if raw else "deepmd-npy", "files": [str(path)],
              "type_map": list(elements)},
    )
    return [fr.validate(str(path))]


# ============================================================================ VASP
_OUTCAR_FORCES = re.compile(r"^\s*POSITION\s+TOTAL-FORCE", re.M)
_OUTCAR_TOTEN = re.compile(r"^\s*free  energy   TOTEN", re.M)


def _vasp_kind(path: Path) -> str:
    """'outcar' or 'xml', from the file's first bytes; raise if it is neither."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(2048).decode("latin-1")
    except OSError as exc:
        raise DataError(path, f"cannot be read ({exc})") from None
    if head.lstrip().startswith("<?xml") or head.lstrip().startswith("<modeling"):
        if "<modeling" not in head:
            raise DataError(path, "is an XML file but not a VASP vasprun.xml (no <modeling> element)")
        return "xml"
    first = head.strip().splitlines()[0] if head.strip() else ""
    if first.strip().startswith("vasp."):
        return "outcar"
    raise DataError(path, "is not a VASP OUTCAR or vasprun.xml: an OUTCAR starts with a line "
                          "'vasp.<version> ...', a vasprun.xml with '<?xml'",
                    hint="check the file, or pass the right --format")


_OUTCAR_ITER = re.compile(r"Iteration\s+\d+\(\s*(\d+)\)")
_NELM = re.compile(r"NELM\s*=\s*(\d+)")


def _outcar_steps(path: Path):
    """Scan an OUTCAR's text.

    Returns (complete, cut_in_record, finished, scf, nelm): the number of complete ionic
    steps, whether the last force block lacks its TOTEN line, whether the run finished,
    electronic iterations of each complete step (list), and NELM (None if not found).
    """
    text = Path(path).read_text(errors="replace")
    finished = "General timing and accounting" in text[-20000:]
    m = _NELM.search(text)
    nelm = int(m.group(1)) if m else None
    force_pos = np.array([m.start() for m in _OUTCAR_FORCES.finditer(text)], dtype=np.int64)
    toten_pos = np.array([m.start() for m in _OUTCAR_TOTEN.finditer(text)], dtype=np.int64)
    if force_pos.size == 0:
        return 0, False, finished, [], nelm
    # a step is complete when a TOTEN line follows its force block before the next block
    ends = np.append(force_pos[1:], len(text) + 1)
    nxt = np.searchsorted(toten_pos, force_pos)
    if toten_pos.size:
        complete = (nxt < toten_pos.size) & (toten_pos[np.minimum(nxt, toten_pos.size - 1)] < ends)
    else:
        complete = np.zeros(force_pos.size, dtype=bool)
    it_pos = [(m.start(), int(m.group(1))) for m in _OUTCAR_ITER.finditer(text)]
    it_at = np.array([p for p, _ in it_pos], dtype=np.int64)
    it_n = np.array([n for _, n in it_pos], dtype=np.int64)
    scf = []
    for p in force_pos[complete]:
        k = np.searchsorted(it_at, p) - 1  # last electronic iteration before the forces
        scf.append(int(it_n[k]) if k >= 0 else 0)
    return int(complete.sum()), not bool(complete[-1]), finished, scf, nelm


def _vasprun_scf(path: Path):
    """(electronic steps per <calculation>, NELM) of a vasprun.xml, from its text."""
    text = Path(path).read_text(errors="replace")
    m = re.search(r'name="NELM">\s*(\d+)', text)
    nelm = int(m.group(1)) if m else None
    chunks = text.split("<calculation>")[1:]
    scf = [c.split("</calculation>")[0].count("<scstep>") for c in chunks if "</calculation>" in c]
    return scf, nelm


def _stress_to_virial(stress, cell) -> np.ndarray:
    """(3, 3) extensive virial in eV from an ASE stress (Voigt (6,) or (3, 3), eV/Å^3)."""
    s = np.asarray(stress, dtype=np.float64)
    if s.shape == (6,):
        xx, yy, zz, yz, xz, xy = s
        s = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    s = s.reshape(3, 3)
    return -s * abs(np.linalg.det(np.asarray(cell, dtype=np.float64)))


def read_vasp(path, energy: str = "free", keep_unconverged: bool = False) -> List[Frames]:
    """Read every ionic step of a VASP ``OUTCAR`` or ``vasprun.xml`` (through ASE's readers).

    Args:
        path: the OUTCAR or vasprun.xml (recognised by content, not by name).
        energy: ``"free"`` (default) takes the free energy TOTEN (ASE ``free_energy``), which
            is consistent with VASP's forces and is what dpdata writes for DeePMD-kit;
            ``"sigma0"`` takes energy(sigma->0) (ASE ``energy``).
        keep_unconverged: keep ionic steps whose electronic loop ran into NELM without
            converging.  By default they are dropped with a :class:`DataNotice`, as dpdata
            does: their energies and forces are not self-consistent.

    Returns:
        A one-element list of Frames with energy (F,), forces (F, N, 3) (raw VASP forces,
        no constraints applied) and, when the run wrote a stress, virial (F, 3, 3)
        ``= -stress * V`` in eV.  Species come from ASE, which expands repeated POTCAR
        blocks (``B O B O ...``) atom by atom.

    A run that stopped during the electronic steps of a new ionic step keeps its complete
    steps (with a :class:`DataNotice`); a file cut inside an ionic step's force block, or
    holding no complete ionic step, is an error.
    """
    import ase.io

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "does not exist" if not path.exists() else "is not a file")
    if energy not in ("free", "sigma0"):
        raise DataError(path, f"unknown VASP energy choice {energy!r}", hint="use 'free' or 'sigma0'")
    kind = _vasp_kind(path)
    if kind == "outcar":
        complete, cut_in_record, finished, scf, nelm = _outcar_steps(path)
        if cut_in_record:
            raise DataError(path, "is truncated inside an ionic step: the last force block "
                                  "(POSITION / TOTAL-FORCE) has no energy after it",
                            frame=complete, hint="the file was cut; use an intact copy of the OUTCAR")
        if complete == 0:
            raise DataError(path, "holds no complete ionic step (no POSITION / TOTAL-FORCE block "
                                  "followed by 'free  energy   TOTEN')",
                            hint="the run stopped before its first ionic step, or the file is truncated")
    else:
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - 256))
            finished = b"</modeling>" in fh.read()
        scf, nelm = _vasprun_scf(path)
    fmt = "vasp-out" if kind == "outcar" else "vasp-xml"
    try:
        images = ase.io.read(str(path), index=":", format=fmt)
    except Exception as exc:  # ASE raises many types for bad files
        raise DataError(path, f"cannot be parsed as a VASP {'OUTCAR' if kind == 'outcar' else 'vasprun.xml'}"
                              f" ({type(exc).__name__}: {exc})",
                        hint="is the file truncated or from an unsupported VASP version?") from None
    if not images:
        raise DataError(path, "holds no complete ionic step", hint="the file may be truncated")
    if kind == "outcar" and len(images) != complete:
        raise DataError(path, f"ASE read {len(images)} ionic steps but the file holds {complete} "
                              "complete force blocks", hint="the file may be damaged")
    if not finished:
        _notice(f"{path}: the VASP run did not finish (or the file was cut after an ionic step); "
                f"keeping its {len(images)} complete ionic steps")
    unconverged = []
    if nelm is not None and len(scf) == len(images):
        unconverged = [k for k, n in enumerate(scf) if n >= nelm]
    if unconverged and not keep_unconverged:
        if len(unconverged) == len(images):
            raise DataError(path, f"no ionic step has a converged electronic loop (each ran "
                                  f"into NELM = {nelm})", hint="pass keep_unconverged=True "
                                  "(CLI: --keep-unconverged) to use them anyway")
        _notice(f"{path}: dropped {len(unconverged)} ionic step(s) whose electronic loop reached "
                f"NELM = {nelm} without converging: {unconverged[:10]}"
                + (" ..." if len(unconverged) > 10 else ""))
        drop = set(unconverged)
        kept = [k for k in range(len(images)) if k not in drop]
    else:
        kept = list(range(len(images)))
    key = "free_energy" if energy == "free" else "energy"
    frames = _images_to_frames(images, path, reader=f"ase-{fmt}", energy_keys=(key,),
                               forces_key=None, stress_key=None, virial_key=None)
    if len(kept) < len(images):
        frames = [fr.select(kept) for fr in frames]
    if len(frames) != 1:
        raise DataError(path, "the atoms change between ionic steps; a VASP run must keep its atoms")
    for fr in frames:
        fr.meta["vasp_energy"] = "free energy TOTEN" if energy == "free" else "energy(sigma->0)"
        for lab in ("energy", "forces"):
            if getattr(fr, lab) is None:
                raise DataError(path, f"has no {lab} in its ionic steps")
    return frames


# ============================================================================ ASE formats
def _get_label(atoms, key):
    """Look ``key`` up in the calculator results, then atoms.info, then atoms.arrays."""
    calc = atoms.calc
    if calc is not None and key in getattr(calc, "results", {}):
        return calc.results[key]
    if key in atoms.info:
        return atoms.info[key]
    if key in atoms.arrays:
        return atoms.arrays[key]
    return None


def _images_to_frames(images, path: Path, reader: str, energy_keys, forces_key, stress_key,
                      virial_key) -> List[Frames]:
    """Group ASE Atoms by their exact species sequence into Frames (first-seen order)."""
    groups: Dict[tuple, List[int]] = {}
    for i, atoms in enumerate(images):
        groups.setdefault(tuple(atoms.get_chemical_symbols()), []).append(i)
    base = _system_name(path)
    out = []
    for species, idx in groups.items():
        pos, cells, ener, forc, vir = [], [], [], [], []
        for i in idx:
            atoms = images[i]
            pos.append(atoms.get_positions())
            cell = np.asarray(atoms.get_cell()[:], dtype=np.float64)
            if abs(np.linalg.det(cell)) < 1e-6:
                raise DataError(path, "has no periodic cell (zero cell volume)", frame=i,
                                hint="glassjax datasets hold periodic systems; give the frame a Lattice")
            cells.append(cell)
            e = None
            for k in energy_keys:
                e = _get_label(atoms, k)
                if e is not None:
                    break
            ener.append(None if e is None else float(np.asarray(e, dtype=np.float64).reshape(())))
            f = _get_label(atoms, forces_key or "forces")
            forc.append(None if f is None else np.asarray(f, dtype=np.float64))
            if virial_key:
                v = _get_label(atoms, virial_key)
            else:
                s = _get_label(atoms, stress_key or "stress")
                v = _stress_to_virial(s, cell) if s is not None else \
                    (atoms.info.get("virial") if not stress_key else None)
            if v is not None:
                v = np.asarray(v, dtype=np.float64)
                if v.size != 9:
                    raise DataError(path, f"virial has {v.size} values, expected 9 (3 x 3)", frame=i)
                v = v.reshape(3, 3)
            vir.append(v)

        def collect(values, label):
            have = [v is not None for v in values]
            if not any(have):
                return None
            if not all(have):
                j = idx[have.index(False)]
                k = idx[have.index(True)]
                raise DataError(path, f"has no {label} while frame {k} of the same system has",
                                frame=j, hint=f"give every frame a {label} or none")
            return np.stack(values)

        energy = collect(ener, "energy")
        forces = collect(forc, "forces")
        if forces is not None and forces.shape[1:] != (len(species), 3):
            raise DataError(path, f"forces have shape {forces.shape[1:]}, expected ({len(species)}, 3)",
                            frame=idx[0])
        name = base if len(groups) == 1 else f"{base}_{_formula(species)}"
        fr = Frames(species=np.array(species), positions=np.stack(pos), cells=np.stack(cells),
                    energy=energy, forces=forces, virial=collect(vir, "virial"),
                    source=[f"{path}@{i}" for i in idx], name=name,
                    meta={"reader": reader, "files": [str(path)]})
        try:
            out.append(fr.validate(str(path)))
        except DataError as exc:
            if exc.frame is not None:  # report the frame index within the file
                raise DataError(path, exc.problem, frame=idx[exc.frame], hint=exc.hint) from None
            raise
    return out


def read_ase(path, format: Optional[str] = None, index=":", energy_key: Optional[str] = None,
             forces_key: Optional[str] = None, stress_key: Optional[str] = None,
             virial_key: Optional[str] = None) -> List[Frames]:
    """Read any ASE-readable file with energy and/or forces (extxyz, ASE .traj, ...).

    Args:
        path: the file.
        format: ASE format name (``"extxyz"``, ``"traj"``, ...); guessed by ASE when None.
        index: ASE frame selection, all frames by default.
        energy_key: where the energy is (calculator result, ``info`` or ``arrays`` key);
            by default ``free_energy`` when present, else ``energy``.
        forces_key: per-atom forces key, default ``forces`` (e.g. ``REF_forces``).
        stress_key: stress key (ASE sign, eV/Å^3), default ``stress``.
        virial_key: virial key (extensive eV, DeePMD/GAP sign); by default an ``info['virial']``
            is used when there is no stress.

    Returns:
        One Frames per distinct species sequence (a multi-composition file splits into
        several systems), frames in file order; ``source`` records the frame index in the file.
    """
    import ase.io

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "does not exist" if not path.exists() else "is not a file")
    try:
        images = ase.io.read(str(path), index=index, format=format)
    except Exception as exc:  # ASE raises many exception types for unreadable input
        fmt = format or "a format ASE recognises"
        raise DataError(path, f"cannot be read as {fmt} ({type(exc).__name__}: {exc})",
                        hint="check the file, or pass the right format (CLI: --format)") from None
    if not isinstance(images, list):
        images = [images]
    if not images:
        raise DataError(path, "holds no frames")
    ekeys = (energy_key,) if energy_key else ("free_energy", "energy")
    frames = _images_to_frames(images, path, reader=f"ase-{format or 'auto'}", energy_keys=ekeys,
                               forces_key=forces_key, stress_key=stress_key, virial_key=virial_key)
    for fr in frames:
        if fr.energy is None and fr.forces is None:
            raise DataError(path, "carries neither energies nor forces, so it is not training data",
                            hint="for labels under other names pass energy_key/forces_key "
                                 "(CLI: --energy-key, --forces-key)")
    return frames


# ============================================================================ dispatch
_DEEPMD_FORMATS = {"deepmd", "deepmd-npy", "deepmd-raw", "deepmd/npy", "deepmd/raw"}
_VASP_FORMATS = {"vasp-out", "vasp-xml", "outcar", "vasprun", "vasp"}
_ASE_EXTENSIONS = {".extxyz", ".xyz", ".traj"}


def _is_vasp_name(name: str) -> bool:
    return "OUTCAR" in name or (name.startswith("vasprun") and name.endswith(".xml"))


def _vasp_pair_key(name: str) -> Optional[Tuple[str, str]]:
    if name.startswith("OUTCAR"):
        return ("outcar", name[len("OUTCAR"):])
    if name.startswith("vasprun") and name.endswith(".xml"):
        return ("xml", name[len("vasprun"):-len(".xml")])
    return None


def find_inputs(root) -> List[Tuple[str, Path]]:
    """Walk a folder and list the inputs in it as ``(kind, path)``, kind in deepmd/vasp/ase.

    A folder holding ``type.raw`` is a DeePMD-kit system (not searched further).  VASP files
    are recognised by name (``*OUTCAR*``, ``vasprun*.xml``); when a folder holds both an
    ``OUTCAR<suffix>`` and a ``vasprun<suffix>.xml`` of the same run, only the vasprun.xml is
    used (with a notice), so the run is not counted twice.  ``*.extxyz``, ``*.xyz`` and
    ``*.traj`` files are read with ASE.  Other files are skipped with one notice.
    """
    root = Path(root)
    found: List[Tuple[str, Path]] = []
    skipped: List[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        d = Path(dirpath)
        if "type.raw" in filenames:
            found.append(("deepmd", d))
            dirnames[:] = []
            continue
        names = sorted(filenames)
        xml_keys = {k[1] for n in names if (k := _vasp_pair_key(n)) and k[0] == "xml"}
        for n in names:
            p = d / n
            if n.startswith("."):
                continue
            if _is_vasp_name(n):
                key = _vasp_pair_key(n)
                if key and key[0] == "outcar" and key[1] in xml_keys:
                    _notice(f"{p}: skipped, the vasprun{key[1]}.xml beside it holds the same run")
                    continue
                found.append(("vasp", p))
            elif p.suffix.lower() in _ASE_EXTENSIONS:
                found.append(("ase", p))
            else:
                skipped.append(str(p.relative_to(root)))
    if skipped:
        _notice(f"{root}: skipped {len(skipped)} file(s) that are not recognised inputs: "
                + ", ".join(skipped[:8]) + (" ..." if len(skipped) > 8 else ""))
    if not found:
        raise DataError(root, "holds no DeePMD-kit system (folder with type.raw), VASP OUTCAR / "
                              "vasprun.xml, or .extxyz/.xyz/.traj file")
    return found


def read_any(path, format: Optional[str] = None, type_map: Optional[Sequence[str]] = None,
             vasp_energy: str = "free", keep_unconverged: bool = False,
             **ase_options) -> List[Frames]:
    """Read ``path`` whatever it is: a DeePMD system, a folder of inputs, a VASP or ASE file.

    Args:
        path: a file or folder.  A folder with ``type.raw`` is one DeePMD-kit system; any
            other folder is searched recursively (see :func:`find_inputs`).
        format: force a reader: ``deepmd``, ``vasp`` (OUTCAR or vasprun.xml, by content),
            or any ASE format name.  None picks by name and content.
        type_map: for DeePMD systems without ``type_map.raw``.
        vasp_energy: ``"free"`` (TOTEN, default) or ``"sigma0"``; see :func:`read_vasp`.
        keep_unconverged: keep VASP steps with unconverged electronic loops.
        ase_options: keys for :func:`read_ase` (energy_key, forces_key, stress_key, virial_key).

    Returns:
        A list of Frames, one per system.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "does not exist")
    fmt = format.lower() if format else None
    if fmt in _DEEPMD_FORMATS or (path.is_dir() and (path / "type.raw").is_file()):
        return read_deepmd(path if path.is_dir() else path.parent, type_map=type_map)
    if path.is_dir():
        out: List[Frames] = []
        for kind, p in find_inputs(path):
            if kind == "deepmd":
                out += read_deepmd(p, type_map=type_map)
            elif kind == "vasp":
                out += read_vasp(p, energy=vasp_energy, keep_unconverged=keep_unconverged)
            else:
                out += read_ase(p, **ase_options)
        return out
    if fmt in _VASP_FORMATS or (fmt is None and _is_vasp_name(path.name)):
        return read_vasp(path, energy=vasp_energy, keep_unconverged=keep_unconverged)
    if fmt is None and path.name in ("type.raw", "type_map.raw"):
        return read_deepmd(path.parent, type_map=type_map)
    return read_ase(path, format=format, **ase_options)
