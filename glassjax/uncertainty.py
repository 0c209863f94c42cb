"""Ensemble uncertainty along a trajectory: model deviation per frame and the frames it flags.

An ensemble of M DeepPot-SE models trained on the same data (e.g. the shipped default
potential, :func:`glassjax.pretrained.default_ensemble_paths`) agrees where the training data
cover the configurations and disagrees elsewhere.  Along a trajectory (a melt-quench, a
compression run) the per-frame deviations, with DeePMD-kit's ``dp model-devi`` definitions
(:mod:`glassjax.train.deviation`)::

    devi_e            = std_k(E^k / N)                                 eV/atom
    sigma_f,i         = | std_k(F^k_i) |   (std per Cartesian component)  eV/Å, atom i
    max/min/avg_devi_f = max / min / mean_i sigma_f,i                   eV/Å
    max/min/avg_devi_v  (virial per atom, as DeePMD-kit)                eV/atom

(std: population standard deviation over the M members) tell which frames the models can be
trusted on.  DP-GEN's convention (the 2022 training paper's concurrent-learning loop) labels a
frame by its maximum force deviation and two trust levels ``trust_lo < trust_hi`` (eV/Å)::

    max_devi_f <  trust_lo              -> "accurate"   (already described by the models)
    trust_lo <= max_devi_f < trust_hi   -> "candidate"  (worth labelling with DFT)
    max_devi_f >= trust_hi (or NaN)     -> "failed"     (too far off: unphysical or blown up)

Functions: :func:`deviation_along` (deviation of each frame of a trajectory or data file),
:func:`flag_frames` (labels and index lists), :func:`write_flagged` (the flagged frames as an
extended-XYZ file for labelling, written atomically), :func:`load_frames` (the reader they share).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Union

import numpy as np

from glassjax.errors import ConfigError, DataError, ModelError

LABELS = ("accurate", "candidate", "failed")

#: per-frame metadata carried over from a glassjax H5MD trajectory (``read_h5md`` ``info``)
_H5MD_INFO = ("step", "time_ps", "temperature", "pressure", "density", "volume", "potential_energy")


def _is_h5md(path: Path) -> bool:
    if path.suffix.lower() not in (".h5", ".hdf5", ".h5md"):
        return False
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "h5md" in f
    except OSError as exc:
        raise DataError(path, f"not a readable HDF5 file ({exc})") from None


def _frames_from_atoms(images, name: str, where: str):
    from glassjax.data.frames import Frames

    if len(images) == 0:
        raise DataError(where, "no frames to evaluate", hint="check the index / the trajectory length")
    symbols = images[0].get_chemical_symbols()
    for i, a in enumerate(images):
        if a.get_chemical_symbols() != symbols:
            raise DataError(where, "the atoms (species or their order) change between frames", frame=i,
                            hint="evaluate each system separately")
    return Frames(species=symbols, positions=np.stack([a.get_positions() for a in images]),
                  cells=np.stack([np.asarray(a.get_cell()) for a in images]),
                  source=[f"{where}@{i}" for i in range(len(images))], name=name)


def load_frames(frames_or_path, index=":"):
    """One system's frames and their per-frame metadata.

    Args:
        frames_or_path: a :class:`glassjax.data.Frames`, a list of ``ase.Atoms`` with the same
            atoms, or a file: a glassjax H5MD trajectory (``trajectory.h5`` of ``glassjax simulate``
            or of a deformation run) or anything :func:`glassjax.analysis.io.read_trajectory` reads
            (extxyz, LAMMPS dump, a one-system glassjax dataset, ...).
        index: frames to keep for a file: ``":"``, ``"0:100:10"``, an int or a slice.

    Returns:
        ``(frames, info)``: a Frames (positions (F, N, 3) Å, cells (F, 3, 3)) and a dict of (F,)
        arrays with what the file records per frame (for H5MD: ``step``, ``time_ps`` (ps),
        ``temperature`` (K), ``pressure`` (GPa), ``density`` (g/cm^3), ``volume`` (Å^3),
        ``potential_energy`` (eV) and any other scalar observable recorded with the frames, e.g.
        ``strain`` of a :func:`glassjax.md.deform.run_deformation` trajectory; for ASE files: the numeric ``info`` keys shared by all frames,
        e.g. ``strain``).  Always ``frame`` (the index within the returned frames).
    """
    from glassjax.data.frames import Frames

    info: Dict[str, np.ndarray] = {}
    if isinstance(frames_or_path, Frames):
        frames = frames_or_path
    elif isinstance(frames_or_path, (list, tuple)):
        frames = _frames_from_atoms(list(frames_or_path), "frames", "<list of Atoms>")
        info = _common_info(frames_or_path)
    else:
        path = Path(frames_or_path)
        if not path.exists():
            raise DataError(path, "file not found")
        from glassjax.analysis.io import _parse_index

        idx = _parse_index(index)
        if _is_h5md(path):
            from glassjax.md.trajectory import read_h5md

            images = read_h5md(path, idx)
            images = images if isinstance(images, list) else [images]
            frames = _frames_from_atoms(images, path.stem, str(path))
            info = {k: np.array([a.info[k] for a in images], dtype=float) for k in _H5MD_INFO
                    if all(k in a.info for a in images)}
            info.update(_extra_observables(path, info.get("step")))
        else:
            suffix = path.suffix.lower()
            if suffix in (".xyz", ".extxyz"):
                import ase.io

                try:
                    images = ase.io.read(path, index=":", format="extxyz")
                except Exception as exc:  # ASE raises many types for malformed files
                    raise DataError(path, f"cannot read as extended XYZ ({exc})") from None
                try:
                    images = [images[idx]] if isinstance(idx, int) else images[idx]
                except IndexError:
                    raise DataError(path, f"frame {idx} out of range ({len(images)} frames)") from None
                images = images if isinstance(images, list) else [images]
                frames = _frames_from_atoms(images, path.stem, str(path))
                info = _common_info(images)
            else:
                from glassjax.analysis.io import read_trajectory

                frames = read_trajectory(path, index=index)
    info["frame"] = np.arange(frames.nframes)
    return frames, info


def _extra_observables(path: Path, steps) -> Dict[str, np.ndarray]:
    """Scalar H5MD observables beyond the standard ones (e.g. ``strain`` of a deformation run),
    matched to the frames by step."""
    import h5py

    out: Dict[str, np.ndarray] = {}
    if steps is None:
        return out
    steps = np.asarray(steps, dtype=np.int64)
    with h5py.File(path, "r") as f:
        obs = f.get("observables")
        if obs is None:
            return out
        for name, g in obs.items():
            if name in _H5MD_INFO or not isinstance(g, h5py.Group) or "value" not in g or "step" not in g:
                continue
            if g["value"].ndim != 1:
                continue
            st = g["step"][:]
            pos = {int(s): i for i, s in enumerate(st)}
            if all(int(s) in pos for s in steps):
                vals = g["value"][:]
                out[name] = np.array([vals[pos[int(s)]] for s in steps], dtype=float)
    return out


def _common_info(images) -> Dict[str, np.ndarray]:
    keys = set(images[0].info) if len(images) else set()
    out = {}
    for k in sorted(keys):
        vals = [a.info.get(k) for a in images]
        if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in vals):
            out[k] = np.asarray(vals, dtype=float)
    return out


def _load_models(models_or_paths, dtype):
    from glassjax.model import DeepPot, cast_variables, load_model

    if isinstance(models_or_paths, (str, Path)):
        raise ConfigError("models_or_paths must be a list of model files or (model, variables) pairs, "
                          f"got the single path {models_or_paths!r}")
    items = list(models_or_paths)
    if len(items) < 2:
        raise ConfigError(f"an ensemble deviation needs at least 2 models, got {len(items)}")
    models = []
    for i, m in enumerate(items):
        if isinstance(m, (str, Path)):
            models.append(load_model(m, dtype=dtype))
        elif isinstance(m, tuple) and len(m) == 2 and isinstance(m[0], DeepPot):
            model, variables = m
            if dtype is not None:
                model = model.with_dtype(dtype)
            models.append((model, cast_variables(variables, model.dtype)))
        else:
            raise ConfigError(f"ensemble member {i}: expected a model file path or a (DeepPot, variables) "
                              f"pair, got {type(m).__name__}")
    return models


def deviation_along(models_or_paths, frames_or_path, *, index=":", dtype=None, batch: int = 8,
                    progress: bool = False) -> Dict[str, np.ndarray]:
    """Model deviation of an ensemble on every frame of a trajectory.

    Args:
        models_or_paths: M >= 2 members: ``.dp`` / checkpoint paths or ``(DeepPot, variables)``
            pairs, e.g. ``glassjax.pretrained.default_ensemble_paths()``.
        frames_or_path: frames of one system (see :func:`load_frames`).
        index: frame selection when reading a file.
        dtype: ``"float32"``/``"float64"`` for the evaluation (default: JAX's default float).
        batch: frames per vmapped evaluation.
        progress: a tqdm bar over the members.

    Returns:
        dict of (F,) arrays: ``max_devi_f``, ``min_devi_f``, ``avg_devi_f`` (eV/Å), ``devi_e``
        (eV/atom), ``max_devi_v``, ``min_devi_v``, ``avg_devi_v`` (eV/atom); ``devi_f_atom``
        (F, N) eV/Å; ``energy`` (M, F) eV, each member's energy; plus the per-frame metadata of
        :func:`load_frames` (``frame``, and e.g. ``step``, ``time_ps``, ``temperature``).

    Raises:
        ConfigError: fewer than 2 members; DataError: unreadable frames; ModelError: an element
        missing from a member's type map, or more neighbours than a member's ``sel``.
    """
    from glassjax.train.deviation import model_deviation
    from glassjax.train.evaluate import predict_frames

    frames, info = load_frames(frames_or_path, index)
    models = _load_models(models_or_paths, dtype)
    preds = []
    it = models
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(models, desc="ensemble members", unit="model")
    for k, (model, variables) in enumerate(it):
        try:
            preds.append(predict_frames(model, variables, frames, batch=batch))
        except ModelError as exc:
            raise ModelError(f"ensemble member {k}: {exc}") from None
    energy = np.stack([p["energy"] for p in preds])
    forces = np.stack([p["forces"] for p in preds])
    virial = np.stack([p["virial"] for p in preds])
    out = model_deviation(energy, forces, virial, natoms=frames.natoms)
    out["energy"] = energy
    for k, v in info.items():
        if k not in out:
            out[k] = v
    return out


def _check_trust(trust_lo, trust_hi):
    try:
        lo, hi = float(trust_lo), float(trust_hi)
    except (TypeError, ValueError):
        raise ConfigError(f"trust levels must be numbers (eV/Å), got trust_lo={trust_lo!r}, "
                          f"trust_hi={trust_hi!r}") from None
    if not math.isfinite(lo) or lo < 0:
        raise ConfigError(f"trust_lo must be a finite force deviation >= 0 eV/Å, got {trust_lo!r}")
    if math.isnan(hi) or hi < lo:
        raise ConfigError(f"trust_hi must be >= trust_lo (eV/Å; inf: never 'failed'), got trust_lo={lo:g}, "
                          f"trust_hi={trust_hi!r}")
    return lo, hi


def flag_frames(devi, trust_lo: float, trust_hi: float, key: str = "max_devi_f") -> Dict[str, np.ndarray]:
    """DP-GEN labels of each frame from its force deviation.

    Args:
        devi: a (F,) array of maximum force deviations (eV/Å) or a dict from
            :func:`deviation_along` (``devi[key]`` is used).
        trust_lo, trust_hi: trust levels, eV/Å, ``0 <= trust_lo <= trust_hi`` (``trust_hi``
            may be ``inf``).  DP-GEN's typical values for oxide glasses: 0.10-0.15 and 0.25-0.35.
        key: the deviation to classify (default ``max_devi_f``, DP-GEN's choice).

    Returns:
        dict: ``labels`` (F,) strings ``"accurate"`` (d < trust_lo), ``"candidate"``
        (trust_lo <= d < trust_hi), ``"failed"`` (d >= trust_hi, or d NaN: a blown-up frame);
        ``accurate``, ``candidate``, ``failed``: int index arrays (ascending).

    Raises:
        ConfigError: bad trust levels, an unknown key, or a deviation that is not 1-D.
    """
    lo, hi = _check_trust(trust_lo, trust_hi)
    if isinstance(devi, Mapping):
        if key not in devi:
            raise ConfigError(f"no {key!r} in the deviation dict (keys: {sorted(devi)})")
        d = np.asarray(devi[key], dtype=float)
    else:
        d = np.asarray(devi, dtype=float)
    if d.ndim != 1:
        raise ConfigError(f"the deviation must be one value per frame (shape (F,)), got shape {d.shape}")
    failed = np.isnan(d) | (d >= hi)
    accurate = ~failed & (d < lo)
    candidate = ~failed & ~accurate
    labels = np.where(failed, "failed", np.where(candidate, "candidate", "accurate")).astype("<U9")
    return {"labels": labels, "accurate": np.flatnonzero(accurate), "candidate": np.flatnonzero(candidate),
            "failed": np.flatnonzero(failed)}


def write_flagged(path, frames_or_path, flags_or_indices, which: Union[str, Sequence[str]] = "candidate",
                  devi: Optional[Mapping[str, np.ndarray]] = None, index=":", max_frames: Optional[int] = None,
                  info: Optional[Mapping[str, object]] = None) -> int:
    """Write flagged frames to an extended-XYZ file (atomically) for labelling.

    Args:
        path: output ``.extxyz``.
        frames_or_path: the frames the deviation was computed on (same ``index``).
        flags_or_indices: the dict of :func:`flag_frames` (frames of the ``which`` labels are
            written) or explicit frame indices.
        which: label(s) to export, default ``"candidate"`` (DP-GEN labels candidates, never
            failed frames).
        devi: the :func:`deviation_along` dict: each frame's ``info`` then records
            ``max_devi_f``, ``avg_devi_f`` (eV/Å) and ``devi_e`` (eV/atom).
        max_frames: keep at most this many, evenly spaced over the selection (DP-GEN's
            ``fp_task_max``); None: all.
        info: extra ``info`` entries written on every frame (e.g. ``{"segment": "melt"}``
            for ``train/teacher/label.py``).

    Returns:
        the number of frames written (0 writes an empty file).  Each frame's ``info`` has
        ``glassjax_frame`` (index in the frames) and ``source``, plus the metadata of
        :func:`load_frames` (``step``, ``time_ps``, ...).
    """
    import ase.io

    from glassjax.atomic_write import atomic_path

    frames, meta = load_frames(frames_or_path, index)
    if isinstance(flags_or_indices, Mapping):
        names = [which] if isinstance(which, str) else list(which)
        for w in names:
            if w not in LABELS:
                raise ConfigError(f"which={w!r}: choose among {LABELS}")
        idx = np.sort(np.concatenate([np.asarray(flags_or_indices[w], dtype=int) for w in names]))
    else:
        idx = np.asarray(flags_or_indices, dtype=int).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= frames.nframes):
        raise ConfigError(f"frame indices must lie in [0, {frames.nframes}) for these {frames.nframes} frames, "
                          f"got {idx.min()}..{idx.max()}")
    if max_frames is not None:
        if int(max_frames) < 0:
            raise ConfigError(f"max_frames must be >= 0, got {max_frames}")
        if idx.size > int(max_frames):
            idx = idx[np.unique(np.linspace(0, idx.size - 1, int(max_frames)).round().astype(int))] \
                if int(max_frames) > 0 else idx[:0]
    if devi is not None:
        nd = np.asarray(devi["max_devi_f"]).shape[0]
        if nd != frames.nframes:
            raise ConfigError(f"devi holds {nd} frames but the trajectory has {frames.nframes}: "
                              "pass the same frames and index used for deviation_along")
    images = []
    for i in idx:
        a = frames.to_atoms(int(i))
        a.calc = None
        a.info["glassjax_frame"] = int(i)
        a.info["source"] = frames.source[int(i)]
        for k, v in meta.items():
            if k != "frame":
                a.info[k] = float(v[i])
        if devi is not None:
            for k in ("max_devi_f", "avg_devi_f", "devi_e"):
                if k in devi:
                    a.info[k] = float(np.asarray(devi[k])[i])
        a.info.update(dict(info or {}))
        images.append(a)
    with atomic_path(path, suffix=".extxyz") as tmp:
        if images:
            ase.io.write(tmp, images, format="extxyz")
        else:
            Path(tmp).write_text("")
    return len(images)
