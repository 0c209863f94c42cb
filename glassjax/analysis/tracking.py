"""Ring and structural-unit tracking across a trajectory.

Two analyses of the papers:

* **When did the final rings form?** (2022 paper, Fig. 7e: "abundance ratio of the 3MRs
  which exist at 300 K, at each temperature during cooling").  For every 3-ring present in
  the last frame, :func:`ring_first_appearance` gives the first frame from which it exists
  *continuously* up to the end, and the first frame it was ever seen; with a temperature per
  frame these become temperatures.  :func:`abundance_curve` gives, per frame, the fraction
  of the final rings present in that frame and the fraction already formed for good.
* **What were new rings made of?** (2024 paper, Fig. 11: "3-rings formed under triaxial
  compression categorised by their initial structural units; the labels are the numbers of
  atoms in the structural units", e.g. six sequentially connected atoms B-O-B-O-B-O
  ("6"), a B-O-B-O unit plus a B-O bond ("4+2"), three separate B-O bonds ("2+2+2")).
  :func:`new_ring_origins` takes each 3-ring of a frame that was not a ring in the
  reference frame, keeps those of its six ring bonds that already existed in the reference
  frame, and reports the sizes (in atoms) of the connected pieces, largest first.  Atoms
  that had none of the ring bonds count as pieces of one atom ("4+1+1").  It also reports
  the reference class of every ring atom (3Bn, 4Br, NBOn, BOr, Sin, ...; r = in a 3-ring,
  n = not).

Rings are identified by their set of atoms (a ring is "the same" in two frames when it
contains the same T and O atoms).
"""

from __future__ import annotations

from collections import Counter
from typing import Dict, List, Optional, Sequence

import numpy as np

from glassjax.errors import ConfigError


def ring_first_appearance(ring_sets: Sequence[set], temperatures: Optional[Sequence[float]] = None) -> List[dict]:
    """For every ring of the last frame, when it appeared.

    Args:
        ring_sets: per frame, a set of rings (each a frozenset of atom indices).
        temperatures: optional (F,) temperature per frame, K.

    Returns:
        one dict per final ring (sorted by first_continuous_frame): ``atoms`` (sorted
        tuple), ``first_continuous_frame`` (start of the unbroken run that reaches the last
        frame), ``first_seen_frame``, ``n_frames_present``, and the matching
        ``*_temperature`` keys when temperatures are given.
    """
    nf = len(ring_sets)
    if nf == 0:
        raise ConfigError("ring tracking needs at least one frame")
    if temperatures is not None and len(temperatures) != nf:
        raise ConfigError(f"{len(temperatures)} temperatures for {nf} frames: give one per frame")
    out = []
    for ring in ring_sets[-1]:
        present = np.array([ring in s for s in ring_sets])
        start = nf - 1
        while start > 0 and present[start - 1]:
            start -= 1
        first = int(np.argmax(present))
        row = {"atoms": tuple(sorted(ring)), "first_continuous_frame": start, "first_seen_frame": first,
               "n_frames_present": int(present.sum())}
        if temperatures is not None:
            row["first_continuous_temperature"] = float(temperatures[start])
            row["first_seen_temperature"] = float(temperatures[first])
        out.append(row)
    out.sort(key=lambda r: (r["first_continuous_frame"], r["atoms"]))
    return out


def abundance_curve(ring_sets: Sequence[set]) -> Dict[str, np.ndarray]:
    """Per frame: fraction of the last frame's rings present, and fraction formed for good.

    Returns dict ``present`` (F,) and ``formed`` (F,) (fraction of final rings whose
    unbroken run to the end has started at or before that frame: 2022 Fig. 7e), plus
    ``n_final`` (number of rings in the last frame).  NaN when the last frame has no ring.
    """
    final = ring_sets[-1]
    nf = len(ring_sets)
    if not final:
        return {"present": np.full(nf, np.nan), "formed": np.full(nf, np.nan), "n_final": 0}
    present = np.array([len(final & s) / len(final) for s in ring_sets])
    starts = np.array([r["first_continuous_frame"] for r in ring_first_appearance(ring_sets)])
    formed = np.array([np.mean(starts <= f) for f in range(nf)])
    return {"present": present, "formed": formed, "n_final": len(final)}


def _components_on_cycle(present_edges: Sequence[bool]) -> List[int]:
    """Sizes (in nodes) of the connected pieces of a 6-cycle keeping only ``present_edges``.

    Edge k joins node k and node k+1 (mod m).
    """
    m = len(present_edges)
    if all(present_edges):
        return [m]
    # start after a missing edge so that pieces do not wrap
    start = next(k for k in range(m) if not present_edges[k]) + 1
    sizes, size = [], 1
    for step in range(m - 1):
        k = (start + step) % m
        if present_edges[k]:
            size += 1
        else:
            sizes.append(size)
            size = 1
    sizes.append(size)
    return sorted(sizes, reverse=True)


def atom_classes(types, cn_o, in_ring, o_former_count, type_map: Sequence[str]) -> np.ndarray:
    """(N,) class labels of atoms in one frame: 3Br/3Bn/4Br/4Bn, BOr/BOn/NBOn/..., Sir/Sin, Li.

    Args:
        types (N,) int in ``type_map`` order; cn_o (N,) O neighbours; in_ring (N,) bool
        (member of a 3-ring); o_former_count (N,) number of network formers bonded (for O).
    """
    labels = []
    for t, c, r, k in zip(np.asarray(types), np.asarray(cn_o), np.asarray(in_ring), np.asarray(o_former_count)):
        el = type_map[int(t)]
        tag = "r" if r else "n"
        if el == "B":
            labels.append(f"{int(c)}B{tag}")
        elif el == "Si":
            labels.append(f"{int(c)}Si{tag}")
        elif el == "O":
            kind = {0: "freeO", 1: "NBO", 2: "BO"}.get(int(k), "triO")
            labels.append(f"{kind}{tag}")
        else:
            labels.append(el)
    return np.array(labels)


def new_ring_origins(rings_now: Sequence[Sequence[int]], ref_ring_sets: set, ref_bonds: set,
                     ref_classes: Optional[Sequence[str]] = None) -> List[dict]:
    """Categories of the 3-rings of a frame that were not rings in the reference frame.

    Args:
        rings_now: rings of the frame, each 6 atom indices in ring order [T, O, T, O, T, O].
        ref_ring_sets: rings of the reference frame (frozensets of atoms).
        ref_bonds: bonds of the reference frame as frozenset({i, j}) pairs.
        ref_classes: optional (N,) reference class label of every atom (:func:`atom_classes`).

    Returns:
        one dict per new ring: ``atoms`` (ring order), ``category`` (piece sizes joined by
        '+', e.g. "4+2"), ``n_ref_bonds`` (ring bonds already present in the reference),
        and ``ref_classes`` ("3Bn-BOn-4Bn-...", ring order) when given.
    """
    out = []
    for ring in rings_now:
        ring = [int(a) for a in ring]
        if frozenset(ring) in ref_ring_sets:
            continue
        m = len(ring)
        edges = [frozenset((ring[k], ring[(k + 1) % m])) in ref_bonds for k in range(m)]
        sizes = _components_on_cycle(edges)
        row = {"atoms": tuple(ring), "category": "+".join(str(s) for s in sizes), "n_ref_bonds": int(sum(edges))}
        if ref_classes is not None:
            row["ref_classes"] = "-".join(str(ref_classes[a]) for a in ring)
        out.append(row)
    return out


def category_counts(origins: Sequence[dict]) -> Dict[str, int]:
    """{category: count}, most common first."""
    return dict(Counter(o["category"] for o in origins).most_common())


# ----------------------------------------------------------------------------- drivers


def track_three_rings(frames, temperatures: Optional[Sequence[float]] = None, reference: int = 0,
                      cutoffs=None, formers: Sequence[str] = ("B", "Si"), chunk: int = 16,
                      progress: bool = False) -> Dict[str, object]:
    """Both tracking analyses over a :class:`~glassjax.data.Frames` trajectory.

    Args:
        frames: trajectory (cooling run or deformation run).
        temperatures: optional temperature per frame, K (cooling runs).
        reference: frame whose bonds and rings define "initial" for the origins analysis.
        cutoffs, formers: as for :func:`glassjax.analysis.rings.three_rings_trajectory`.

    Returns:
        dict with ``n_3rings`` (F,), ``first_appearance`` (list of dicts),
        ``abundance`` (dict of arrays), ``origins`` (list of dicts for every frame's new
        rings, each with a ``frame`` key) and ``origin_counts`` for the last frame.
    """
    from glassjax.analysis.bonds import bond_graph, cutoff_matrix, parse_cutoffs
    from glassjax.analysis.rings import ring_atom_sets, three_rings_trajectory

    nf = frames.nframes
    if not -nf <= reference < nf:
        raise ConfigError(f"reference frame {reference} is outside the trajectory of {nf} frames")
    reference = reference % nf
    res = three_rings_trajectory(frames, cutoffs=cutoffs, formers=formers, chunk=chunk, progress=progress)
    ring_sets = [set(ring_atom_sets(res["rings"][f], res["valid"][f])) for f in range(nf)]
    type_map = frames.elements
    types = frames.types(type_map)
    cut = cutoff_matrix(type_map, parse_cutoffs(cutoffs))
    g = bond_graph(frames.positions[reference], frames.cells[reference], types, cut)
    ref_bonds = {frozenset((int(a), int(b))) for a, b in zip(g.i, g.j)}
    former = np.isin(np.array(type_map)[types], list(formers))
    o_count = np.zeros(frames.natoms, int)
    for a, b in zip(g.i, g.j):
        if former[b]:
            o_count[a] += 1
        if former[a]:
            o_count[b] += 1
    classes = atom_classes(types, res["cn_O"][reference], res["in_3ring"][reference], o_count, type_map)
    origins = []
    for f in range(nf):
        rings_now = [r for r, v in zip(res["rings"][f], res["valid"][f]) if v]
        for row in new_ring_origins(rings_now, ring_sets[reference], ref_bonds, classes):
            row["frame"] = f
            origins.append(row)
    last = [o for o in origins if o["frame"] == nf - 1]
    return {
        "n_3rings": res["n_3rings"],
        "first_appearance": ring_first_appearance(ring_sets, temperatures),
        "abundance": abundance_curve(ring_sets),
        "origins": origins,
        "origin_counts": category_counts(last),
        "ref_classes": classes,
    }
