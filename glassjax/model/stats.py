"""Data statistics for a DeepPot-SE model: davg/dstd of the environment matrix and the
per-type atomic energy bias.

Environment statistics (as DeePMD-kit's ``EnvMatStatSe``): for each centre type t, over
all its atoms in the sampled frames and *all* ``sum(sel)`` slots (empty slots count as zero
rows), with the raw environment matrix rows ``(s, s x/r, s y/r, s z/r)``::

    davg[t] = [mean(s), 0, 0, 0]
    dstd[t] = [std(s), std(a), std(a), std(a)]      a = the three angular components pooled

standard deviations below 1e-2 are raised to 1e-2; a type with no atoms gets mean 0 and
std 0.1 (DeePMD-kit's defaults).  ``set_davg_zero`` keeps davg at zero.

Energy bias: per-type atomic energies ``b`` with ``E_frame ~ sum_t n_t b_t``.  On glass data
of one composition the count matrix has rank 1, so a plain least-squares fit is
rank-deficient (any b with the right weighted sum fits).  Two choices, stated in the result:

* ``"ridge"`` (default): ``b = mu + d`` where ``mu = sum(E) / sum(N)`` is the mean energy
  per atom and ``d`` minimises ``|N (mu + d) - E|^2 + lam |d|^2`` with
  ``lam = alpha * trace(N^T N) / T``: a unique, well-conditioned b that reproduces the
  mean energy exactly; with one composition every type gets ``mu`` (the data cannot say
  more), with several compositions it tends to the least-squares answer as alpha -> 0;
* ``"reference"``: use given isolated-atom (or other reference) energies per element, and
  optionally add a common per-atom shift fitted to the data (``shift=True``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Sequence

import numpy as np

from glassjax.errors import ConfigError, DataError


def _iter_configurations(frames, type_map, max_frames_per_system: Optional[int]):
    """Yield (positions, cell, types) from Frames objects (or (species, positions, cells) tuples)."""
    index = {s: i for i, s in enumerate(type_map)}
    for fr in frames:
        species = fr.species if hasattr(fr, "species") else fr[0]
        positions = fr.positions if hasattr(fr, "positions") else fr[1]
        cells = fr.cells if hasattr(fr, "cells") else fr[2]
        missing = sorted({str(s) for s in species} - set(index))
        if missing:
            raise DataError(getattr(fr, "name", "<frames>"), f"elements {missing} are not in type_map {list(type_map)}")
        types = np.array([index[str(s)] for s in species], np.int32)
        nf = positions.shape[0] if max_frames_per_system is None else min(positions.shape[0], max_frames_per_system)
        for f in range(nf):
            yield np.asarray(positions[f]), np.asarray(cells[f]), types


def periodic_pairs(positions, cell, rcut: float):
    """All pairs within ``rcut`` under full periodic boundaries, with numpy (ASE's neighbour list).

    Args: positions (N, 3) Å; cell (3, 3) rows Å; rcut Å.
    Returns ``(i, j, d)``: (P,) centre and neighbour indices and (P, 3) displacements
    ``r_j + image - r_i``, every periodic image (cells thinner than 2 rcut included).
    Shape-agnostic numpy: used for data statistics over many system sizes, where a jitted
    kernel would compile once per shape.
    """
    from ase.neighborlist import primitive_neighbor_list

    i, j, d = primitive_neighbor_list("ijD", (True, True, True), np.asarray(cell, float),
                                      np.asarray(positions, float), float(rcut), self_interaction=False)
    return i, j, d


def _switch_np(name: str, r, rcut_smth: float, rcut: float):
    u = (np.clip(r, rcut_smth, rcut) - rcut_smth) / (rcut - rcut_smth)
    if name == "cosine":
        return 0.5 * np.cos(np.pi * u) + 0.5
    return u ** 3 * (-6.0 * u * u + 15.0 * u - 10.0) + 1.0


def _sel_rank(i, tj, r, ntypes: int):
    """Rank of each pair by distance among the centre's neighbours of the same type."""
    order = np.lexsort((r, tj, i))
    key = (i[order] * ntypes + tj[order])
    start = np.r_[0, np.flatnonzero(np.diff(key)) + 1]
    counts = np.diff(np.r_[start, key.size])
    rank_sorted = np.arange(key.size) - np.repeat(start, counts)
    rank = np.empty_like(rank_sorted)
    rank[order] = rank_sorted
    return rank


def environment_stats(config, frames: Iterable, max_frames_per_system: Optional[int] = None,
                      protection: float = 1e-2):
    """``(davg, dstd)``, each (T, S, 4), from frames (glassjax Frames objects).

    ``config`` is a :class:`~glassjax.model.descriptor.DescriptorConfig` (or a DeepPotConfig).
    Computed with numpy from :func:`periodic_pairs` (no compile per system size): the sums
    of ``s = w(r)/(r+p)`` and of the angular components ``w(r) x/(r+p)^2`` over the filled
    slots (the neighbours within rcut the descriptor keeps: the nearest ``sum(sel)``, then the
    nearest ``sel[t]`` of each type),
    divided by the number of all slots (empty slots are zero rows).
    """
    dc = getattr(config, "descriptor", config)
    t_n, s_n = dc.ntypes, dc.nnei
    sel = np.asarray(dc.sel)
    num = np.zeros((t_n, 2))
    tot = np.zeros((t_n, 2))
    sq = np.zeros((t_n, 2))
    seen = 0
    for pos, cell, types in _iter_configurations(frames, dc.type_map, max_frames_per_system):
        seen += 1
        i, j, d = periodic_pairs(pos, cell, dc.rcut)
        r = np.linalg.norm(d, axis=1)
        # DeePMD-kit's truncation: the nearest sum(sel) neighbours, then the nearest sel[t] of each type
        near = _sel_rank(i, np.zeros_like(i), r, 1) < s_n
        i, j, d, r = i[near], j[near], d[near], r[near]
        keep = _sel_rank(i, types[j], r, t_n) < sel[types[j]]
        i, d, r = i[keep], d[keep], r[keep]
        rp = r + dc.env_protection
        w = _switch_np(dc.switch, r, dc.rcut_smth, dc.rcut)
        s = w / rp
        a = (w / (rp * rp))[:, None] * d
        ti = types[i]
        for t in range(t_n):
            n_t = int(np.sum(types == t))
            if n_t == 0:
                continue
            m = ti == t
            num[t] += (n_t * s_n, 3 * n_t * s_n)
            tot[t] += (s[m].sum(), a[m].sum())
            sq[t] += ((s[m] ** 2).sum(), (a[m] ** 2).sum())
    if seen == 0:
        raise DataError("<frames>", "no frames to compute environment statistics from")
    davg = np.zeros((t_n, s_n, 4))
    dstd = np.ones((t_n, s_n, 4))
    for t in range(t_n):
        avg = np.where(num[t] > 0, tot[t] / np.maximum(num[t], 1), 0.0)
        var = np.clip(sq[t] / np.maximum(num[t], 1) - avg * avg, 0.0, None)
        std = np.where(num[t] > 0, np.sqrt(var), 0.1)
        std = np.where((num[t] > 0) & (np.abs(std) < protection), protection, std)
        if not dc.set_davg_zero:
            davg[t, :, 0] = avg[0]
        dstd[t, :, 0] = std[0]
        dstd[t, :, 1:] = std[1]
    return davg, dstd


@dataclass
class EnergyBias:
    """Fitted per-type energies (eV) and how they were obtained."""

    bias: np.ndarray  # (T,)
    method: str
    rank: int  # rank of the composition matrix
    rmse_per_atom: float  # eV/atom of the fit on the data


def fit_energy_bias(counts, energies, method: str = "ridge", alpha: float = 1e-6,
                    reference: Optional[Dict[str, float]] = None, type_map: Optional[Sequence[str]] = None,
                    shift: bool = True) -> EnergyBias:
    """Per-type atomic energy bias.

    Args:
        counts: (F, T) number of atoms of each type per frame.
        energies: (F,) frame energies, eV.
        method: ``"ridge"`` or ``"reference"`` (see the module docstring).
        alpha: ridge strength relative to the mean diagonal of N^T N.
        reference: element -> energy (eV) for ``"reference"``; needs ``type_map``.
        shift: with ``"reference"``, add the common per-atom shift that best fits the data.
    """
    n = np.asarray(counts, dtype=np.float64)
    e = np.asarray(energies, dtype=np.float64)
    if n.ndim != 2 or e.shape != (n.shape[0],) or n.shape[0] == 0:
        raise ConfigError(f"fit_energy_bias needs counts (F, T) and energies (F,), got {n.shape} and {e.shape}")
    t_n = n.shape[1]
    rank = int(np.linalg.matrix_rank(n))
    natoms = n.sum(axis=1)
    if method == "ridge":
        mu = float(np.sum(e) / np.sum(natoms))
        a = n.T @ n
        lam = alpha * np.trace(a) / t_n
        b = mu + np.linalg.solve(a + lam * np.eye(t_n), n.T @ (e - natoms * mu))
    elif method == "reference":
        if reference is None or type_map is None:
            raise ConfigError("method 'reference' needs reference energies per element and the type_map")
        missing = [t for t in type_map if t not in reference]
        if missing:
            raise ConfigError(f"reference energies missing for {missing}")
        b = np.array([float(reference[t]) for t in type_map])
        if shift:
            c = float(np.sum((e - n @ b) * natoms) / np.sum(natoms * natoms))
            b = b + c
    else:
        raise ConfigError(f"unknown energy-bias method {method!r}: use 'ridge' or 'reference'")
    rmse = float(np.sqrt(np.mean(((n @ b - e) / natoms) ** 2)))
    return EnergyBias(bias=b, method=method, rank=rank, rmse_per_atom=rmse)


def type_counts(frames, type_map) -> np.ndarray:
    """(F_total, T) counts of each type, frame by frame, over Frames objects."""
    rows = []
    for fr in frames:
        c = np.array([np.sum(np.asarray(fr.species) == t) for t in type_map])
        rows.extend([c] * fr.positions.shape[0])
    return np.array(rows)


def apply_stats(variables, davg=None, dstd=None, out_bias=None):
    """A copy of ``variables`` with new constants (numpy arrays cast to the existing dtypes)."""
    import jax.numpy as jnp

    consts = dict(variables["constants"])
    for key, val in (("davg", davg), ("dstd", dstd), ("out_bias", out_bias)):
        if val is not None:
            consts[key] = jnp.asarray(val, jnp.asarray(consts[key]).dtype).reshape(jnp.shape(consts[key]))
    return {"params": variables["params"], "constants": consts}
