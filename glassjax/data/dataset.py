"""One HDF5 file holding many systems: write (atomically), append, split, read, summarise.

Layout (format ``glassjax-dataset``, version 1; see ``docs/data.md``)::

    /                       attrs: format, format_version, glassjax_version, created, modified,
                                   units (JSON), conventions, val_fraction, seed
    /systems/<name>/        one group per system (fixed atoms)
        species    (N,)     element symbols (UTF-8 strings)
        positions  (F,N,3)  Å, float64
        cells      (F,3,3)  Å, rows are the cell vectors
        energy     (F,)     eV              (when present)
        forces     (F,N,3)  eV/Å            (when present)
        virial     (F,3,3)  eV, extensive, -stress*V (when present)
        source     (F,)     per-frame provenance "file@index" (UTF-8 strings)
        val_mask   (F,)     bool, True = validation frame
        attrs: formula, natoms, nframes, elements, labels, reader, files (JSON), type_map of
               the source (JSON, DeePMD inputs), vasp_energy (VASP inputs), pbc,
               val_fraction, seed, added (UTC time), content_sha1

A system whose content (species, positions, cells, labels) equals one already in the file,
or one written earlier in the same call, is skipped with a notice, so converting or
appending the same input twice does not duplicate frames.

Every write goes to a temporary copy that is renamed over the target only when complete,
so a failed conversion never leaves a half-written file and an existing file survives.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import warnings
import re
import shutil
import zlib
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from glassjax.atomic_write import atomic_path
from glassjax.data.frames import Frames
from glassjax.errors import ConfigError, DataError

FORMAT_NAME = "glassjax-dataset"
FORMAT_VERSION = 1
UNITS = {"positions": "Å", "cells": "Å", "energy": "eV", "forces": "eV/Å", "virial": "eV"}
CONVENTIONS = ("cells: rows are the cell vectors; virial: extensive, eV, virial = -stress * volume "
               "with ASE's stress sign (positive trace = compressed), as in DeePMD-kit")
DEFAULT_VAL_FRACTION = 0.1
DEFAULT_SEED = 0
LABELS = ("energy", "forces", "virial")

__all__ = ["write_dataset", "Dataset", "read_dataset", "read_frames", "split_mask", "summarize", "content_hash",
           "FORMAT_NAME",
           "FORMAT_VERSION"]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def split_mask(nframes: int, val_fraction: float, seed: int, name: str) -> np.ndarray:
    """(F,) bool validation mask for one system, reproducible from (seed, system name).

    ``round(val_fraction * F)`` frames go to validation, at least one when
    ``val_fraction > 0`` and ``F >= 2``, and never all of them (a single-frame system is kept
    for training).  The draw depends only on the seed and the system's name, so appending
    other systems never changes an existing split.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = int(round(val_fraction * nframes))
    if val_fraction > 0 and nframes >= 2:
        n_val = max(1, n_val)
    n_val = min(n_val, nframes - 1) if nframes >= 1 else 0
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode())])
    mask = np.zeros(nframes, dtype=bool)
    mask[rng.permutation(nframes)[:n_val]] = True
    return mask


def _unique_name(name: str, taken: Iterable[str]) -> str:
    name = re.sub(r"[^A-Za-z0-9_.+-]+", "_", name).strip("_.") or "system"
    taken = set(taken)
    if name not in taken:
        return name
    k = 1
    while f"{name}_{k}" in taken:
        k += 1
    return f"{name}_{k}"


def _check_file(f, path) -> None:
    fmt = f.attrs.get("format")
    if isinstance(fmt, bytes):
        fmt = fmt.decode()
    if fmt != FORMAT_NAME:
        raise DataError(path, f"is an HDF5 file but not a glassjax dataset (format attribute {fmt!r})")
    ver = int(f.attrs.get("format_version", -1))
    if ver > FORMAT_VERSION:
        raise DataError(path, f"uses dataset format version {ver}; this glassjax reads up to "
                              f"{FORMAT_VERSION}", hint="update glassjax")
    if "systems" not in f:
        raise DataError(path, "has no /systems group")


def _open_h5(path, mode="r"):
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "does not exist")
    try:
        return h5py.File(path, mode)
    except OSError as exc:
        raise DataError(path, f"is not a readable HDF5 file ({exc})") from None


def content_hash(fr: Frames) -> str:
    """SHA-1 of a system's species, positions, cells and labels (detects repeated data)."""
    h = hashlib.sha1()
    h.update("|".join(fr.species.tolist()).encode())
    for key in ("positions", "cells", "energy", "forces", "virial"):
        arr = getattr(fr, key)
        h.update(key.encode())
        if arr is not None:
            h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
    return h.hexdigest()


def _write_system(grp, fr: Frames, val_fraction: float, seed: int, digest: str) -> None:
    import h5py

    str_dt = h5py.string_dtype("utf-8")
    grp.create_dataset("species", data=np.array(fr.species.tolist(), dtype=object), dtype=str_dt)
    grp.create_dataset("positions", data=fr.positions)
    grp.create_dataset("cells", data=fr.cells)
    for lab in LABELS:
        arr = getattr(fr, lab)
        if arr is not None:
            grp.create_dataset(lab, data=arr)
    grp.create_dataset("source", data=np.array(fr.source, dtype=object), dtype=str_dt)
    grp.create_dataset("val_mask", data=split_mask(fr.nframes, val_fraction, seed, grp.name.split("/")[-1]))
    a = grp.attrs
    a["formula"] = fr.formula
    a["natoms"] = fr.natoms
    a["nframes"] = fr.nframes
    a["elements"] = ",".join(fr.elements)
    a["labels"] = ",".join(fr.labels)
    a["reader"] = str(fr.meta.get("reader", "python"))
    a["files"] = json.dumps(sorted(set(fr.meta.get("files", []))))
    if "type_map" in fr.meta:
        a["source_type_map"] = json.dumps(list(fr.meta["type_map"]))
    if "vasp_energy" in fr.meta:
        a["vasp_energy"] = fr.meta["vasp_energy"]
    a["pbc"] = np.array(fr.pbc, dtype=bool)
    a["val_fraction"] = float(val_fraction)
    a["seed"] = int(seed)
    a["added"] = _now()
    a["content_sha1"] = digest


def write_dataset(path, frames: Sequence[Frames], *, append: bool = False,
                  val_fraction: Optional[float] = None, seed: Optional[int] = None) -> List[str]:
    """Write systems into the HDF5 dataset at ``path`` (atomically) and return their group names.

    Args:
        path: output file.  Without ``append`` an existing file is replaced, but only once
            the new file is complete.
        frames: the systems (each is validated: shapes, elements, finite labels).
        append: add the systems to an existing dataset (a copy is modified, then renamed).
            Group names never collide: a taken name gets a ``_1``, ``_2``... suffix.
        val_fraction: fraction of each system's frames put into validation.  Default: the
            file's value when appending, else 0.1.
        seed: seed of the split.  Default: the file's value when appending, else 0.
    """
    import h5py
    from glassjax import __version__

    path = Path(path)
    frames = list(frames)
    if not frames:
        raise DataError(path, "nothing to write: no systems were read")
    for fr in frames:
        fr.validate(fr.source[0].rsplit("@", 1)[0] if fr.source else fr.name)
    if append and not path.exists():
        raise DataError(path, "does not exist, so nothing can be appended to it",
                        hint="leave out --append to create it")
    if append:
        with _open_h5(path) as f:
            _check_file(f, path)
            if val_fraction is None:
                val_fraction = float(f.attrs.get("val_fraction", DEFAULT_VAL_FRACTION))
            if seed is None:
                seed = int(f.attrs.get("seed", DEFAULT_SEED))
    val_fraction = DEFAULT_VAL_FRACTION if val_fraction is None else float(val_fraction)
    seed = DEFAULT_SEED if seed is None else int(seed)
    split_mask(2, val_fraction, seed, "check")  # validates val_fraction early

    names: List[str] = []
    with atomic_path(path, suffix=".h5") as tmp:
        if append:
            shutil.copyfile(path, tmp)
        with h5py.File(tmp, "a" if append else "w") as f:
            if not append:
                f.attrs["format"] = FORMAT_NAME
                f.attrs["format_version"] = FORMAT_VERSION
                f.attrs["created"] = _now()
                f.attrs["units"] = json.dumps(UNITS, ensure_ascii=False)
                f.attrs["conventions"] = CONVENTIONS
                f.attrs["val_fraction"] = val_fraction
                f.attrs["seed"] = seed
                f.create_group("systems")
            f.attrs["glassjax_version"] = __version__
            f.attrs["modified"] = _now()
            systems = f["systems"]
            seen = {str(g.attrs.get("content_sha1", "")): n for n, g in systems.items()}
            for fr in frames:
                digest = content_hash(fr)
                if digest in seen:
                    from glassjax.data.readers import DataNotice

                    where = (fr.meta.get("files") or [fr.name])[0]
                    warnings.warn(f"{where}: skipped, it holds exactly the "
                                  f"same data as system {seen[digest]!r}", DataNotice, stacklevel=2)
                    continue
                name = _unique_name(fr.name, list(systems.keys()))
                _write_system(systems.create_group(name), fr, val_fraction, seed, digest)
                seen[digest] = name
                names.append(name)
    return names


class Dataset:
    """Read access to a glassjax HDF5 dataset (the file is opened per call, never held)."""

    def __init__(self, path):
        self.path = Path(path)
        with _open_h5(self.path) as f:
            _check_file(f, self.path)
            self.attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            self.systems: List[str] = list(f["systems"].keys())
            self._info = {}
            for name in self.systems:
                g = f["systems"][name]
                self._info[name] = {
                    "natoms": int(g.attrs["natoms"]),
                    "nframes": int(g.attrs["nframes"]),
                    "formula": str(g.attrs["formula"]),
                    "elements": [e for e in str(g.attrs["elements"]).split(",") if e],
                    "labels": [e for e in str(g.attrs["labels"]).split(",") if e],
                    "n_val": int(np.sum(g["val_mask"][()])),
                }

    def __len__(self) -> int:
        return len(self.systems)

    def info(self, name: str) -> Dict:
        """natoms, nframes, formula, elements, labels, n_val of one system."""
        return dict(self._info[name])

    @property
    def elements(self) -> List[str]:
        """All elements in the file, sorted by atomic number (the default global type map)."""
        from ase.data import atomic_numbers

        els = {e for i in self._info.values() for e in i["elements"]}
        return sorted(els, key=lambda e: atomic_numbers[e])

    @property
    def nframes(self) -> int:
        return sum(i["nframes"] for i in self._info.values())

    @property
    def max_natoms(self) -> int:
        return max(i["natoms"] for i in self._info.values())

    def frames(self, name: str, split: Optional[str] = None) -> Frames:
        """The system ``name`` as Frames; ``split`` in (None, 'train', 'val') selects frames."""
        if name not in self._info:
            raise DataError(self.path, f"has no system {name!r}", hint=f"systems: {self.systems}")
        if split not in (None, "all", "train", "val"):
            raise ConfigError(f"split must be 'train', 'val' or None, got {split!r}")
        with _open_h5(self.path) as f:
            g = f["systems"][name]
            mask = g["val_mask"][()]
            sel = slice(None) if split in (None, "all") else np.flatnonzero(mask if split == "val" else ~mask)
            get = lambda k: g[k][()][sel] if k in g else None  # noqa: E731
            fr = Frames(
                species=np.array(g["species"].asstr()[()]),
                positions=get("positions"), cells=get("cells"), energy=get("energy"),
                forces=get("forces"), virial=get("virial"),
                source=list(np.asarray(g["source"].asstr()[()])[sel]),
                pbc=tuple(bool(b) for b in g.attrs.get("pbc", (True, True, True))), name=name,
                meta={"reader": str(g.attrs.get("reader", "")), "dataset": str(self.path),
                      "files": json.loads(g.attrs.get("files", "[]"))},
            )
        return fr

    def split_indices(self, name: str, split: str) -> np.ndarray:
        """Frame indices of ``name`` in the 'train' or 'val' split."""
        with _open_h5(self.path) as f:
            mask = f["systems"][name]["val_mask"][()]
        return np.flatnonzero(mask if split == "val" else ~mask)

    def all_frames(self, split: Optional[str] = None) -> List[Frames]:
        """Every system as Frames (systems with no frame in ``split`` are left out)."""
        out = [self.frames(n, split) for n in self.systems]
        return [fr for fr in out if fr.positions.shape[0] > 0]


def read_dataset(path, split: Optional[str] = None) -> List[Frames]:
    """All systems of a glassjax dataset as a list of Frames (``split``: None, 'train', 'val')."""
    return Dataset(path).all_frames(split)


def read_frames(path, system: Optional[str] = None, split: Optional[str] = None):
    """One system of a dataset as Frames (``system`` given), or all of them as a list."""
    ds = Dataset(path)
    if system is None:
        return ds.all_frames(split)
    return ds.frames(system, split)


def summarize(path) -> Dict:
    """Per-system and total statistics of a dataset (what ``glassjax data info`` prints).

    Returns ``{"systems": [row, ...], "total": row}``; a row holds name, formula, natoms,
    nframes, n_train, n_val, elements, labels, e_per_atom (min, max) eV, fmag (min, max) eV/Å
    (per-atom force magnitudes), where the label is present.
    """
    ds = Dataset(path)
    rows = []
    with _open_h5(ds.path) as f:
        for name in ds.systems:
            g = f["systems"][name]
            info = ds.info(name)
            row = {"name": name, **info, "n_train": info["nframes"] - info["n_val"],
                   "files": json.loads(g.attrs.get("files", "[]"))}
            if "energy" in g:
                epa = g["energy"][()] / info["natoms"]
                row["e_per_atom"] = (float(epa.min()), float(epa.max()))
            if "forces" in g:
                fm = np.linalg.norm(g["forces"][()], axis=-1)
                row["fmag"] = (float(fm.min()), float(fm.max()))
            rows.append(row)
    total = {"name": "total", "systems": len(rows), "nframes": sum(r["nframes"] for r in rows),
             "n_train": sum(r["n_train"] for r in rows), "n_val": sum(r["n_val"] for r in rows),
             "atoms": sum(r["natoms"] * r["nframes"] for r in rows), "elements": ds.elements,
             "labels": [lab for lab in LABELS if any(lab in r["labels"] for r in rows)]}
    return {"path": str(ds.path), "attrs": ds.attrs, "systems": rows, "total": total}
