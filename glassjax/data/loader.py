"""Padded, masked batches across systems of different sizes, in a reproducible order.

A batch is a dict of numpy arrays with fixed shapes, so a jitted training step compiles
once (or once per bucket with ``bucket``: per atom count, or per composition).  B = batch size,
M = padded atom count:

    positions  (B, M, 3) float   Å; padding atoms at the origin
    cells      (B, 3, 3) float   Å, rows are cell vectors
    types      (B, M)    int32   index into ``loader.type_map``; padding atoms are ``-1``
    atom_mask  (B, M)    bool    True for real atoms
    natoms     (B,)      int32   real atoms per frame
    energy     (B,)      float   eV (0 where absent)
    forces     (B, M, 3) float   eV/Å (0 where absent and on padding atoms)
    virial     (B, 3, 3) float   eV, extensive (0 where absent)
    has_energy, has_forces, has_virial (B,) bool   label present for that frame
    frame_mask (B,)      bool    False for filler frames that complete the last batch
    system     (B,)      int32   index into ``loader.systems``
    frame      (B,)      int32   frame index inside that system (in the dataset file)

With ``bucket="composition"`` every batch holds frames of one composition, their atoms
reordered by type (a stable sort, so the labels follow their atoms) and not padded: the
``types`` row is then the same for every frame of the batch and for every batch of that
composition, and a training step can treat it as a compile-time constant (the model then runs
each type's networks on that type's atoms only, as DeePMD-kit does).  Padded batches reach
nearly the same with :meth:`BatchLoader.type_capacity` (each type's networks on a fixed
number of rows: that type's largest count in batches of that width).

Filler frames (only in the last batch of an epoch when ``drop_last`` is False) are copies
of a real frame of the same batch with ``frame_mask`` and all ``has_*`` flags False, so
every array stays finite; weight every loss term by the ``has_*`` flags.

Order: epoch ``e`` visits the selected frames in the permutation drawn from
``numpy.random.default_rng([seed, e])``; the loader's ``state_dict()`` (epoch, step) restores
the exact same sequence of batches after a restart.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from glassjax.data.dataset import Dataset
from glassjax.data.frames import Frames
from glassjax.errors import ConfigError

__all__ = ["BatchLoader", "bucket_mode"]

_BUCKET_MODES = ("none", "natoms", "composition")


def bucket_mode(bucket: Union[bool, str]) -> str:
    """Normalise a ``bucket`` setting to ``"none"``, ``"natoms"`` or ``"composition"``."""
    if isinstance(bucket, (bool, np.bool_)):
        return "natoms" if bucket else "none"
    if isinstance(bucket, str) and bucket.lower() in _BUCKET_MODES:
        return bucket.lower()
    raise ConfigError(f"bucket = {bucket!r} is not one of true, false, {', '.join(map(repr, _BUCKET_MODES))}")


class BatchLoader:
    """Batches of frames from a glassjax dataset (or a list of Frames).

    Args:
        data: path of a glassjax HDF5 dataset, a :class:`Dataset`, or a list of Frames.
        batch_size: frames per batch (B).
        split: 'train', 'val' or None (all frames); ignored for a list of Frames.
        type_map: global element order for ``types``; default: all elements of the dataset
            sorted by atomic number.  It may list more elements than the data hold.
        nmax: padded atom count M; default: the largest system in the whole dataset (not only
            the split), so training and validation batches share one shape.
        seed: seed of the shuffling.
        shuffle: False visits frames in file order.
        drop_last: drop the incomplete last batch of each epoch instead of filling it.
        bucket: ``False``/``"none"``: pad every batch to ``nmax``.  ``True``/``"natoms"``:
            batches hold frames of one atom count only, each padded to that count (one
            compile per distinct size).  ``"composition"``: batches hold frames of one
            composition, atoms sorted by type, unpadded (see the module docstring).
        dtype: float dtype of the float arrays (float64 by default).
    """

    def __init__(self, data: Union[str, Dataset, Sequence[Frames]], batch_size: int, *,
                 split: Optional[str] = "train", type_map: Optional[Sequence[str]] = None,
                 nmax: Optional[int] = None, seed: int = 0, shuffle: bool = True,
                 drop_last: bool = False, bucket: Union[bool, str] = False, dtype=np.float64):
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if isinstance(data, (list, tuple)):
            frames = list(data)
            frame_ids = [np.arange(fr.nframes) for fr in frames]
            all_sizes = [fr.natoms for fr in frames]
            all_elements = sorted({e for fr in frames for e in fr.elements})
        else:
            ds = data if isinstance(data, Dataset) else Dataset(data)
            names = [n for n in ds.systems]
            frames = [ds.frames(n, split) for n in names]
            frame_ids = [ds.split_indices(n, split) if split in ("train", "val")
                         else np.arange(ds.info(n)["nframes"]) for n in names]
            all_sizes = [ds.info(n)["natoms"] for n in ds.systems]
            all_elements = ds.elements
        keep = [k for k, fr in enumerate(frames) if fr.nframes > 0]
        frames = [frames[k] for k in keep]
        frame_ids = [frame_ids[k] for k in keep]
        if not frames:
            raise ConfigError(f"the dataset has no frames in split {split!r}")
        from ase.data import atomic_numbers

        self.type_map: List[str] = list(type_map) if type_map is not None else \
            sorted(all_elements, key=lambda e: atomic_numbers[e])
        self.systems: List[str] = [fr.name for fr in frames]
        self._types = [fr.types(self.type_map) for fr in frames]  # raises for missing elements
        # per system: the stable permutation that sorts its atoms by type
        self._order_by_type = [np.argsort(t, kind="stable") for t in self._types]
        self.nmax = int(nmax) if nmax is not None else max(all_sizes)
        big = max(fr.natoms for fr in frames)
        if self.nmax < big:
            raise ConfigError(f"nmax={self.nmax} is smaller than the largest system ({big} atoms)")
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.bucket = bucket_mode(bucket)
        self.dtype = np.dtype(dtype)
        self._frames = frames
        self._frame_ids = frame_ids
        self._sys = np.concatenate([np.full(fr.nframes, k, dtype=np.int32) for k, fr in enumerate(frames)])
        self._loc = np.concatenate([np.arange(fr.nframes, dtype=np.int32) for fr in frames])
        self.epoch = 0
        self.step = 0
        self._order = None

    # ------------------------------------------------------------------ order and state
    @property
    def nframes(self) -> int:
        return int(self._sys.size)

    def _epoch_batches(self, epoch: int) -> List[np.ndarray]:
        """The list of batches (arrays of global frame indices) of one epoch."""
        rng = np.random.default_rng([self.seed, epoch])
        n = self.nframes
        if self.bucket != "none":
            keys = self._bucket_keys()
            batches = []
            for key in np.unique(keys):
                idx = np.flatnonzero(keys == key)
                if self.shuffle:
                    idx = idx[rng.permutation(idx.size)]
                batches += self._chunk(idx)
            if self.shuffle:
                batches = [batches[i] for i in rng.permutation(len(batches))]
            return batches
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        return self._chunk(order)

    def _bucket_keys(self) -> np.ndarray:
        """(frames,) int bucket label of every frame: its atom count or its composition."""
        if self.bucket == "natoms":
            return np.array([self._frames[s].natoms for s in self._sys])
        comps = [tuple(np.bincount(t, minlength=len(self.type_map))) for t in self._types]
        label = {c: k for k, c in enumerate(sorted(set(comps)))}
        return np.array([label[comps[s]] for s in self._sys])

    def type_capacity(self, width: int) -> Tuple[int, ...]:
        """The largest number of atoms of each type (in ``type_map`` order) in any frame that
        can go into a batch ``width`` atoms wide: all frames when every batch is padded to
        ``nmax``, else those with that many atoms (with ``"composition"``, the composition)."""
        cache = self.__dict__.setdefault("_capacity", {})
        if width not in cache:
            from glassjax.model.typegroups import TypeCapacity

            rows = [t for s, t in enumerate(self._types)
                    if self.bucket == "none" or self._frames[s].natoms == width]
            if not rows:
                raise ConfigError(f"no system of this loader has {width} atoms")
            cache[width] = TypeCapacity.of(rows, len(self.type_map)).capacity
        return cache[width]

    def _chunk(self, idx: np.ndarray) -> List[np.ndarray]:
        b = self.batch_size
        out = [idx[i:i + b] for i in range(0, idx.size, b)]
        if self.drop_last and out and out[-1].size < b:
            out = out[:-1]
        return out

    def steps_per_epoch(self, epoch: Optional[int] = None) -> int:
        return len(self._epoch_batches(self.epoch if epoch is None else epoch))

    def state_dict(self) -> Dict[str, int]:
        """Position in the stream: restore it with :meth:`load_state_dict` to resume."""
        return {"epoch": int(self.epoch), "step": int(self.step), "seed": self.seed,
                "nframes": self.nframes, "batch_size": self.batch_size}

    def load_state_dict(self, state: Dict[str, int]) -> None:
        for key in ("seed", "nframes", "batch_size"):
            if key in state and int(state[key]) != getattr(self, key):
                raise ConfigError(f"loader state was saved with {key}={state[key]}, but this loader "
                                  f"has {key}={getattr(self, key)}; the data order would differ")
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self._order = None

    # ------------------------------------------------------------------ iteration
    def next_batch(self) -> Dict[str, np.ndarray]:
        """The next batch of the endless stream (epochs follow each other)."""
        if self._order is None or self._order[0] != self.epoch:
            self._order = (self.epoch, self._epoch_batches(self.epoch))
        batches = self._order[1]
        if not batches:
            raise ConfigError(f"no complete batch: {self.nframes} frames, batch_size "
                              f"{self.batch_size}, drop_last=True")
        idx = batches[self.step]
        self.step += 1
        if self.step >= len(batches):
            self.epoch, self.step = self.epoch + 1, 0
        return self.make_batch(idx)

    def __iter__(self) -> Iterator[Dict[str, np.ndarray]]:
        """The remaining batches of the current epoch (one pass; the state advances)."""
        epoch = self.epoch
        while self.epoch == epoch:
            yield self.next_batch()

    def make_batch(self, idx: np.ndarray) -> Dict[str, np.ndarray]:
        """Assemble the padded batch of global frame indices ``idx`` (at most B of them)."""
        idx = np.asarray(idx, dtype=np.int64)
        b, real = self.batch_size, idx.size
        m = self.nmax
        if self.bucket != "none":
            m = self._frames[self._sys[idx[0]]].natoms
        by_type = self.bucket == "composition"
        fl = self.dtype
        out = {
            "positions": np.zeros((b, m, 3), fl), "cells": np.zeros((b, 3, 3), fl),
            "types": np.full((b, m), -1, np.int32), "atom_mask": np.zeros((b, m), bool),
            "natoms": np.zeros((b,), np.int32), "energy": np.zeros((b,), fl),
            "forces": np.zeros((b, m, 3), fl), "virial": np.zeros((b, 3, 3), fl),
            "has_energy": np.zeros((b,), bool), "has_forces": np.zeros((b,), bool),
            "has_virial": np.zeros((b,), bool), "frame_mask": np.zeros((b,), bool),
            "system": np.zeros((b,), np.int32), "frame": np.zeros((b,), np.int32),
        }
        fill = np.concatenate([idx, np.full(b - real, idx[0] if real else 0, dtype=np.int64)])
        for k, g in enumerate(fill):
            s, i = int(self._sys[g]), int(self._loc[g])
            fr = self._frames[s]
            n = fr.natoms
            perm = self._order_by_type[s] if by_type else slice(None)
            is_real = k < real
            out["positions"][k, :n] = fr.positions[i][perm]
            out["cells"][k] = fr.cells[i]
            out["types"][k, :n] = self._types[s][perm]
            out["atom_mask"][k, :n] = True
            out["natoms"][k] = n
            out["system"][k] = s
            out["frame"][k] = self._frame_ids[s][i]
            out["frame_mask"][k] = is_real
            if fr.energy is not None:
                out["energy"][k] = fr.energy[i]
                out["has_energy"][k] = is_real
            if fr.forces is not None:
                out["forces"][k, :n] = fr.forces[i][perm]
                out["has_forces"][k] = is_real
            if fr.virial is not None:
                out["virial"][k] = fr.virial[i]
                out["has_virial"][k] = is_real
        return out
