"""Coordination, boron/silicon speciation, oxygen classes, network connectivity, density.

Definitions (the 2022 and 2024 papers'; T = network former, B or Si):

* nB: boron with n oxygen neighbours within the B-O cutoff (3B trigonal, 4B tetrahedral);
  N4 = #4B / #B.  nSi likewise (4Si, 5Si over-coordinated silicon, 2022 paper Fig. 2b).
* Oxygen by the number of T neighbours: free O (0 T), non-bridging O, NBO (1 T), bridging
  O, BO (2 T), tricluster O (3 or more T).
* Network connectivity: the mean number of bridging oxygens (O with >= 2 T neighbours)
  bonded to a T atom (the mean n of the Q^n units).
* Density: sum of atomic masses / cell volume, g/cm^3.

Kernels are pure functions of one frame (vmappable over frames and over padded batches):

* :func:`coordination_numbers`: (N, T) integer counts of bonded neighbours per neighbour type.
* :func:`smooth_coordination_numbers`: the same with a Fermi switch
  ``s(r) = 1 / (1 + exp((r - r_c) / w))`` in place of the step, differentiable in positions
  and cell (for sensitivity studies).
* :func:`network_properties`: per-frame scalars (fractions, connectivity, density).

:func:`coordination_trajectory` runs them over a whole :class:`~glassjax.data.Frames`.
"""

from __future__ import annotations

from functools import partial
from typing import Dict, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from glassjax import neighbors
from glassjax.analysis.bonds import (SpeciesIndex, analysis_spec, bond_mask, build_any, cutoff_matrix,
                                     grow_any, is_former, max_cutoff, parse_cutoffs)
from glassjax.units import AMU_PER_A3_TO_G_PER_CM3

#: Keys of :func:`network_properties`, in CSV column order.
PROPERTY_KEYS = (
    "n_B", "frac_B3", "frac_B4", "frac_B_other", "mean_cn_B",
    "n_Si", "frac_Si4", "frac_Si5", "frac_Si6", "frac_Si_other", "mean_cn_Si",
    "n_O", "frac_O_free", "frac_NBO", "frac_BO", "frac_O_tri",
    "connectivity", "mean_cn_Li", "density",
)


def coordination_numbers(positions, cell, types, nl: neighbors.NeighborList, cutoffs, ntypes: int,
                         atom_mask=None):
    """(N, T) int32: number of bonded neighbours of each type for every atom.

    Args:
        positions: (N, 3) Å; cell: (3, 3) rows are vectors; types: (N,) int in [0, T);
        nl: neighbour list for a cutoff >= max(cutoffs); cutoffs: (T, T) Å;
        ntypes: T (static); atom_mask: optional (N,) bool (padding = False).
    """
    bonded, _, _, tj = bond_mask(positions, cell, types, nl, cutoffs, atom_mask)
    onehot = (tj[..., None] == jnp.arange(ntypes)) & bonded[..., None]
    return jnp.sum(onehot, axis=1).astype(jnp.int32)


def fermi_switch(r, rc, width):
    """Smooth step 1 / (1 + exp((r - rc) / width)): 1 well inside rc, 1/2 at rc, 0 outside."""
    return jax.nn.sigmoid((rc - r) / width)


def smooth_coordination_numbers(positions, cell, types, nl: neighbors.NeighborList, cutoffs, ntypes: int,
                                width: float = 0.05, atom_mask=None):
    """(N, T) float: coordination with a Fermi switch of ``width`` Å around each pair cutoff.

    ``CN_i,b = sum_j [type_j = b] / (1 + exp((r_ij - r_c[a_i, b]) / w))``, pairs with
    r_c = 0 excluded.  The neighbour list must reach ``max(cutoffs) + 10 w`` (then the
    neglected tail is below e^-10).  Differentiable in positions and cell.
    """
    rij, filled = neighbors.pair_vectors(positions, cell, nl)
    j = jnp.where(filled, nl.idx, 0)
    r = jnp.sqrt(jnp.sum(rij * rij, axis=-1) + jnp.where(filled, 0.0, 1.0))
    tj = jnp.where(filled, types[j], 0)
    rc = jnp.asarray(cutoffs, dtype=positions.dtype)[types[:, None], tj]
    w = fermi_switch(r, rc, width) * (filled & (rc > 0))
    if atom_mask is not None:
        w = w * (atom_mask[:, None] & atom_mask[j])
    onehot = (tj[..., None] == jnp.arange(ntypes)).astype(positions.dtype)
    return jnp.einsum("nk,nkt->nt", w, onehot)


def _frac(num, den):
    den = jnp.asarray(den, dtype=jnp.result_type(float))
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), jnp.nan)


def network_properties(positions, cell, types, nl: neighbors.NeighborList, cutoffs, species: SpeciesIndex,
                       masses, atom_mask=None) -> Dict[str, jax.Array]:
    """Per-frame network statistics (dict of scalars, keys :data:`PROPERTY_KEYS`).

    Args:
        positions (N, 3) Å; cell (3, 3); types (N,) int; nl: neighbour list (cutoff >=
        max(cutoffs)); cutoffs (T, T) Å; species: static :class:`SpeciesIndex`;
        masses (N,) amu; atom_mask optional (N,) bool.

    Fractions are NaN when the element is absent.  ``density`` in g/cm^3.
    """
    n = positions.shape[0]
    valid = jnp.ones((n,), bool) if atom_mask is None else atom_mask
    bonded, _, _, tj = bond_mask(positions, cell, types, nl, cutoffs, atom_mask)
    former = is_former(types, species)
    former_j = is_former(tj, species) & (tj >= 0)
    o_t = species.O
    ox_j = (tj == o_t) if o_t >= 0 else jnp.zeros_like(bonded)
    cn_o = jnp.sum(bonded & ox_j, axis=1)  # O neighbours of every atom
    cn_t = jnp.sum(bonded & former_j, axis=1)  # T neighbours of every atom
    is_o = (types == o_t) & valid if o_t >= 0 else jnp.zeros((n,), bool)
    out: Dict[str, jax.Array] = {}

    def speciation(t, prefix, counts):
        sel = (types == t) & valid if t >= 0 else jnp.zeros((n,), bool)
        nsel = jnp.sum(sel)
        out[f"n_{prefix}"] = nsel.astype(jnp.int32)
        known = jnp.zeros((n,), bool)
        for c in counts:
            hit = sel & (cn_o == c)
            known = known | hit
            out[f"frac_{prefix}{c}"] = _frac(jnp.sum(hit), nsel)
        out[f"frac_{prefix}_other"] = _frac(jnp.sum(sel & ~known), nsel)
        out[f"mean_cn_{prefix}"] = _frac(jnp.sum(jnp.where(sel, cn_o, 0)), nsel)

    speciation(species.B, "B", (3, 4))
    speciation(species.Si, "Si", (4, 5, 6))
    n_o = jnp.sum(is_o)
    out["n_O"] = n_o.astype(jnp.int32)
    out["frac_O_free"] = _frac(jnp.sum(is_o & (cn_t == 0)), n_o)
    out["frac_NBO"] = _frac(jnp.sum(is_o & (cn_t == 1)), n_o)
    out["frac_BO"] = _frac(jnp.sum(is_o & (cn_t == 2)), n_o)
    out["frac_O_tri"] = _frac(jnp.sum(is_o & (cn_t >= 3)), n_o)
    # bridging O bonded to each T: neighbour j is O with >= 2 T neighbours
    j = jnp.where(nl.idx < n, nl.idx, 0)
    bridging_j = bonded & ox_j & (cn_t[j] >= 2)
    n_t = jnp.sum(former & valid)
    out["connectivity"] = _frac(jnp.sum(jnp.where(former & valid, jnp.sum(bridging_j, axis=1), 0)), n_t)
    li = (types == species.Li) & valid if species.Li >= 0 else jnp.zeros((n,), bool)
    out["mean_cn_Li"] = _frac(jnp.sum(jnp.where(li, cn_o, 0)), jnp.sum(li))
    vol = jnp.abs(jnp.linalg.det(cell))
    out["density"] = jnp.sum(jnp.where(valid, masses, 0.0)) / vol * AMU_PER_A3_TO_G_PER_CM3
    return out


def oxygen_former_counts(positions, cell, types, nl, cutoffs, species: SpeciesIndex, atom_mask=None):
    """(N,) int: number of bonded network formers of every atom (for O: 0 free, 1 NBO, 2 BO, 3 tri)."""
    bonded, _, _, tj = bond_mask(positions, cell, types, nl, cutoffs, atom_mask)
    return jnp.sum(bonded & is_former(tj, species) & (tj >= 0), axis=1).astype(jnp.int32)


def smooth_boron_n4(positions, cell, types, nl, cutoffs, species: SpeciesIndex, width: float = 0.05,
                    cn_width: float = 0.1, atom_mask=None):
    """Differentiable N4: mean over B of ``sigmoid((CN_BO - 3.5) / cn_width)``, CN_BO smooth.

    Returns a scalar; gradients w.r.t. positions and cell are defined everywhere.
    """
    cn = smooth_coordination_numbers(positions, cell, types, nl, cutoffs, species.ntypes, width, atom_mask)
    cn_bo = cn[:, species.O]
    sel = (types == species.B)
    if atom_mask is not None:
        sel = sel & atom_mask
    s = jax.nn.sigmoid((cn_bo - 3.5) / cn_width)
    return jnp.sum(jnp.where(sel, s, 0.0)) / jnp.maximum(jnp.sum(sel), 1)


# ----------------------------------------------------------------------------- drivers

def atom_masses(species_symbols) -> np.ndarray:
    """(N,) atomic masses in amu (ASE's table)."""
    from ase.data import atomic_masses, atomic_numbers

    return np.array([atomic_masses[atomic_numbers[s]] for s in species_symbols], dtype=np.float64)


@partial(jax.jit, static_argnames=("spec", "species"))
def _network_chunk(positions, cells, types, cutoffs, masses, spec, species):
    def one(pos, cell):
        nl = build_any(pos, cell, spec)
        props = network_properties(pos, cell, types, nl, cutoffs, species, masses)
        props["cn"] = coordination_numbers(pos, cell, types, nl, cutoffs, species.ntypes)
        props["n_formers"] = oxygen_former_counts(pos, cell, types, nl, cutoffs, species)
        return props, nl.overflow

    return jax.vmap(one)(positions, cells)


def coordination_trajectory(frames, cutoffs: Optional[Mapping] = None, chunk: int = 32,
                            progress: bool = False, per_atom: bool = False) -> Dict[str, np.ndarray]:
    """:func:`network_properties` for every frame of a :class:`~glassjax.data.Frames`.

    Args:
        frames: the trajectory (one system).
        cutoffs: bond cutoffs, e.g. ``{"B-O": 2.0}``; the defaults fill in the rest.
        chunk: frames per vmapped call (memory bound).
        progress: show a tqdm bar.

        per_atom: also return ``cn`` (F, N, T) bonded neighbours of each type (T in
            ``frames.elements`` order) and ``n_formers`` (F, N) bonded network formers.

    Returns:
        dict key -> (F,) numpy array, keys :data:`PROPERTY_KEYS` (+ the per-atom arrays).
    """
    type_map = frames.elements
    species = SpeciesIndex.from_type_map(type_map)
    cut = cutoff_matrix(type_map, parse_cutoffs(cutoffs))
    rc = max_cutoff(cut)
    dtype = jnp.asarray(0.0).dtype
    types = jnp.asarray(frames.types(type_map))
    masses = jnp.asarray(atom_masses(frames.species), dtype=dtype)
    cut_j = jnp.asarray(cut, dtype=dtype)
    spec = analysis_spec(frames.positions[0], frames.cells, rc)
    keys = PROPERTY_KEYS + (("cn", "n_formers") if per_atom else ())
    results = {k: [] for k in keys}
    starts = range(0, frames.nframes, chunk)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="coordination", unit="chunk")
    for s in starts:
        pos = jnp.asarray(frames.positions[s:s + chunk], dtype=dtype)
        cells = jnp.asarray(frames.cells[s:s + chunk], dtype=dtype)
        while True:
            props, overflow = _network_chunk(pos, cells, types, cut_j, masses, spec, species)
            if not bool(jnp.any(overflow)):
                break
            spec = grow_any(spec, frames.cells, frames.natoms)
        for k in keys:
            results[k].append(np.asarray(props[k]))
    return {k: np.concatenate(v) for k, v in results.items()}
